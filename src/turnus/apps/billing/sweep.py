"""The billing run: find the subscriptions that fell due, invoice each due period exactly once.

Which subscriptions are due. Billing keeps its own ``BillingSchedule`` row per subscription
(``next_billing_at``, indexed); subscriptions know nothing of billing. A subscription is due when

- its schedule's ``next_billing_at`` has passed (the next period begins or ends, or a retry after an error),
- it has no schedule yet (new since the last run), or
- its lifecycle fell due (``Subscription.next_event_at`` passed: a trial ended, a pause or a change took
  effect) after the run last looked at it.

After billing a subscription the run sets ``next_billing_at`` to the earlier of its next lifecycle event
and the end of its current period. Each query is indexed, so an idle run reads nothing but due rows.

Exactly once. Subscriptions are taken in batches by primary key, in one transaction per batch
(on PostgreSQL locked with ``FOR UPDATE SKIP LOCKED``, so any number of workers share the work); each
subscription is billed in its own savepoint: an error rolls back only that subscription's work and is
recorded as a ``BillingError``. The unique constraint on (subscription, period, kind) and
``NothingToInvoice`` make a repeated run a no-op; a crash loses the open batch whole, never half of it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal

from django.db import connection, transaction
from django.db.models import F, QuerySet

from turnus.apps.billing import services
from turnus.apps.billing.models import (
    BillingError,
    BillingSchedule,
    BillingSettings,
    DocumentKind,
    Invoice,
    InvoicedCharge,
    InvoiceStatus,
)
from turnus.apps.catalog.models import BillingTiming
from turnus.apps.subscriptions import services as subscriptions
from turnus.apps.subscriptions.models import Subscription, SubscriptionCharge
from turnus.apps.tenants.models import Tenant
from turnus.core.clock import FrozenClock, use_clock
from turnus.core.errors import TurnusError
from turnus.core.ids import new_id
from turnus.core.scope import Actor, ActorKind, Scope
from turnus.engine.lifecycle import ItemKind
from turnus.engine.periods import Period

logger = logging.getLogger(__name__)

BATCH = 50
RETRY_AFTER = timedelta(hours=1)
SWEEP_ACTOR = Actor(ActorKind.SYSTEM, "billing_run")


@dataclass
class SweepSummary:
    subscriptions: int = 0
    invoices_created: int = 0
    finalized: int = 0
    amounts: dict[str, Decimal] = field(default_factory=dict)
    skipped: int = 0
    errors: list[tuple[str, str]] = field(default_factory=list)


def _of_tenant(queryset: QuerySet[Subscription], tenant: Tenant | None) -> QuerySet[Subscription]:
    return queryset if tenant is None else queryset.filter(tenant_id=tenant.pk)


def due_subscriptions(
    now: datetime, *, tenant: Tenant | None = None, limit: int, after: int = 0
) -> list[Subscription]:
    """Up to ``limit`` due subscriptions with a primary key above ``after``, in key order.

    On PostgreSQL the rows are locked (``FOR UPDATE SKIP LOCKED``): call inside a transaction."""
    base = _of_tenant(Subscription.objects.filter(pk__gt=after), tenant).order_by("pk")
    if connection.features.has_select_for_update_skip_locked:
        base = base.select_for_update(skip_locked=True, of=("self",))
    scheduled = base.filter(
        pk__in=BillingSchedule.objects.filter(next_billing_at__lte=now).values("subscription_id")
    )
    unscheduled = base.filter(billing_schedule__isnull=True)
    lifecycle = base.filter(next_event_at__lte=now).exclude(
        billing_schedule__checked_at__gte=F("next_event_at"), billing_schedule__next_billing_at__gt=now
    )
    found: dict[int, Subscription] = {}
    for query in (scheduled, unscheduled, lifecycle):
        for subscription in query[:limit]:
            found.setdefault(subscription.pk, subscription)
    return [found[pk] for pk in sorted(found)[:limit]]


def _due_periods(subscription: Subscription, now: datetime) -> list[Period]:
    """Every period of ``subscription`` an invoice is due for by ``now``, oldest first."""
    in_arrears = subscription.plan_version.billing_timing == BillingTiming.IN_ARREARS
    invoiced = InvoicedCharge.objects.filter(charge__subscription=subscription).values("charge_id")
    recurring = SubscriptionCharge.objects.filter(subscription=subscription, kind=ItemKind.RECURRING).exclude(
        pk__in=invoiced
    )
    recurring = (
        recurring.filter(period_end__lte=now) if in_arrears else recurring.filter(period_start__lte=now)
    )
    periods = {Period(start, end) for start, end in recurring.values_list("period_start", "period_end")}
    with suppress(services.NothingToInvoice):
        periods.add(services.billing_period(subscription))
    return sorted(periods, key=lambda period: (period.start, period.end))


def _grace_periods(tenant: Tenant | None) -> dict[int, timedelta]:
    settings = BillingSettings.objects.filter(draft_grace_period__gt=timedelta(0))
    if tenant is not None:
        settings = settings.filter(tenant_id=tenant.pk)
    return dict(settings.values_list("tenant_id", "draft_grace_period"))


def _schedule(subscription: Subscription, now: datetime, next_billing_at: datetime | None) -> None:
    BillingSchedule.objects.update_or_create(
        subscription=subscription,
        defaults={
            "tenant_id": subscription.tenant_id,
            "livemode": subscription.livemode,
            "next_billing_at": next_billing_at,
            "checked_at": now,
        },
    )


def _next_billing_at(subscription: Subscription, now: datetime) -> datetime | None:
    upcoming = [
        moment
        for moment in (subscription.next_event_at, subscription.current_period_end)
        if moment is not None and moment > now
    ]
    return min(upcoming, default=None)


def _bill(scope: Scope, subscription: Subscription, now: datetime, finalize_at_once: bool) -> list[Invoice]:
    public_id = subscription.public_id
    if subscription.next_event_at is not None and subscription.next_event_at <= now:
        subscriptions.advance_subscription(scope, public_id)
    subscription = subscriptions.get_subscription(scope, public_id, lock=True)
    created = []
    for period in _due_periods(subscription, now):
        try:
            drafted = services.create_draft(scope, public_id, period)
        except services.NothingToInvoice:
            continue
        if drafted.created:
            created.append(
                services.finalize(scope, drafted.invoice.public_id) if finalize_at_once else drafted.invoice
            )
    _schedule(subscription, now, _next_billing_at(subscription, now))
    return created


def _record_failure(scope: Scope, subscription: Subscription, error: Exception, now: datetime) -> str:
    if isinstance(error, TurnusError):
        code, reason = error.code, error.message
    else:
        code, reason = type(error).__name__, str(error)
        logger.exception("billing subscription %s failed", subscription.public_id)
    BillingError.objects.create(
        public_id=new_id("berr", at=now),
        tenant_id=subscription.tenant_id,
        livemode=subscription.livemode,
        created_at=now,
        subscription=subscription,
        code=code[:60],
        reason=reason,
    )
    _schedule(subscription, now, now + RETRY_AFTER)
    return f"{code}: {reason}"


def _bill_one(
    subscription: Subscription, now: datetime, graces: dict[int, timedelta], summary: SweepSummary
) -> None:
    scope = Scope(subscription.tenant_id, subscription.livemode, SWEEP_ACTOR)
    summary.subscriptions += 1
    try:
        with transaction.atomic():
            created = _bill(scope, subscription, now, subscription.tenant_id not in graces)
    except Exception as error:
        summary.errors.append((subscription.public_id, _record_failure(scope, subscription, error, now)))
        return
    if not created:
        summary.skipped += 1
    for invoice in created:
        summary.invoices_created += 1
        summary.finalized += invoice.status == InvoiceStatus.FINALIZED
        summary.amounts[invoice.currency] = summary.amounts.get(invoice.currency, Decimal(0)) + Decimal(
            invoice.amount_due
        )


def _finalize_after_grace(now: datetime, graces: dict[int, timedelta], summary: SweepSummary) -> None:
    """Finalize the drafts of subscriptions whose tenant's grace period has passed."""
    for tenant_id, grace in graces.items():
        drafts = Invoice.objects.filter(
            tenant_id=tenant_id,
            kind=DocumentKind.INVOICE,
            status=InvoiceStatus.DRAFT,
            subscription__isnull=False,
            created_at__lte=now - grace,
        ).order_by("pk")
        for public_id, livemode in drafts.values_list("public_id", "livemode"):
            try:
                services.finalize(Scope(tenant_id, livemode, SWEEP_ACTOR), public_id)
            except services.InvoiceState:
                continue
            summary.finalized += 1


def run_sweep(
    now: datetime,
    *,
    tenant: Tenant | None = None,
    batch: int = BATCH,
    progress: Callable[[SweepSummary], None] | None = None,
) -> SweepSummary:
    """Bill every subscription due at ``now`` (the clock stands at ``now`` for the whole run)."""
    summary = SweepSummary()
    with use_clock(FrozenClock(now)):
        subscriptions.run_due_migrations(now, tenant_id=tenant.pk if tenant is not None else None)
        graces = _grace_periods(tenant)
        after = 0
        while True:
            with transaction.atomic():
                due = due_subscriptions(now, tenant=tenant, limit=batch, after=after)
                for subscription in due:
                    _bill_one(subscription, now, graces, summary)
            if progress is not None:
                progress(summary)
            if len(due) < batch:
                break
            after = due[-1].pk
        _finalize_after_grace(now, graces, summary)
    return summary
