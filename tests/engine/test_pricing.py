import json
from decimal import Decimal
from itertools import pairwise

import pytest
from hypothesis import given
from hypothesis import strategies as st

from turnus.engine.errors import InvalidPriceSpec, InvalidQuantity, UnknownCurrency
from turnus.engine.money import Money
from turnus.engine.pricing import (
    PRICE_MODELS,
    Band,
    ComponentKind,
    FlatPrice,
    GraduatedPrice,
    PackagePrice,
    PercentagePrice,
    PerUnitPrice,
    PriceModel,
    PriceModelCode,
    RatingComponent,
    StairstepPrice,
    Tier,
    VolumePrice,
    price_from_dict,
    rate,
)

D = Decimal


def amount_of(price: PriceModel, quantity: object, **kwargs: object) -> Decimal:
    return rate(price, quantity, "EUR", **kwargs).amount.amount  # type: ignore[arg-type]


def kinds(price: PriceModel, quantity: object, **kwargs: object) -> list[str]:
    rating = rate(price, quantity, "EUR", **kwargs)  # type: ignore[arg-type]
    return [component.kind for component in rating.components]


THREE_TIERS = (Tier(D(100), D("0.10")), Tier(D(1000), D("0.05")), Tier(None, D("0.01")))


# --- flat and per unit ---------------------------------------------------------------------------


def test_a_flat_price_is_charged_whatever_the_quantity() -> None:
    price = FlatPrice(D("9.99"))
    assert amount_of(price, D(0)) == D("9.99")
    rating = rate(price, D(500), "EUR")
    assert rating.amount == Money(D("9.99"), "EUR")
    assert rating.components == (RatingComponent(ComponentKind.FLAT, D(1), D("9.99"), D("9.99")),)


def test_per_unit_multiplies_quantity_by_unit_price() -> None:
    rating = rate(PerUnitPrice(D("0.25")), D(12), "EUR")
    assert rating.amount.amount == D("3.00")
    assert rating.components == (RatingComponent(ComponentKind.UNITS, D(12), D("0.25"), D("3.00")),)


def test_a_twelve_decimal_unit_price_times_a_million_calls_is_exact() -> None:
    assert amount_of(PerUnitPrice(D("0.000125")), D(1_000_000)) == D("125")
    assert amount_of(PerUnitPrice(D("0.000000000001")), D(3)) == D("0.000000000003")


def test_the_rating_amount_stays_unrounded() -> None:
    assert amount_of(PerUnitPrice(D("0.000125")), D(3)) == D("0.000375")


def test_a_unit_price_with_thirteen_decimals_is_refused() -> None:
    with pytest.raises(InvalidPriceSpec) as caught:
        PerUnitPrice(D("0.0000000000001"))
    assert caught.value.field == "unit_price"


def test_integers_and_decimal_strings_are_accepted_and_stored_as_decimals() -> None:
    price = PerUnitPrice("0.5", included_units=2)  # type: ignore[arg-type]
    assert price.unit_price == D("0.5")
    assert price.included_units == D(2)
    assert amount_of(price, 4) == D("1.0")


def test_zero_billable_units_at_a_per_unit_price_charge_nothing_and_list_no_units() -> None:
    rating = rate(PerUnitPrice(D("0.25")), D(0), "EUR")
    assert rating.amount.is_zero()
    assert rating.components == ()


# --- included units, minimum, maximum -----------------------------------------------------------


def test_included_units_are_free_and_only_the_rest_is_billed() -> None:
    price = PerUnitPrice(D("0.10"), included_units=D(100))
    rating = rate(price, D(150), "EUR")
    assert rating.billable_quantity == D(50)
    assert rating.amount.amount == D("5.00")
    assert rating.components[0] == RatingComponent(ComponentKind.INCLUDED_UNITS, D(100), D(0), D(0))


def test_usage_below_the_included_units_bills_nothing() -> None:
    rating = rate(PerUnitPrice(D("0.10"), included_units=D(100)), D(80), "EUR")
    assert rating.billable_quantity == D(0)
    assert rating.amount.is_zero()
    assert rating.components == (RatingComponent(ComponentKind.INCLUDED_UNITS, D(80), D(0), D(0)),)


