"""The PDF of an invoice or credit note carries every field §14 (4) UStG and Art. 226 VAT Directive demand,
in the customer's language, and the same invoice always gives the same bytes."""

from __future__ import annotations

import io
from datetime import timedelta

import pytest
import weasyprint
from django.template.loader import render_to_string
from django.utils import translation
from django.utils.translation import gettext, pgettext
from pypdf import PdfReader

from tests.apps.billing.support import APRIL, MARCH, calls, subscribe
from tests.apps.documents.support import (
    AUSTRIAN_BUSINESS,
    DOMESTIC_BUSINESS,
    FRENCH_CONSUMER,
    issued_invoice,
    scope_of,
    text_of,
)
from turnus.apps.billing import services as billing
from turnus.apps.billing.models import VAT_NOTES
from turnus.apps.documents import pdf

pytestmark = pytest.mark.django_db


def _rendered(invoice) -> str:
    return text_of(pdf.render_invoice_pdf(pdf.load(invoice.public_id)))


def _in(language: str, *messages: str) -> list[str]:
    with translation.override(language):
        return [gettext(message) for message in messages]


def _missing(text: str, expected: list[str]) -> list[str]:
    return [item for item in expected if item not in text]


def _supplier(tenant) -> list[str]:
    return [tenant.legal_name, "Hauptstraße 1", "10115 Berlin", "DE136695976"]


BANK = ["DE89 3704 0044 0532 0130 00", "COBADEFFXXX"]


def test_a_domestic_business_invoice_in_german_carries_every_mandatory_field(scope, tenant, clock):
    invoice = issued_invoice(scope, customer=DOMESTIC_BUSINESS)
    text = _rendered(invoice)
    line = invoice.lines.get()
    expected = [
        *_supplier(tenant),
        "Muster Software GmbH",
        "Max Mustermann",
        "Heidestraße 17",
        "51147 Köln",
        "DE811907980",
        "RE-2026-000001",
        "01.03.2026",
        "01.03.2026 – 31.03.2026",
        line.description,
        "100,00 €",
        "19 %",
        "19,00 €",
        "119,00 €",
        "15.03.2026",
        *BANK,
        *_in("de", "Invoice", "Invoice number", "Invoice date", "Service period", "Due date", "Your VAT ID"),
        *_in("de", "Description", "Quantity", "Unit price", "VAT rate", "Net amount", "Total net"),
        *_in("de", "Total gross", "Amount due", "Payment by bank transfer"),
    ]
    assert _missing(text, expected) == []
    assert "DEUTSCHLAND" not in text, "a domestic address carries no country"


def test_an_invoice_in_english_writes_numbers_dates_and_labels_in_english(scope, tenant, clock):
    invoice = issued_invoice(scope, customer={**DOMESTIC_BUSINESS, "locale": "en"})
    text = _rendered(invoice)
    expected = ["Invoice RE-2026-000001", "1 Mar 2026", "1 Mar 2026 – 31 Mar 2026", "15 Mar 2026"]
    expected += ["€100.00", "19%", "€19.00", "€119.00", "VAT ID", "Due date", "Net amount"]
    assert _missing(text, expected) == []
    assert "100,00 €" not in text


def test_a_reverse_charge_invoice_to_an_austrian_business_names_the_buyers_vat_id_and_the_note(
    scope, tenant, clock
):
    invoice = issued_invoice(scope, customer=AUSTRIAN_BUSINESS)
    assert invoice.vat_breakdown.get().category == "AE"
    text = _rendered(invoice)
    with translation.override("de"):
        note = str(VAT_NOTES["reverse_charge"])
    expected = [
        *_supplier(tenant),
        "Alpen Daten GmbH",
        "Mariahilfer Straße 1",
        "1060 Wien",
        "ÖSTERREICH",
        "ATU13585627",
        "0 %",
        "0,00 €",
        "100,00 €",
        note,
        *_in("de", "Your VAT ID", "reverse charge"),
    ]
    assert _missing(text, expected) == []


def test_the_reverse_charge_note_reads_reverse_charge_in_english(scope, clock):
    invoice = issued_invoice(scope, customer={**AUSTRIAN_BUSINESS, "locale": "en"})
    assert "Reverse charge" in _rendered(invoice)


