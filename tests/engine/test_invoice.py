from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from turnus.engine.discounts import Discount, DiscountDuration, DiscountKind
from turnus.engine.errors import CurrencyMismatch, InvalidAmount, InvalidInvoice, TurnusError
from turnus.engine.invoice import (
    Allowance,
    ComposedInvoice,
    LineInput,
    VatBreakdown,
    check_en16931_totals,
    compose_invoice,
    credit_note,
)
from turnus.engine.money import Money, currency_digits, round_half_up
from turnus.engine.tax import TaxDecision, VatCategory

D = Decimal
DE_19 = TaxDecision(VatCategory.S, D(19), "DE")
DE_7 = TaxDecision(VatCategory.S, D(7), "DE")
FR_20 = TaxDecision(VatCategory.S, D(20), "FR")
DK_25 = TaxDecision(VatCategory.S, D(25), "DK")
REVERSE_CHARGE_AT = TaxDecision(VatCategory.AE, D(0), "AT", "VATEX-EU-AE", "reverse_charge")
EXPORT_CH = TaxDecision(VatCategory.O, D(0), "CH", "VATEX-EU-O", "not_taxable_in_eu")
SMALL_BUSINESS = TaxDecision(VatCategory.E, D(0), "DE", None, "small_business_exemption")
ZERO = TaxDecision(VatCategory.Z, D(0), "DE")
MARCH = (datetime(2025, 3, 1, tzinfo=UTC), datetime(2025, 4, 1, tzinfo=UTC))


def eur(amount: str) -> Money:
    return Money(D(amount), "EUR")


def line(price: str, tax: TaxDecision = DE_19, quantity: str = "1", **extra: object) -> LineInput:
    return LineInput(f"item {price}", D(quantity), D(price), tax, **extra)  # type: ignore[arg-type]


def percent(value: str, code: str = "P") -> Discount:
    return Discount(code, DiscountKind.PERCENTAGE, D(value))


def amount_off(value: str, currency: str = "EUR", code: str = "A") -> Discount:
    return Discount(code, DiscountKind.AMOUNT, D(value), currency)


# Worked examples


def test_a_prorated_200_euro_charge_at_25_percent_is_193_33_plus_48_33_making_241_66() -> None:
    invoice = compose_invoice("EUR", [line("200.00", DK_25, amount=D(200) * 29 / 30)])
    assert invoice.lines[0].net_amount == eur("193.33")
    assert invoice.totals.tax_total == eur("48.33")
    assert invoice.totals.grand_total == eur("241.66")
    assert invoice.totals.amount_due == eur("241.66")
    assert check_en16931_totals(invoice) == []


def test_a_domestic_german_invoice_charges_19_percent_on_the_summed_base() -> None:
    invoice = compose_invoice(
        "EUR", [line("0.000125", quantity="1234567", period=MARCH), line("9.99", quantity="3")]
    )
    assert [item.net_amount for item in invoice.lines] == [eur("154.32"), eur("29.97")]
    assert invoice.vat_breakdown == (
        VatBreakdown(VatCategory.S, D(19), eur("184.29"), eur("35.02"), None, None),
    )
    assert invoice.totals.grand_total == eur("219.31")
    assert invoice.lines[0].period == MARCH
    assert invoice.lines[0].unit_price == D("0.000125")


def test_a_german_invoice_with_7_and_19_percent_has_one_breakdown_group_per_rate_sorted() -> None:
    invoice = compose_invoice("EUR", [line("10.00"), line("20.00", DE_7)])
    assert [(group.rate, group.tax_amount) for group in invoice.vat_breakdown] == [
        (D(7), eur("1.40")),
        (D(19), eur("1.90")),
    ]
    assert invoice.totals.grand_total == eur("33.30")


def test_reverse_charge_to_an_austrian_business_has_no_vat_and_names_the_reason() -> None:
    invoice = compose_invoice("EUR", [line("500.00", REVERSE_CHARGE_AT)])
    (group,) = invoice.vat_breakdown
    assert (group.category, group.tax_amount, group.reason_code, group.note) == (
        VatCategory.AE,
        eur("0.00"),
        "VATEX-EU-AE",
        "reverse_charge",
    )
    assert invoice.totals.amount_due == eur("500.00")


