"""XRechnung for customers set up for it: the tenant's seller contact and bank details are copied onto the
invoice, an issued invoice of an XRechnung customer also gets its XRechnung XML (valid against the XSD, the
CEN EN 16931 schematron and the BR-DE rules, with the Leitweg-ID as BT-10), stored once like the other
formats, and GET /v1/invoices/{id}/xml serves it (else the EN 16931 CII XML)."""

from __future__ import annotations

import hashlib
import logging

import pytest

from tests.apps.billing.support import subscribe
from tests.apps.documents import validation
from tests.apps.documents.support import DOMESTIC_BUSINESS, issued_invoice, scope_of
from tests.support import TEST_ACTOR, ApiClient
from turnus.apps.billing import services as billing
from turnus.apps.billing.models import Invoice
from turnus.apps.customers import services as customers
from turnus.apps.documents import cii, services
from turnus.apps.documents.models import Document, DocumentFormat
from turnus.apps.tenants import services as tenants
from turnus.apps.tenants.models import Tenant
from turnus.core.errors import ValidationFailed

pytestmark = pytest.mark.django_db

LEITWEG_ID = "04011000-1234512345-06"
PUBLIC_BUYER = {
    **DOMESTIC_BUSINESS,
    "company": "Stadtverwaltung Musterstadt",
    "einvoice_format": "xrechnung",
    "buyer_reference": LEITWEG_ID,
    "electronic_address": f"0204:{LEITWEG_ID}",
}
SELLER_CONTACT = {
    "phone": "+49 30 1234567",
    "contact_name": "Petra Buchhaltung",
    "email": "rechnung@shop.example",
}
AGREEMENT = "/rsm:CrossIndustryInvoice/rsm:SupplyChainTradeTransaction/ram:ApplicableHeaderTradeAgreement"
SELLER_CONTACT_PATH = f"{AGREEMENT}/ram:SellerTradeParty/ram:DefinedTradeContact"
EVERY_FORMAT = {DocumentFormat.PDF, DocumentFormat.CII_XML, DocumentFormat.FACTURX_PDF}


@pytest.fixture
def seller(make_tenant):
    return make_tenant(**SELLER_CONTACT)


@pytest.fixture
def scope(seller):
    return scope_of(seller)


def _formats(invoice) -> set[str]:
    return set(Document.objects.filter(invoice=invoice).values_list("format", flat=True))


def _stored(invoice, kind: DocumentFormat) -> bytes:
    return services.content(Document.objects.get(invoice=invoice, format=kind))


def _checked_xrechnung(xml: bytes):
    cii.check_xsd(xml)
    report = validation.cen_schematron(xml)
    assert report.fatal == [], "\n".join(map(str, report.fatal))
    assert validation.xrechnung_violations(xml) == []
    return validation.parse(xml)


# --- the supplier and recipient copies -------------------------------------------------------------------


def test_the_tenants_telephone_contact_and_bank_details_are_copied_onto_the_invoice(scope, seller, clock):
    invoice = issued_invoice(scope, customer=DOMESTIC_BUSINESS)
    assert invoice.supplier["phone"] == "+49 30 1234567"
    assert invoice.supplier["contact_name"] == "Petra Buchhaltung"
    assert (invoice.supplier["iban"], invoice.supplier["bic"]) == ("DE89370400440532013000", "COBADEFFXXX")
    tenants.update_tenant(
        seller,
        {"phone": "+49 89 7654321", "iban": "DE02120300000000202051", "bic": "BYLADEM1001"},
        actor=TEST_ACTOR,
    )
    assert Invoice.objects.get(pk=invoice.pk).supplier["phone"] == "+49 30 1234567"
    xml = cii.invoice_xml(Invoice.objects.select_related("tenant").get(pk=invoice.pk))
    root = validation.parse(xml)
    assert (
        validation.text(root, "//ram:PayeePartyCreditorFinancialAccount/ram:IBANID")
        == "DE89370400440532013000"
    )
    assert validation.text(
        root, f"{SELLER_CONTACT_PATH}/ram:TelephoneUniversalCommunication/ram:CompleteNumber"
    ) == ("+49 30 1234567")
    assert validation.text(root, f"{SELLER_CONTACT_PATH}/ram:PersonName") == "Petra Buchhaltung"