def test_an_oss_invoice_to_a_french_consumer_charges_french_vat_and_says_so(scope, tenant, clock):
    invoice = issued_invoice(scope, customer=FRENCH_CONSUMER)
    group = invoice.vat_breakdown.get()
    assert (group.category, group.rate) == ("S", 20)
    text = _rendered(invoice)
    expected = [
        *_supplier(tenant),
        "Camille Martin",
        "12 rue de Rivoli",
        "75004 Paris",
        "FRANCE",
        "VAT FR 20%",
        "€100.00",
        "€20.00",
        "€120.00",
        "1 Mar 2026 – 31 Mar 2026",
        *BANK,
    ]
    assert _missing(text, expected) == []
    assert gettext("Your VAT ID") not in text, "a consumer has no VAT id to show"


def test_usage_lines_show_quantity_unit_price_and_their_own_service_period(scope, clock):
    billed = subscribe(scope, customer=DOMESTIC_BUSINESS)
    billing.finalize(scope, billing.create_draft(scope, billed.subscription).invoice.public_id)
    clock.set(MARCH + timedelta(days=3, hours=1))
    calls(billed, 250, MARCH + timedelta(days=3))
    clock.set(APRIL + timedelta(hours=1))
    april = billing.finalize(scope, billing.create_draft(scope, billed.subscription).invoice.public_id)
    usage = april.lines.get(kind="usage")
    text = _rendered(april)
    expected = [usage.description, "250", "0,06 €", "15,00 €", "01.03.2026 – 31.03.2026"]
    assert _missing(text, [*expected, "01.04.2026 – 30.04.2026", "RE-2026-000002"]) == []


def test_a_small_business_invoice_carries_the_paragraph_19_note_and_no_vat(make_tenant, clock):
    tenant = make_tenant(small_business=True, vat_id="", tax_number="21/815/08150")
    scope = scope_of(tenant)
    invoice = issued_invoice(scope, customer=DOMESTIC_BUSINESS)
    assert invoice.vat_breakdown.get().category == "E"
    text = _rendered(invoice)
    with translation.override("de"):
        note = str(VAT_NOTES["small_business_exemption"])
    assert _missing(text, [note, "21/815/08150", "0 %", "100,00 €", *_in("de", "Tax number")]) == []


def test_a_credit_note_is_a_correction_naming_the_corrected_invoice_with_its_date(scope, clock):
    invoice = issued_invoice(scope, customer=DOMESTIC_BUSINESS)
    note = billing.create_credit_note(scope, invoice.public_id, reason="Doppelt berechnet")
    text = _rendered(note)
    with translation.override("de"):
        title = pgettext("document title", "Credit note")
        reference = gettext("Correction of invoice %(number)s of %(date)s") % {
            "number": "RE-2026-000001",
            "date": "01.03.2026",
        }
    expected = [title, note.number, reference, "Doppelt berechnet", "-100,00 €", "-19,00 €", "-119,00 €"]
    expected += ["Muster Software GmbH", "DE811907980", "DE136695976", "01.03.2026 – 31.03.2026"]
    assert _missing(text, expected) == []
    assert "DE89 3704" not in text.split(title, 1)[1].split("IBAN", 1)[0], "no transfer is asked for"


def test_a_credit_note_in_english_says_credit_note_and_refund(scope, clock):
    invoice = issued_invoice(scope, customer={**DOMESTIC_BUSINESS, "locale": "en"})
    note = billing.create_credit_note(scope, invoice.public_id)
    text = _rendered(note)
    expected = ["Credit note " + note.number, "Correction of invoice RE-2026-000001 of 1 Mar 2026"]
    expected += ["-€119.00", "The amount of €119.00 will be refunded"]
    assert _missing(text, expected) == []


