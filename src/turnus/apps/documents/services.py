"""Rendering an issued invoice's documents once, and finding them again.

``render_documents`` makes every format not stored yet, in this order:

1. ``pdf``: the page as PDF/A-3b (``documents.pdf``), always;
2. ``cii_xml``: the EN 16931 CII XML, when ``documents.cii`` provides ``invoice_xml(invoice) -> bytes``;
3. ``facturx_pdf``: the PDF with that XML embedded (``documents.facturx``). Made together with the PDF
   from one layout (``pdf.render_invoice_pdfs``); where the PDF was stored before, the XML is embedded
   into the stored bytes (``facturx.embed``);
4. ``xrechnung_xml``: the XRechnung 3.0 CII XML, when the invoice's recipient copy asks for it
   (``einvoice_format`` "xrechnung", the customer's setting when the draft was made).

A format already stored is never rendered again, so a document never changes once made; a second run
does nothing. Rendering is deterministic, so two workers racing on one invoice store the same bytes, and
the unique (invoice, format) constraint keeps one row.
"""

from __future__ import annotations

import hashlib
import importlib
import logging
from collections.abc import Callable
from types import ModuleType
from typing import Any

from django.db import IntegrityError, transaction

from turnus.apps.billing import services as billing
from turnus.apps.billing.models import DocumentKind, Invoice
from turnus.apps.documents import facturx, pdf, storage
from turnus.apps.documents.models import MEDIA_TYPES, Document, DocumentFormat
from turnus.core import clock
from turnus.core.audit import record
from turnus.core.errors import NotFound, ValidationFailed
from turnus.core.ids import new_id
from turnus.core.scope import Actor, ActorKind, Scope

logger = logging.getLogger(__name__)

RENDERER = Actor(ActorKind.SYSTEM, "documents")
#: The formats the PDF download serves, best first.
PDF_FORMATS = (DocumentFormat.FACTURX_PDF, DocumentFormat.PDF)
#: The formats the XML download serves, best first (XRechnung where the customer asked for it).
XML_FORMATS = (DocumentFormat.XRECHNUNG_XML, DocumentFormat.CII_XML)
XRECHNUNG = "xrechnung"


def _optional(module: str, function: str) -> Callable[..., bytes] | None:
    """``turnus.apps.documents.<module>.<function>`` where that module exists (e-invoice XML)."""
    name = f"turnus.apps.documents.{module}"
    try:
        found: ModuleType = importlib.import_module(name)
    except ModuleNotFoundError as error:
        if error.name != name:
            raise
        return None
    made: Callable[..., bytes] | None = getattr(found, function, None)
    return made


def snapshot(document: Document) -> dict[str, Any]:
    return {
        "id": document.public_id,
        "invoice": document.invoice.public_id,
        "format": document.format,
        "sha256": document.sha256,
        "size": document.size,
    }


def _store(invoice: Invoice, kind: DocumentFormat, data: bytes) -> Document:
    digest = hashlib.sha256(data).hexdigest()
    extension = MEDIA_TYPES[kind][1]
    name = storage.file_name(
        invoice.tenant.public_id, invoice.livemode, invoice.public_id, kind.value, digest, extension
    )
    stored = storage.store(name, data)
    now = clock.now()
    try:
        with transaction.atomic():
            document = Document.objects.create(
                public_id=new_id("doc", at=now),
                tenant_id=invoice.tenant_id,
                livemode=invoice.livemode,
                created_at=now,
                invoice=invoice,
                format=kind,
                file=stored,
                sha256=digest,
                size=len(data),
            )
            scope = Scope(invoice.tenant_id, invoice.livemode, RENDERER)
            record(scope, "document.created", "document", document.public_id, after=snapshot(document))
    except IntegrityError:
        winner = Document.objects.filter(invoice=invoice, format=kind).first()
        if winner is None:
            raise
        if winner.file.name != stored:
            storage.delete(stored)
        return winner
    return document