def test_the_customers_e_invoice_settings_are_copied_onto_the_invoice(scope, clock):
    invoice = issued_invoice(scope, customer=PUBLIC_BUYER)
    assert invoice.recipient["einvoice_format"] == "xrechnung"
    assert invoice.recipient["buyer_reference"] == LEITWEG_ID
    assert invoice.recipient["electronic_address"] == f"0204:{LEITWEG_ID}"


def test_a_bad_telephone_number_of_the_tenant_is_refused(seller):
    with pytest.raises(ValidationFailed) as refused:
        tenants.update_tenant(seller, {"phone": "12"}, actor=TEST_ACTOR)
    assert refused.value.field == "phone"
    assert Tenant.objects.get(pk=seller.pk).phone == "+49 30 1234567"


# --- rendering -------------------------------------------------------------------------------------------


def test_an_xrechnung_customers_invoice_gets_a_valid_xrechnung_with_its_leitweg_id(
    scope, clock, django_capture_on_commit_callbacks
):
    billed_invoice = None
    with django_capture_on_commit_callbacks(execute=True):
        billed_invoice = issued_invoice(scope, customer=PUBLIC_BUYER)
    assert _formats(billed_invoice) == EVERY_FORMAT | {DocumentFormat.XRECHNUNG_XML}
    document = Document.objects.get(invoice=billed_invoice, format=DocumentFormat.XRECHNUNG_XML)
    xml = services.content(document)
    assert document.sha256 == hashlib.sha256(xml).hexdigest()
    assert document.size == len(xml)
    root = _checked_xrechnung(xml)
    assert validation.text(root, f"{AGREEMENT}/ram:BuyerReference") == LEITWEG_ID
    buyer_uri = root.xpath(
        f"{AGREEMENT}/ram:BuyerTradeParty/ram:URIUniversalCommunication/ram:URIID", namespaces=validation.NS
    )[0]
    assert (buyer_uri.get("schemeID"), buyer_uri.text) == ("0204", LEITWEG_ID)
    assert validation.amount(root, "DuePayableAmount") == billed_invoice.amount_due
    # The Factur-X XML stays the EN 16931 profile.
    assert b"xrechnung" not in _stored(billed_invoice, DocumentFormat.CII_XML)


def test_a_credit_note_for_an_xrechnung_customer_gets_an_xrechnung_too(scope, clock):
    invoice = issued_invoice(scope, customer=PUBLIC_BUYER)
    note = billing.create_credit_note(scope, invoice.public_id)
    services.render_documents(note.public_id)
    root = _checked_xrechnung(_stored(note, DocumentFormat.XRECHNUNG_XML))
    assert validation.text(root, "/rsm:CrossIndustryInvoice/rsm:ExchangedDocument/ram:TypeCode") == "381"
    assert validation.text(root, f"{AGREEMENT}/ram:BuyerReference") == LEITWEG_ID


def test_the_xrechnung_is_rendered_once_and_never_changes(scope, seller, clock):
    invoice = issued_invoice(scope, customer=PUBLIC_BUYER)
    services.render_documents(invoice.public_id)
    first = Document.objects.get(invoice=invoice, format=DocumentFormat.XRECHNUNG_XML)
    tenants.update_tenant(seller, {"phone": "+49 89 7654321"}, actor=TEST_ACTOR)
    assert services.render_documents(invoice.public_id) == []
    again = Document.objects.get(invoice=invoice, format=DocumentFormat.XRECHNUNG_XML)
    assert (again.pk, again.sha256) == (first.pk, first.sha256)
    Document.objects.filter(pk=first.pk).delete()  # a lost row: rendering again gives the same bytes
    remade = services.render_documents(invoice.public_id)
    assert [document.format for document in remade] == [DocumentFormat.XRECHNUNG_XML]
    assert remade[0].sha256 == first.sha256


