"""/v1/invoices and their state moves, /v1/credit_notes, and invoicing one subscription now."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.db.models import QuerySet
from django.http import HttpRequest
from ninja import Query, Router, Schema, Status

from turnus.apps.billing import services
from turnus.apps.billing.models import DocumentKind, Invoice
from turnus.apps.billing.schemas import (
    CreditNoteIn,
    InvoiceOut,
    UpcomingInvoiceOut,
    invoice_out,
    upcoming_out,
)
from turnus.core.api import ListResponse, scope_of
from turnus.core.pagination import DEFAULT_LIMIT, paginate
from turnus.core.scope import Scope

router = Router(tags=["invoices"])


class InvoiceFilters(Schema):
    limit: int = DEFAULT_LIMIT
    starting_after: str | None = None
    customer: str | None = None
    subscription: str | None = None
    status: str | None = None
    period_start_gte: datetime | None = None
    period_start_lte: datetime | None = None


class CreditNoteFilters(Schema):
    limit: int = DEFAULT_LIMIT
    starting_after: str | None = None
    customer: str | None = None
    invoice: str | None = None


def _documents(scope: Scope, kind: str) -> QuerySet[Invoice]:
    return (
        Invoice.objects.filter(tenant_id=scope.tenant_id, livemode=scope.livemode, kind=kind)
        .select_related("customer", "subscription", "credit_note_for")
        .prefetch_related("lines", "vat_breakdown", "allowances")
    )


def _render(scope: Scope, public_id: str, kind: str = DocumentKind.INVOICE) -> InvoiceOut:
    invoice = services.get_invoice(scope, public_id, kind=kind)
    return invoice_out(invoice)


@router.get("/invoices", response=ListResponse[InvoiceOut], operation_id="list_invoices")
def list_invoices(request: HttpRequest, filters: Query[InvoiceFilters]) -> dict[str, Any]:
    queryset = _documents(scope_of(request), DocumentKind.INVOICE)
    if filters.customer:
        queryset = queryset.filter(customer__public_id=filters.customer)
    if filters.subscription:
        queryset = queryset.filter(subscription__public_id=filters.subscription)
    if filters.status:
        queryset = queryset.filter(status=filters.status)
    if filters.period_start_gte:
        queryset = queryset.filter(period_start__gte=filters.period_start_gte)
    if filters.period_start_lte:
        queryset = queryset.filter(period_start__lte=filters.period_start_lte)
    page = paginate(queryset, limit=filters.limit, starting_after=filters.starting_after)
    return {"data": [invoice_out(invoice) for invoice in page.items], "has_more": page.has_more}


@router.get("/invoices/{id}", response=InvoiceOut, operation_id="retrieve_invoice")
def retrieve_invoice(request: HttpRequest, id: str) -> InvoiceOut:
    return _render(scope_of(request), id)


@router.post("/invoices/{id}/finalize", response=InvoiceOut, operation_id="finalize_invoice")
def finalize_invoice(request: HttpRequest, id: str) -> InvoiceOut:
    scope = scope_of(request)
    services.finalize(scope, id)
    return _render(scope, id)


@router.post("/invoices/{id}/void", response=InvoiceOut, operation_id="void_invoice")
def void_invoice(request: HttpRequest, id: str) -> InvoiceOut:
    scope = scope_of(request)
    services.void(scope, id)
    return _render(scope, id)


@router.post("/invoices/{id}/mark_paid", response=InvoiceOut, operation_id="mark_invoice_paid")
def mark_invoice_paid(request: HttpRequest, id: str) -> InvoiceOut:
    scope = scope_of(request)
    services.mark_paid(scope, id)
    return _render(scope, id)


@router.post(
    "/subscriptions/{id}/invoices",
    response={200: InvoiceOut, 201: InvoiceOut},
    operation_id="invoice_subscription_now",
    summary="Create the draft invoice of the subscription's current billing period",
    description="Answers 201 with the new draft, or 200 with the invoice already made for that period.",
)
def invoice_subscription_now(request: HttpRequest, id: str) -> Status[InvoiceOut]:
    scope = scope_of(request)
    drafted = services.create_draft(scope, id)
    return Status(201 if drafted.created else 200, _render(scope, drafted.invoice.public_id))


@router.get(
    "/subscriptions/{id}/upcoming_invoice",
    response=UpcomingInvoiceOut,
    operation_id="upcoming_invoice",
    summary="Preview the invoice the current billing period would get now; nothing is written",
)
def upcoming_invoice(request: HttpRequest, id: str) -> UpcomingInvoiceOut:
    scope = scope_of(request)
    return upcoming_out(services.preview_invoice(scope, id), scope.livemode)


@router.post("/credit_notes", response={201: InvoiceOut}, operation_id="create_credit_note")
def create_credit_note(request: HttpRequest, body: CreditNoteIn) -> Status[InvoiceOut]:
    scope = scope_of(request)
    lines = None
    if body.lines is not None:
        lines = [services.CreditLine(item.line, item.amount) for item in body.lines]
    note = services.create_credit_note(scope, body.invoice, lines, reason=body.reason)
    return Status(201, _render(scope, note.public_id, DocumentKind.CREDIT_NOTE))


@router.get("/credit_notes", response=ListResponse[InvoiceOut], operation_id="list_credit_notes")
def list_credit_notes(request: HttpRequest, filters: Query[CreditNoteFilters]) -> dict[str, Any]:
    queryset = _documents(scope_of(request), DocumentKind.CREDIT_NOTE)
    if filters.customer:
        queryset = queryset.filter(customer__public_id=filters.customer)
    if filters.invoice:
        queryset = queryset.filter(credit_note_for__public_id=filters.invoice)
    page = paginate(queryset, limit=filters.limit, starting_after=filters.starting_after)
    return {"data": [invoice_out(invoice) for invoice in page.items], "has_more": page.has_more}


@router.get("/credit_notes/{id}", response=InvoiceOut, operation_id="retrieve_credit_note")
def retrieve_credit_note(request: HttpRequest, id: str) -> InvoiceOut:
    return _render(scope_of(request), id, DocumentKind.CREDIT_NOTE)
