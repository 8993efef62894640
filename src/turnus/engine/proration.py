"""Proration: the share of a billing period a part of it covers, and the money that share is worth."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from fractions import Fraction

from turnus.engine.errors import CurrencyMismatch, InvalidAmount, InvalidPeriod
from turnus.engine.money import EXACT, Money
from turnus.engine.periods import Period, calendar_days, check_aware, check_timezone

_MICROSECOND = timedelta(microseconds=1)


class ProrationMode(StrEnum):
    DAY = "day"
    SECOND = "second"


def _check_mode(mode: object) -> ProrationMode:
    if isinstance(mode, str) and mode in ProrationMode.__members__.values():
        return ProrationMode(mode)
    raise InvalidPeriod(f"proration mode must be 'day' or 'second', got {mode!r}", field="mode")


def proration_fraction(period: Period, part: Period, mode: ProrationMode, timezone: str) -> Fraction:
    """The exact share of ``period`` that ``part`` covers, in local calendar days or in seconds.

    By day, a part starting mid-day owns that whole day: the day of a change belongs to the new state.
    """
    mode = _check_mode(mode)
    check_timezone(timezone)
    if part.start < period.start or part.end > period.end:
        raise InvalidPeriod(f"part {part} lies outside the period {period}", field="part")
    if mode is ProrationMode.SECOND:
        return Fraction(part.duration // _MICROSECOND, period.duration // _MICROSECOND)
    whole = calendar_days(period, timezone)
    if whole == 0:
        raise InvalidPeriod(
            f"period {period} does not cross a local midnight, so it has no day to prorate by", field="period"
        )
    return Fraction(calendar_days(part, timezone), whole)


def _scaled(amount: Money, fraction: Fraction) -> Money:
    numerator = EXACT.multiply(amount.amount, Decimal(fraction.numerator))
    exact = EXACT.divide(numerator, Decimal(fraction.denominator))
    return Money(exact, amount.currency).rounded()


def prorate(amount: Money, period: Period, part: Period, mode: ProrationMode, timezone: str) -> Money:
    """``amount`` times the share of ``period`` that ``part`` covers, rounded half-up to minor units."""
    return _scaled(amount, proration_fraction(period, part, mode, timezone))


@dataclass(frozen=True, slots=True)
class ChangeProration:
    """What a plan change mid-period is worth: the unused old plan back, the new plan for the rest."""

    credit: Money
    charge: Money
    fraction: Fraction


def change_proration(
    old_amount: Money,
    new_amount: Money,
    period: Period,
    change_at: datetime,
    mode: ProrationMode,
    timezone: str,
) -> ChangeProration:
    """Credit for ``old_amount`` and charge for ``new_amount`` over ``[change_at, period.end)``."""
    if old_amount.currency != new_amount.currency:
        raise CurrencyMismatch(
            f"old plan in {old_amount.currency} and new plan in {new_amount.currency}", field="new_amount"
        )
    for name, amount in (("old_amount", old_amount), ("new_amount", new_amount)):
        if amount.is_negative():
            raise InvalidAmount(f"{name} must not be negative, got {amount}", field=name)
    change_at = check_aware(change_at, "change_at")
    if not period.contains(change_at):
        raise InvalidPeriod(f"change at {change_at} lies outside the period {period}", field="change_at")
    fraction = proration_fraction(period, Period(change_at, period.end), mode, timezone)
    return ChangeProration(_scaled(old_amount, fraction), _scaled(new_amount, fraction), fraction)
