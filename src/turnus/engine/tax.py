"""VAT: dated EU rates and the VAT treatment of one supply (EN 16931 category, rate, exemption reason).

Rules (Turnus's DOMAIN.md):

* a small business seller (Kleinunternehmer, §19 UStG) charges no VAT: category E with the note
  ``small_business_exemption`` (reason code ``VATEX-FR-FRANCHISE`` for a French seller);
* a domestic supply is taxed at the seller country's rate for the product's tax category;
* an EU business buyer with a VAT id of another member state: services are reverse charged
  (AE, ``VATEX-EU-AE``, note ``reverse_charge``), goods are an intra-community supply
  (K, ``VATEX-EU-IC``, note ``intra_community_supply``);
* other cross-border EU sales (consumers, businesses without a VAT id) are taxed at the buyer
  country's rate under OSS (``oss=True``), else at the seller's rate;
* a buyer outside the EU: services are not taxable here (O, ``VATEX-EU-O``), goods are an export
  (G, ``VATEX-EU-G``).

The VAT id is only checked for its country prefix (``EL`` for Greece); checksum and VIES checks
belong to the customers app. Notes are stable keys the app layer translates.

Rates are percentages. ``REDUCED`` picks the country's highest reduced rate unless ``reduced_rate``
names another one of its reduced rates; a country without reduced rates taxes at its standard rate.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from enum import StrEnum
from functools import lru_cache
from types import MappingProxyType
from typing import Literal

from turnus.engine.errors import TaxError
from turnus.engine.money import to_decimal

ISO_COUNTRIES: frozenset[str] = frozenset(
    {
        "AD",
        "AE",
        "AF",
        "AG",
        "AI",
        "AL",
        "AM",
        "AO",
        "AQ",
        "AR",
        "AS",
        "AT",
        "AU",
        "AW",
        "AX",
        "AZ",
        "BA",
        "BB",
        "BD",
        "BE",
        "BF",
        "BG",
        "BH",
        "BI",
        "BJ",
        "BL",
        "BM",
        "BN",
        "BO",
        "BQ",
        "BR",
        "BS",
        "BT",
        "BV",
        "BW",
        "BY",
        "BZ",
        "CA",
        "CC",
        "CD",
        "CF",
        "CG",
        "CH",
        "CI",
        "CK",
        "CL",
        "CM",
        "CN",
        "CO",
        "CR",
        "CU",
        "CV",
        "CW",
        "CX",
        "CY",
        "CZ",
        "DE",
        "DJ",
        "DK",
        "DM",
        "DO",
        "DZ",
        "EC",
        "EE",
        "EG",
        "EH",
        "ER",
        "ES",
        "ET",
        "FI",
        "FJ",
        "FK",
        "FM",
        "FO",
        "FR",
        "GA",
        "GB",
        "GD",
        "GE",
        "GF",
        "GG",
        "GH",
        "GI",
        "GL",
        "GM",
        "GN",
        "GP",
        "GQ",
        "GR",
        "GS",
        "GT",
        "GU",
        "GW",
        "GY",
        "HK",
        "HM",
        "HN",
        "HR",
        "HT",
        "HU",
        "ID",
        "IE",
        "IL",
        "IM",
        "IN",
        "IO",
        "IQ",
        "IR",
        "IS",
        "IT",
        "JE",
        "JM",
        "JO",
        "JP",
        "KE",
        "KG",
        "KH",
        "KI",
        "KM",
        "KN",
        "KP",
        "KR",
        "KW",
        "KY",
        "KZ",
        "LA",
        "LB",
        "LC",
        "LI",
        "LK",
        "LR",
        "LS",
        "LT",
        "LU",
        "LV",
        "LY",
        "MA",
        "MC",
        "MD",
        "ME",
        "MF",
        "MG",
        "MH",
        "MK",
        "ML",
        "MM",
        "MN",
        "MO",
        "MP",
        "MQ",
        "MR",
        "MS",
        "MT",
        "MU",
        "MV",
        "MW",
        "MX",
        "MY",
        "MZ",
        "NA",
        "NC",
        "NE",
        "NF",
        "NG",
        "NI",
        "NL",
        "NO",
        "NP",
        "NR",
        "NU",
        "NZ",
        "OM",
        "PA",
        "PE",
        "PF",
        "PG",
        "PH",
        "PK",
        "PL",
        "PM",
        "PN",
        "PR",
        "PS",
        "PT",
        "PW",
        "PY",
        "QA",
        "RE",
        "RO",
        "RS",
        "RU",
        "RW",
        "SA",
        "SB",
        "SC",
        "SD",
        "SE",
        "SG",
        "SH",
        "SI",
        "SJ",
        "SK",
        "SL",
        "SM",
        "SN",
        "SO",
        "SR",
        "SS",
        "ST",
        "SV",
        "SX",
        "SY",
        "SZ",
        "TC",
        "TD",
        "TF",
        "TG",
        "TH",
        "TJ",
        "TK",
        "TL",
        "TM",
        "TN",
        "TO",
        "TR",
        "TT",
        "TV",
        "TW",
        "TZ",
        "UA",
        "UG",
        "UM",
        "US",
        "UY",
        "UZ",
        "VA",
        "VC",
        "VE",
        "VG",
        "VI",
        "VN",
        "VU",
        "WF",
        "WS",
        "YE",
        "YT",
        "ZA",
        "ZM",
        "ZW",
    }
)

EU_MEMBER_STATES: frozenset[str] = frozenset(
    {
        "AT",
        "BE",
        "BG",
        "CY",
        "CZ",
        "DE",
        "DK",
        "EE",
        "ES",
        "FI",
        "FR",
        "GR",
        "HR",
        "HU",
        "IE",
        "IT",
        "LT",
        "LU",
        "LV",
        "MT",
        "NL",
        "PL",
        "PT",
        "RO",
        "SE",
        "SI",
        "SK",
    }
)

VAT_ID_PREFIX_EXCEPTIONS: Mapping[str, str] = MappingProxyType({"GR": "EL"})


class TaxCategory(StrEnum):
    """How a product is taxed in its seller's catalogue."""

    STANDARD = "standard"
    REDUCED = "reduced"
    ZERO = "zero"
    EXEMPT = "exempt"


