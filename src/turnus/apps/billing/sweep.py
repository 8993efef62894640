"""The billing run: find the subscriptions that fell due, invoice each due period exactly once.

Which subscriptions are due. Billing keeps its own ``BillingSchedule`` row per subscription
(``next_billing_at``, indexed); subscriptions know nothing of billing. A subscription is due when

- its schedule's ``next_billing_at`` has passed (the next period begins or ends, a retry after an error, or
  a change through a call, which moves it to the change's time: ``receivers``),
- it has no schedule yet (new since the last run), or
- its lifecycle fell due (``Subscription.next_event_at`` passed: a trial ended, a pause or a change took
  effect) after the run last looked at it.

After billing a subscription the run sets ``next_billing_at`` to the earlier of its next lifecycle event
and the end of its current period (billed in arrears, also the original end of a period a pause
interrupted). Each query is indexed, so an idle run reads nothing but due rows.

Exactly once. Subscriptions are taken in batches by primary key, in one transaction per batch
(on PostgreSQL locked with ``FOR UPDATE SKIP LOCKED``, so any number of workers share the work). The
batched path (``batch``) bills what it can of a batch in one savepoint; every other subscription is billed
in its own savepoint: an error rolls back only that subscription's work and is recorded as a
``BillingError``. The unique ``BilledPeriod`` row per (subscription, period, kind) and
``NothingToInvoice`` make a repeated run a no-op (a period with nothing to bill is settled,
``services.settle_period``, so it is not taken up again); a crash loses the open batch whole, never half
of it.

Consolidated invoicing. Tenants with ``BillingSettings.consolidate_invoices`` are billed by customer
instead (``due_customers``): batches of customers with a due subscription, each customer's row locked
``FOR UPDATE SKIP LOCKED`` on PostgreSQL, then all of that customer's due subscriptions locked (waiting,
not skipping: only the holder of the customer takes them) and billed together in one savepoint. Each
subscription's latest due period goes on one invoice per currency and VAT pricing
(``services.create_consolidated_draft``); earlier due periods of a run that catches up get their own
invoices first. A request that holds a customer's row makes the run skip that customer whole until the
next run, so two workers never split one customer's due subscriptions. The subscription-wise path skips
these tenants; should the setting change while a run is under way, a customer's subscriptions may still
land on separate invoices, never on two for one period.
"""

from __future__ import annotations

import logging
from bisect import bisect_right
from collections.abc import Callable, Collection
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.db import connection, transaction
from django.db.models import Exists, OuterRef, Q, QuerySet

from turnus.apps.billing import batch as batch_path
from turnus.apps.billing import services
from turnus.apps.billing.models import (
    BilledPeriod,
    BillingError,
    BillingSchedule,
    BillingSettings,
    DocumentKind,
    Invoice,
    InvoicedCharge,
    InvoiceStatus,
)
from turnus.apps.catalog.models import BillingTiming
from turnus.apps.customers.models import Customer, TestClock
from turnus.apps.subscriptions import services as subscriptions
from turnus.apps.subscriptions.models import Subscription, SubscriptionCharge
from turnus.apps.tenants.models import Tenant
from turnus.core.clock import FrozenClock, SimulatedClock, use_clock
from turnus.core.errors import TurnusError
from turnus.core.ids import new_id
from turnus.core.scope import Actor, ActorKind, Scope
from turnus.engine.lifecycle import PAUSE_CARRIED, ItemKind
from turnus.engine.periods import Period

logger = logging.getLogger(__name__)

BATCH = 500
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


def _on_clock(queryset: QuerySet[Any], test_clock: TestClock | None) -> QuerySet[Any]:
    """Rows of the customers of ``test_clock``; without one, of the customers on no test clock."""
    if test_clock is None:
        return queryset.filter(customer__test_clock__isnull=True)
    return queryset.filter(customer__test_clock=test_clock.pk)


