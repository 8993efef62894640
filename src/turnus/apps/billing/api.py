"""/v1/invoices and their state moves, /v1/credit_notes, and invoicing one subscription now."""

from __future__ import annotations

from datetime import datetime, timedelta
from types import SimpleNamespace
from typing import Any

from django.db.models import Q, QuerySet
from django.http import HttpRequest
from ninja import Query, Router, Schema, Status

from turnus.apps.billing import services, test_clocks
from turnus.apps.billing.models import BilledPeriod, BillingSettings, DocumentKind, Invoice
from turnus.apps.billing.schemas import (
    BillingSettingsIn,
    BillingSettingsOut,
    CreditNoteIn,
    InvoiceOut,
    TestClockAdvancedOut,
    TestClockAdvanceIn,
    TestClockDeletedOut,
    TestClockIn,
    TestClockOut,
    UpcomingInvoiceOut,
    invoice_out,
    upcoming_out,
)
from turnus.apps.customers.clocks import customer_time, get_test_clock
from turnus.apps.customers.models import TestClock
from turnus.apps.subscriptions.queries import customer_of as subscription_customer
from turnus.core.api import ListResponse, scope_of
from turnus.core.errors import ValidationFailed
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
        .prefetch_related(
            "lines",
            "vat_breakdown",
            "allowances",
            "billed_periods__subscription",
            "credit_note_for__billed_periods__subscription",
        )
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
        billed = BilledPeriod.objects.filter(subscription__public_id=filters.subscription)
        queryset = queryset.filter(
            Q(subscription__public_id=filters.subscription) | Q(pk__in=billed.values("invoice_id"))
        )
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
    with test_clocks.at_invoice_time(scope, id):
        services.finalize(scope, id)
    return _render(scope, id)


@router.post("/invoices/{id}/void", response=InvoiceOut, operation_id="void_invoice")
def void_invoice(request: HttpRequest, id: str) -> InvoiceOut:
    scope = scope_of(request)
    with test_clocks.at_invoice_time(scope, id):
        services.void(scope, id)
    return _render(scope, id)


@router.post("/invoices/{id}/mark_paid", response=InvoiceOut, operation_id="mark_invoice_paid")
def mark_invoice_paid(request: HttpRequest, id: str) -> InvoiceOut:
    scope = scope_of(request)
    with test_clocks.at_invoice_time(scope, id):
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
    with customer_time(scope, subscription_customer(scope, id)):
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
    with customer_time(scope, subscription_customer(scope, id)):
        return upcoming_out(services.preview_invoice(scope, id), scope.livemode)


def _settings_out(settings: BillingSettings) -> BillingSettingsOut:
    return BillingSettingsOut(
        draft_grace_period=int(settings.draft_grace_period.total_seconds()),
        consolidate_invoices=settings.consolidate_invoices,
    )


@router.get(
    "/billing_settings",
    response=BillingSettingsOut,
    operation_id="retrieve_billing_settings",
    tags=["billing settings"],
    summary="The tenant's billing settings",
)
def retrieve_billing_settings(request: HttpRequest) -> BillingSettingsOut:
    return _settings_out(services.billing_settings(scope_of(request)))


@router.post(
    "/billing_settings",
    response=BillingSettingsOut,
    operation_id="update_billing_settings",
    tags=["billing settings"],
    summary="Change the tenant's billing settings; omitted settings stay as they are",
)
def update_billing_settings(request: HttpRequest, body: BillingSettingsIn) -> BillingSettingsOut:
    grace = None
    if body.draft_grace_period is not None:
        seconds = body.draft_grace_period
        limit = int(services.MAX_DRAFT_GRACE_PERIOD.total_seconds())
        if not 0 <= seconds <= limit:
            raise ValidationFailed(
                f"the draft grace period is 0 to {limit} seconds (90 days)", field="draft_grace_period"
            )
        grace = timedelta(seconds=seconds)
    settings = services.update_billing_settings(
        scope_of(request), draft_grace_period=grace, consolidate_invoices=body.consolidate_invoices
    )
    return _settings_out(settings)


@router.post("/credit_notes", response={201: InvoiceOut}, operation_id="create_credit_note")
def create_credit_note(request: HttpRequest, body: CreditNoteIn) -> Status[InvoiceOut]:
    scope = scope_of(request)
    lines = None
    if body.lines is not None:
        lines = [services.CreditLine(item.line, item.amount) for item in body.lines]
    with test_clocks.at_invoice_time(scope, body.invoice):
        note = services.create_credit_note(
            scope, body.invoice, lines, reason=body.reason, settlement=body.settlement
        )
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


class TestClockFilters(Schema):
    __test__ = False  # not a pytest test class

    limit: int = DEFAULT_LIMIT
    starting_after: str | None = None


@router.post(
    "/test_clocks",
    response={201: TestClockOut},
    operation_id="create_test_clock",
    tags=["test clocks"],
    summary="Create a test clock (test mode only)",
)
def create_test_clock(request: HttpRequest, body: TestClockIn) -> Status[TestClock]:
    scope = scope_of(request)
    return Status(201, test_clocks.create_test_clock(scope, frozen_time=body.frozen_time, name=body.name))


@router.get(
    "/test_clocks", response=ListResponse[TestClockOut], operation_id="list_test_clocks", tags=["test clocks"]
)
def list_test_clocks(request: HttpRequest, filters: Query[TestClockFilters]) -> dict[str, Any]:
    page = paginate(
        test_clocks.clocks_of(scope_of(request)), limit=filters.limit, starting_after=filters.starting_after
    )
    return {"data": page.items, "has_more": page.has_more}


@router.get(
    "/test_clocks/{id}", response=TestClockOut, operation_id="retrieve_test_clock", tags=["test clocks"]
)
def retrieve_test_clock(request: HttpRequest, id: str) -> TestClock:
    return get_test_clock(scope_of(request), id)


@router.delete(
    "/test_clocks/{id}",
    response=TestClockDeletedOut,
    operation_id="delete_test_clock",
    tags=["test clocks"],
    summary="Delete a test clock no customer is attached to any more",
)
def delete_test_clock(request: HttpRequest, id: str) -> TestClock:
    return test_clocks.delete_test_clock(scope_of(request), id)


@router.post(
    "/test_clocks/{id}/advance",
    response=TestClockAdvancedOut,
    operation_id="advance_test_clock",
    tags=["test clocks"],
    summary="Move a test clock forward, billing its customers at every moment something falls due",
)
def advance_test_clock(request: HttpRequest, id: str, body: TestClockAdvanceIn) -> SimpleNamespace:
    advanced = test_clocks.advance_test_clock(scope_of(request), id, frozen_time=body.frozen_time)
    test_clock = advanced.test_clock
    return SimpleNamespace(
        public_id=test_clock.public_id,
        livemode=test_clock.livemode,
        created_at=test_clock.created_at,
        name=test_clock.name,
        frozen_time=test_clock.frozen_time,
        advance=advanced.summary,
    )
