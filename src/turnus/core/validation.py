"""Checks for identifiers that come in from merchants and customers. Each raises ``ValidationFailed``
naming the field, and returns the value in its canonical form."""

from __future__ import annotations

import re
import zoneinfo

from babel import Locale
from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.validators import validate_email
from schwifty import BIC, IBAN
from schwifty.exceptions import SchwiftyException
from stdnum.eu import at_02, vat
from stdnum.exceptions import ValidationError as StdnumError
from stdnum.iso7064 import mod_97_10

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


def phone(value: str, *, field: str = "phone") -> str:
    """A telephone number as people write it (digits, spaces, ``+ ( ) / - .``), with at least three
    digits (XRechnung's BR-DE-27)."""
    number = " ".join(value.split())
    if len(number) > 30 or not re.fullmatch(r"\+?[0-9 ()/.\-]+", number):
        raise ValidationFailed(
            f"{value!r} is not a telephone number: use digits, spaces and + ( ) / - .", field=field
        )
    if len(re.findall(r"[0-9]", number)) < 3:
        raise ValidationFailed(f"{value!r} is not a telephone number: too few digits", field=field)
    return number


#: The Leitweg-ID (KoSIT format specification 2.0.2): a coarse address of 2 to 12 digits whose first two
#: are a federal state (01 to 16) or the federation (99), an optional fine address of up to 30 letters and
#: digits, and two check digits, ISO 7064 MOD 97-10 over the two addresses, all joined by hyphens.
_LEITWEG_ID = re.compile(r"(?P<coarse>[0-9]{2,12})(?:-(?P<fine>[0-9A-Z]{1,30}))?-(?P<check>[0-9]{2})")
_LEITWEG_REGIONS = frozenset({f"{number:02}" for number in range(1, 17)} | {"99"})
#: Where a text begins like a Leitweg-ID (its coarse address and a hyphen).
_LEITWEG_LIKE = re.compile(r"[0-9]{2,12}-")


def leitweg_id(value: str, *, field: str = "buyer_reference") -> str:
    """A Leitweg-ID (the routing id of German public buyers), checked for its format, region and check
    digits; in canonical (upper case) form."""
    number = value.strip().upper()
    match = _LEITWEG_ID.fullmatch(number)
    if match is None:
        raise ValidationFailed(
            f"{value!r} is not a Leitweg-ID: it has the form coarse address (2 to 12 digits), "
            "optional fine address (up to 30 letters or digits) and two check digits, joined by hyphens, "
            "e.g. 991-33333TEST-33",
            field=field,
        )
    if match["coarse"][:2] not in _LEITWEG_REGIONS:
        raise ValidationFailed(
            f"{value!r} is not a Leitweg-ID: it begins with a federal state (01 to 16) or 99", field=field
        )
    if not mod_97_10.is_valid(number.replace("-", "")):
        raise ValidationFailed(f"{value!r} is not a Leitweg-ID: its check digits are wrong", field=field)
    return number


def buyer_reference(value: str, *, field: str = "buyer_reference") -> str:
    """The buyer reference (EN 16931 BT-10): a Leitweg-ID, checked as one wherever the text begins like
    one (digits and a hyphen), or the buyer's own reference (an order or cost-centre number)."""
    reference = value.strip()
    if _LEITWEG_LIKE.match(reference):
        return leitweg_id(reference, field=field)
    return reference


#: The CEF Electronic Address Scheme codes (EAS, ISO 6523 ICDs and others) the EN 16931 schematron knows
#: (BR-CL-25), of the numeric kind; a plain e-mail address is scheme ``EM``.
EAS_CODES = frozenset(
    (  # noqa: SIM905 (the code list as published, space-separated)
        "0002 0007 0009 0037 0060 0088 0096 0097 0106 0130 0135 0142 0147 0151 0154 0158 0170 0177 0183 0184 "
        "0188 0190 0191 0192 0193 0194 0195 0196 0198 0199 0200 0201 0202 0203 0204 0205 0208 0209 0210 0211 "
        "0212 0213 0215 0216 0217 0218 0219 0220 0221 0225 0230 0235 0240 0242 0244 0245 0246 0248 9910 9913 "
        "9914 9915 9918 9919 9920 9922 9923 9924 9925 9926 9927 9928 9929 9930 9931 9932 9933 9934 9935 9936 "
        "9937 9938 9939 9940 9941 9942 9943 9944 9945 9946 9947 9948 9949 9950 9951 9952 9953 9957 9959"
    ).split()
)
LEITWEG_SCHEME = "0204"
_SCHEMED = re.compile(r"(?P<scheme>[0-9]{4}|EM):(?P<value>.*)", re.IGNORECASE)


def electronic_address(value: str, *, field: str = "electronic_address") -> str:
    """An electronic address (EN 16931 BT-34/BT-49): ``"SCHEME:id"`` with a CEF EAS code (``0204`` takes
    a Leitweg-ID, ``EM`` an e-mail address) or a plain e-mail address."""
    address = value.strip()
    match = _SCHEMED.fullmatch(address)
    if match is None:
        return _email(address, field=field)
    scheme, identifier = match["scheme"].upper(), match["value"].strip()
    if scheme == "EM":
        return f"EM:{_email(identifier, field=field)}"
    if scheme not in EAS_CODES:
        raise ValidationFailed(f"{scheme} is not a scheme of the CEF EAS code list", field=field)
    if not identifier or len(identifier) > 200 or any(char.isspace() for char in identifier):
        raise ValidationFailed(
            f"{value!r} needs an identifier without spaces after the scheme, e.g. 0204:991-33333TEST-33",
            field=field,
        )
    if scheme == LEITWEG_SCHEME:
        identifier = leitweg_id(identifier, field=field)
    return f"{scheme}:{identifier}"


def _email(value: str, *, field: str) -> str:
    try:
        validate_email(value)
    except DjangoValidationError:
        raise ValidationFailed(
            f"{value!r} is neither an e-mail address nor SCHEME:id (e.g. 0204:991-33333TEST-33)", field=field
        ) from None
    return value