def due_subscriptions(
    now: datetime,
    *,
    tenant: Tenant | None = None,
    limit: int,
    after: int = 0,
    test_clock: TestClock | None = None,
    exclude_tenants: Collection[int] = (),
    unscheduled: Unscheduled | None = None,
) -> list[Subscription]:
    """Up to ``limit`` due subscriptions with a primary key above ``after``, in key order (none of the
    tenants ``exclude_tenants``: those consolidate invoices, see ``due_customers``).

    Without ``test_clock`` only customers on no test clock count (real time never reaches a test clock's
    customers); with one, only its customers. ``unscheduled``: the subscriptions without a billing
    schedule, if the caller looked them up already (``unscheduled_subscriptions``, once per run: finding
    them walks every subscription above ``after``); otherwise they are looked up here. On PostgreSQL the
    rows are locked (``FOR UPDATE SKIP LOCKED``): call inside a transaction."""
    base = _due_base(Subscription.objects.filter(pk__gt=after), tenant, test_clock, exclude_tenants)
    if connection.features.has_select_for_update_skip_locked:
        base = base.select_for_update(skip_locked=True, of=("self",))
    queries = list(_due(base, now, after=after, unscheduled=unscheduled is None))
    found: set[int] = set()
    cap: int | None = None
    if unscheduled is not None:
        without = ~Exists(_schedules(after))
        queries.append(base.filter(pk__gt=unscheduled.horizon).filter(without))  # made since the list
        found, cap = _listed(base.filter(without), unscheduled.keys, after, limit)
    for query in queries:
        found.update(query.values_list("pk", flat=True)[:limit])
    chosen = sorted(pk for pk in found if cap is None or pk <= cap)[:limit]
    # The rows are locked by now; read them whole once, with what billing them reads.
    return list(
        Subscription.objects.filter(pk__any=chosen).select_related("customer", "coupon").order_by("pk")
    )


def _listed(
    base: QuerySet[Subscription], keys: list[int], after: int, limit: int
) -> tuple[set[int], int | None]:
    """Up to ``limit`` (or a little more) of the listed ``keys`` above ``after`` that ``base`` still takes
    (locked; another worker may hold or have billed some), a window of ``limit`` keys at a time, and the
    last key offered if the list goes on beyond it (the batch must not pass listed keys not offered)."""
    found: set[int] = set()
    start = bisect_right(keys, after)
    while start < len(keys) and len(found) < limit:
        window = keys[start : start + limit]
        found.update(base.filter(pk__any=window).values_list("pk", flat=True)[:limit])
        start += len(window)
    return found, (keys[start - 1] if start < len(keys) else None)


@dataclass(frozen=True)
class Unscheduled:
    """The subscriptions without a billing schedule when a run began (keys, ascending) and the highest
    subscription key then: those made later are found by key (``due_subscriptions``)."""

    keys: list[int]
    horizon: int


def unscheduled_subscriptions(
    *,
    tenant: Tenant | None = None,
    test_clock: TestClock | None = None,
    exclude_tenants: Collection[int] = (),
) -> Unscheduled:
    """The subscriptions that have no billing schedule yet: new ones, those made before billing knew
    them, or by a path that does not announce its changes. Two queries for a whole run."""
    horizon = Subscription.objects.order_by("-pk").values_list("pk", flat=True).first() or 0
    base = _due_base(Subscription.objects.filter(pk__lte=horizon), tenant, test_clock, exclude_tenants)
    return Unscheduled(list(base.filter(~Exists(_schedules(0))).values_list("pk", flat=True)), horizon)


def _due_base(
    base: QuerySet[Subscription],
    tenant: Tenant | None,
    test_clock: TestClock | None,
    exclude_tenants: Collection[int],
) -> QuerySet[Subscription]:
    base = _on_clock(_of_tenant(base, tenant), test_clock).order_by("pk")
    if exclude_tenants:
        base = base.exclude(tenant_id__in=exclude_tenants)
    return base


def count_due(now: datetime, *, tenant: Tenant | None = None, test_clock: TestClock | None = None) -> int:
    """How many subscriptions a run at ``now`` finds due (for a progress bar; nothing is locked)."""
    base = _on_clock(_of_tenant(Subscription.objects.all(), tenant), test_clock)
    due: set[int] = set()
    for query in _due(base, now):
        due.update(query.values_list("pk", flat=True))
    return len(due)


def _schedules(after: int) -> QuerySet[BillingSchedule]:
    """The billing schedule of the outer subscription (``OuterRef``), of a subscription above ``after``
    (the bound lets PostgreSQL start its walk through the schedules there, not at the first)."""
    schedules = BillingSchedule.objects.filter(subscription_id=OuterRef("pk"))
    return schedules.filter(subscription_id__gt=after) if after else schedules