def test_oss_sale_to_a_french_consumer_charges_20_percent() -> None:
    invoice = compose_invoice("EUR", [line("49.99", FR_20)])
    assert invoice.totals.tax_total == eur("10.00")
    assert invoice.totals.grand_total == eur("59.99")


def test_export_to_switzerland_is_not_taxable_in_the_eu() -> None:
    invoice = compose_invoice("CHF", [line("100.00", EXPORT_CH)])
    assert invoice.vat_breakdown[0].note == "not_taxable_in_eu"
    assert invoice.totals.grand_total == Money(D("100.00"), "CHF")


def test_a_kleinunternehmer_invoice_carries_no_vat_and_the_exemption_note() -> None:
    invoice = compose_invoice("EUR", [line("80.00", SMALL_BUSINESS)])
    assert invoice.vat_breakdown[0].category is VatCategory.E
    assert invoice.vat_breakdown[0].note == "small_business_exemption"
    assert invoice.totals.tax_total == eur("0.00")


def test_an_invoice_in_the_second_half_of_2020_uses_16_percent() -> None:
    invoice = compose_invoice("EUR", [line("100.00", TaxDecision(VatCategory.S, D(16), "DE"))])
    assert invoice.totals.grand_total == eur("116.00")


def test_a_yen_invoice_rounds_to_whole_yen() -> None:
    invoice = compose_invoice("JPY", [line("333.5", TaxDecision(VatCategory.S, D(10), "JP"), "3")])
    assert invoice.lines[0].net_amount == Money(D(1001), "JPY")
    assert invoice.totals.tax_total == Money(D(100), "JPY")
    assert invoice.totals.grand_total == Money(D(1101), "JPY")
    assert check_en16931_totals(invoice) == []


def test_a_kuwaiti_dinar_invoice_rounds_to_three_decimals() -> None:
    invoice = compose_invoice("KWD", [line("1.2345", FR_20, "3")])
    assert invoice.lines[0].net_amount == Money(D("3.704"), "KWD")
    assert invoice.totals.tax_total == Money(D("0.741"), "KWD")
    assert invoice.totals.grand_total == Money(D("4.445"), "KWD")


def test_a_gross_price_of_9_99_at_19_percent_keeps_9_99_due_with_a_rounding_amount() -> None:
    invoice = compose_invoice("EUR", [line("9.99")], prices_include_tax=True)
    assert invoice.lines[0].net_amount == eur("8.39")
    assert invoice.lines[0].gross_amount == eur("9.99")
    assert invoice.lines[0].unit_price == D("8.394957983193")
    assert invoice.totals.tax_total == eur("1.59")
    assert invoice.totals.grand_total == eur("9.98")
    assert invoice.totals.rounding_amount == eur("0.01")
    assert invoice.totals.amount_due == eur("9.99")
    assert check_en16931_totals(invoice) == []


def test_gross_prices_with_an_exact_net_need_no_rounding_amount() -> None:
    invoice = compose_invoice(
        "EUR", [line("11.90", quantity="2"), line("5.35", DE_7)], prices_include_tax=True
    )
    assert [item.net_amount for item in invoice.lines] == [eur("20.00"), eur("5.00")]
    assert invoice.totals.rounding_amount == eur("0.00")
    assert invoice.totals.amount_due == eur("29.15")


def test_gross_line_nets_are_spread_by_largest_remainder_to_the_category_net() -> None:
    invoice = compose_invoice("EUR", [line("1.00"), line("1.00"), line("1.00")], prices_include_tax=True)
    assert invoice.vat_breakdown[0].taxable_amount == eur("2.52")
    assert sorted(item.net_amount.amount for item in invoice.lines) == [D("0.84"), D("0.84"), D("0.84")]
    assert invoice.totals.amount_due == eur("3.00")


# Discounts


def test_a_percentage_discount_is_an_allowance_per_vat_category() -> None:
    invoice = compose_invoice("EUR", [line("100.00"), line("33.33", DE_7)], discounts=[percent("10")])
    assert invoice.allowances == (
        Allowance("P", VatCategory.S, D(7), eur("3.33")),
        Allowance("P", VatCategory.S, D(19), eur("10.00")),
    )
    assert invoice.totals.allowance_total == eur("13.33")
    assert invoice.totals.tax_exclusive == eur("120.00")
    assert [group.tax_amount for group in invoice.vat_breakdown] == [eur("2.10"), eur("17.10")]
    assert check_en16931_totals(invoice) == []


