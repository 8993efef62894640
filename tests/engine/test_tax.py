from datetime import date
from decimal import Decimal

import pytest

from turnus.engine.errors import TaxError
from turnus.engine.tax import (
    EU_MEMBER_STATES,
    VAT_RATES,
    CountryRates,
    TaxCategory,
    TaxDecision,
    VatCategory,
    check_country,
    determine_vat,
    is_eu_member,
    vat_id_prefix,
    vat_rates,
)

D = Decimal
SUPPLY_2025 = date(2025, 10, 1)


def decide(**overrides: object) -> TaxDecision:
    arguments: dict[str, object] = {
        "seller_country": "DE",
        "buyer_country": "DE",
        "buyer_vat_id": None,
        "buyer_is_business": False,
        "tax_category": TaxCategory.STANDARD,
        "supply_date": SUPPLY_2025,
    }
    arguments.update(overrides)
    return determine_vat(**arguments)  # type: ignore[arg-type]


def test_all_27_member_states_have_rates_in_2025_and_2026() -> None:
    assert len(EU_MEMBER_STATES) == 27
    assert set(VAT_RATES) == EU_MEMBER_STATES
    for country in EU_MEMBER_STATES:
        for day in (date(2025, 1, 1), date(2026, 6, 1)):
            rates = vat_rates(country, day)
            assert D(15) <= rates.standard <= D(27)
            assert all(D(0) < rate < rates.standard for rate in rates.reduced)


def test_germany_taxed_16_and_5_percent_in_the_second_half_of_2020_only() -> None:
    assert vat_rates("DE", date(2020, 6, 30)) == CountryRates(D(19), (D(7),))
    assert vat_rates("DE", date(2020, 7, 1)) == CountryRates(D(16), (D(5),))
    assert vat_rates("DE", date(2020, 12, 31)) == CountryRates(D(16), (D(5),))
    assert vat_rates("DE", date(2021, 1, 1)) == CountryRates(D(19), (D(7),))


@pytest.mark.parametrize(
    ("country", "before", "after", "change"),
    [
        ("EE", D(22), D(24), date(2025, 7, 1)),
        ("FI", D(24), D("25.5"), date(2024, 9, 1)),
        ("SK", D(20), D(23), date(2025, 1, 1)),
        ("RO", D(19), D(21), date(2025, 8, 1)),
    ],
)
def test_standard_rate_changes_on_its_valid_from_date(
    country: str, before: Decimal, after: Decimal, change: date
) -> None:
    assert vat_rates(country, date.fromordinal(change.toordinal() - 1)).standard == before
    assert vat_rates(country, change).standard == after


def test_a_country_outside_the_eu_has_no_vat_rates() -> None:
    with pytest.raises(TaxError) as raised:
        vat_rates("CH", SUPPLY_2025)
    assert raised.value.field == "country"


def test_a_date_before_the_known_rates_is_refused() -> None:
    with pytest.raises(TaxError) as raised:
        vat_rates("FR", date(2000, 1, 1))
    assert raised.value.field == "supply_date"


def test_check_country_normalizes_and_refuses_unknown_codes() -> None:
    assert check_country(" de ") == "DE"
    for bad in ("EL", "XX", "DEU", "", 49, None):
        with pytest.raises(TaxError):
            check_country(bad)


def test_eu_membership_and_vat_id_prefixes() -> None:
    assert is_eu_member("AT")
    assert not is_eu_member("CH")
    assert not is_eu_member("GB")
    assert vat_id_prefix("GR") == "EL"
    assert vat_id_prefix("AT") == "AT"


def test_domestic_german_supply_is_taxed_at_19_percent() -> None:
    assert decide() == TaxDecision(VatCategory.S, D(19), "DE")


def test_domestic_german_reduced_supply_is_taxed_at_7_percent() -> None:
    assert decide(tax_category=TaxCategory.REDUCED) == TaxDecision(VatCategory.S, D(7), "DE")


def test_domestic_supply_in_2020_uses_the_temporary_16_percent() -> None:
    assert decide(supply_date=date(2020, 9, 15)).rate == D(16)
    assert decide(supply_date=date(2020, 9, 15), tax_category=TaxCategory.REDUCED).rate == D(5)


def test_zero_rated_and_exempt_products_use_categories_z_and_e() -> None:
    assert decide(tax_category=TaxCategory.ZERO) == TaxDecision(VatCategory.Z, D(0), "DE")
    assert decide(tax_category=TaxCategory.EXEMPT) == TaxDecision(
        VatCategory.E, D(0), "DE", None, "tax_exempt"
    )


def test_a_reduced_rate_can_be_chosen_among_the_countrys_reduced_rates() -> None:
    french = decide(seller_country="FR", buyer_country="FR", tax_category=TaxCategory.REDUCED)
    assert french.rate == D(10)
    ebook = decide(
        seller_country="FR", buyer_country="FR", tax_category=TaxCategory.REDUCED, reduced_rate=D("5.5")
    )
    assert ebook.rate == D("5.5")
    with pytest.raises(TaxError) as raised:
        decide(tax_category=TaxCategory.REDUCED, reduced_rate=D("5.5"))
    assert raised.value.field == "reduced_rate"
    with pytest.raises(TaxError):
        decide(tax_category=TaxCategory.STANDARD, reduced_rate=D(7))