def test_included_units_are_taken_before_the_tiers() -> None:
    price = GraduatedPrice(THREE_TIERS, included_units=D(50))
    assert amount_of(price, D(150)) == D("10.00")
    assert amount_of(price, D(151)) == D("10.05")


def test_a_minimum_tops_the_charge_up() -> None:
    rating = rate(PerUnitPrice(D("0.10"), minimum=D(20)), D(100), "EUR")
    assert rating.amount.amount == D(20)
    assert rating.components[-1] == RatingComponent(ComponentKind.MINIMUM, D(1), D("10.00"), D("10.00"))


def test_the_minimum_is_charged_even_when_nothing_was_used() -> None:
    rating = rate(PerUnitPrice(D("0.10"), minimum=D(20)), D(0), "EUR")
    assert rating.amount.amount == D(20)
    assert [c.kind for c in rating.components] == [ComponentKind.MINIMUM]


def test_a_charge_above_the_minimum_is_left_alone() -> None:
    assert kinds(PerUnitPrice(D("0.10"), minimum=D(20)), D(300)) == [ComponentKind.UNITS]
    assert amount_of(PerUnitPrice(D("0.10"), minimum=D(20)), D(300)) == D("30.00")


def test_a_maximum_caps_the_charge_with_a_negative_component() -> None:
    rating = rate(PerUnitPrice(D("0.10"), maximum=D(50)), D(1000), "EUR")
    assert rating.amount.amount == D(50)
    assert rating.components[-1] == RatingComponent(ComponentKind.MAXIMUM, D(1), D("-50.00"), D("-50.00"))


def test_a_charge_below_the_maximum_is_left_alone() -> None:
    assert amount_of(PerUnitPrice(D("0.10"), maximum=D(50)), D(100)) == D("10.00")


def test_a_maximum_below_the_minimum_is_refused() -> None:
    with pytest.raises(InvalidPriceSpec) as caught:
        FlatPrice(D(1), minimum=D(10), maximum=D(5))
    assert caught.value.field == "maximum"


def test_an_equal_minimum_and_maximum_fix_the_charge() -> None:
    price = PerUnitPrice(D(1), minimum=D(10), maximum=D(10))
    assert amount_of(price, D(0)) == amount_of(price, D(3)) == amount_of(price, D(30)) == D(10)


# --- graduated ---------------------------------------------------------------------------------


def test_graduated_keeps_units_up_to_the_bound_in_the_first_tier() -> None:
    rating = rate(GraduatedPrice(THREE_TIERS), D(100), "EUR")
    assert rating.amount.amount == D("10.00")
    assert rating.components == (RatingComponent(ComponentKind.TIER_UNITS, D(100), D("0.10"), D("10.00"), 1),)


def test_graduated_prices_each_tier_s_units_at_its_own_price() -> None:
    rating = rate(GraduatedPrice(THREE_TIERS), D(1500), "EUR")
    assert rating.amount.amount == D("60.00")
    assert [(c.quantity, c.unit_price, c.tier) for c in rating.components] == [
        (D(100), D("0.10"), 1),
        (D(900), D("0.05"), 2),
        (D(500), D("0.01"), 3),
    ]


def test_graduated_charges_the_flat_fee_of_every_tier_entered() -> None:
    tiers = (Tier(D(10), D(1), D(5)), Tier(None, D("0.5"), D(20)))
    price = GraduatedPrice(tiers)
    assert amount_of(price, D(10)) == D(15)
    assert amount_of(price, D(11)) == D("35.5")
    assert kinds(price, D(11)) == [
        ComponentKind.TIER_UNITS,
        ComponentKind.TIER_FLAT_FEE,
        ComponentKind.TIER_UNITS,
        ComponentKind.TIER_FLAT_FEE,
    ]


def test_graduated_at_zero_enters_no_tier_so_charges_no_flat_fee() -> None:
    assert rate(GraduatedPrice((Tier(None, D(1), D(5)),)), D(0), "EUR").components == ()


def test_graduated_splits_fractional_quantities_at_the_bound() -> None:
    assert amount_of(GraduatedPrice(THREE_TIERS), D("100.5")) == D("10.025")