class VatCategory(StrEnum):
    """EN 16931 VAT category codes (UNTDID 5305 subset)."""

    S = "S"
    Z = "Z"
    E = "E"
    AE = "AE"
    K = "K"
    G = "G"
    O = "O"  # noqa: E741


@dataclass(frozen=True, slots=True)
class CountryRates:
    standard: Decimal
    reduced: tuple[Decimal, ...]


@dataclass(frozen=True, slots=True)
class RatePeriod:
    valid_from: date
    rates: CountryRates


def _rates(standard: str, *reduced: str) -> CountryRates:
    return CountryRates(Decimal(standard), tuple(Decimal(rate) for rate in reduced))


_Y2024 = date(2024, 1, 1)

VAT_RATES: Mapping[str, tuple[RatePeriod, ...]] = MappingProxyType(
    {
        "AT": (RatePeriod(_Y2024, _rates("20", "13", "10")),),
        "BE": (RatePeriod(_Y2024, _rates("21", "12", "6")),),
        "BG": (RatePeriod(_Y2024, _rates("20", "9")),),
        "CY": (RatePeriod(_Y2024, _rates("19", "9", "5")),),
        "CZ": (
            RatePeriod(date(2015, 1, 1), _rates("21", "15", "10")),
            RatePeriod(date(2024, 1, 1), _rates("21", "12")),
        ),
        "DE": (
            RatePeriod(date(2007, 1, 1), _rates("19", "7")),
            RatePeriod(date(2020, 7, 1), _rates("16", "5")),
            RatePeriod(date(2021, 1, 1), _rates("19", "7")),
        ),
        "DK": (RatePeriod(_Y2024, _rates("25")),),
        "EE": (
            RatePeriod(date(2009, 7, 1), _rates("20", "9")),
            RatePeriod(date(2024, 1, 1), _rates("22", "9", "5")),
            RatePeriod(date(2025, 1, 1), _rates("22", "13", "9")),
            RatePeriod(date(2025, 7, 1), _rates("24", "13", "9")),
        ),
        "ES": (RatePeriod(_Y2024, _rates("21", "10", "4")),),
        "FI": (
            RatePeriod(date(2013, 1, 1), _rates("24", "14", "10")),
            RatePeriod(date(2024, 9, 1), _rates("25.5", "14", "10")),
            RatePeriod(date(2026, 1, 1), _rates("25.5", "13.5", "10")),
        ),
        "FR": (RatePeriod(_Y2024, _rates("20", "10", "5.5", "2.1")),),
        "GR": (RatePeriod(_Y2024, _rates("24", "13", "6")),),
        "HR": (RatePeriod(_Y2024, _rates("25", "13", "5")),),
        "HU": (RatePeriod(_Y2024, _rates("27", "18", "5")),),
        "IE": (RatePeriod(_Y2024, _rates("23", "13.5", "9", "4.8")),),
        "IT": (RatePeriod(_Y2024, _rates("22", "10", "5", "4")),),
        "LT": (RatePeriod(_Y2024, _rates("21", "9", "5")),),
        "LU": (RatePeriod(_Y2024, _rates("17", "14", "8", "3")),),
        "LV": (RatePeriod(_Y2024, _rates("21", "12", "5")),),
        "MT": (RatePeriod(_Y2024, _rates("18", "7", "5")),),
        "NL": (RatePeriod(_Y2024, _rates("21", "9")),),
        "PL": (RatePeriod(_Y2024, _rates("23", "8", "5")),),
        "PT": (RatePeriod(_Y2024, _rates("23", "13", "6")),),
        "RO": (
            RatePeriod(_Y2024, _rates("19", "9", "5")),
            RatePeriod(date(2025, 8, 1), _rates("21", "11")),
        ),
        "SE": (RatePeriod(_Y2024, _rates("25", "12", "6")),),
        "SI": (RatePeriod(_Y2024, _rates("22", "9.5", "5")),),
        "SK": (
            RatePeriod(date(2011, 1, 1), _rates("20", "10")),
            RatePeriod(date(2025, 1, 1), _rates("23", "19", "5")),
        ),
    }
)


