"""Issuing an invoice or credit note renders its documents once, after the transaction commits, into the
configured storage; a render never replaces or changes a stored document."""

from __future__ import annotations

import hashlib
import io

import facturx as facturx_lib
import pytest
from django.core.files.storage import InMemoryStorage, storages
from pypdf import PdfReader

from tests.apps.billing.support import subscribe
from tests.apps.documents.support import (
    AUSTRIAN_BUSINESS,
    DOMESTIC_BUSINESS,
    START,
    issued_invoice,
    text_of,
)
from turnus.apps.billing import services as billing
from turnus.apps.documents import cii, services, storage, tasks
from turnus.apps.documents.models import Document, DocumentFormat
from turnus.core.models import AuditEvent

pytestmark = pytest.mark.django_db

#: What an issued invoice gets: its PDF/A-3, the CII XML and the two combined as ZUGFeRD / Factur-X.
EVERY_FORMAT = {DocumentFormat.PDF, DocumentFormat.CII_XML, DocumentFormat.FACTURX_PDF}


def _formats(invoice) -> set[str]:
    return set(Document.objects.filter(invoice=invoice).values_list("format", flat=True))


def _contents(invoice) -> dict[str, bytes]:
    return {d.format: services.content(d) for d in Document.objects.filter(invoice=invoice)}


def test_finalizing_renders_the_invoices_documents_once_the_transaction_commits(
    scope, clock, django_capture_on_commit_callbacks
):
    billed = subscribe(scope, customer=DOMESTIC_BUSINESS)
    draft = billing.create_draft(scope, billed.subscription).invoice
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        invoice = billing.finalize(scope, draft.public_id)
        assert _formats(invoice) == set(), "nothing is rendered before the commit"
    assert len(callbacks) == 1
    assert _formats(invoice) == EVERY_FORMAT


def test_issuing_a_credit_note_renders_its_documents_too(scope, clock, django_capture_on_commit_callbacks):
    invoice = issued_invoice(scope, customer=DOMESTIC_BUSINESS)
    with django_capture_on_commit_callbacks(execute=True):
        note = billing.create_credit_note(scope, invoice.public_id)
    assert _formats(note) == EVERY_FORMAT


def test_a_transaction_that_rolls_back_renders_nothing(scope, clock, django_capture_on_commit_callbacks):
    billed = subscribe(scope)
    draft = billing.create_draft(scope, billed.subscription).invoice
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        billing.finalize(scope, draft.public_id)
    assert len(callbacks) == 1
    assert not Document.objects.exists()


def test_each_document_is_stored_with_its_hash_and_size(scope, clock):
    invoice = issued_invoice(scope)
    made = services.render_documents(invoice.public_id)
    assert {document.format for document in made} == EVERY_FORMAT
    for document in made:
        data = services.content(document)
        assert (document.sha256, document.size) == (hashlib.sha256(data).hexdigest(), len(data))
        assert document.public_id.startswith("doc_")
        assert (document.tenant_id, document.livemode) == (invoice.tenant_id, invoice.livemode)
    assert services.content(next(d for d in made if d.format == "pdf")).startswith(b"%PDF-1.7")
    created = AuditEvent.objects.filter(action="document.created", object_type="document")
    assert created.count() == 3


def test_a_second_render_does_nothing(scope, clock):
    invoice = issued_invoice(scope)
    services.render_documents(invoice.public_id)
    before = {(d.public_id, d.file.name, d.sha256) for d in Document.objects.all()}
    assert services.render_documents(invoice.public_id) == []
    assert tasks.render_invoice(invoice.public_id)() == []
    assert {(d.public_id, d.file.name, d.sha256) for d in Document.objects.all()} == before


def test_a_fresh_render_of_the_same_invoice_gives_byte_identical_documents(scope, clock):
    invoice = issued_invoice(scope, customer=AUSTRIAN_BUSINESS)
    services.render_documents(invoice.public_id)
    first = _contents(invoice)
    for document in Document.objects.all():
        storage.delete(document.file.name)
        document.delete()
    clock.advance(START - START.replace(year=2025))  # a year later
    services.render_documents(invoice.public_id)
    assert _contents(invoice) == first


def test_paying_an_invoice_does_not_change_how_it_renders(scope, clock):
    invoice = issued_invoice(scope)
    services.render_documents(invoice.public_id)
    first = _contents(invoice)
    Document.objects.all().delete()
    billing.mark_paid(scope, invoice.public_id)
    services.render_documents(invoice.public_id)
    assert _contents(invoice) == first


def test_a_draft_or_an_unknown_invoice_renders_nothing(scope, clock):
    billed = subscribe(scope)
    draft = billing.create_draft(scope, billed.subscription).invoice
    assert services.render_documents(draft.public_id) == []
    assert services.render_documents("inv_0000000000000000000000000") == []
    assert not Document.objects.exists()


def test_the_rendering_job_renders_through_the_queue(scope, clock):
    invoice = issued_invoice(scope)
    result = tasks.render_invoice(invoice.public_id)
    assert set(result()) == EVERY_FORMAT