# --- volume ------------------------------------------------------------------------------------


def test_volume_prices_all_units_at_the_tier_reached() -> None:
    rating = rate(VolumePrice(THREE_TIERS), D(500), "EUR")
    assert rating.amount.amount == D("25.00")
    assert rating.components == (RatingComponent(ComponentKind.TIER_UNITS, D(500), D("0.05"), D("25.00"), 2),)


def test_volume_bounds_are_inclusive_so_the_total_can_drop_just_above_a_bound() -> None:
    assert amount_of(VolumePrice(THREE_TIERS), D(100)) == D("10.00")
    assert amount_of(VolumePrice(THREE_TIERS), D(101)) == D("5.05")


def test_volume_adds_the_flat_fee_of_the_tier_reached_only() -> None:
    price = VolumePrice((Tier(D(10), D(2), D(1)), Tier(None, D(1), D(15))))
    assert amount_of(price, D(10)) == D(21)
    assert amount_of(price, D(12)) == D(27)
    assert rate(price, D(0), "EUR").components == ()


# --- package -----------------------------------------------------------------------------------


def test_package_rounds_started_blocks_up() -> None:
    price = PackagePrice(D(100), D(5))
    assert amount_of(price, D(0)) == D(0)
    assert amount_of(price, D(1)) == D(5)
    assert amount_of(price, D(100)) == D(5)
    assert amount_of(price, D(101)) == D(10)
    rating = rate(price, D(250), "EUR")
    assert rating.components == (RatingComponent(ComponentKind.PACKAGES, D(3), D(5), D(15)),)


def test_package_counts_blocks_after_the_included_units() -> None:
    assert amount_of(PackagePrice(D(100), D(5), included_units=D(50)), D(151)) == D(10)


def test_package_handles_fractional_sizes() -> None:
    assert amount_of(PackagePrice(D("0.5"), D(2)), D("1.2")) == D(6)


def test_a_zero_package_size_is_refused() -> None:
    with pytest.raises(InvalidPriceSpec) as caught:
        PackagePrice(D(0), D(5))
    assert caught.value.field == "package_size"


# --- percentage --------------------------------------------------------------------------------


CARD_FEE = PercentagePrice(D("2.9"), D("0.30"), D("0.50"), D(5))


def test_percentage_takes_the_rate_plus_fixed_fee_clamped_per_transaction() -> None:
    transactions = [D(1), D(100), D(1000)]
    rating = rate(CARD_FEE, D(3), "EUR", transactions=transactions)
    # 1 -> 0.329 raised to 0.50; 100 -> 3.20; 1000 -> 29.30 capped at 5
    assert rating.amount.amount == D("8.70")
    assert rating.components == (
        RatingComponent(ComponentKind.PERCENTAGE, D(1101), D("0.029"), D("31.929")),
        RatingComponent(ComponentKind.TRANSACTION_FEE, D(3), D("0.30"), D("0.90")),
        RatingComponent(ComponentKind.TRANSACTION_MINIMUM, D(1), D("0.50"), D("0.171")),
        RatingComponent(ComponentKind.TRANSACTION_MAXIMUM, D(1), D(5), D("-24.300")),
    )


def test_percentage_within_its_per_transaction_bounds_needs_no_adjustment() -> None:
    rating = rate(CARD_FEE, D(1), "EUR", transactions=[D(100)])
    assert rating.amount.amount == D("3.200")
    assert [c.kind for c in rating.components] == [ComponentKind.PERCENTAGE, ComponentKind.TRANSACTION_FEE]


def test_percentage_without_bounds_or_fixed_fee_is_the_rate_of_the_volume() -> None:
    price = PercentagePrice(D("1.5"))
    assert amount_of(price, D(2), transactions=[D(200), D(100)]) == D("4.5")
    assert kinds(price, D(2), transactions=[D(200), D(100)]) == [ComponentKind.PERCENTAGE]


def test_percentage_included_units_make_the_first_transactions_free() -> None:
    price = PercentagePrice(D(10), included_units=D(1))
    rating = rate(price, D(2), "EUR", transactions=[D(500), D(100)])
    assert rating.amount.amount == D(10)
    assert rating.billable_quantity == D(1)