def test_the_customers_setting_when_the_draft_was_made_decides(scope, clock):
    invoice = issued_invoice(scope, customer=DOMESTIC_BUSINESS)
    customers.update_customer(
        scope, invoice.customer.public_id, {"einvoice_format": "xrechnung", "buyer_reference": LEITWEG_ID}
    )
    services.render_documents(invoice.public_id)
    assert _formats(invoice) == EVERY_FORMAT


def test_an_invoice_lacking_xrechnung_data_keeps_its_other_documents_and_logs_why(
    scope, seller, clock, caplog
):
    billed = subscribe(scope, customer=PUBLIC_BUYER)
    Tenant.objects.filter(pk=seller.pk).update(phone="")  # removed after the customer was set up
    draft = billing.create_draft(scope, billed.subscription).invoice
    invoice = billing.finalize(scope, draft.public_id)
    with caplog.at_level(logging.WARNING, logger="turnus.apps.documents.services"):
        services.render_documents(invoice.public_id)
    assert _formats(invoice) == EVERY_FORMAT
    assert "telephone" in caplog.text
    assert invoice.public_id in caplog.text


# --- GET /v1/invoices/{id}/xml ----------------------------------------------------------------------------


@pytest.fixture
def api(seller):
    return ApiClient(seller)


def _problem(response) -> str:
    assert response.status_code == 404, response.content
    assert response["Content-Type"] == "application/problem+json"
    return str(response.json()["code"])


def test_the_xml_route_serves_the_xrechnung_of_an_xrechnung_customer(api, scope, clock):
    invoice = issued_invoice(scope, customer=PUBLIC_BUYER)
    services.render_documents(invoice.public_id)
    response = api.get(f"/v1/invoices/{invoice.public_id}/xml")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/xml"
    assert response["Content-Disposition"] == f'inline; filename="{invoice.number}.xml"'
    assert response.content == _stored(invoice, DocumentFormat.XRECHNUNG_XML)
    assert response["ETag"] == f'"{hashlib.sha256(response.content).hexdigest()}"'
    root = _checked_xrechnung(response.content)
    assert validation.text(root, f"{AGREEMENT}/ram:BuyerReference") == LEITWEG_ID


def test_the_xml_route_serves_the_en16931_xml_of_other_customers_and_credit_notes(api, scope, clock):
    invoice = issued_invoice(scope, customer=DOMESTIC_BUSINESS)
    note = billing.create_credit_note(scope, invoice.public_id)
    for issued in (invoice, note):
        services.render_documents(issued.public_id)
    response = api.get(f"/v1/invoices/{invoice.public_id}/xml")
    assert response.status_code == 200
    assert response.content == _stored(invoice, DocumentFormat.CII_XML)
    credited = api.get(f"/v1/credit_notes/{note.public_id}/xml")
    assert credited.status_code == 200
    assert credited["Content-Type"] == "application/xml"
    assert credited.content == _stored(note, DocumentFormat.CII_XML)
    assert _problem(api.get(f"/v1/credit_notes/{invoice.public_id}/xml")) == "not_found"
    assert _problem(api.get(f"/v1/invoices/{note.public_id}/xml")) == "not_found"


def test_the_xml_route_answers_404_until_rendered_and_for_unknown_or_foreign_ids(
    api, scope, make_tenant, clock
):
    invoice = issued_invoice(scope, customer=PUBLIC_BUYER)
    assert _problem(api.get(f"/v1/invoices/{invoice.public_id}/xml")) == "not_found"
    services.render_documents(invoice.public_id)
    assert _problem(api.get("/v1/invoices/inv_0000000000000000000000000/xml")) == "not_found"
    assert _problem(ApiClient(make_tenant()).get(f"/v1/invoices/{invoice.public_id}/xml")) == "not_found"
    assert (
        _problem(ApiClient(api.tenant, livemode=True).get(f"/v1/invoices/{invoice.public_id}/xml"))
        == "not_found"
    )
