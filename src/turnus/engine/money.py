"""Exact money: ``Decimal`` amounts with an ISO 4217 currency, rounded half-up to minor units."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Context, Decimal, InvalidOperation
from functools import cache, lru_cache

from babel.numbers import get_currency_precision, list_currencies

from turnus.engine.errors import CurrencyMismatch, InvalidAmount, UnknownCurrency

#: Arithmetic context wide enough that 12-decimal unit prices times large quantities stay exact.
EXACT = Context(prec=60, rounding=ROUND_HALF_UP)

#: Unit prices may carry up to this many decimal places.
MAX_UNIT_PRICE_DECIMALS = 12

DecimalLike = Decimal | int | str


def to_decimal(value: object, *, field: str = "amount", max_decimals: int | None = None) -> Decimal:
    """Return ``value`` as a finite ``Decimal``; floats, booleans, NaN and infinities are refused."""
    if type(value) is Decimal and value.is_finite():
        if max_decimals is None:
            return value
        exponent = value.as_tuple().exponent
        if isinstance(exponent, int) and exponent >= -max_decimals:
            return value
    if isinstance(value, (bool, float)):
        raise InvalidAmount(f"{field} must be an exact decimal, not {type(value).__name__}", field=field)
    if isinstance(value, Decimal):
        result = value
    elif isinstance(value, int):
        result = Decimal(value)
    elif isinstance(value, str):
        try:
            result = Decimal(value.strip())
        except InvalidOperation:
            raise InvalidAmount(f"{field} is not a decimal number: {value!r}", field=field) from None
    else:
        raise InvalidAmount(f"{field} must be a decimal, got {type(value).__name__}", field=field)
    if not result.is_finite():
        raise InvalidAmount(f"{field} must be a finite number", field=field)
    if max_decimals is not None and decimal_places(result) > max_decimals:
        raise InvalidAmount(f"{field} has more than {max_decimals} decimal places", field=field)
    return result


def decimal_places(value: Decimal) -> int:
    """Number of decimal places ``value`` is written with, ignoring trailing zeros."""
    exponent = value.normalize().as_tuple().exponent
    return max(0, -exponent) if isinstance(exponent, int) else 0


@cache
def _known_currencies() -> frozenset[str]:
    return frozenset(list_currencies())


@lru_cache(maxsize=512)
def currency_digits(currency: str) -> int:
    """The number of minor-unit digits of an ISO 4217 currency (EUR 2, JPY 0, KWD 3, CLF 4)."""
    if currency not in _known_currencies():
        raise UnknownCurrency(f"unknown currency {currency!r}", field="currency")
    return int(get_currency_precision(currency))


@lru_cache(maxsize=512)
def _quantum(digits: int) -> Decimal:
    return Decimal(1).scaleb(-digits)


def round_half_up(value: Decimal, digits: int) -> Decimal:
    """Round ``value`` half-up ("kaufmännisch") to ``digits`` decimal places."""
    return value.quantize(_quantum(digits), ROUND_HALF_UP, EXACT)


def check_currency(currency: object) -> str:
    """Return ``currency`` if it is a known ISO 4217 code, else raise ``UnknownCurrency``."""
    if not isinstance(currency, str) or currency not in _known_currencies():
        raise UnknownCurrency(f"unknown currency {currency!r}", field="currency")
    return currency


@dataclass(frozen=True, slots=True)
class Money:
    """An exact amount in one currency. Unrounded until ``rounded()`` is asked for."""

    amount: Decimal
    currency: str

    def __post_init__(self) -> None:
        object.__setattr__(self, "amount", to_decimal(self.amount))
        check_currency(self.currency)

    @classmethod
    def _unchecked(cls, amount: Decimal, currency: str) -> Money:
        """Build from an amount and currency that are already known to be valid (the hot paths)."""
        money = object.__new__(cls)
        _set_amount(money, amount)
        _set_currency(money, currency)
        return money

    @classmethod
    def zero(cls, currency: str) -> Money:
        return cls(Decimal(0), currency)

    @classmethod
    def from_minor_units(cls, units: int, currency: str) -> Money:
        """``Money.from_minor_units(1999, "EUR")`` is 19.99 EUR."""
        if type(units) is not int:
            raise InvalidAmount("minor units must be an integer", field="amount")
        return cls._unchecked(Decimal(units).scaleb(-currency_digits(currency)), currency)

    @property
    def digits(self) -> int:
        return currency_digits(self.currency)

    def rounded(self) -> Money:
        """This amount rounded half-up to the currency's minor unit."""
        return Money._unchecked(round_half_up(self.amount, self.digits), self.currency)

    @property
    def is_rounded(self) -> bool:
        return decimal_places(self.amount) <= self.digits

    def to_minor_units(self) -> int:
        """The rounded amount as an integer count of minor units (19.99 EUR -> 1999)."""
        return int(round_half_up(self.amount, self.digits).scaleb(self.digits))

    def is_zero(self) -> bool:
        return self.amount == 0

    def is_negative(self) -> bool:
        return self.amount < 0

    def _same(self, other: Money) -> None:
        if type(other) is not Money:
            raise InvalidAmount(f"cannot combine money with {type(other).__name__}")
        if other.currency != self.currency:
            raise CurrencyMismatch(f"cannot combine {self.currency} with {other.currency}", field="currency")

    def __add__(self, other: Money) -> Money:
        self._same(other)
        return Money._unchecked(EXACT.add(self.amount, other.amount), self.currency)

    def __sub__(self, other: Money) -> Money:
        self._same(other)
        return Money._unchecked(EXACT.subtract(self.amount, other.amount), self.currency)

    def __neg__(self) -> Money:
        return Money._unchecked(EXACT.minus(self.amount), self.currency)

    def __abs__(self) -> Money:
        return Money._unchecked(EXACT.abs(self.amount), self.currency)

    def __mul__(self, factor: DecimalLike) -> Money:
        return Money._unchecked(
            EXACT.multiply(self.amount, to_decimal(factor, field="factor")), self.currency
        )

    __rmul__ = __mul__

    def __lt__(self, other: Money) -> bool:
        self._same(other)
        return self.amount < other.amount

    def __le__(self, other: Money) -> bool:
        self._same(other)
        return self.amount <= other.amount

    def __gt__(self, other: Money) -> bool:
        self._same(other)
        return self.amount > other.amount

    def __ge__(self, other: Money) -> bool:
        self._same(other)
        return self.amount >= other.amount

    def max_zero(self) -> Money:
        """This amount, or zero if it is negative."""
        return self if self.amount > 0 else Money.zero(self.currency)

    def __str__(self) -> str:
        return f"{self.amount} {self.currency}"


# The slots' own setters: they fill a new frozen Money without going through its __setattr__.
_set_amount = vars(Money)["amount"].__set__
_set_currency = vars(Money)["currency"].__set__


def money_sum(amounts: list[Money] | tuple[Money, ...], currency: str) -> Money:
    """Exact sum of ``amounts`` (all in ``currency``); zero for an empty sequence."""
    total = Money.zero(currency)
    for amount in amounts:
        total = total + amount
    return total
