"""One-off charges of a customer (Stripe's invoice items): created pending, billed exactly once by the
customer's next invoice in their currency (see ``charge_lines``), or at once on a standalone invoice."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.db import transaction
from django.db.models import QuerySet

from turnus.apps.billing import charge_lines, services
from turnus.apps.billing.models import (
    BillingSettings,
    ChargeStatus,
    CustomerCharge,
    DocumentKind,
    Invoice,
    InvoiceStatus,
)
from turnus.apps.customers.models import Customer
from turnus.apps.customers.services import get_customer
from turnus.apps.subscriptions import services as subscriptions
from turnus.apps.subscriptions.models import Subscription
from turnus.apps.tenants.models import Tenant
from turnus.core import clock, validation
from turnus.core.audit import record
from turnus.core.errors import Conflict, NotFound, ValidationFailed
from turnus.core.ids import new_id
from turnus.core.scope import Scope
from turnus.engine.invoice import check_en16931_totals, compose_invoice
from turnus.engine.lifecycle import TERMINAL_STATUSES
from turnus.engine.money import MAX_UNIT_PRICE_DECIMALS, decimal_places
from turnus.engine.periods import local_date
from turnus.engine.tax import TaxCategory

MAX_QUANTITY = 1_000_000
MAX_UNIT_AMOUNT = Decimal(10) ** 12


class ChargeState(Conflict):
    """The charge is already invoiced or void, so it can no longer be voided. Credit its invoice instead."""

    code = "charge_state"


@dataclass(frozen=True)
class NewCharge:
    description: str
    amount: Decimal
    quantity: int = 1
    currency: str | None = None
    prices_include_tax: bool = False
    tax_category: str | None = None
    subscription: str | None = None
    invoice_now: bool = False


def charge_snapshot(charge: CustomerCharge) -> dict[str, Any]:
    return {
        "id": charge.public_id,
        "status": charge.status,
        "description": charge.description,
        "amount": format(Decimal(charge.unit_amount), "f"),
        "quantity": charge.quantity,
        "currency": charge.currency,
        "invoice": charge.invoice.public_id if charge.invoice_id and charge.invoice else None,
    }


def charges_of(scope: Scope) -> QuerySet[CustomerCharge]:
    return CustomerCharge.objects.filter(tenant_id=scope.tenant_id, livemode=scope.livemode).select_related(
        "customer", "subscription", "invoice"
    )


def get_charge(scope: Scope, public_id: str, *, lock: bool = False) -> CustomerCharge:
    queryset = charges_of(scope)
    if lock:
        queryset = queryset.select_for_update(of=("self",))
    found = queryset.filter(public_id=public_id).first()
    if found is None:
        raise NotFound(f"no one-off charge {public_id}", field="id")
    return found


def _subscription(scope: Scope, customer: Customer, public_id: str, currency: str) -> Subscription:
    try:
        subscription = subscriptions.get_subscription(scope, public_id)
    except NotFound:
        raise NotFound(f"no subscription {public_id}", field="subscription") from None
    if subscription.customer_id != customer.pk:
        raise ValidationFailed(f"subscription {public_id} belongs to another customer", field="subscription")
    if subscription.status in TERMINAL_STATUSES:
        raise ValidationFailed(
            f"subscription {public_id} is {subscription.status} and will not be invoiced again",
            field="subscription",
        )
    if subscription.plan_version.currency != currency:
        raise ValidationFailed(
            f"subscription {public_id} is billed in {subscription.plan_version.currency}, not {currency}",
            field="currency",
        )
    return subscription


def _clean(scope: Scope, customer: Customer, new: NewCharge) -> dict[str, Any]:
    description = new.description.strip()
    if not description or len(description) > 300:
        raise ValidationFailed("describe the charge in 1 to 300 characters", field="description")
    if not new.amount.is_finite() or new.amount <= 0:
        raise ValidationFailed("the amount must be above 0", field="amount")
    if decimal_places(new.amount) > MAX_UNIT_PRICE_DECIMALS or new.amount >= MAX_UNIT_AMOUNT:
        raise ValidationFailed(
            f"the amount has at most {MAX_UNIT_PRICE_DECIMALS} decimal places and stays below 10^12",
            field="amount",
        )
    if not 1 <= new.quantity <= MAX_QUANTITY:
        raise ValidationFailed(f"quantity must be a whole number from 1 to {MAX_QUANTITY}", field="quantity")
    if new.currency is None:
        currency = Tenant.objects.values_list("default_currency", flat=True).get(pk=scope.tenant_id)
    else:
        currency = validation.currency(new.currency)
    category = new.tax_category or TaxCategory.STANDARD.value
    if category not in {item.value for item in TaxCategory}:
        raise ValidationFailed(
            "tax_category must be one of " + ", ".join(item.value for item in TaxCategory),
            field="tax_category",
        )
    subscription = None
    if new.subscription is not None:
        if new.invoice_now:
            raise ValidationFailed(
                "a charge billed with a subscription's next invoice cannot be invoiced now as well",
                field="invoice_now",
            )
        subscription = _subscription(scope, customer, new.subscription, currency)
    return {
        "description": description,
        "unit_amount": new.amount,
        "quantity": new.quantity,
        "currency": currency,
        "prices_include_tax": new.prices_include_tax,
        "tax_category": category,
        "subscription": subscription,
    }


@transaction.atomic
def create_charge(scope: Scope, customer_id: str, new: NewCharge) -> CustomerCharge:
    """A pending one-off charge; with ``invoice_now`` billed at once on a standalone invoice."""
    customer = get_customer(scope, customer_id)
    clean = _clean(scope, customer, new)
    now = clock.now()
    charge = CustomerCharge.objects.create(
        public_id=new_id("chg", at=now),
        tenant_id=scope.tenant_id,
        livemode=scope.livemode,
        created_at=now,
        customer=customer,
        status=ChargeStatus.PENDING,
        **clean,
    )
    record(
        scope, "customer_charge.created", "customer_charge", charge.public_id, after=charge_snapshot(charge)
    )
    if new.invoice_now:
        invoice_now(scope, customer, charge)
        charge.refresh_from_db()
    return charge


@transaction.atomic
def void_charge(scope: Scope, public_id: str) -> CustomerCharge:
    """Cancel a pending charge; an invoiced one stays (credit its invoice instead)."""
    charge = get_charge(scope, public_id, lock=True)
    if charge.status != ChargeStatus.PENDING:
        raise ChargeState(f"one-off charge {public_id} is {charge.status}", field="id")
    before = charge_snapshot(charge)
    charge.status, charge.voided_at = ChargeStatus.VOID, clock.now()
    charge.save(update_fields=("status", "voided_at"))
    record(
        scope,
        "customer_charge.voided",
        "customer_charge",
        public_id,
        before=before,
        after=charge_snapshot(charge),
    )
    return charge


def invoice_now(scope: Scope, customer: Customer, charge: CustomerCharge) -> Invoice:
    """A standalone invoice (no subscription) for ``charge`` and the customer's other pending charges in
    its currency that name no subscription; finalized at once unless the tenant keeps drafts a while."""
    tenant = Tenant.objects.get(pk=scope.tenant_id)
    now = clock.now()
    supply_day = local_date(now, customer.timezone or tenant.timezone)
    pending = charge_lines.pending_charges(customer, charge.currency, subscription=None)
    if charge.pk not in {item.pk for item in pending}:
        raise services.NothingToInvoice(f"one-off charge {charge.public_id} is no longer pending", field="id")
    lines = charge_lines.charge_lines(
        pending,
        lambda category: services.tax_decision(tenant, customer, TaxCategory(category), supply_day),
        prices_include_tax=charge.prices_include_tax,
    )
    composed = compose_invoice(charge.currency, lines, prices_include_tax=charge.prices_include_tax)
    broken = check_en16931_totals(composed)
    if broken:
        raise services.InvoiceTotalsBroken(f"the composed invoice breaks {', '.join(broken)}")
    invoice = services._store(
        scope,
        composed,
        customer=customer,
        subscription=None,
        kind=DocumentKind.INVOICE,
        status=InvoiceStatus.DRAFT,
        period=(None, None),
    )
    charge_lines.attach(invoice, pending)
    record(scope, "invoice.created", "invoice", invoice.public_id, after=services.snapshot(invoice))
    grace = BillingSettings.objects.filter(tenant_id=scope.tenant_id).values_list(
        "draft_grace_period", flat=True
    )
    if not next(iter(grace), None):
        invoice = services.finalize(scope, invoice.public_id)
    return invoice
