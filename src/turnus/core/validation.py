"""Checks for identifiers that come in from merchants and customers. Each raises ``ValidationFailed``
naming the field, and returns the value in its canonical form."""

from __future__ import annotations

import re
import zoneinfo

from babel import Locale
from schwifty import BIC, IBAN
from schwifty.exceptions import SchwiftyException
from stdnum.eu import at_02, vat
from stdnum.exceptions import ValidationError as StdnumError

from turnus.core.errors import ValidationFailed
from turnus.engine.errors import UnknownCurrency
from turnus.engine.money import check_currency

_COUNTRIES = frozenset(
    code for code in Locale("en").territories if isinstance(code, str) and re.fullmatch(r"[A-Z]{2}", code)
)


def country(value: str, *, field: str = "country") -> str:
    code = value.strip().upper()
    if code not in _COUNTRIES or code in {"EU", "UN", "EZ", "QO", "ZZ"}:
        raise ValidationFailed(f"{value!r} is not an ISO 3166 alpha-2 country code", field=field)
    return code


def currency(value: str, *, field: str = "currency") -> str:
    try:
        return check_currency(value.strip().upper())
    except UnknownCurrency:
        raise ValidationFailed(f"{value!r} is not an ISO 4217 currency code", field=field) from None


def timezone(value: str, *, field: str = "timezone") -> str:
    try:
        zoneinfo.ZoneInfo(value)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ValidationFailed(f"{value!r} is not an IANA timezone", field=field) from None
    return value


def vat_id(value: str, *, field: str = "vat_id") -> str:
    """An EU VAT id, format and check digit (no online check)."""
    try:
        return str(vat.validate(value))
    except StdnumError as error:
        raise ValidationFailed(f"{value!r} is not a valid VAT id: {error}", field=field) from None


def vat_id_country(value: str) -> str:
    """The ISO country of a validated VAT id (``EL`` ids are Greek, ``GR``)."""
    prefix = value[:2].upper()
    return "GR" if prefix == "EL" else prefix


def iban(value: str, *, field: str = "iban") -> str:
    try:
        return str(IBAN(value).compact)
    except SchwiftyException as error:
        raise ValidationFailed(f"{value!r} is not a valid IBAN: {error}", field=field) from None


def bic(value: str, *, field: str = "bic") -> str:
    try:
        return str(BIC(value).compact)
    except SchwiftyException as error:
        raise ValidationFailed(f"{value!r} is not a valid BIC: {error}", field=field) from None


def sepa_creditor_id(value: str, *, field: str = "sepa_creditor_id") -> str:
    try:
        return str(at_02.validate(value))
    except StdnumError as error:
        raise ValidationFailed(f"{value!r} is not a valid SEPA creditor id: {error}", field=field) from None
