from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from django.utils import translation
from ninja import Field, Schema

from turnus.apps.billing import balance
from turnus.apps.billing.models import VAT_NOTES, DocumentKind, Invoice
from turnus.apps.billing.services import BuiltInvoice
from turnus.apps.customers.models import TestClock
from turnus.core.api import DecimalString, InputSchema, UtcDateTime
from turnus.engine.invoice import ComposedInvoice
from turnus.engine.money import Money

TOTAL_NAMES = (
    "line_total",
    "allowance_total",
    "tax_exclusive",
    "tax_total",
    "grand_total",
    "rounding_amount",
    "prepaid",
    "amount_due",
)


class TotalsOut(Schema):
    line_total: DecimalString
    allowance_total: DecimalString
    tax_exclusive: DecimalString
    tax_total: DecimalString
    grand_total: DecimalString
    rounding_amount: DecimalString
    prepaid: DecimalString
    amount_due: DecimalString


class InvoiceLineOut(Schema):
    position: int
    kind: str
    description: str
    quantity: DecimalString
    unit_price: DecimalString
    net_amount: DecimalString
    gross_amount: DecimalString | None
    vat_category: str
    vat_rate: DecimalString
    vat_exemption_reason: str | None
    vat_note: str | None
    period_start: datetime | None
    period_end: datetime | None
    metadata: dict[str, str]


class VatBreakdownOut(Schema):
    category: str
    rate: DecimalString
    taxable_amount: DecimalString
    tax_amount: DecimalString
    exemption_reason: str | None
    note: str | None


class AllowanceOut(Schema):
    discount: str
    vat_category: str
    vat_rate: DecimalString
    amount: DecimalString


class PartyOut(Schema):
    name: str
    company: str | None = None
    address_line1: str
    address_line2: str
    postal_code: str
    city: str
    state: str | None = None
    country: str
    vat_id: str
    tax_number: str | None = None
    email: str


class CreditNoteSettlementOut(Schema):
    invoice: DecimalString = Field(description="Taken off what was still owed on the invoice.")
    balance: DecimalString = Field(description="Added to the customer's credit balance.")
    refund: DecimalString = Field(description="Due back to the customer as a refund.")
    refund_id: str | None


class InvoiceOut(Schema):
    id: str
    object: str
    livemode: bool
    created_at: datetime
    number: str | None
    status: str
    customer: str
    subscription: str | None = Field(
        description="The subscription of an invoice of one subscription; empty on a consolidated invoice."
    )
    subscriptions: list[str] = Field(
        default_factory=list,
        description="Every subscription whose billing period the invoice bills (of a credit note: those "
        "of the corrected invoice); several on a consolidated invoice.",
    )
    credit_note_for: str | None
    reason: str
    currency: str
    period_start: datetime | None
    period_end: datetime | None
    usage_start: datetime | None
    usage_end: datetime | None
    issue_date: date | None
    due_date: date | None
    supplier: PartyOut
    recipient: PartyOut
    prices_include_tax: bool
    lines: list[InvoiceLineOut]
    vat_breakdown: list[VatBreakdownOut]
    allowances: list[AllowanceOut]
    totals: TotalsOut
    amount_remaining: DecimalString | None = Field(
        default=None, description="Invoices: what is still owed (amount due less credit notes; 0 once paid)."
    )
    settlement: CreditNoteSettlementOut | None = Field(
        default=None, description="Credit notes: where the credited amount went."
    )
    finalized_at: datetime | None
    paid_at: datetime | None
    voided_at: datetime | None


class UpcomingInvoiceOut(Schema):
    object: str = "upcoming_invoice"
    livemode: bool
    customer: str
    subscription: str
    currency: str
    period_start: datetime
    period_end: datetime
    usage_start: datetime | None
    usage_end: datetime | None
    prices_include_tax: bool
    lines: list[InvoiceLineOut]
    vat_breakdown: list[VatBreakdownOut]
    allowances: list[AllowanceOut]
    totals: TotalsOut


class CreditLineIn(InputSchema):
    line: int = Field(ge=1, le=100_000, description="The 1-based position of the invoice line.")
    amount: DecimalString | None = Field(
        default=None, description="Net (gross for a tax-inclusive invoice); the whole line when left out."
    )


class CreditNoteIn(InputSchema):
    invoice: str = Field(min_length=1, max_length=40)
    lines: list[CreditLineIn] | None = Field(default=None, max_length=500)
    reason: str = Field(default="", max_length=500)
    settlement: str = Field(
        default="auto",
        description="auto (paid invoice: refund; unpaid: off what is owed, any excess to the balance), "
        "balance or refund.",
    )