@dataclass(frozen=True, slots=True)
class TaxDecision:
    """The VAT treatment of a supply: EN 16931 category, rate in percent, and why."""

    category: VatCategory
    rate: Decimal
    country: str | None = None
    reason_code: str | None = None
    note: str | None = None

    def __post_init__(self) -> None:
        category = VatCategory(self.category)
        rate = to_decimal(self.rate, field="rate")
        if category is VatCategory.S and not Decimal(0) < rate < Decimal(100):
            raise TaxError("a standard-rated category needs a rate between 0 and 100 percent", field="rate")
        if category is not VatCategory.S and rate != 0:
            raise TaxError(f"VAT category {category} must have a rate of 0", field="rate")
        object.__setattr__(self, "category", category)
        object.__setattr__(self, "rate", rate)
        if self.country is not None:
            object.__setattr__(self, "country", check_country(self.country))


def check_country(code: object, *, field: str = "country") -> str:
    """Return ``code`` as an upper-case ISO 3166-1 alpha-2 code, else raise ``TaxError``."""
    normalized = code.strip().upper() if isinstance(code, str) else None
    if normalized is None or normalized not in ISO_COUNTRIES:
        raise TaxError(f"unknown country {code!r}; use an ISO 3166-1 alpha-2 code", field=field)
    return normalized


def is_eu_member(code: str) -> bool:
    return check_country(code) in EU_MEMBER_STATES


def vat_id_prefix(country: str) -> str:
    """The prefix of a member state's VAT ids (``EL`` for Greece, else the country code)."""
    normalized = check_country(country)
    return VAT_ID_PREFIX_EXCEPTIONS.get(normalized, normalized)


def vat_rates(country: str, on: date) -> CountryRates:
    """The standard and reduced VAT rates of an EU member state in force on ``on``."""
    normalized = check_country(country)
    periods = VAT_RATES.get(normalized)
    if periods is None:
        raise TaxError(f"no VAT rates known for {normalized}", field="country")
    in_force = [period for period in periods if period.valid_from <= on]
    if not in_force:
        raise TaxError(f"no VAT rate known for {normalized} on {on.isoformat()}", field="supply_date")
    return in_force[-1].rates


def _buyer_vat_id_matches(vat_id: str, buyer_country: str) -> bool:
    compact = "".join(vat_id.split()).upper()
    prefix = vat_id_prefix(buyer_country)
    return compact.startswith(prefix) and len(compact) > len(prefix) + 1 and compact.isalnum()


