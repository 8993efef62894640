from decimal import Decimal

import pytest

from turnus.engine.discounts import Discount, DiscountDuration, DiscountKind
from turnus.engine.errors import InvalidDiscount

D = Decimal


def test_a_once_discount_applies_to_the_first_period_only() -> None:
    discount = Discount("WELCOME", DiscountKind.PERCENTAGE, D(10), None, DiscountDuration.ONCE, None)
    assert [discount.applies_to(index) for index in range(3)] == [True, False, False]


def test_a_repeating_discount_applies_to_its_number_of_periods() -> None:
    discount = Discount("Q1", DiscountKind.AMOUNT, D("5.00"), "EUR", DiscountDuration.REPEATING, 3)
    assert [discount.applies_to(index) for index in range(5)] == [True, True, True, False, False]


def test_a_forever_discount_always_applies() -> None:
    discount = Discount("LOYAL", DiscountKind.PERCENTAGE, D(100), duration=DiscountDuration.FOREVER)
    assert discount.applies_to(0)
    assert discount.applies_to(1000)


def test_values_and_enums_are_normalized() -> None:
    discount = Discount("X", "amount", "500", "JPY", "forever")  # type: ignore[arg-type]
    assert discount.kind is DiscountKind.AMOUNT
    assert discount.duration is DiscountDuration.FOREVER
    assert discount.value == D(500)


@pytest.mark.parametrize(
    ("arguments", "field"),
    [
        (("", DiscountKind.PERCENTAGE, D(10)), "code"),
        (("X", "bogus", D(10)), "kind"),
        (("X", DiscountKind.PERCENTAGE, D(10), None, "weekly"), "duration"),
        (("X", DiscountKind.PERCENTAGE, 0.5), "value"),
        (("X", DiscountKind.PERCENTAGE, D(0)), "value"),
        (("X", DiscountKind.PERCENTAGE, D("100.01")), "value"),
        (("X", DiscountKind.PERCENTAGE, D(10), "EUR"), "currency"),
        (("X", DiscountKind.AMOUNT, D(10)), "currency"),
        (("X", DiscountKind.AMOUNT, D(10), "XYZ"), "currency"),
        (("X", DiscountKind.AMOUNT, D(-1), "EUR"), "value"),
        (("X", DiscountKind.AMOUNT, D("1.005"), "EUR"), "value"),
        (("X", DiscountKind.AMOUNT, D("1.5"), "JPY"), "value"),
        (("X", DiscountKind.AMOUNT, D(1), "EUR", DiscountDuration.REPEATING, None), "periods"),
        (("X", DiscountKind.AMOUNT, D(1), "EUR", DiscountDuration.REPEATING, 0), "periods"),
        (("X", DiscountKind.AMOUNT, D(1), "EUR", DiscountDuration.REPEATING, True), "periods"),
        (("X", DiscountKind.AMOUNT, D(1), "EUR", DiscountDuration.ONCE, 2), "periods"),
    ],
)
def test_bad_definitions_name_the_field_at_fault(arguments: tuple[object, ...], field: str) -> None:
    with pytest.raises(InvalidDiscount) as raised:
        Discount(*arguments)  # type: ignore[arg-type]
    assert raised.value.field == field
    assert raised.value.code == "invalid_discount"


@pytest.mark.parametrize("index", [-1, True, "0"])
def test_a_period_index_must_be_a_non_negative_integer(index: object) -> None:
    discount = Discount("X", DiscountKind.PERCENTAGE, D(10))
    with pytest.raises(InvalidDiscount) as raised:
        discount.applies_to(index)  # type: ignore[arg-type]
    assert raised.value.field == "period_index"