def _rounded(amount: Any, currency: str) -> Decimal:
    return Money(Decimal(amount), currency).rounded().amount


def _note(key: str | None, language: str) -> str | None:
    if not key:
        return None
    text = VAT_NOTES.get(key)
    if text is None:
        return key
    with translation.override(language):
        return str(text)


def _account_parts(invoice: Invoice) -> dict[str, Any]:
    currency = invoice.currency
    if invoice.kind != DocumentKind.CREDIT_NOTE:
        return {"amount_remaining": _rounded(balance.amount_remaining(invoice), currency)}
    settled = balance.settlement_of(invoice)
    return {
        "settlement": CreditNoteSettlementOut(
            invoice=_rounded(settled.to_invoice, currency),
            balance=_rounded(settled.to_balance, currency),
            refund=_rounded(settled.to_refund, currency),
            refund_id=settled.refund.public_id if settled.refund else None,
        )
    }


def _subscriptions_of(invoice: Invoice) -> list[str]:
    """The subscriptions the invoice (a credit note: the corrected invoice) bills, in period order."""
    billed = invoice.credit_note_for if invoice.credit_note_for is not None else invoice
    found = [period.subscription.public_id for period in billed.billed_periods.all()]
    if not found and invoice.subscription is not None:
        found = [invoice.subscription.public_id]
    return list(dict.fromkeys(found))


def invoice_out(invoice: Invoice) -> InvoiceOut:
    currency = invoice.currency
    language = invoice.locale
    return InvoiceOut(
        id=invoice.public_id,
        object="credit_note" if invoice.kind == DocumentKind.CREDIT_NOTE else "invoice",
        livemode=invoice.livemode,
        created_at=invoice.created_at,
        number=invoice.number,
        status=invoice.status,
        customer=invoice.customer.public_id,
        subscription=invoice.subscription.public_id if invoice.subscription else None,
        subscriptions=_subscriptions_of(invoice),
        credit_note_for=invoice.credit_note_for.public_id if invoice.credit_note_for else None,
        reason=invoice.reason,
        currency=currency,
        period_start=invoice.period_start,
        period_end=invoice.period_end,
        usage_start=invoice.usage_start,
        usage_end=invoice.usage_end,
        issue_date=invoice.issue_date,
        due_date=invoice.due_date,
        supplier=PartyOut(**invoice.supplier),
        recipient=PartyOut(**invoice.recipient),
        prices_include_tax=invoice.prices_include_tax,
        lines=[
            InvoiceLineOut(
                position=line.position,
                kind=line.kind,
                description=line.description,
                quantity=Decimal(line.quantity).normalize(),
                unit_price=Decimal(line.unit_price).normalize(),
                net_amount=_rounded(line.net_amount, currency),
                gross_amount=None if line.gross_amount is None else _rounded(line.gross_amount, currency),
                vat_category=line.vat_category,
                vat_rate=Decimal(line.vat_rate).normalize(),
                vat_exemption_reason=line.vat_reason or None,
                vat_note=_note(line.vat_note, language),
                period_start=line.period_start,
                period_end=line.period_end,
                metadata=dict(line.metadata),
            )
            for line in invoice.lines.all()
        ],
        vat_breakdown=[
            VatBreakdownOut(
                category=group.category,
                rate=Decimal(group.rate).normalize(),
                taxable_amount=_rounded(group.taxable_amount, currency),
                tax_amount=_rounded(group.tax_amount, currency),
                exemption_reason=group.reason_code or None,
                note=_note(group.note, language),
            )
            for group in invoice.vat_breakdown.all()
        ],
        allowances=[
            AllowanceOut(
                discount=allowance.discount_code,
                vat_category=allowance.category,
                vat_rate=Decimal(allowance.rate).normalize(),
                amount=_rounded(allowance.amount, currency),
            )
            for allowance in invoice.allowances.all()
        ],
        totals=TotalsOut(**{name: _rounded(getattr(invoice, name), currency) for name in TOTAL_NAMES}),
        **_account_parts(invoice),
        finalized_at=invoice.finalized_at,
        paid_at=invoice.paid_at,
        voided_at=invoice.voided_at,
    )