def test_an_amount_discount_is_split_in_proportion_and_adds_up_exactly() -> None:
    invoice = compose_invoice(
        "EUR", [line("10.00"), line("10.00", DE_7), line("10.00", ZERO)], discounts=[amount_off("1.00")]
    )
    assert sorted(allowance.amount.amount for allowance in invoice.allowances) == [
        D("0.33"),
        D("0.33"),
        D("0.34"),
    ]
    assert invoice.totals.allowance_total == eur("1.00")


def test_an_amount_discount_larger_than_the_base_is_capped_and_reports_the_unused_rest() -> None:
    invoice = compose_invoice("EUR", [line("30.00")], discounts=[amount_off("50.00")])
    assert invoice.totals.tax_exclusive == eur("0.00")
    assert invoice.totals.grand_total == eur("0.00")
    (usage,) = invoice.discount_usage
    assert (usage.applied, usage.unused) == (eur("30.00"), eur("20.00"))


def test_discounts_apply_in_order_each_on_what_the_previous_left() -> None:
    invoice = compose_invoice("EUR", [line("100.00")], discounts=[amount_off("20.00"), percent("50")])
    assert [allowance.amount for allowance in invoice.allowances] == [eur("20.00"), eur("40.00")]


def test_lines_marked_not_discountable_are_left_out_of_the_discount_base() -> None:
    invoice = compose_invoice(
        "EUR",
        [line("100.00"), line("50.00", discountable=False)],
        discounts=[percent("10"), amount_off("500")],
    )
    assert invoice.totals.allowance_total == eur("100.00")
    assert invoice.totals.tax_exclusive == eur("50.00")


def test_credit_lines_reduce_the_base_and_a_percentage_skips_a_negative_category() -> None:
    invoice = compose_invoice(
        "EUR",
        [line("100.00"), line("-40.00", kind="proration_credit"), line("-10.00", DE_7)],
        discounts=[percent("10")],
    )
    assert invoice.allowances == (Allowance("P", VatCategory.S, D(19), eur("6.00")),)
    assert invoice.totals.tax_exclusive == eur("44.00")
    assert invoice.vat_breakdown[0].tax_amount == eur("-0.70")


def test_a_discount_never_turns_an_invoice_negative_even_across_categories() -> None:
    invoice = compose_invoice(
        "EUR", [line("100.00"), line("-100.00", DE_7)], discounts=[amount_off("10.00"), percent("50")]
    )
    assert invoice.allowances == ()
    assert invoice.totals.tax_exclusive == eur("0.00")
    assert [(usage.applied, usage.unused) for usage in invoice.discount_usage] == [
        (eur("0.00"), eur("10.00")),
        (eur("0.00"), eur("50.00")),
    ]


def test_an_invoice_with_more_credit_than_charge_stays_negative() -> None:
    invoice = compose_invoice("EUR", [line("10.00"), line("-30.00")])
    assert invoice.totals.grand_total == eur("-23.80")
    assert check_en16931_totals(invoice) == []


def test_discounts_on_gross_prices_reduce_the_gross_due() -> None:
    invoice = compose_invoice(
        "EUR", [line("11.90"), line("10.70", DE_7)], discounts=[amount_off("2.26")], prices_include_tax=True
    )
    assert invoice.totals.amount_due == eur("20.34")
    assert invoice.totals.allowance_total == eur("2.00")
    assert invoice.discount_usage[0].applied == eur("2.26")
    assert check_en16931_totals(invoice) == []


def test_a_discount_must_be_in_the_invoice_currency() -> None:
    with pytest.raises(CurrencyMismatch) as raised:
        compose_invoice("EUR", [line("1.00")], discounts=[amount_off("1", "JPY")])
    assert raised.value.field == "discounts[0].currency"


# Validation


def test_an_invoice_needs_lines() -> None:
    with pytest.raises(InvalidInvoice) as raised:
        compose_invoice("EUR", [])
    assert raised.value.field == "lines"


def test_a_unit_price_with_more_than_12_decimals_is_refused() -> None:
    with pytest.raises(InvalidAmount) as raised:
        compose_invoice("EUR", [line("0.0000000000001")])
    assert raised.value.field == "lines[0].unit_price"