def test_a_country_without_reduced_rates_taxes_reduced_products_at_the_standard_rate() -> None:
    assert decide(seller_country="DK", buyer_country="DK", tax_category=TaxCategory.REDUCED).rate == D(25)


def test_reverse_charge_for_an_austrian_business_with_a_vat_id() -> None:
    decision = decide(buyer_country="AT", buyer_vat_id="ATU12345678", buyer_is_business=True)
    assert decision == TaxDecision(VatCategory.AE, D(0), "AT", "VATEX-EU-AE", "reverse_charge")


def test_goods_to_an_eu_business_with_a_vat_id_are_an_intra_community_supply() -> None:
    decision = decide(buyer_country="AT", buyer_vat_id="ATU12345678", buyer_is_business=True, supply="goods")
    assert decision == TaxDecision(VatCategory.K, D(0), "AT", "VATEX-EU-IC", "intra_community_supply")


def test_a_greek_business_vat_id_uses_the_el_prefix() -> None:
    decision = decide(buyer_country="GR", buyer_vat_id="el 123456789", buyer_is_business=True)
    assert decision.category is VatCategory.AE
    with pytest.raises(TaxError) as raised:
        decide(buyer_country="GR", buyer_vat_id="GR123456789", buyer_is_business=True)
    assert raised.value.field == "buyer_vat_id"


@pytest.mark.parametrize("vat_id", ["DE123456789", "AT", "ATU-1234", "FRXX999999999"])
def test_a_vat_id_that_does_not_belong_to_the_buyers_country_is_refused(vat_id: str) -> None:
    with pytest.raises(TaxError):
        decide(buyer_country="AT", buyer_vat_id=vat_id, buyer_is_business=True)


def test_oss_taxes_a_french_consumer_at_the_french_rate() -> None:
    assert decide(buyer_country="FR") == TaxDecision(VatCategory.S, D(20), "FR")


def test_a_business_without_vat_id_is_taxed_like_a_consumer() -> None:
    assert decide(buyer_country="FR", buyer_is_business=True).rate == D(20)


def test_without_oss_a_cross_border_consumer_sale_uses_the_sellers_rate() -> None:
    assert decide(buyer_country="FR", oss=False) == TaxDecision(VatCategory.S, D(19), "DE")


def test_a_consumer_vat_id_does_not_trigger_reverse_charge() -> None:
    assert decide(buyer_country="FR", buyer_vat_id="FR12345678901").category is VatCategory.S


def test_services_to_switzerland_are_not_taxable_in_the_eu() -> None:
    decision = decide(buyer_country="CH", buyer_is_business=True, buyer_vat_id="CHE123456789")
    assert decision == TaxDecision(VatCategory.O, D(0), "CH", "VATEX-EU-O", "not_taxable_in_eu")


def test_goods_to_switzerland_are_an_export() -> None:
    decision = decide(buyer_country="CH", supply="goods")
    assert decision == TaxDecision(VatCategory.G, D(0), "CH", "VATEX-EU-G", "export_outside_eu")


def test_a_kleinunternehmer_charges_no_vat_with_the_small_business_note() -> None:
    for buyer in ("DE", "FR", "CH"):
        decision = decide(buyer_country=buyer, seller_small_business=True)
        assert decision == TaxDecision(VatCategory.E, D(0), "DE", None, "small_business_exemption")


def test_a_french_small_business_carries_the_franchise_reason_code() -> None:
    decision = decide(seller_country="FR", buyer_country="FR", seller_small_business=True)
    assert decision.reason_code == "VATEX-FR-FRANCHISE"


def test_a_seller_outside_the_eu_is_refused() -> None:
    with pytest.raises(TaxError) as raised:
        decide(seller_country="CH")
    assert raised.value.field == "seller_country"


def test_unknown_countries_supply_kinds_and_categories_are_refused() -> None:
    with pytest.raises(TaxError):
        decide(buyer_country="ZZ")
    with pytest.raises(TaxError):
        decide(supply="rights")
    with pytest.raises(ValueError):
        decide(tax_category="luxury")


def test_memoised_decisions_still_refuse_bad_input_every_time() -> None:
    assert decide() is decide()
    for _ in range(2):
        with pytest.raises(TaxError) as raised:
            decide(buyer_country="ZZ")
        assert raised.value.field == "buyer_country"


def test_unhashable_arguments_are_decided_without_the_memo() -> None:
    with pytest.raises(TaxError) as raised:
        decide(seller_country=["DE"])
    assert raised.value.field == "seller_country"


def test_a_chosen_reduced_rate_is_kept_as_written() -> None:
    arguments: dict[str, object] = {"tax_category": TaxCategory.REDUCED}
    assert str(decide(**arguments, reduced_rate=D(7)).rate) == "7"
    assert str(decide(**arguments, reduced_rate=D("7.0")).rate) == "7.0"


def test_tax_decisions_validate_rate_against_category() -> None:
    assert TaxDecision(VatCategory("S"), "19").rate == D(19)  # type: ignore[arg-type]
    assert TaxDecision(VatCategory.S, D(19), "de").country == "DE"
    for category, rate in ((VatCategory.S, D(0)), (VatCategory.S, D(100)), (VatCategory.AE, D(19))):
        with pytest.raises(TaxError):
            TaxDecision(category, rate)
    with pytest.raises(TaxError):
        TaxDecision(VatCategory.S, D(19), "XX")