def test_percentage_with_every_transaction_free_charges_nothing() -> None:
    price = PercentagePrice(D(10), included_units=D(5))
    assert amount_of(price, D(2), transactions=[D(500), D(100)]) == D(0)


def test_percentage_without_transactions_charges_nothing() -> None:
    assert rate(CARD_FEE, D(0), "EUR").amount.is_zero()


def test_percentage_needs_one_unit_per_transaction() -> None:
    with pytest.raises(InvalidQuantity) as caught:
        rate(CARD_FEE, D(5), "EUR", transactions=[D(1)])
    assert caught.value.field == "quantity"


def test_transactions_are_refused_for_other_price_models() -> None:
    with pytest.raises(InvalidQuantity) as caught:
        rate(PerUnitPrice(D(1)), D(1), "EUR", transactions=[D(1)])
    assert caught.value.field == "transactions"


def test_a_negative_transaction_amount_is_refused() -> None:
    with pytest.raises(InvalidQuantity) as caught:
        rate(CARD_FEE, D(2), "EUR", transactions=[D(1), D(-1)])
    assert caught.value.field == "transactions[1]"


def test_a_rate_above_a_hundred_percent_is_refused() -> None:
    with pytest.raises(InvalidPriceSpec) as caught:
        PercentagePrice(D("100.01"))
    assert caught.value.field == "rate_percent"


def test_a_per_transaction_maximum_below_the_minimum_is_refused() -> None:
    with pytest.raises(InvalidPriceSpec) as caught:
        PercentagePrice(D(1), min_per_transaction=D(2), max_per_transaction=D(1))
    assert caught.value.field == "max_per_transaction"


def test_percentage_included_units_must_be_whole_transactions() -> None:
    with pytest.raises(InvalidPriceSpec) as caught:
        PercentagePrice(D(1), included_units=D("1.5"))
    assert caught.value.field == "included_units"


# --- stairstep ---------------------------------------------------------------------------------


SEATS = StairstepPrice((Band(D(10), D(100)), Band(D(50), D(400)), Band(None, D(1000))))


def test_stairstep_charges_the_one_price_of_the_band_reached() -> None:
    assert amount_of(SEATS, D(1)) == D(100)
    assert amount_of(SEATS, D(10)) == D(100)
    assert amount_of(SEATS, D(11)) == D(400)
    assert amount_of(SEATS, D(5000)) == D(1000)
    assert rate(SEATS, D(11), "EUR").components == (
        RatingComponent(ComponentKind.BAND, D(1), D(400), D(400), 2),
    )


def test_stairstep_at_zero_charges_nothing() -> None:
    assert rate(SEATS, D(0), "EUR").components == ()


# --- rating inputs -----------------------------------------------------------------------------


@pytest.mark.parametrize("quantity", [D(-1), -1, 1.5, True, D("NaN"), "ten"])
def test_a_negative_or_inexact_quantity_is_refused(quantity: object) -> None:
    with pytest.raises(InvalidQuantity) as caught:
        rate(PerUnitPrice(D(1)), quantity, "EUR")  # type: ignore[arg-type]
    assert caught.value.field == "quantity"


def test_an_unknown_currency_is_refused() -> None:
    with pytest.raises(UnknownCurrency):
        rate(FlatPrice(D(1)), D(1), "XYZ")


def test_rating_something_that_is_not_a_price_model_is_refused() -> None:
    with pytest.raises(InvalidPriceSpec) as caught:
        rate({"model": "flat"}, D(1), "EUR")  # type: ignore[arg-type]
    assert caught.value.field == "price"


def test_the_amount_keeps_the_currency_of_the_call() -> None:
    assert rate(FlatPrice(D(500)), D(1), "JPY").amount == Money(D(500), "JPY")