@pytest.mark.parametrize(
    ("bad_line", "error", "field"),
    [
        (LineInput(" ", D(1), D(1), DE_19), InvalidInvoice, "lines[0].description"),
        (LineInput("x", D(1), D(1), None), InvalidInvoice, "lines[0].tax"),  # type: ignore[arg-type]
        (LineInput("x", D(1), D(1), DE_19, kind=""), InvalidInvoice, "lines[0].kind"),
        (LineInput("x", 1.5, D(1), DE_19), InvalidAmount, "lines[0].quantity"),  # type: ignore[arg-type]
        (LineInput("x", D(1), D(1), DE_19, amount="abc"), InvalidAmount, "lines[0].amount"),  # type: ignore[arg-type]
        (LineInput("x", D(1), D(1), DE_19, period=(MARCH[1], MARCH[0])), InvalidInvoice, "lines[0].period"),
        (LineInput("x", D(1), D(1), DE_19, period=MARCH[:1]), InvalidInvoice, "lines[0].period"),  # type: ignore[arg-type]
        (LineInput("x", D(1), D(1), DE_19, period=list(MARCH)), InvalidInvoice, "lines[0].period"),  # type: ignore[arg-type]
        (
            LineInput("x", D(1), D(1), DE_19, period=(datetime(2025, 3, 1), datetime(2025, 4, 1))),  # noqa: DTZ001
            InvalidInvoice,
            "lines[0].period",
        ),
        (LineInput("x", D(1), D(1), DE_19, metadata={"a": 1}), InvalidInvoice, "lines[0].metadata"),  # type: ignore[dict-item]
        ("not a line", InvalidInvoice, "lines[0]"),
    ],
)
def test_bad_lines_are_refused_naming_the_line(
    bad_line: object, error: type[TurnusError], field: str
) -> None:
    with pytest.raises(error) as raised:
        compose_invoice("EUR", [bad_line])  # type: ignore[list-item]
    assert raised.value.field == field


def test_two_exemption_reasons_for_one_category_are_refused() -> None:
    exempt = TaxDecision(VatCategory.E, D(0), "DE", None, "tax_exempt")
    with pytest.raises(InvalidInvoice) as raised:
        compose_invoice("EUR", [line("1.00", SMALL_BUSINESS), line("1.00", exempt)])
    assert raised.value.field == "lines[1].tax"


def test_prepaid_amounts_reduce_the_amount_due_and_are_validated() -> None:
    invoice = compose_invoice("EUR", [line("100.00")], prepaid=D("19.00"))
    assert invoice.totals.amount_due == eur("100.00")
    with pytest.raises(InvalidAmount):
        compose_invoice("EUR", [line("1.00")], prepaid=D("-1"))
    with pytest.raises(InvalidAmount):
        compose_invoice("EUR", [line("1.00")], prepaid=D("0.001"))


def test_a_discount_that_is_not_a_discount_is_refused() -> None:
    with pytest.raises(InvalidInvoice):
        compose_invoice("EUR", [line("1.00")], discounts=["10%"])  # type: ignore[list-item]


# Credit notes


def test_a_full_credit_note_negates_the_invoice_and_references_it() -> None:
    invoice = compose_invoice(
        "EUR",
        [line("9.99", metadata={"sku": "a"}), line("5.00", DE_7)],
        discounts=[percent("10")],
        prices_include_tax=True,
        prepaid=D("5.00"),
    )
    note = credit_note(invoice, "RE-2025-0001")
    assert note.credit_note_for == "RE-2025-0001"
    assert note.totals.grand_total == -invoice.totals.grand_total
    assert note.totals.amount_due == -(invoice.totals.grand_total + invoice.totals.rounding_amount)
    assert note.lines[0].gross_amount == eur("-9.99")
    assert note.lines[0].metadata == {"sku": "a"}
    assert check_en16931_totals(note) == []


def test_a_partial_credit_note_credits_the_given_lines() -> None:
    invoice = compose_invoice("EUR", [line("100.00"), line("20.00", DE_7)])
    note = credit_note(invoice, "RE-1", [line("25.00")])
    assert note.lines[0].quantity == D(-1)
    assert note.totals.grand_total == eur("-29.75")
    assert check_en16931_totals(note) == []