def test_invoices_issued_together_are_rendered_by_one_queued_job_each(scope, clock, monkeypatch):
    first, second = issued_invoice(scope, code="first"), issued_invoice(scope, code="second")
    queued: list[str] = []
    real = tasks.render_invoice

    def spy(invoice: str):
        queued.append(invoice)
        return real(invoice)

    monkeypatch.setattr(tasks, "render_invoice", spy)
    billing.invoice_issued.send(billing.Invoice, invoices=[first.public_id, second.public_id])
    assert queued == [first.public_id, second.public_id]
    rendered = set(Document.objects.values_list("invoice__public_id", "format"))
    assert rendered == {(invoice.public_id, kind) for invoice in (first, second) for kind in EVERY_FORMAT}


def test_the_catch_up_job_renders_issued_invoices_without_a_pdf(scope, clock):
    rendered = issued_invoice(scope, code="first")
    services.render_documents(rendered.public_id)
    missed = issued_invoice(scope, code="second")
    billed = subscribe(scope, code="draft")
    billing.create_draft(scope, billed.subscription)
    assert services.unrendered_invoices(limit=10) == [missed.public_id]
    assert tasks.render_missing() == 1
    assert _formats(missed) == EVERY_FORMAT
    assert services.unrendered_invoices(limit=10) == []


def test_a_render_that_loses_a_race_keeps_the_first_document_and_its_file(scope, clock):
    invoice = issued_invoice(scope)
    services.render_documents(invoice.public_id)
    winner = Document.objects.get(invoice=invoice, format="pdf")
    again = services._store(invoice, DocumentFormat.PDF, services.content(winner))
    assert again.pk == winner.pk
    assert Document.objects.filter(invoice=invoice, format="pdf").count() == 1
    assert storage.document_storage().exists(winner.file.name)


def test_documents_go_to_the_configured_storage_backend(scope, clock, settings):
    settings.STORAGES = {
        **settings.STORAGES,
        "documents": {"BACKEND": "django.core.files.storage.InMemoryStorage"},
    }
    invoice = issued_invoice(scope)
    services.render_documents(invoice.public_id)
    document = Document.objects.get(invoice=invoice, format="pdf")
    assert isinstance(storages["documents"], InMemoryStorage)
    assert storages["documents"].exists(document.file.name)
    assert services.content(document).startswith(b"%PDF")


def _delete(invoice, *formats: str) -> None:
    for document in Document.objects.filter(invoice=invoice, format__in=formats):
        storage.delete(document.file.name)
        document.delete()


def test_the_factur_x_pdf_carries_the_stored_xml_and_the_plain_pdf_carries_none(scope, clock):
    invoice = issued_invoice(scope, customer=DOMESTIC_BUSINESS)
    services.render_documents(invoice.public_id)
    stored = _contents(invoice)
    assert facturx_lib.get_facturx_xml_from_pdf(stored["facturx_pdf"], check_xsd=True) == (
        "factur-x.xml",
        stored["cii_xml"],
    )
    assert PdfReader(io.BytesIO(stored["pdf"])).attachments == {}
    assert text_of(stored["facturx_pdf"]) == text_of(stored["pdf"])


def test_a_missing_factur_x_pdf_is_made_from_the_stored_pdf_and_xml(scope, clock):
    invoice = issued_invoice(scope, customer=DOMESTIC_BUSINESS)
    services.render_documents(invoice.public_id)
    first = _contents(invoice)
    _delete(invoice, DocumentFormat.FACTURX_PDF)
    made = services.render_documents(invoice.public_id)
    assert [document.format for document in made] == [DocumentFormat.FACTURX_PDF]
    again = services.content(made[0])
    assert facturx_lib.get_facturx_xml_from_pdf(again, check_xsd=True) == ("factur-x.xml", first["cii_xml"])
    assert text_of(again) == text_of(first["pdf"])
    assert _contents(invoice)["pdf"] == first["pdf"]


def test_a_missing_pdf_is_made_again_with_its_factur_x_pdf_from_the_stored_xml(scope, clock):
    invoice = issued_invoice(scope, customer=AUSTRIAN_BUSINESS)
    services.render_documents(invoice.public_id)
    first = _contents(invoice)
    _delete(invoice, DocumentFormat.PDF, DocumentFormat.FACTURX_PDF)
    made = services.render_documents(invoice.public_id)
    assert [document.format for document in made] == [DocumentFormat.PDF, DocumentFormat.FACTURX_PDF]
    assert _contents(invoice) == first


def test_the_pdf_is_kept_when_the_xml_cannot_be_made(scope, clock, monkeypatch):
    invoice = issued_invoice(scope)

    def broken(invoice, **options):
        raise cii.CiiSchemaError("the generated CII XML fails the EN 16931 XSD")

    monkeypatch.setattr(cii, "invoice_xml", broken)
    with pytest.raises(cii.CiiSchemaError):
        services.render_documents(invoice.public_id)
    assert _formats(invoice) == {DocumentFormat.PDF}
    monkeypatch.undo()
    made = services.render_documents(invoice.public_id)
    assert {document.format for document in made} == {DocumentFormat.CII_XML, DocumentFormat.FACTURX_PDF}
