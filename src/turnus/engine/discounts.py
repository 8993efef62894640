"""Discounts (coupons) as data: a percentage or a fixed amount, for one, several or all billed periods.

How a discount reduces an invoice is the composer's job (``turnus.engine.invoice``): it is applied
before tax as a document-level allowance per VAT category and never makes an invoice negative.
The caller passes to the composer only the discounts for which ``applies_to`` holds.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from typing import TypeVar

from turnus.engine.errors import InvalidDiscount, TurnusError
from turnus.engine.money import check_currency, currency_digits, decimal_places, to_decimal


class DiscountKind(StrEnum):
    PERCENTAGE = "percentage"
    AMOUNT = "amount"


class DiscountDuration(StrEnum):
    ONCE = "once"
    REPEATING = "repeating"
    FOREVER = "forever"


E = TypeVar("E", bound=StrEnum)


def _enum_member(enum: type[E], value: object, field: str) -> E:
    try:
        return enum(str(value))
    except ValueError:
        raise InvalidDiscount(f"{field} must be one of {', '.join(enum)}: {value!r}", field=field) from None


@dataclass(frozen=True, slots=True)
class Discount:
    """A discount definition; ``value`` is a percentage (0 < value <= 100) or a positive amount."""

    code: str
    kind: DiscountKind
    value: Decimal
    currency: str | None = None
    duration: DiscountDuration = DiscountDuration.ONCE
    periods: int | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.code, str) or not self.code.strip():
            raise InvalidDiscount("a discount needs a non-empty code", field="code")
        kind = _enum_member(DiscountKind, self.kind, "kind")
        duration = _enum_member(DiscountDuration, self.duration, "duration")
        try:
            value = to_decimal(self.value, field="value")
        except TurnusError as error:
            raise InvalidDiscount(error.message, field="value") from None
        if kind is DiscountKind.PERCENTAGE:
            if self.currency is not None:
                raise InvalidDiscount("a percentage discount has no currency", field="currency")
            if not Decimal(0) < value <= Decimal(100):
                raise InvalidDiscount("a percentage must be greater than 0 and at most 100", field="value")
        else:
            if self.currency is None:
                raise InvalidDiscount("an amount discount needs a currency", field="currency")
            try:
                digits = currency_digits(check_currency(self.currency))
            except TurnusError as error:
                raise InvalidDiscount(error.message, field="currency") from None
            if value <= 0:
                raise InvalidDiscount("a discount amount must be positive", field="value")
            if decimal_places(value) > digits:
                raise InvalidDiscount(
                    f"a {self.currency} discount amount has at most {digits} decimal places", field="value"
                )
        if duration is DiscountDuration.REPEATING:
            if isinstance(self.periods, bool) or not isinstance(self.periods, int) or self.periods < 1:
                raise InvalidDiscount("a repeating discount needs periods >= 1", field="periods")
        elif self.periods is not None:
            raise InvalidDiscount(f"a {duration} discount has no periods", field="periods")
        object.__setattr__(self, "kind", kind)
        object.__setattr__(self, "duration", duration)
        object.__setattr__(self, "value", value)

    def applies_to(self, period_index: int) -> bool:
        """Whether the discount applies to the billed period ``period_index`` (0 = first after redemption)."""
        if isinstance(period_index, bool) or not isinstance(period_index, int) or period_index < 0:
            raise InvalidDiscount("period_index must be a non-negative integer", field="period_index")
        if self.duration is DiscountDuration.ONCE:
            return period_index == 0
        if self.duration is DiscountDuration.REPEATING and self.periods is not None:
            return period_index < self.periods
        return True