def _rated(
    country: str,
    tax_category: TaxCategory,
    supply_date: date,
    reduced_rate: Decimal | None,
) -> TaxDecision:
    if tax_category is TaxCategory.ZERO:
        return TaxDecision(VatCategory.Z, Decimal(0), country)
    if tax_category is TaxCategory.EXEMPT:
        return TaxDecision(VatCategory.E, Decimal(0), country, None, "tax_exempt")
    rates = vat_rates(country, supply_date)
    if tax_category is TaxCategory.STANDARD or not rates.reduced:
        return TaxDecision(VatCategory.S, rates.standard, country)
    if reduced_rate is None:
        return TaxDecision(VatCategory.S, max(rates.reduced), country)
    if reduced_rate not in rates.reduced:
        raise TaxError(
            f"{reduced_rate}% is not a reduced VAT rate of {country} on {supply_date.isoformat()}",
            field="reduced_rate",
        )
    return TaxDecision(VatCategory.S, reduced_rate, country)


def determine_vat(
    *,
    seller_country: str,
    buyer_country: str,
    buyer_vat_id: str | None,
    buyer_is_business: bool,
    tax_category: TaxCategory,
    supply_date: date,
    seller_small_business: bool = False,
    oss: bool = True,
    supply: Literal["services", "goods"] = "services",
    reduced_rate: Decimal | None = None,
) -> TaxDecision:
    """Decide the VAT category, rate and exemption reason of one supply (see the module docstring).

    Memoised, as a pure function of small hashable values; calls with a ``reduced_rate`` (equal
    rates may be written differently, 7 and 7.0) or with unhashable arguments are not.
    """
    supply_facts = (
        seller_country,
        buyer_country,
        buyer_vat_id,
        buyer_is_business,
        tax_category,
        supply_date,
        seller_small_business,
        oss,
        supply,
    )
    if reduced_rate is None:
        try:
            return _memoised_decision(*supply_facts)
        except TypeError:
            pass
    return _decide(*supply_facts, reduced_rate)


def _decide(
    seller_country: str,
    buyer_country: str,
    buyer_vat_id: str | None,
    buyer_is_business: bool,
    tax_category: TaxCategory,
    supply_date: date,
    seller_small_business: bool,
    oss: bool,
    supply: Literal["services", "goods"],
    reduced_rate: Decimal | None,
) -> TaxDecision:
    seller = check_country(seller_country, field="seller_country")
    buyer = check_country(buyer_country, field="buyer_country")
    category = TaxCategory(tax_category)
    if supply not in ("services", "goods"):
        raise TaxError(f"supply must be 'services' or 'goods', not {supply!r}", field="supply")
    if reduced_rate is not None:
        reduced_rate = to_decimal(reduced_rate, field="reduced_rate")
        if category is not TaxCategory.REDUCED:
            raise TaxError("reduced_rate is only meaningful for the reduced category", field="reduced_rate")
    if seller not in EU_MEMBER_STATES:
        raise TaxError(f"the seller must be established in the EU, not in {seller}", field="seller_country")
    if seller_small_business:
        reason = "VATEX-FR-FRANCHISE" if seller == "FR" else None
        return TaxDecision(VatCategory.E, Decimal(0), seller, reason, "small_business_exemption")
    if buyer not in EU_MEMBER_STATES:
        if supply == "goods":
            return TaxDecision(VatCategory.G, Decimal(0), buyer, "VATEX-EU-G", "export_outside_eu")
        return TaxDecision(VatCategory.O, Decimal(0), buyer, "VATEX-EU-O", "not_taxable_in_eu")
    if buyer == seller:
        return _rated(seller, category, supply_date, reduced_rate)
    if buyer_is_business and buyer_vat_id:
        if not _buyer_vat_id_matches(buyer_vat_id, buyer):
            raise TaxError(
                f"the buyer's VAT id must start with {vat_id_prefix(buyer)} for a buyer in {buyer}",
                field="buyer_vat_id",
            )
        if supply == "goods":
            return TaxDecision(VatCategory.K, Decimal(0), buyer, "VATEX-EU-IC", "intra_community_supply")
        return TaxDecision(VatCategory.AE, Decimal(0), buyer, "VATEX-EU-AE", "reverse_charge")
    return _rated(buyer if oss else seller, category, supply_date, reduced_rate)


@lru_cache(maxsize=4096, typed=True)
def _memoised_decision(
    seller_country: str,
    buyer_country: str,
    buyer_vat_id: str | None,
    buyer_is_business: bool,
    tax_category: TaxCategory,
    supply_date: date,
    seller_small_business: bool,
    oss: bool,
    supply: Literal["services", "goods"],
) -> TaxDecision:
    return _decide(
        seller_country,
        buyer_country,
        buyer_vat_id,
        buyer_is_business,
        tax_category,
        supply_date,
        seller_small_business,
        oss,
        supply,
        None,
    )