def test_a_partial_credit_note_cannot_credit_more_than_was_charged() -> None:
    invoice = compose_invoice("EUR", [line("100.00")])
    for lines in ([line("100.01")], [line("1.00", DE_7)]):
        with pytest.raises(InvalidInvoice):
            credit_note(invoice, "RE-1", lines)


def test_a_credit_note_needs_a_reference_and_cannot_be_credited_itself() -> None:
    invoice = compose_invoice("EUR", [line("100.00")])
    with pytest.raises(InvalidInvoice):
        credit_note(invoice, " ")
    with pytest.raises(InvalidInvoice):
        credit_note(credit_note(invoice, "RE-1"), "CN-1")


# Rule checks


def test_check_en16931_totals_names_each_broken_rule() -> None:
    invoice = compose_invoice("EUR", [line("100.00"), line("10.00", ZERO)], discounts=[amount_off("11.00")])
    totals = invoice.totals
    assert check_en16931_totals(replace(invoice, totals=replace(totals, line_total=eur("1")))) == [
        "BR-CO-10",
        "BR-CO-13",
    ]
    assert check_en16931_totals(replace(invoice, allowances=invoice.allowances[:1])) == [
        "BR-CO-11",
        "BR-Z-08",
    ]
    assert check_en16931_totals(replace(invoice, totals=replace(totals, tax_total=eur("1")))) == [
        "BR-CO-14",
        "BR-CO-15",
    ]
    assert check_en16931_totals(replace(invoice, totals=replace(totals, amount_due=eur("1")))) == ["BR-CO-16"]
    wrong_vat = replace(invoice.vat_breakdown[0], tax_amount=eur("0.01"))
    assert "BR-CO-17" in check_en16931_totals(replace(invoice, vat_breakdown=(wrong_vat,)))
    broken = check_en16931_totals(replace(invoice, vat_breakdown=()))
    assert {"BR-CO-18", "BR-S-08", "BR-Z-08"} <= set(broken)


# Properties

CURRENCIES = ["EUR", "JPY", "KWD", "USD"]
DECISIONS = [
    DE_19,
    DE_7,
    FR_20,
    TaxDecision(VatCategory.S, D("25.5"), "FI"),
    TaxDecision(VatCategory.S, D("5.5"), "FR"),
    ZERO,
    REVERSE_CHARGE_AT,
    EXPORT_CH,
]


@st.composite
def decimals(draw: st.DrawFn, low: int, high: int, max_places: int) -> Decimal:
    places = draw(st.integers(0, max_places))
    return D(draw(st.integers(low * 10**places, high * 10**places))).scaleb(-places)


@st.composite
def line_inputs(draw: st.DrawFn) -> LineInput:
    quantity = draw(decimals(0, 100, 3))
    unit_price = draw(decimals(-50, 500, 12))
    amount = draw(
        st.none() | st.builds(lambda n, d: D(n) / D(d), st.integers(-5000, 50000), st.integers(1, 31))
    )
    return LineInput(
        "line",
        quantity,
        unit_price,
        draw(st.sampled_from(DECISIONS)),
        amount=amount,
        discountable=draw(st.booleans()),
    )


@st.composite
def discount_lists(draw: st.DrawFn, currency: str) -> list[Discount]:
    digits = currency_digits(currency)
    result = []
    for index in range(draw(st.integers(0, 3))):
        if draw(st.booleans()):
            result.append(
                Discount(f"P{index}", DiscountKind.PERCENTAGE, draw(decimals(0, 100, 2).filter(bool)))
            )
        else:
            value = draw(decimals(1, 300, digits))
            result.append(
                Discount(f"A{index}", DiscountKind.AMOUNT, value, currency, DiscountDuration.FOREVER)
            )
    return result


@st.composite
def invoice_inputs(draw: st.DrawFn) -> tuple[str, list[LineInput], list[Discount], bool]:
    currency = draw(st.sampled_from(CURRENCIES))
    lines = draw(st.lists(line_inputs(), min_size=1, max_size=6))
    return currency, lines, draw(discount_lists(currency)), draw(st.booleans())


