"""Identifier checks for e-invoicing: Leitweg-IDs (format, region, ISO 7064 MOD 97-10 check digits),
buyer references, electronic addresses and telephone numbers."""

from __future__ import annotations

import pytest

from turnus.core import validation
from turnus.core.errors import ValidationFailed


@pytest.mark.parametrize(
    "value",
    ["04011000-1234512345-06", "991-33333TEST-33", "991-03730-19", " 991-33333test-33 "],
)
def test_valid_leitweg_ids_come_back_in_upper_case(value):
    assert validation.leitweg_id(value) == value.strip().upper()


@pytest.mark.parametrize(
    "value",
    [
        "04011000-1234512345-07",  # check digits
        "991-33333TEST-3",  # one check digit
        "1-03730-19",  # coarse address of one digit
        "1234567890123-1-00",  # coarse address of thirteen digits
        "20-03730-19",  # no federal state 20
        "991-33333_TEST-33",  # not a letter or digit
        "991--33",
        "",
    ],
)
def test_malformed_leitweg_ids_are_refused(value):
    with pytest.raises(ValidationFailed) as refused:
        validation.leitweg_id(value)
    assert refused.value.field == "buyer_reference"


def test_a_buyer_reference_is_checked_as_a_leitweg_id_only_where_it_begins_like_one():
    assert validation.buyer_reference("PO-4711") == "PO-4711"
    assert validation.buyer_reference("Kostenstelle 12") == "Kostenstelle 12"
    assert validation.buyer_reference("991-33333test-33") == "991-33333TEST-33"
    with pytest.raises(ValidationFailed):
        validation.buyer_reference("991-33333TEST-32")


@pytest.mark.parametrize(
    ("value", "canonical"),
    [
        ("0204:991-33333test-33", "0204:991-33333TEST-33"),
        ("9930:DE136695976", "9930:DE136695976"),
        ("em:ap@kunde.example", "EM:ap@kunde.example"),
        ("ap@kunde.example", "ap@kunde.example"),
    ],
)
def test_electronic_addresses_in_canonical_form(value, canonical):
    assert validation.electronic_address(value) == canonical


@pytest.mark.parametrize(
    "value", ["0204:991-33333TEST-34", "0001:x", "0088:", "0088:has space", "EM:nobody", "nobody"]
)
def test_bad_electronic_addresses_are_refused(value):
    with pytest.raises(ValidationFailed) as refused:
        validation.electronic_address(value)
    assert refused.value.field == "electronic_address"


def test_telephone_numbers_need_three_digits_and_phone_characters():
    assert validation.phone(" +49  (30) 123-456 ") == "+49 (30) 123-456"
    for bad in ("12", "call me", "+49 30 1234567 ext. 5", "1" * 31):
        with pytest.raises(ValidationFailed):
            validation.phone(bad)
