"""/v1/invoices/{id}/pdf|xml and /v1/credit_notes/{id}/pdf|xml: the stored PDF and XML of an issued invoice or
credit note."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.http import HttpRequest, HttpResponse
from ninja import Router, Status

from turnus.apps.billing.models import DocumentKind
from turnus.apps.documents import delivery, services, tasks
from turnus.apps.documents.models import Document
from turnus.apps.documents.schemas import DeliveryOut, SendIn, delivery_out
from turnus.core.api import scope_of

router = Router(tags=["documents"])

_PDF_RESPONSE: dict[str, Any] = {
    "responses": {
        200: {
            "description": "The PDF/A-3 document (ZUGFeRD / Factur-X where its XML is embedded)",
            "content": {"application/pdf": {"schema": {"type": "string", "format": "binary"}}},
        }
    }
}
_NOT_YET = " Answers 404 until the document is rendered (shortly after the invoice is issued)."


def _file(document: Document) -> HttpResponse:
    response = HttpResponse(services.content(document), content_type=document.media_type)
    response["Content-Disposition"] = f'inline; filename="{services.download_name(document)}"'
    response["ETag"] = f'"{document.sha256}"'
    response["Cache-Control"] = "private, max-age=3600"
    return response


@router.get(
    "/invoices/{id}/pdf",
    operation_id="retrieve_invoice_pdf",
    summary="Download the invoice as PDF",
    description="The invoice's PDF as rendered once when it was issued." + _NOT_YET,
    openapi_extra=_PDF_RESPONSE,
)
def retrieve_invoice_pdf(request: HttpRequest, id: str) -> HttpResponse:
    return _file(services.pdf_of(scope_of(request), id, DocumentKind.INVOICE))


@router.get(
    "/credit_notes/{id}/pdf",
    operation_id="retrieve_credit_note_pdf",
    summary="Download the credit note as PDF",
    description="The credit note's PDF as rendered once when it was issued." + _NOT_YET,
    openapi_extra=_PDF_RESPONSE,
)
def retrieve_credit_note_pdf(request: HttpRequest, id: str) -> HttpResponse:
    return _file(services.pdf_of(scope_of(request), id, DocumentKind.CREDIT_NOTE))


_XML_RESPONSE: dict[str, Any] = {
    "responses": {
        200: {
            "description": "The XRechnung 3.0 XML where the customer gets XRechnung, else the EN 16931 "
            "CII XML (the XML embedded in the ZUGFeRD / Factur-X PDF)",
            "content": {"application/xml": {"schema": {"type": "string", "format": "binary"}}},
        }
    }
}


@router.get(
    "/invoices/{id}/xml",
    operation_id="retrieve_invoice_xml",
    summary="Download the invoice as e-invoice XML",
    description="The invoice's structured XML (UN/CEFACT CII) as rendered once when it was issued: XRechnung "
    "for customers set up for it, else EN 16931." + _NOT_YET,
    openapi_extra=_XML_RESPONSE,
)
def retrieve_invoice_xml(request: HttpRequest, id: str) -> HttpResponse:
    return _file(services.xml_of(scope_of(request), id, DocumentKind.INVOICE))


@router.get(
    "/credit_notes/{id}/xml",
    operation_id="retrieve_credit_note_xml",
    summary="Download the credit note as e-invoice XML",
    description="The credit note's structured XML (UN/CEFACT CII) as rendered once when it was issued: "
    "XRechnung for customers set up for it, else EN 16931." + _NOT_YET,
    openapi_extra=_XML_RESPONSE,
)
def retrieve_credit_note_xml(request: HttpRequest, id: str) -> HttpResponse:
    return _file(services.xml_of(scope_of(request), id, DocumentKind.CREDIT_NOTE))


# --- e-mail delivery ---------------------------------------------------------------------------------

_SEND = (
    "E-mail the {noun} to its customer now (or to `to`), with its PDF (ZUGFeRD / Factur-X) and, where "
    "rendered, its XRechnung XML attached. Answers the new delivery: `pending` until the job queue has "
    "sent it (usually within seconds), `sent` once sent; temporary failures are retried with back-off, "
    "a permanent refusal by the mail server fails it at once. "
    "409 while the {noun} is a draft or void, or its documents are not rendered yet."
)


def _send(request: HttpRequest, id: str, kind: str, payload: SendIn | None) -> Status[DeliveryOut]:
    scope = scope_of(request)
    made = delivery.resend(scope, id, kind, to=(payload.to or "") if payload is not None else "")
    public_id = made.public_id
    transaction.on_commit(lambda: tasks.send_delivery(public_id), robust=True)
    return Status(201, delivery_out(delivery.get_delivery(scope, public_id)))


@router.post(
    "/invoices/{id}/send",
    response={201: DeliveryOut},
    operation_id="send_invoice",
    summary="E-mail the invoice again",
    description=_SEND.format(noun="invoice"),
)
def send_invoice(request: HttpRequest, id: str, payload: SendIn | None = None) -> Status[DeliveryOut]:
    return _send(request, id, DocumentKind.INVOICE, payload)


@router.post(
    "/credit_notes/{id}/send",
    response={201: DeliveryOut},
    operation_id="send_credit_note",
    summary="E-mail the credit note again",
    description=_SEND.format(noun="credit note"),
)
def send_credit_note(request: HttpRequest, id: str, payload: SendIn | None = None) -> Status[DeliveryOut]:
    return _send(request, id, DocumentKind.CREDIT_NOTE, payload)


@router.get(
    "/invoices/{id}/deliveries",
    response=list[DeliveryOut],
    operation_id="list_invoice_deliveries",
    summary="List the invoice's e-mails",
    description="Every e-mail of the invoice (the automatic one and each resend), newest first.",
)
def list_invoice_deliveries(request: HttpRequest, id: str) -> list[DeliveryOut]:
    return [delivery_out(d) for d in delivery.deliveries_of(scope_of(request), id, DocumentKind.INVOICE)]


@router.get(
    "/credit_notes/{id}/deliveries",
    response=list[DeliveryOut],
    operation_id="list_credit_note_deliveries",
    summary="List the credit note's e-mails",
    description="Every e-mail of the credit note (the automatic one and each resend), newest first.",
)
def list_credit_note_deliveries(request: HttpRequest, id: str) -> list[DeliveryOut]:
    found = delivery.deliveries_of(scope_of(request), id, DocumentKind.CREDIT_NOTE)
    return [delivery_out(d) for d in found]