# --- spec validation ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("tiers", "field"),
    [
        ((), "tiers"),
        ([Tier(D(10), D(1)), Tier(D(5), D(1)), Tier(None, D(1))], "tiers[1].up_to"),
        ([Tier(D(10), D(1)), Tier(D(10), D(1)), Tier(None, D(1))], "tiers[1].up_to"),
        ([Tier(D(10), D(1))], "tiers[0].up_to"),
        ([Tier(None, D(1)), Tier(None, D(1))], "tiers[0].up_to"),
        ([Tier(D(10), D(1)), "tier"], "tiers[1]"),
        ("tiers", "tiers"),
    ],
)
def test_inconsistent_tiers_are_refused_naming_the_tier(tiers: object, field: str) -> None:
    with pytest.raises(InvalidPriceSpec) as caught:
        GraduatedPrice(tiers)  # type: ignore[arg-type]
    assert caught.value.field == field


def test_bands_follow_the_same_ordering_rules() -> None:
    with pytest.raises(InvalidPriceSpec) as caught:
        StairstepPrice((Band(D(10), D(1)), Band(D(3), D(2)), Band(None, D(3))))
    assert caught.value.field == "bands[1].up_to"


def test_tiers_given_as_a_list_are_stored_as_a_tuple() -> None:
    assert GraduatedPrice(list(THREE_TIERS)).tiers == THREE_TIERS  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("build", "field"),
    [
        (lambda: Tier(D(0), D(1)), "up_to"),
        (lambda: Tier(D(1), D(-1)), "unit_price"),
        (lambda: Tier(D(1), D(1), D("-0.01")), "flat_fee"),
        (lambda: Band(D(-1), D(1)), "up_to"),
        (lambda: Band(None, 1.5), "price"),
        (lambda: FlatPrice(D(-1)), "amount"),
        (lambda: FlatPrice(1.0), "amount"),
        (lambda: FlatPrice(D(1), included_units=D(-1)), "included_units"),
        (lambda: FlatPrice(D(1), minimum=D(-1)), "minimum"),
        (lambda: FlatPrice(D(1), maximum=D("Infinity")), "maximum"),
    ],
)
def test_negative_or_inexact_spec_numbers_are_refused(build: object, field: str) -> None:
    with pytest.raises(InvalidPriceSpec) as caught:
        build()  # type: ignore[operator]
    assert caught.value.field == field


# --- dictionaries ------------------------------------------------------------------------------


EVERY_MODEL: list[PriceModel] = [
    FlatPrice(D("9.99")),
    PerUnitPrice(D("0.000125"), included_units=D(1000)),
    GraduatedPrice((Tier(D(100), D("0.10"), D(1)), Tier(None, D("0.05"))), minimum=D(5)),
    VolumePrice(THREE_TIERS, maximum=D(100)),
    PackagePrice(D(100), D(5)),
    PercentagePrice(D("2.9"), D("0.30"), D("0.50"), None, included_units=D(3)),
    SEATS,
]


def test_every_model_code_is_registered() -> None:
    assert set(PRICE_MODELS) == set(PriceModelCode)
    assert {type(price) for price in EVERY_MODEL} == set(PRICE_MODELS.values())


@pytest.mark.parametrize("price", EVERY_MODEL, ids=lambda price: price.model)
def test_every_model_survives_a_json_round_trip(price: PriceModel) -> None:
    data = json.loads(json.dumps(price.to_dict()))
    assert price_from_dict(data) == price
    assert price_from_dict(data).to_dict() == data


def test_to_dict_writes_decimals_as_strings_and_every_key() -> None:
    assert GraduatedPrice((Tier(D(100), D("0.10")), Tier(None, D("0.05"), D(2)))).to_dict() == {
        "model": "graduated",
        "tiers": [
            {"up_to": "100", "unit_price": "0.10", "flat_fee": "0"},
            {"up_to": None, "unit_price": "0.05", "flat_fee": "2"},
        ],
        "included_units": "0",
        "minimum": None,
        "maximum": None,
    }


def test_from_dict_fills_optional_keys_with_their_defaults() -> None:
    price = price_from_dict(
        {"model": "percentage", "rate_percent": "2.5", "max_per_transaction": 3, "minimum": None}
    )
    assert price == PercentagePrice(D("2.5"), max_per_transaction=D(3))
    tiers = price_from_dict({"model": "volume", "tiers": [{"up_to": None, "unit_price": "1"}]})
    assert tiers == VolumePrice((Tier(None, D(1)),))