def _due(
    base: QuerySet[Subscription], now: datetime, *, after: int = 0, unscheduled: bool = True
) -> tuple[QuerySet[Subscription], ...]:
    """The due subscriptions of ``base`` (whose keys lie above ``after``) as indexed queries: scheduled,
    lifecycle due and (with ``unscheduled``) without a schedule."""
    schedules = _schedules(after)
    scheduled = base.filter(Exists(schedules.filter(next_billing_at__lte=now)))
    lifecycle = base.filter(next_event_at__lte=now).exclude(
        Exists(schedules.filter(checked_at__gte=OuterRef("next_event_at"), next_billing_at__gt=now))
    )
    if not unscheduled:
        return scheduled, lifecycle
    return scheduled, lifecycle, base.filter(~Exists(schedules))


def due_customers(
    now: datetime,
    *,
    tenants: Collection[int],
    limit: int,
    after: int = 0,
    test_clock: TestClock | None = None,
) -> tuple[list[int], list[int]]:
    """For consolidated invoicing: up to ``limit`` customers of ``tenants`` with a due subscription and a
    primary key above ``after``, in key order, and those of them this run holds.

    On PostgreSQL a held customer's row is locked (``FOR UPDATE SKIP LOCKED``): a customer is billed by
    one worker at a time, which then takes all of the customer's due subscriptions (``_due_of_customer``),
    so concurrent workers never split them. Call inside a transaction."""
    base = _on_clock(Subscription.objects.filter(tenant_id__in=tenants, customer_id__gt=after), test_clock)
    found: set[int] = set()
    for query in _due(base, now):
        found.update(query.order_by("customer_id").values_list("customer_id", flat=True).distinct()[:limit])
    candidates = sorted(found)[:limit]
    if not candidates or not connection.features.has_select_for_update_skip_locked:
        return candidates, candidates
    held = (
        Customer.objects.filter(pk__in=candidates)
        .select_for_update(skip_locked=True)
        .order_by("pk")
        .values_list("pk", flat=True)
    )
    return candidates, list(held)


def _due_of_customer(now: datetime, customer_id: int) -> list[Subscription]:
    """The due subscriptions of a customer the run holds, locked (waiting for a request that holds one)."""
    base = Subscription.objects.filter(customer_id=customer_id).order_by("pk")
    if connection.features.has_select_for_update:
        base = base.select_for_update(of=("self",))
    found: dict[int, Subscription] = {}
    for query in _due(base, now):
        for subscription in query:
            found.setdefault(subscription.pk, subscription)
    return [found[pk] for pk in sorted(found)]


def _unbilled_periods(subscription: Subscription, in_arrears: bool) -> QuerySet[SubscriptionCharge]:
    """The not yet invoiced charges that name a billing period of ``subscription``: its ``recurring``
    charges and, billed in arrears, the charges of the remainders a pause carried over."""
    invoiced = InvoicedCharge.objects.filter(charge__subscription=subscription).values("charge_id")
    if in_arrears:
        return services.billing_charges(subscription).exclude(pk__in=invoiced)
    return SubscriptionCharge.objects.filter(subscription=subscription, kind=ItemKind.RECURRING).exclude(
        pk__in=invoiced
    )


def _next_billing_at(subscription: Subscription, now: datetime) -> datetime | None:
    """When the run next looks at ``subscription`` (``batch.next_billing_at``); billed in arrears also at
    the original end of a period a pause interrupted (the end of the part it carried over,
    ``services.carry_over``), which the subscription, paused or in the remainder, no longer runs in."""
    upcoming = batch_path.next_billing_at(subscription, now)
    if subscription.plan_version.billing_timing != BillingTiming.IN_ARREARS:
        return upcoming
    invoiced = InvoicedCharge.objects.filter(charge__subscription=subscription).values("charge_id")
    interrupted = (
        SubscriptionCharge.objects.filter(
            subscription=subscription, description=PAUSE_CARRIED, period_end__gt=now
        )
        .exclude(pk__in=invoiced)
        .order_by("period_end")
        .values_list("period_end", flat=True)
        .first()
    )
    return min((moment for moment in (upcoming, interrupted) if moment is not None), default=None)


