"""Issued invoices and credit notes for document tests, made through the billing services."""

from __future__ import annotations

import io
from datetime import timedelta
from typing import Any

from pypdf import PdfReader

from tests.apps.billing.support import MARCH, scope_of, subscribe
from turnus.apps.billing import services as billing
from turnus.apps.billing.models import Invoice
from turnus.core.scope import Scope

#: 1 March 2026, 10:00 in Berlin: the March invoices are issued then.
START = MARCH + timedelta(hours=9)

DOMESTIC_BUSINESS = {
    "name": "Max Mustermann",
    "company": "Muster Software GmbH",
    "vat_id": "DE811907980",
    "locale": "de",
}
AUSTRIAN_BUSINESS = {
    "name": "Anna Huber",
    "company": "Alpen Daten GmbH",
    "address_line1": "Mariahilfer Straße 1",
    "postal_code": "1060",
    "city": "Wien",
    "country": "AT",
    "vat_id": "ATU13585627",
    "locale": "de",
}
FRENCH_CONSUMER = {
    "name": "Camille Martin",
    "address_line1": "12 rue de Rivoli",
    "postal_code": "75004",
    "city": "Paris",
    "country": "FR",
    "locale": "en",
}


def issued_invoice(scope: Scope, **overrides: Any) -> Invoice:
    """A finalized invoice of a fresh subscription (plan ``pro``: 100.00 EUR a month)."""
    billed = subscribe(scope, **overrides)
    draft = billing.create_draft(scope, billed.subscription).invoice
    return billing.finalize(scope, draft.public_id)


def text_of(pdf: bytes) -> str:
    """The text of every page, with runs of white space made one space."""
    reader = PdfReader(io.BytesIO(pdf))
    return " ".join(" ".join((page.extract_text() or "").split()) for page in reader.pages)


__all__ = ["START", "issued_invoice", "scope_of", "text_of"]