def test_from_dict_keeps_the_exact_decimal_written() -> None:
    price = price_from_dict({"model": "per_unit", "unit_price": "0.100000000000"})
    assert price.to_dict()["unit_price"] == "0.100000000000"


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"unit_price": "1"}, "model"),
        ({"model": "tiered"}, "model"),
        ({"model": 3}, "model"),
        ({"model": "flat", "amount": "1", "colour": "red"}, "colour"),
        ({"model": "flat", "amount": "1", 7: "x"}, "7"),
        ({"model": "flat"}, "amount"),
        ({"model": "flat", "amount": 9.99}, "amount"),
        ({"model": "flat", "amount": True}, "amount"),
        ({"model": "flat", "amount": ["1"]}, "amount"),
        ({"model": "flat", "amount": None}, "amount"),
        ({"model": "flat", "amount": "-1"}, "amount"),
        ({"model": "flat", "amount": "one"}, "amount"),
        ({"model": "flat", "amount": "1", "minimum": 0.5}, "minimum"),
        ({"model": "flat", "amount": "1", "included_units": "-2"}, "included_units"),
        ({"model": "per_unit", "unit_price": "0.0000000000001"}, "unit_price"),
        ({"model": "graduated", "tiers": []}, "tiers"),
        ({"model": "graduated", "tiers": "100:0.1"}, "tiers"),
        ({"model": "graduated"}, "tiers"),
        ({"model": "graduated", "tiers": ["x"]}, "tiers[0]"),
        ({"model": "graduated", "tiers": [{"up_to": None, "unit_price": "1", "cap": "2"}]}, "tiers[0].cap"),
        ({"model": "graduated", "tiers": [{"unit_price": "1"}]}, "tiers[0].up_to"),
        ({"model": "graduated", "tiers": [{"up_to": None, "unit_price": 0.1}]}, "tiers[0].unit_price"),
        (
            {
                "model": "graduated",
                "tiers": [{"up_to": "0", "unit_price": "1"}, {"up_to": None, "unit_price": "1"}],
            },
            "tiers[0].up_to",
        ),
        (
            {
                "model": "graduated",
                "tiers": [
                    {"up_to": "10", "unit_price": "1"},
                    {"up_to": "5", "unit_price": "1"},
                    {"up_to": None, "unit_price": "1"},
                ],
            },
            "tiers[1].up_to",
        ),
        ({"model": "volume", "tiers": [{"up_to": "10", "unit_price": "1"}]}, "tiers[0].up_to"),
        ({"model": "stairstep", "bands": [{"up_to": None, "price": "-1"}]}, "bands[0].price"),
        ({"model": "stairstep", "bands": [{"up_to": None, "unit_price": "1"}]}, "bands[0].unit_price"),
        ({"model": "package", "package_size": "0", "package_price": "1"}, "package_size"),
        ({"model": "percentage", "rate_percent": "101"}, "rate_percent"),
    ],
)
def test_from_dict_refuses_bad_input_naming_the_field(data: dict[object, object], field: str) -> None:
    with pytest.raises(InvalidPriceSpec) as caught:
        price_from_dict(data)  # type: ignore[arg-type]
    assert caught.value.field == field


def test_from_dict_refuses_something_that_is_not_a_mapping() -> None:
    with pytest.raises(InvalidPriceSpec):
        price_from_dict(["flat"])  # type: ignore[arg-type]


# --- properties --------------------------------------------------------------------------------

prices = st.decimals(min_value=0, max_value=100, places=4)
quantities = st.decimals(min_value=0, max_value=20_000, places=3)


@st.composite
def tier_lists(draw: st.DrawFn) -> tuple[Tier, ...]:
    bounds: list[Decimal | None] = [D(b) for b in sorted(draw(st.sets(st.integers(1, 10_000), max_size=4)))]
    return tuple(Tier(up_to, draw(prices), draw(prices)) for up_to in [*bounds, None])


