"""GET /v1/invoices/{id}/pdf and /v1/credit_notes/{id}/pdf: the stored PDF, or a 404 problem."""

from __future__ import annotations

import pytest

from tests.apps.billing.support import subscribe
from tests.apps.documents.support import DOMESTIC_BUSINESS, issued_invoice, scope_of, text_of
from tests.support import ApiClient
from turnus.apps.billing import services as billing
from turnus.apps.documents import services
from turnus.apps.documents.models import Document

pytestmark = pytest.mark.django_db


@pytest.fixture
def scope(api):
    return scope_of(api.tenant)


@pytest.fixture
def rendered(scope, clock):
    invoice = issued_invoice(scope, customer=DOMESTIC_BUSINESS)
    note = billing.create_credit_note(scope, invoice.public_id)
    for issued in (invoice, note):
        services.render_documents(issued.public_id)
    return invoice, note


def _problem(response, status: int = 404) -> str:
    assert response.status_code == status, response.content
    assert response["Content-Type"] == "application/problem+json"
    return str(response.json()["code"])


def test_the_invoice_pdf_downloads_as_the_stored_factur_x_document(api, rendered):
    invoice, _ = rendered
    response = api.get(f"/v1/invoices/{invoice.public_id}/pdf")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/pdf"
    assert response["Content-Disposition"] == 'inline; filename="RE-2026-000001.pdf"'
    stored = Document.objects.get(invoice=invoice, format="facturx_pdf")
    assert response.content == services.content(stored)
    assert response["ETag"] == f'"{stored.sha256}"'
    assert "RE-2026-000001" in text_of(response.content)


def test_the_credit_note_pdf_downloads_from_its_own_route(api, rendered):
    _, note = rendered
    response = api.get(f"/v1/credit_notes/{note.public_id}/pdf")
    assert response.status_code == 200
    assert response["Content-Disposition"] == f'inline; filename="{note.number}.pdf"'
    assert "RE-2026-000001" in text_of(response.content)


def test_the_plain_pdf_is_served_while_there_is_no_factur_x_document(api, rendered):
    invoice, _ = rendered
    Document.objects.filter(invoice=invoice, format="facturx_pdf").delete()
    response = api.get(f"/v1/invoices/{invoice.public_id}/pdf")
    assert response.status_code == 200
    assert response.content == services.content(Document.objects.get(invoice=invoice, format="pdf"))


def test_an_unknown_id_is_a_404(api, rendered):
    assert _problem(api.get("/v1/invoices/inv_0000000000000000000000000/pdf")) == "not_found"
    assert _problem(api.get("/v1/credit_notes/cn_0000000000000000000000000/pdf")) == "not_found"


def test_each_route_knows_only_its_own_kind(api, rendered):
    invoice, note = rendered
    assert _problem(api.get(f"/v1/credit_notes/{invoice.public_id}/pdf")) == "not_found"
    assert _problem(api.get(f"/v1/invoices/{note.public_id}/pdf")) == "not_found"


def test_an_invoice_not_rendered_yet_is_a_404_naming_the_id(api, scope, clock):
    billed = subscribe(scope)
    draft = billing.create_draft(scope, billed.subscription).invoice
    response = api.get(f"/v1/invoices/{draft.public_id}/pdf")
    assert _problem(response) == "not_found"
    assert response.json()["errors"][0]["field"] == "id"
    assert "not rendered yet" in response.json()["detail"]


def test_another_tenant_and_the_other_mode_get_a_404(api, rendered, make_tenant):
    invoice, note = rendered
    for stranger in (ApiClient(make_tenant()), ApiClient(api.tenant, livemode=True)):
        assert _problem(stranger.get(f"/v1/invoices/{invoice.public_id}/pdf")) == "not_found"
        assert _problem(stranger.get(f"/v1/credit_notes/{note.public_id}/pdf")) == "not_found"


def test_the_openapi_document_describes_the_routes_as_pdf_downloads(api):
    paths = api.get("/v1/openapi.json").json()["paths"]
    for path, operation_id in (
        ("/v1/invoices/{id}/pdf", "retrieve_invoice_pdf"),
        ("/v1/credit_notes/{id}/pdf", "retrieve_credit_note_pdf"),
    ):
        operation = paths[path]["get"]
        assert operation["operationId"] == operation_id
        assert "application/pdf" in operation["responses"]["200"]["content"]
        assert "application/problem+json" in operation["responses"]["404"]["content"]