def _composed_parts(composed: ComposedInvoice, language: str) -> dict[str, Any]:
    return {
        "lines": [
            InvoiceLineOut(
                position=position,
                kind=line.kind,
                description=line.description,
                quantity=line.quantity.normalize(),
                unit_price=line.unit_price.normalize(),
                net_amount=line.net_amount.amount,
                gross_amount=None if line.gross_amount is None else line.gross_amount.amount,
                vat_category=line.tax.category.value,
                vat_rate=line.tax.rate.normalize(),
                vat_exemption_reason=line.tax.reason_code,
                vat_note=_note(line.tax.note, language),
                period_start=line.period[0] if line.period else None,
                period_end=line.period[1] if line.period else None,
                metadata=dict(line.metadata),
            )
            for position, line in enumerate(composed.lines, start=1)
        ],
        "vat_breakdown": [
            VatBreakdownOut(
                category=group.category.value,
                rate=group.rate.normalize(),
                taxable_amount=group.taxable_amount.amount,
                tax_amount=group.tax_amount.amount,
                exemption_reason=group.reason_code,
                note=_note(group.note, language),
            )
            for group in composed.vat_breakdown
        ],
        "allowances": [
            AllowanceOut(
                discount=allowance.discount_code,
                vat_category=allowance.category.value,
                vat_rate=allowance.rate.normalize(),
                amount=allowance.amount.amount,
            )
            for allowance in composed.allowances
        ],
        "totals": TotalsOut(**{name: getattr(composed.totals, name).amount for name in TOTAL_NAMES}),
    }


def upcoming_out(built: BuiltInvoice, livemode: bool) -> UpcomingInvoiceOut:
    subscription = built.subscription
    currency = subscription.plan_version.currency
    language = subscription.customer.locale
    if built.composed is not None:
        parts = _composed_parts(built.composed, language)
        prices_include_tax = built.composed.prices_include_tax
    else:
        zero = Money.zero(currency).rounded().amount
        parts = {
            "lines": [],
            "vat_breakdown": [],
            "allowances": [],
            "totals": TotalsOut(**dict.fromkeys(TOTAL_NAMES, zero)),
        }
        prices_include_tax = subscription.plan_version.prices_include_tax
    usage = built.usage_period
    return UpcomingInvoiceOut(
        livemode=livemode,
        customer=subscription.customer.public_id,
        subscription=subscription.public_id,
        currency=currency,
        period_start=built.period.start,
        period_end=built.period.end,
        usage_start=usage.start if usage else None,
        usage_end=usage.end if usage else None,
        prices_include_tax=prices_include_tax,
        **parts,
    )


class TestClockIn(InputSchema):
    __test__ = False  # not a pytest test class

    frozen_time: UtcDateTime = Field(description="The simulated time to start at (years 2000 to 2099).")
    name: str | None = Field(None, description="A label of your choice, at most 300 characters.")


class TestClockAdvanceIn(InputSchema):
    __test__ = False  # not a pytest test class

    frozen_time: UtcDateTime = Field(
        description="The time to move to: after the current frozen_time, at most 731 days ahead of it."
    )


class TestClockOut(Schema):
    """A test clock (test mode only); customers created with it live at its ``frozen_time``."""

    __test__ = False  # not a pytest test class

    id: str
    object: str = "test_clock"
    livemode: bool
    created_at: datetime
    name: str | None
    frozen_time: datetime
    status: str = Field("ready", description="Always 'ready': an advance completes within its request.")

    @staticmethod
    def resolve_id(test_clock: TestClock) -> str:
        return test_clock.public_id

    @staticmethod
    def resolve_name(test_clock: TestClock) -> str | None:
        return test_clock.name or None


class TestClockAdvanceSummaryOut(Schema):
    __test__ = False  # not a pytest test class

    previous_time: datetime = Field(description="The frozen_time before this advance.")
    frozen_time: datetime
    billing_runs: int = Field(description="Billing runs made, one per moment something fell due.")
    invoices_created: int
    finalized: int
    errors: int = Field(description="Subscriptions whose billing failed (recorded as billing errors).")


class TestClockAdvancedOut(TestClockOut):
    advance: TestClockAdvanceSummaryOut


class TestClockDeletedOut(Schema):
    __test__ = False  # not a pytest test class

    id: str
    object: str = "test_clock"
    livemode: bool
    deleted: bool = True

    @staticmethod
    def resolve_id(test_clock: TestClock) -> str:
        return test_clock.public_id


class BillingSettingsOut(Schema):
    object: str = "billing_settings"
    draft_grace_period: int = Field(
        description="Seconds an invoice made by the billing run stays a draft (0: finalized at once)."
    )
    consolidate_invoices: bool = Field(
        description="Whether the billing run puts a customer's subscriptions due in the same run and "
        "billed in the same currency on one invoice."
    )


class BillingSettingsIn(InputSchema):
    draft_grace_period: int | None = Field(
        default=None, description="Seconds, 0 to 7776000 (90 days); omitted: unchanged."
    )
    consolidate_invoices: bool | None = Field(default=None, description="Omitted: unchanged.")