def _due_periods(scope: Scope, subscription: Subscription, now: datetime) -> list[Period]:
    """Every period of ``subscription`` an invoice is due for by ``now``, oldest first."""
    in_arrears = subscription.plan_version.billing_timing == BillingTiming.IN_ARREARS
    if in_arrears:
        services.carry_over(scope, subscription)
    recurring = _unbilled_periods(subscription, in_arrears)
    if in_arrears:
        # A period is billed once it is over: at its end, or when the subscription ended inside it.
        over = Q(period_end__lte=now)
        if subscription.ended_at is not None and subscription.ended_at <= now:
            over |= Q(period_start__lt=subscription.ended_at)
        recurring = recurring.filter(over)
    else:
        recurring = recurring.filter(period_start__lte=now)
    periods = {Period(start, end) for start, end in recurring.values_list("period_start", "period_end")}
    with suppress(services.NothingToInvoice):
        periods.add(services.billing_period(subscription))
    with suppress(services.NothingToInvoice):
        periods.add(services.closing_period(subscription))
    return sorted(periods, key=lambda period: (period.start, period.end))


def _consolidating_tenants(tenant: Tenant | None) -> set[int]:
    settings = BillingSettings.objects.filter(consolidate_invoices=True)
    if tenant is not None:
        settings = settings.filter(tenant_id=tenant.pk)
    return set(settings.values_list("tenant_id", flat=True))


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


def _caught_up(scope: Scope, subscription: Subscription, now: datetime) -> tuple[Subscription, list[Period]]:
    """The locked subscription with its lifecycle advanced to ``now``, and its due periods."""
    public_id = subscription.public_id
    if subscription.next_event_at is not None and subscription.next_event_at <= now:
        subscriptions.advance_subscription(scope, public_id)
    subscription = subscriptions.get_subscription(scope, public_id, lock=True)
    return subscription, _due_periods(scope, subscription, now)


def _issued(scope: Scope, invoice: Invoice, finalize_at_once: bool) -> Invoice:
    return services.finalize(scope, invoice.public_id) if finalize_at_once else invoice


def _bill(scope: Scope, subscription: Subscription, now: datetime, finalize_at_once: bool) -> list[Invoice]:
    subscription, periods = _caught_up(scope, subscription, now)
    created = []
    for period in periods:
        try:
            drafted = services.create_draft(scope, subscription.public_id, period)
        except services.NothingToInvoice:
            services.settle_period(subscription, period)
            continue
        if drafted.created:
            created.append(_issued(scope, drafted.invoice, finalize_at_once))
    _schedule(subscription, now, _next_billing_at(subscription, now))
    return created


def _bill_customer(
    scope: Scope, due: list[Subscription], now: datetime, finalize_at_once: bool
) -> list[Invoice]:
    """Bill a customer's due subscriptions with consolidated invoicing: each subscription's latest due
    period goes on one invoice per currency (and pricing with or without VAT); the periods before it
    (a run that catches up) get invoices of their own first, oldest first, as without consolidation."""
    created: list[Invoice] = []
    latest: dict[tuple[str, bool], list[tuple[str, Period]]] = {}
    held = []
    for subscription in due:
        subscription, periods = _caught_up(scope, subscription, now)
        held.append(subscription)
        for period in periods[:-1]:
            try:
                drafted = services.create_draft(scope, subscription.public_id, period)
            except services.NothingToInvoice:
                services.settle_period(subscription, period)
                continue
            if drafted.created:
                created.append(_issued(scope, drafted.invoice, finalize_at_once))
        if periods:
            version = subscription.plan_version
            key = (version.currency, version.prices_include_tax)
            latest.setdefault(key, []).append((subscription.public_id, periods[-1]))
    for items in latest.values():
        for drafted in services.create_consolidated_draft(scope, items):
            created.append(_issued(scope, drafted.invoice, finalize_at_once))
    for subscription in held:
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
    _count(created, summary)


def _count(created: list[Invoice], summary: SweepSummary) -> None:
    for invoice in created:
        summary.invoices_created += 1
        summary.finalized += invoice.status != InvoiceStatus.DRAFT  # paid at once when credit covers it
        summary.amounts[invoice.currency] = summary.amounts.get(invoice.currency, Decimal(0)) + Decimal(
            invoice.amount_due
        )