def all_amounts(invoice: ComposedInvoice) -> list[Money]:
    amounts = [item.net_amount for item in invoice.lines]
    amounts += [allowance.amount for allowance in invoice.allowances]
    amounts += [group.taxable_amount for group in invoice.vat_breakdown]
    amounts += [group.tax_amount for group in invoice.vat_breakdown]
    totals = invoice.totals
    amounts += [totals.line_total, totals.allowance_total, totals.tax_exclusive, totals.tax_total]
    amounts += [totals.grand_total, totals.rounding_amount, totals.prepaid, totals.amount_due]
    return amounts


@settings(max_examples=300, deadline=None)
@given(invoice_inputs())
def test_random_invoices_satisfy_the_br_co_rules_with_rounded_amounts(
    inputs: tuple[str, list[LineInput], list[Discount], bool],
) -> None:
    currency, lines, discounts, inclusive = inputs
    invoice = compose_invoice(currency, lines, discounts=discounts, prices_include_tax=inclusive)
    assert check_en16931_totals(invoice) == []
    assert all(amount.is_rounded and amount.currency == currency for amount in all_amounts(invoice))
    digits = currency_digits(currency)
    shown = [
        round_half_up(item.amount if item.amount is not None else item.quantity * item.unit_price, digits)
        for item in lines
    ]
    if inclusive:
        gross_due = sum(shown, D(0)) - sum((usage.applied.amount for usage in invoice.discount_usage), D(0))
        assert invoice.totals.amount_due.amount == gross_due
    else:
        assert [item.net_amount.amount for item in invoice.lines] == shown
        assert invoice.totals.rounding_amount.is_zero()
    vat = sum((group.tax_amount.amount for group in invoice.vat_breakdown), D(0))
    expected = (
        sum((item.net_amount.amount for item in invoice.lines), D(0)) - invoice.totals.allowance_total.amount
    )
    assert invoice.totals.grand_total.amount == expected + vat


@settings(max_examples=200, deadline=None)
@given(invoice_inputs())
def test_discounts_never_make_a_total_negative(
    inputs: tuple[str, list[LineInput], list[Discount], bool],
) -> None:
    currency, lines, discounts, inclusive = inputs
    plain = compose_invoice(currency, lines, prices_include_tax=inclusive)
    discounted = compose_invoice(currency, lines, discounts=discounts, prices_include_tax=inclusive)
    assert all(not allowance.amount.is_negative() for allowance in discounted.allowances)

    def total(invoice: ComposedInvoice) -> Money:
        return invoice.totals.amount_due if inclusive else invoice.totals.tax_exclusive

    assert total(discounted) <= total(plain)
    if not total(plain).is_negative():
        assert not total(discounted).is_negative()


@settings(max_examples=100, deadline=None)
@given(invoice_inputs())
def test_the_same_input_gives_the_same_invoice(
    inputs: tuple[str, list[LineInput], list[Discount], bool],
) -> None:
    currency, lines, discounts, inclusive = inputs
    first = compose_invoice(currency, lines, discounts=discounts, prices_include_tax=inclusive)
    assert (
        compose_invoice(currency, list(lines), discounts=tuple(discounts), prices_include_tax=inclusive)
        == first
    )


@settings(max_examples=150, deadline=None)
@given(invoice_inputs())
def test_a_full_credit_note_negates_every_amount_exactly(
    inputs: tuple[str, list[LineInput], list[Discount], bool],
) -> None:
    currency, lines, discounts, inclusive = inputs
    invoice = compose_invoice(currency, lines, discounts=discounts, prices_include_tax=inclusive)
    note = credit_note(invoice, "INV-1")
    assert [-amount for amount in all_amounts(invoice)] == all_amounts(note)
    assert check_en16931_totals(note) == []


def test_gross_credits_and_charges_in_one_category_get_symmetric_nets() -> None:
    invoice = compose_invoice("EUR", [line("9.99"), line("-9.99")], prices_include_tax=True)
    assert [item.net_amount for item in invoice.lines] == [eur("8.39"), eur("-8.39")]
    assert invoice.totals.amount_due == eur("0.00")
    assert check_en16931_totals(invoice) == []


def test_a_partial_credit_note_can_be_composed_from_gross_prices() -> None:
    invoice = compose_invoice("EUR", [line("9.99", quantity="2")], prices_include_tax=True)
    note = credit_note(invoice, "RE-7", [line("9.99")], prices_include_tax=True)
    assert note.totals.amount_due == eur("-9.99")
    assert note.totals.rounding_amount == eur("-0.01")
    assert check_en16931_totals(note) == []
