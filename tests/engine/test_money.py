from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from turnus.engine.errors import CurrencyMismatch, InvalidAmount, UnknownCurrency
from turnus.engine.money import (
    Money,
    currency_digits,
    decimal_places,
    money_sum,
    round_half_up,
    to_decimal,
)


@pytest.mark.parametrize(
    ("currency", "digits"),
    [("EUR", 2), ("USD", 2), ("JPY", 0), ("KRW", 0), ("KWD", 3), ("BHD", 3), ("CLF", 4)],
)
def test_minor_units_come_from_the_currency(currency, digits):
    assert currency_digits(currency) == digits


def test_rounding_is_half_up_at_the_minor_unit():
    assert Money("1.005", "EUR").rounded() == Money("1.01", "EUR")
    assert Money("-1.005", "EUR").rounded() == Money("-1.01", "EUR")
    assert Money("1.004999", "EUR").rounded() == Money("1.00", "EUR")
    assert Money("0.5", "JPY").rounded() == Money("1", "JPY")
    assert Money("1.0005", "KWD").rounded() == Money("1.001", "KWD")
    assert Money("1.00005", "CLF").rounded() == Money("1.0001", "CLF")


def test_a_prorated_price_rounds_to_the_cent():
    prorated = Money("200.00", "EUR") * Decimal(29) * (Decimal(1) / Decimal(30))
    assert prorated.rounded() == Money("193.33", "EUR")
    assert not prorated.is_rounded
    assert prorated.rounded().is_rounded


def test_floats_booleans_and_non_finite_numbers_are_refused():
    for bad in [0.1, True, Decimal("NaN"), Decimal("Infinity"), "abc", None, [1]]:
        with pytest.raises(InvalidAmount):
            Money(bad, "EUR")  # type: ignore[arg-type]
    with pytest.raises(InvalidAmount):
        Money("1", "EUR") * 1.5  # type: ignore[operator]


def test_decimal_strings_and_integers_are_accepted():
    assert Money(" 12.50 ", "EUR").amount == Decimal("12.50")
    assert Money(3, "EUR").amount == Decimal(3)


def test_unknown_currencies_are_refused():
    for bad in ["EURO", "eur", "", 978]:
        with pytest.raises(UnknownCurrency):
            Money("1", bad)  # type: ignore[arg-type]
    with pytest.raises(UnknownCurrency):
        currency_digits("ZZZ")


def test_different_currencies_never_mix():
    eur, usd = Money("1", "EUR"), Money("1", "USD")
    for operation in (
        lambda: eur + usd,
        lambda: eur - usd,
        lambda: eur < usd,
        lambda: eur <= usd,
        lambda: eur > usd,
        lambda: eur >= usd,
    ):
        with pytest.raises(CurrencyMismatch):
            operation()
    with pytest.raises(InvalidAmount):
        eur + Decimal(1)  # type: ignore[operator]


def test_arithmetic_and_comparison_in_one_currency():
    a, b = Money("10.25", "EUR"), Money("0.75", "EUR")
    assert a + b == Money("11.00", "EUR")
    assert a - b == Money("9.50", "EUR")
    assert -a == Money("-10.25", "EUR")
    assert abs(-a) == a
    assert 2 * b == Money("1.50", "EUR")
    assert b < a <= a
    assert a > b >= b
    assert (b - a).max_zero() == Money.zero("EUR")
    assert a.max_zero() == a
    assert (b - a).is_negative()
    assert Money.zero("EUR").is_zero()
    assert str(a) == "10.25 EUR"


def test_minor_units_round_trip():
    assert Money.from_minor_units(1999, "EUR") == Money("19.99", "EUR")
    assert Money.from_minor_units(1999, "JPY") == Money("1999", "JPY")
    assert Money.from_minor_units(1, "KWD") == Money("0.001", "KWD")
    assert Money("19.995", "EUR").to_minor_units() == 2000
    with pytest.raises(InvalidAmount):
        Money.from_minor_units(True, "EUR")


def test_to_decimal_limits_decimal_places():
    assert to_decimal("0.000000000001", max_decimals=12) == Decimal("1E-12")
    assert to_decimal("1.500000000000000", max_decimals=12) == Decimal("1.5")
    with pytest.raises(InvalidAmount) as caught:
        to_decimal("0.0000000000001", field="unit_price", max_decimals=12)
    assert caught.value.field == "unit_price"
    assert decimal_places(Decimal("100")) == 0


def test_money_sum_of_nothing_is_zero():
    assert money_sum([], "JPY") == Money.zero("JPY")
    assert money_sum([Money("1.10", "EUR"), Money("2.20", "EUR")], "EUR") == Money("3.30", "EUR")


@given(st.decimals(min_value=-(10**12), max_value=10**12, allow_nan=False, places=6))
def test_rounding_moves_an_amount_by_at_most_half_a_minor_unit(value):
    rounded = round_half_up(value, 2)
    assert abs(rounded - value) <= Decimal("0.005")
    assert decimal_places(rounded) <= 2


@given(
    st.lists(st.integers(min_value=-(10**9), max_value=10**9), max_size=30),
    st.sampled_from(["EUR", "JPY", "KWD"]),
)
def test_sums_of_minor_units_are_exact(units, currency):
    total = money_sum([Money.from_minor_units(u, currency) for u in units], currency)
    assert total.to_minor_units() == sum(units)


def test_an_error_can_carry_its_own_code_and_field():
    from turnus.engine.errors import TurnusError

    error = TurnusError("the order is malformed", field="order", code="malformed_order")
    assert (error.code, error.field, error.message) == ("malformed_order", "order", "the order is malformed")
    assert InvalidAmount("x").code == "invalid_amount"