def render_documents(invoice_id: str) -> list[Document]:
    """Render and store every document of the issued invoice or credit note ``invoice_id`` (public id)
    that is not stored yet; the documents made now (none when everything exists or it is a draft)."""
    try:
        invoice = pdf.load(invoice_id)
    except Invoice.DoesNotExist:
        logger.warning("no invoice %s to render", invoice_id)
        return []
    if invoice.number is None:
        return []
    stored = {DocumentFormat(document.format): document for document in invoice.documents.all()}
    made: list[Document] = []
    invoice_xml = _optional("cii", "invoice_xml")
    xml: bytes | None = None
    if invoice_xml is not None and not {DocumentFormat.CII_XML, DocumentFormat.FACTURX_PDF} <= stored.keys():
        try:
            xml = (
                content(stored[DocumentFormat.CII_XML])
                if DocumentFormat.CII_XML in stored
                else invoice_xml(invoice)
            )
        except Exception:
            # The page does not need the XML: it is kept all the same, then the error propagates.
            if DocumentFormat.PDF not in stored:
                _store(invoice, DocumentFormat.PDF, pdf.render_invoice_pdf(invoice))
            raise
    hybrid: bytes | None = None
    if DocumentFormat.PDF not in stored:
        if xml is not None and DocumentFormat.FACTURX_PDF not in stored:  # one layout for both PDFs
            page, hybrid = pdf.render_invoice_pdfs(invoice, xml)
        else:
            page = pdf.render_invoice_pdf(invoice)
        stored[DocumentFormat.PDF] = _store(invoice, DocumentFormat.PDF, page)
        made.append(stored[DocumentFormat.PDF])
    if invoice_xml is None:
        return made
    if xml is not None and DocumentFormat.CII_XML not in stored:
        stored[DocumentFormat.CII_XML] = _store(invoice, DocumentFormat.CII_XML, xml)
        made.append(stored[DocumentFormat.CII_XML])
    if xml is not None and DocumentFormat.FACTURX_PDF not in stored:
        if hybrid is None:  # the PDF was stored before: the XML goes into those very bytes
            hybrid = facturx.embed(content(stored[DocumentFormat.PDF]), xml)
        made.append(_store(invoice, DocumentFormat.FACTURX_PDF, hybrid))
    if wants_xrechnung(invoice) and DocumentFormat.XRECHNUNG_XML not in stored:
        xrechnung = _xrechnung(invoice, invoice_xml)
        if xrechnung is not None:
            made.append(_store(invoice, DocumentFormat.XRECHNUNG_XML, xrechnung))
    return made


def wants_xrechnung(invoice: Invoice) -> bool:
    """Whether the invoice's recipient (the customer's copy made with the draft) asked for XRechnung."""
    return (invoice.recipient or {}).get("einvoice_format") == XRECHNUNG


def _xrechnung(invoice: Invoice, invoice_xml: Callable[..., bytes]) -> bytes | None:
    """The XRechnung XML of ``invoice``; ``None`` (logged) where its copies lack data XRechnung needs,
    which rendering again cannot fix: the other formats are kept."""
    try:
        return invoice_xml(invoice, profile=XRECHNUNG)
    except ValidationFailed as error:
        logger.warning("no XRechnung for %s: %s", invoice.public_id, error.message)
        return None


def unrendered_invoices(*, limit: int) -> list[str]:
    """Issued invoices and credit notes that have no PDF yet, oldest first."""
    found = (
        Invoice.objects.filter(number__isnull=False)
        .exclude(documents__format=DocumentFormat.PDF)
        .order_by("pk")
        .values_list("public_id", flat=True)[:limit]
    )
    return list(found)


def content(document: Document) -> bytes:
    return storage.read(str(document.file.name))


def pdf_of(scope: Scope, public_id: str, kind: str = DocumentKind.INVOICE) -> Document:
    """The stored PDF (Factur-X where there is one) of the invoice or credit note ``public_id``."""
    invoice = billing.get_invoice(scope, public_id, kind=kind)
    documents = {d.format: d for d in Document.objects.filter(invoice=invoice, format__in=PDF_FORMATS)}
    for wanted in PDF_FORMATS:
        if wanted in documents:
            documents[wanted].invoice = invoice
            return documents[wanted]
    noun = "credit note" if kind == DocumentKind.CREDIT_NOTE else "invoice"
    raise NotFound(f"the PDF of {noun} {public_id} is not rendered yet; try again shortly", field="id")


def xml_of(scope: Scope, public_id: str, kind: str = DocumentKind.INVOICE) -> Document:
    """The stored XML of the invoice or credit note ``public_id``: the XRechnung where there is one,
    else the EN 16931 CII XML."""
    invoice = billing.get_invoice(scope, public_id, kind=kind)
    documents = {d.format: d for d in Document.objects.filter(invoice=invoice, format__in=XML_FORMATS)}
    for wanted in XML_FORMATS:
        if wanted in documents:
            documents[wanted].invoice = invoice
            return documents[wanted]
    noun = "credit note" if kind == DocumentKind.CREDIT_NOTE else "invoice"
    raise NotFound(f"the XML of {noun} {public_id} is not rendered yet; try again shortly", field="id")


def download_name(document: Document) -> str:
    number = document.invoice.number or document.invoice.public_id
    safe = "".join(char if char.isalnum() or char in "-_." else "_" for char in number)
    return f"{safe}.{document.extension}"