def _bill_customer_one(
    customer_id: int, now: datetime, graces: dict[int, timedelta], summary: SweepSummary
) -> None:
    """Bill one held customer's due subscriptions together, in one savepoint; on an error each of them
    is recorded as a ``BillingError`` and retried later."""
    due: list[Subscription] = []
    try:
        with transaction.atomic():
            due = _due_of_customer(now, customer_id)
            if not due:
                return
            scope = Scope(due[0].tenant_id, due[0].livemode, SWEEP_ACTOR)
            created = _bill_customer(scope, due, now, due[0].tenant_id not in graces)
    except Exception as error:
        if not due:
            raise
        summary.subscriptions += len(due)
        for subscription in due:
            scope = Scope(subscription.tenant_id, subscription.livemode, SWEEP_ACTOR)
            summary.errors.append((subscription.public_id, _record_failure(scope, subscription, error, now)))
        return
    summary.subscriptions += len(due)
    billed = set(
        BilledPeriod.objects.filter(invoice__in=[invoice.pk for invoice in created]).values_list(
            "subscription_id", flat=True
        )
    )
    summary.skipped += sum(1 for subscription in due if subscription.pk not in billed)
    _count(created, summary)


def _finalize_after_grace(
    now: datetime, graces: dict[int, timedelta], summary: SweepSummary, test_clock: TestClock | None
) -> None:
    """Finalize the drafts (of subscriptions, and standalone ones of one-off charges) whose tenant's grace
    period has passed."""
    for tenant_id, grace in graces.items():
        drafts = (
            _on_clock(Invoice.objects.all(), test_clock)
            .filter(
                tenant_id=tenant_id,
                kind=DocumentKind.INVOICE,
                status=InvoiceStatus.DRAFT,
                created_at__lte=now - grace,
            )
            .order_by("pk")
        )
        for public_id, livemode in drafts.values_list("public_id", "livemode"):
            try:
                services.finalize(Scope(tenant_id, livemode, SWEEP_ACTOR), public_id)
            except services.InvoiceState:
                continue
            summary.finalized += 1


def _bill_customers(
    now: datetime,
    tenants: set[int],
    batch: int,
    graces: dict[int, timedelta],
    summary: SweepSummary,
    progress: Callable[[SweepSummary], None] | None,
    test_clock: TestClock | None,
) -> None:
    """The run over the tenants that consolidate invoices: by customer, in batches."""
    after = 0
    while True:
        with transaction.atomic():
            candidates, held = due_customers(
                now, tenants=tenants, limit=batch, after=after, test_clock=test_clock
            )
            for customer_id in held:
                _bill_customer_one(customer_id, now, graces, summary)
        if progress is not None:
            progress(summary)
        if len(candidates) < batch:
            break
        after = candidates[-1]


def run_sweep(
    now: datetime,
    *,
    tenant: Tenant | None = None,
    batch: int = BATCH,
    progress: Callable[[SweepSummary], None] | None = None,
    test_clock: TestClock | None = None,
) -> SweepSummary:
    """Bill every subscription due at ``now`` (the clock stands at ``now`` for the whole run).

    Without ``test_clock`` the customers on test clocks are left alone; with one (its tenant's run at its
    time, see ``turnus.apps.billing.test_clocks``) only its customers are billed, and plan migrations,
    which are tenant-wide and follow the real time, are not carried out."""
    summary = SweepSummary()
    if test_clock is not None:
        tenant = Tenant(pk=test_clock.tenant_id)
    with use_clock(FrozenClock(now) if test_clock is None else SimulatedClock(now)):
        if test_clock is None:
            subscriptions.run_due_migrations(now, tenant_id=tenant.pk if tenant is not None else None)
        graces = _grace_periods(tenant)
        consolidating = _consolidating_tenants(tenant)
        unscheduled = unscheduled_subscriptions(
            tenant=tenant, test_clock=test_clock, exclude_tenants=consolidating
        )
        after = 0
        while True:
            with transaction.atomic():
                due = due_subscriptions(
                    now,
                    tenant=tenant,
                    limit=batch,
                    after=after,
                    test_clock=test_clock,
                    exclude_tenants=consolidating,
                    unscheduled=unscheduled,
                )
                done = batch_path.bill_batch(due, now, graces, SWEEP_ACTOR)
                summary.subscriptions += done.billed
                summary.skipped += done.skipped
                _count(done.invoices, summary)
                for subscription in done.rest:
                    _bill_one(subscription, now, graces, summary)
            if progress is not None:
                progress(summary)
            if len(due) < batch:
                break
            after = due[-1].pk
        if consolidating:
            _bill_customers(now, consolidating, batch, graces, summary, progress, test_clock)
        _finalize_after_grace(now, graces, summary, test_clock)
    return summary