@st.composite
def price_models(draw: st.DrawFn) -> PriceModel:
    minimum = draw(st.none() | prices)
    maximum = draw(st.none() | st.decimals(min_value=minimum or 0, max_value=1000, places=2))
    common = {"included_units": draw(st.integers(0, 50).map(D)), "minimum": minimum, "maximum": maximum}
    band_tiers = draw(tier_lists())
    return draw(
        st.sampled_from(
            [
                FlatPrice(draw(prices), **common),
                PerUnitPrice(draw(prices), **common),
                GraduatedPrice(draw(tier_lists()), **common),
                VolumePrice(draw(tier_lists()), **common),
                PackagePrice(
                    draw(st.decimals(min_value="0.5", max_value=100, places=1)), draw(prices), **common
                ),
                PercentagePrice(draw(st.decimals(0, 100, places=3)), draw(prices), **common),
                StairstepPrice(tuple(Band(tier.up_to, tier.unit_price) for tier in band_tiers), **common),
            ]
        )
    )


def graduated_by_hand(tiers: tuple[Tier, ...], quantity: Decimal) -> Decimal:
    total = D(0)
    lower = D(0)
    for tier in tiers:
        upper = quantity if tier.up_to is None else min(quantity, tier.up_to)
        if upper > lower:
            total += amount_of(PerUnitPrice(tier.unit_price), upper - lower) + tier.flat_fee
            lower = upper
    return total


@given(tier_lists(), quantities, quantities)
def test_graduated_amounts_never_decrease_as_quantity_grows(
    tiers: tuple[Tier, ...], first: Decimal, second: Decimal
) -> None:
    low, high = sorted([first, second])
    price = GraduatedPrice(tiers)
    assert amount_of(price, low) <= amount_of(price, high)


@given(tier_lists(), quantities)
def test_graduated_equals_the_sum_over_its_tiers(tiers: tuple[Tier, ...], quantity: Decimal) -> None:
    assert amount_of(GraduatedPrice(tiers), quantity) == graduated_by_hand(tiers, quantity)


def at_bound(tier: Tier, bound: Decimal) -> Decimal:
    return bound * tier.unit_price + tier.flat_fee


def make_volume_continuous(tiers: tuple[Tier, ...]) -> tuple[Tier, ...]:
    fixed = [tiers[0]]
    for tier in tiers[1:]:
        bound = fixed[-1].up_to
        assert bound is not None
        needed = at_bound(fixed[-1], bound) - bound * tier.unit_price
        fixed.append(Tier(tier.up_to, tier.unit_price, max(tier.flat_fee, needed)))
    return tuple(fixed)


@given(tier_lists(), quantities, quantities)
def test_volume_amounts_never_decrease_when_no_tier_charges_less_at_its_lower_bound(
    tiers: tuple[Tier, ...], first: Decimal, second: Decimal
) -> None:
    low, high = sorted([first, second])
    price = VolumePrice(make_volume_continuous(tiers))
    assert amount_of(price, low) <= amount_of(price, high)


@given(tier_lists())
def test_volume_amounts_drop_right_after_a_bound_the_next_tier_undercuts(tiers: tuple[Tier, ...]) -> None:
    price = VolumePrice(tiers)
    for tier, following in pairwise(tiers):
        bound = tier.up_to
        assert bound is not None
        just_above = bound + D("0.000000001")
        undercut = at_bound(tier, bound) > at_bound(following, bound)
        assert (amount_of(price, just_above) < amount_of(price, bound)) == undercut


@given(price_models(), st.integers(0, 500).map(D))
def test_the_components_always_add_up_to_the_amount(price: PriceModel, quantity: Decimal) -> None:
    transactions = [D(n) for n in range(int(quantity))] if isinstance(price, PercentagePrice) else []
    rating = rate(price, quantity, "EUR", transactions=transactions)
    assert sum(component.amount for component in rating.components) == rating.amount.amount
    assert rating.amount.amount >= 0
    if price.minimum is not None:
        assert rating.amount.amount >= price.minimum
    if price.maximum is not None:
        assert rating.amount.amount <= price.maximum


@given(price_models())
def test_every_price_spec_round_trips_through_a_dict(price: PriceModel) -> None:
    data = price.to_dict()
    assert price_from_dict(data) == price
    assert price_from_dict(json.loads(json.dumps(data))).to_dict() == data