def test_each_line_of_an_address_or_of_the_payment_instructions_stands_on_its_own(scope, tenant, clock):
    invoice = issued_invoice(scope, customer=DOMESTIC_BUSINESS)
    reader = PdfReader(io.BytesIO(pdf.render_invoice_pdf(pdf.load(invoice.public_id))))
    lines = [" ".join(line.split()) for line in reader.pages[0].extract_text().splitlines()]
    supplier = ["Hauptstraße 1", "10115 Berlin", "IBAN DE89 3704 0044 0532 0130 00", "BIC COBADEFFXXX"]
    recipient = ["Muster Software GmbH", "Max Mustermann", "Heidestraße 17", "51147 Köln"]
    payment = [f"Kontoinhaber: {tenant.legal_name}", "IBAN: DE89 3704 0044 0532 0130 00", "BIC: COBADEFFXXX"]
    assert [line for line in supplier + recipient + payment if line not in lines] == []


def _tree(element) -> list[tuple]:
    return [(node.tag, sorted(node.attrib.items()), node.text, node.tail) for node in element.iter()]


def _parsed_alike(page: str) -> None:
    """The page parses as WeasyPrint's own (HTML5) parser parses it, element by element."""
    assert _tree(pdf.parse_page(page)) == _tree(weasyprint.HTML(string=page.rstrip()).etree_element)


def test_the_page_parser_builds_the_tree_weasyprint_would_for_every_part_of_the_template(scope, clock):
    invoice = issued_invoice(scope, customer=AUSTRIAN_BUSINESS)
    note = billing.create_credit_note(scope, invoice.public_id, reason="Doppelt berechnet")
    for issued in (invoice, note):
        _parsed_alike(pdf.html(pdf.load(issued.public_id)))
    with translation.override("de"):
        full = pdf.context(pdf.load(note.public_id))
    full.update(
        reference="Korrektur der Rechnung <RE-2026-000001> & mehr",
        reason="Doppelt berechnet",
        gross_prices=True,
        allowances=[{"label": "Rabatt WELCOME (USt. 19 %)", "amount": "-10,00 €"}],
        rounding="0,01 €",
        prepaid="-5,00 €",
        notes=["Steuerschuldnerschaft des Leistungsempfängers.", "Zweiter Hinweis."],
        logo="data:image/png;base64,iVBORw0KGgo=",
    )
    with translation.override("de"):
        page = render_to_string(pdf.TEMPLATE, full)
    assert "Zweiter Hinweis" in page
    assert "&lt;RE-2026-000001&gt; &amp; mehr" in page
    _parsed_alike(page)


def test_the_same_invoice_renders_to_the_same_bytes(scope, clock):
    invoice = issued_invoice(scope, customer=AUSTRIAN_BUSINESS)
    first = pdf.render_invoice_pdf(pdf.load(invoice.public_id))
    second = pdf.render_invoice_pdf(pdf.load(invoice.public_id))
    assert first == second


def test_the_pdf_is_the_one_weasyprint_writes_of_the_page(scope, clock):
    """Compressing the streams once before writing, as the renderer does, changes no byte."""
    invoice = pdf.load(issued_invoice(scope, customer=DOMESTIC_BUSINESS).public_id)
    document = pdf._thread_renderer()._layout(pdf.html(invoice))
    assert pdf.render_invoice_pdf(invoice) == document.write_pdf(pdf_variant=pdf.PDF_VARIANT)


def test_the_pdf_is_pdf_a_3b_dated_when_the_invoice_was_finalized(scope, clock):
    invoice = issued_invoice(scope, customer=DOMESTIC_BUSINESS)
    reader = PdfReader(io.BytesIO(pdf.render_invoice_pdf(pdf.load(invoice.public_id))))
    xmp = reader.xmp_metadata
    assert xmp is not None
    assert (xmp.pdfaid_part, xmp.pdfaid_conformance) == ("3", "B")
    assert reader.metadata is not None
    assert reader.metadata.creation_date == invoice.finalized_at
    assert reader.metadata.title == _in("de", "Invoice")[0] + " RE-2026-000001"


def test_a_draft_is_not_rendered(scope, clock):
    billed = subscribe(scope)
    draft = billing.create_draft(scope, billed.subscription).invoice
    with pytest.raises(ValueError, match="draft"):
        pdf.render_invoice_pdf(pdf.load(draft.public_id))
