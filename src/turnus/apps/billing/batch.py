"""The billing run's batched path: many subscriptions billed with a handful of statements.

The run takes due subscriptions in batches (``sweep``). Billing one subscription alone costs some fifty
statements (lifecycle, reads of the period's charges and usage, the invoice, numbering, metering,
audit); a batch does the same work with a few statements per table for all of its subscriptions:

1. Read: the subscriptions with customer, plan and coupon; their pending lifecycle charges, billed
   periods, billing schedules, add-ons, voided events; the customers' pending one-off charges and
   credit balances. The catalogue's locked versions come from its process-wide cache.
2. Compute, in memory, per subscription: the lifecycle advanced to now (the engine), the due billing
   period, and that period's invoice, by the same ``services.collect_lines`` and engine composition as a
   single subscription's (``BatchReads`` answers its questions from the rows read in step 1; metered
   usage comes from one grouped query per usage window, ``metering.queries.aggregate_many``).
3. Write, in one savepoint: a multi-row statement per table for the lifecycle charges, subscriptions,
   invoices, their lines, billed periods, invoiced charges, invoice numbers (one counter update per
   tenant for the whole batch), usage watermarks, schedules and the audit trail with its domain events.

What the batch does not take, it hands back to the caller, which bills those subscriptions one at a time
as before: a lifecycle event other than a renewal (a trial ending, a pause, a change, an end), more than
one due period (a run that catches up), quantity components or add-ons, a plan billed in arrears, a
customer with pending one-off charges or credit in the plan's currency, and anything that raises. Should
the batch's writes fail, the savepoint rolls all of them back and every subscription goes the single
way; either way each period is billed once (the ``BilledPeriod`` rows and the row locks decide).
"""

from __future__ import annotations

import copy
import logging
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.db import transaction
from django.db.models import Exists, OuterRef

from turnus.apps.billing import services
from turnus.apps.billing.models import (
    BilledPeriod,
    BillingSchedule,
    ChargeStatus,
    CustomerBalance,
    CustomerCharge,
    DocumentKind,
    Invoice,
    InvoicedCharge,
    InvoiceStatus,
)
from turnus.apps.billing.services import PeriodReads
from turnus.apps.catalog.models import BillingTiming, ChargeKind, PlanVersion
from turnus.apps.metering.models import EventVoid
from turnus.apps.metering.queries import (
    UsageLine,
    aggregate_many,
    batchable,
    metered_charges,
    usage_for_period,
)
from turnus.apps.metering.services import close_usage_many
from turnus.apps.subscriptions import services as subscriptions
from turnus.apps.subscriptions import state as states
from turnus.apps.subscriptions.models import Subscription, SubscriptionAddOn, SubscriptionCharge
from turnus.apps.tenants.models import Tenant
from turnus.core.audit import Change, record_many
from turnus.core.bulk import insert_objects, insert_rows, update_rows
from turnus.core.scope import Actor, Scope
from turnus.engine import lifecycle
from turnus.engine.invoice import ComposedInvoice, LineInput
from turnus.engine.lifecycle import ItemKind, LifecycleEvent
from turnus.engine.periods import Period, local_date
from turnus.engine.tax import TaxDecision

logger = logging.getLogger(__name__)
#: The lifecycle events a batch carries out itself; any other sends the subscription the single way.
BATCH_EVENTS = frozenset({LifecycleEvent.PERIOD_RENEWED})
#: The subscription columns the lifecycle writes (``subscriptions.state.store``).
LIFECYCLE_COLUMNS = (
    "plan_version",
    "plan",
    "quantity",
    "status",
    "timezone",
    "started_at",
    "as_of",
    "billing_anchor",
    "current_period_start",
    "current_period_end",
    "proration_basis_start",
    "proration_basis_end",
    "segment_start",
    "trial_end",
    "contract_start",
    "contract_end",
    "contract_renewals",
    "cancel_at",
    "cancelled_at",
    "ended_at",
    "pause",
    "scheduled_plan_version",
    "scheduled_quantity",
    "scheduled_requested_at",
    "next_event_at",
)

_ATTRIBUTES = {field.name: field.attname for field in Subscription._meta.concrete_fields}
_LIFECYCLE_ATTRIBUTES = tuple(_ATTRIBUTES[name] for name in LIFECYCLE_COLUMNS)


class NotForBatch(Exception):
    """This subscription is billed the single way (``sweep``)."""


@dataclass
class _Billed:
    """One subscription's work, computed in memory and written with the batch."""

    original: Subscription
    subscription: Subscription
    scope: Scope
    changes: list[Change] = field(default_factory=list)
    lifecycle_written: bool = False
    new_charges: list[SubscriptionCharge] = field(default_factory=list)
    period: Period | None = None
    draft: _Draft | None = None


@dataclass(frozen=True)
class _Draft:
    """The invoice a subscription's period gets, with what it was made of."""

    invoice: Invoice
    composed: ComposedInvoice
    part: services.PeriodLines
    #: The draft as created (its ``invoice.created`` and the ``before`` of its ``invoice.finalized``).
    created: dict[str, Any]


@dataclass(frozen=True)
class _BilledRow:
    period_start: datetime
    period_end: datetime
    usage_end: datetime | None
    void: bool


class BatchReads(PeriodReads):
    """``collect_lines``' questions answered from rows read for a whole batch."""

    def __init__(self) -> None:
        self.pending: dict[int, list[SubscriptionCharge]] = defaultdict(list)
        self.billed: dict[int, list[_BilledRow]] = defaultdict(list)
        self.known_versions: dict[str, PlanVersion] = {}
        self.with_voids: set[int] = set()
        self.usage_values: dict[tuple[int, Period], dict[int, Decimal]] = {}

    def pending_charges(self, subscription: Subscription, period: Period) -> list[SubscriptionCharge]:
        found = [charge for charge in self.pending[subscription.pk] if charge.period_start < period.end]
        return sorted(found, key=lambda charge: (charge.period_start, charge.public_id))

    def versions(self, public_ids: set[str]) -> dict[str, PlanVersion]:
        missing = public_ids - set(self.known_versions)
        if missing:
            self.known_versions.update(super().versions(missing))
        return {key: self.known_versions[key] for key in public_ids if key in self.known_versions}

    def _before(self, subscription: Subscription, period: Period) -> list[_BilledRow]:
        return [
            row for row in self.billed[subscription.pk] if row.period_start < period.start and not row.void
        ]

    def billed_before(self, subscription: Subscription, period: Period) -> int:
        return len(self._before(subscription, period))

    def last_usage_end(self, subscription: Subscription, period: Period) -> datetime | None:
        ends = [row.usage_end for row in self._before(subscription, period) if row.usage_end is not None]
        return max(ends, default=None)

    def period_lines(
        self,
        subscription: Subscription,
        period: Period,
        tax: TaxDecision,
        tax_for: Callable[..., TaxDecision],
    ) -> list[LineInput]:
        # A batch takes only subscriptions without quantity components and add-ons (``_eligible``).
        return []

    def usage(self, scope: Scope, subscription: Subscription, period: Period) -> list[UsageLine]:
        values = self.usage_values.get((subscription.pk, period))
        if values is None:
            return usage_for_period(scope, subscription, period)
        return usage_for_period(scope, subscription, period, aggregated=values)


def _prepare(due: list[Subscription], reads: BatchReads) -> dict[int, Subscription]:
    """Working copies of the due subscriptions (the originals stay as read, for those the batch hands
    back), with their plan versions (plan and product loaded) read once for the batch and shared."""
    version_ids = {subscription.plan_version_id for subscription in due} | {
        subscription.scheduled_plan_version_id
        for subscription in due
        if subscription.scheduled_plan_version_id is not None
    }
    versions = PlanVersion.objects.select_related("plan__product").in_bulk(version_ids)
    reads.known_versions.update({version.public_id: version for version in versions.values()})
    found = {}
    for original in due:
        subscription = copy.copy(original)
        subscription.plan_version = versions[subscription.plan_version_id]
        subscription.plan = subscription.plan_version.plan
        if subscription.scheduled_plan_version_id is not None:
            subscription.scheduled_plan_version = versions[subscription.scheduled_plan_version_id]
        found[subscription.pk] = subscription
    return found


def _read(reads: BatchReads, ids: list[int]) -> None:
    invoiced = InvoicedCharge.objects.filter(charge=OuterRef("pk"))
    for charge in SubscriptionCharge.objects.filter(subscription_id__any=ids).exclude(Exists(invoiced)):
        reads.pending[charge.subscription_id].append(charge)
    rows = BilledPeriod.objects.filter(subscription_id__any=ids, kind=DocumentKind.INVOICE).values_list(
        "subscription_id", "period_start", "period_end", "usage_end", "invoice__status"
    )
    for subscription_id, start, end, usage_end, status in rows:
        reads.billed[subscription_id].append(_BilledRow(start, end, usage_end, status == InvoiceStatus.VOID))
    reads.with_voids = set(
        EventVoid.objects.filter(subscription_id__any=ids).values_list("subscription_id", flat=True)
    )


def _customers_not_for_batch(loaded: Iterable[Subscription]) -> set[tuple[int, str, int | None]]:
    """(customer, currency, subscription) keys that have pending one-off charges or credit: a
    subscription with one of them is billed the single way (the charges and credit go on its invoice)."""
    customers = {subscription.customer_id for subscription in loaded}
    blocked: set[tuple[int, str, int | None]] = set()
    pending = CustomerCharge.objects.filter(customer_id__any=list(customers), status=ChargeStatus.PENDING)
    for customer_id, currency, subscription_id in pending.values_list(
        "customer_id", "currency", "subscription_id"
    ):
        blocked.add((customer_id, currency, subscription_id))
    credit = CustomerBalance.objects.filter(customer_id__any=list(customers), amount__gt=0)
    for customer_id, currency in credit.values_list("customer_id", "currency"):
        blocked.add((customer_id, currency, None))
    return blocked


def _eligible(
    subscription: Subscription, with_addons: set[int], blocked: set[tuple[int, str, int | None]]
) -> None:
    version = subscription.plan_version
    if version.billing_timing == BillingTiming.IN_ARREARS:
        raise NotForBatch("billed in arrears")
    if subscription.component_quantities or subscription.scheduled_component_quantities:
        raise NotForBatch("quantity components")
    if subscription.pk in with_addons:
        raise NotForBatch("add-ons")
    if any(charge.kind == ChargeKind.QUANTITY for charge in version.charges_with_metrics()):
        raise NotForBatch("quantity charges")
    customer, currency = subscription.customer_id, version.currency
    if (customer, currency, None) in blocked or (customer, currency, subscription.pk) in blocked:
        raise NotForBatch("pending one-off charges or credit")


def _advance(work: _Billed, cache: states.TermsCache, now: datetime) -> None:
    """The lifecycle advanced to ``now`` in memory, as ``subscriptions.advance_subscription`` would."""
    subscription = work.subscription
    if subscription.next_event_at is None or subscription.next_event_at > now:
        return
    before = subscriptions.snapshot(subscription)
    caught = lifecycle.advance(states.load(subscription, cache), at=now)
    if set(caught.events) - BATCH_EVENTS:
        raise NotForBatch("lifecycle event")
    states.store(subscription, caught.subscription, cache)
    work.new_charges = subscriptions.charge_rows(work.scope, subscription, caught.items)
    work.changes += subscriptions.transition_changes(subscription, caught, before)
    work.lifecycle_written = True


def _due_period(work: _Billed, reads: BatchReads, now: datetime) -> Period | None:
    """The one billing period due (``None``: none); more than one goes the single way."""
    subscription = work.subscription
    reads.pending[subscription.pk] += work.new_charges
    periods = {
        Period(charge.period_start, charge.period_end)
        for charge in reads.pending[subscription.pk]
        if charge.kind == ItemKind.RECURRING and charge.period_start <= now
    }
    if subscription.ended_at is not None:
        raise NotForBatch("ended")
    if subscription.current_period_start is not None and subscription.current_period_end is not None:
        periods.add(Period(subscription.current_period_start, subscription.current_period_end))
    if len(periods) > 1:
        raise NotForBatch("several periods due")
    if not periods:
        return None
    period = periods.pop()
    billed = any(
        row.period_start == period.start and row.period_end == period.end
        for row in reads.billed[subscription.pk]
    )
    return None if billed else period


def _read_usage(works: list[_Billed], reads: BatchReads) -> None:
    """Metered usage of the batch: one grouped query per (scope, usage window, metrics)."""
    windows: dict[tuple[int, bool, Period], list[Subscription]] = defaultdict(list)
    metrics: dict[tuple[int, bool, Period], dict[int, Any]] = defaultdict(dict)
    for work in works:
        subscription, period = work.subscription, work.period
        if period is None or subscription.pk in reads.with_voids:
            continue
        charges = metered_charges(subscription)
        if not charges or not all(batchable(charge) for charge in charges):
            continue
        window = services.usage_period(subscription, period, False, reads)
        if window is None:
            continue
        key = (subscription.tenant_id, subscription.livemode, window)
        windows[key].append(subscription)
        for charge in charges:
            if charge.metric is not None:
                metrics[key][charge.metric.pk] = charge.metric
    for key, members in windows.items():
        tenant_id, livemode, window = key
        values = aggregate_many(
            tenant_id, livemode, [member.pk for member in members], list(metrics[key].values()), window
        )
        by_member: dict[int, dict[int, Decimal]] = {member.pk: {} for member in members}
        for (owner, metric_id), value in values.items():
            by_member[owner][metric_id] = value
        for member in members:
            reads.usage_values[(member.pk, window)] = by_member[member.pk]


def next_billing_at(subscription: Subscription, now: datetime) -> datetime | None:
    """When the run next looks at ``subscription``: its next lifecycle event or period end."""
    upcoming = [
        moment
        for moment in (subscription.next_event_at, subscription.current_period_end)
        if moment is not None and moment > now
    ]
    return min(upcoming, default=None)


def _compose(work: _Billed, tenants: dict[int, Tenant], reads: BatchReads) -> None:
    subscription, period = work.subscription, work.period
    if period is None:
        return
    tenant = tenants[subscription.tenant_id]
    version = subscription.plan_version
    part = services.collect_lines(tenant, work.scope, subscription, period, reads)
    composed = services.compose_lines(
        version.currency, part.lines, part.discounts, version.prices_include_tax
    )
    if composed is None:
        return
    invoice = services.unsaved_invoice(
        work.scope,
        tenant,
        composed,
        customer=subscription.customer,
        subscription=subscription,
        kind=DocumentKind.INVOICE,
        status=InvoiceStatus.DRAFT,
        period=(period.start, period.end),
        usage=services.usage_bounds(part),
    )
    work.draft = _Draft(invoice, composed, part, services.snapshot(invoice))


def _write(
    works: list[_Billed], tenants: dict[int, Tenant], graces: dict[int, timedelta], now: datetime
) -> None:
    """Every row of the batch, a few statements per table (in the caller's savepoint)."""
    insert_objects([charge for work in works for charge in work.new_charges])
    update_rows(
        Subscription,
        LIFECYCLE_COLUMNS,
        [
            (work.subscription.pk, *(getattr(work.subscription, name) for name in _LIFECYCLE_ATTRIBUTES))
            for work in works
            if work.lifecycle_written
        ],
    )
    drafts = [(work, work.draft) for work in works if work.draft is not None]
    insert_objects([draft.invoice for _work, draft in drafts])
    for work, draft in drafts:
        work.changes.append(
            Change("invoice.created", "invoice", draft.invoice.public_id, after=draft.created)
        )
    services.save_parts([services.invoice_parts(draft.invoice.pk, draft.composed) for _work, draft in drafts])
    insert_rows(
        BilledPeriod,
        ("invoice", "subscription", "kind", "period_start", "period_end", "usage_start", "usage_end"),
        [
            (
                draft.invoice.pk,
                work.subscription.pk,
                DocumentKind.INVOICE,
                draft.part.period.start,
                draft.part.period.end,
                *services.usage_bounds(draft.part),
            )
            for work, draft in drafts
        ],
    )
    insert_rows(
        InvoicedCharge,
        ("charge", "invoice"),
        [(charge.pk, draft.invoice.pk) for _work, draft in drafts for charge in draft.part.charges],
    )
    finalizing = [(work, draft) for work, draft in drafts if work.subscription.tenant_id not in graces]
    _close_usage(finalizing)
    _schedule(works, now)
    by_scope: dict[tuple[int, bool], list[Change]] = defaultdict(list)
    for work in works:
        by_scope[(work.scope.tenant_id, work.scope.livemode)] += work.changes
    for (tenant_id, livemode), changes in by_scope.items():
        record_many(Scope(tenant_id, livemode, works[0].scope.actor), changes)
    _number(finalizing, tenants, now)


def _by_scope(drafts: list[tuple[_Billed, _Draft]]) -> dict[Scope, list[tuple[_Billed, _Draft]]]:
    grouped: dict[tuple[int, bool], list[tuple[_Billed, _Draft]]] = defaultdict(list)
    for work, draft in drafts:
        grouped[(work.scope.tenant_id, work.scope.livemode)].append((work, draft))
    return {members[0][0].scope: members for members in grouped.values()}


def _close_usage(drafts: list[tuple[_Billed, _Draft]]) -> None:
    """Close metering up to each finalized invoice's usage end (``metering.close_usage`` for many)."""
    for scope, members in _by_scope(drafts).items():
        closing = [(work.subscription, services.usage_bounds(draft.part)[1]) for work, draft in members]
        closed = {change.object_id: change for change in close_usage_many(scope, closing)}
        for work, _draft in members:
            change = closed.get(work.subscription.public_id)
            if change is not None:
                work.changes.append(change)


def _number(drafts: list[tuple[_Billed, _Draft]], tenants: dict[int, Tenant], now: datetime) -> None:
    """Number and issue the invoices (what ``services.finalize`` does for one): one counter update per
    tenant and mode, the invoices' new state in a statement per ``ROWS_PER_STATEMENT``. The last writes
    of the batch: the series row stays locked from here to the commit."""
    issued: list[tuple[Any, ...]] = []
    changes: dict[Scope, list[Change]] = {}
    for scope, members in _by_scope(drafts).items():
        tenant = tenants[scope.tenant_id]
        issued_on = local_date(now, tenant.timezone)
        template = services.number_format(tenant, DocumentKind.INVOICE)
        numbers = services.next_numbers(scope, DocumentKind.INVOICE, issued_on, len(members), template)
        changes[scope] = []
        for (_work, draft), number in zip(members, numbers, strict=True):
            invoice = draft.invoice
            services.issue(invoice, number, issued_on, now, announce=False)
            issued.append(
                (invoice.pk, invoice.status, invoice.number, invoice.issue_date, invoice.due_date, now)
            )
            after = services.snapshot(invoice)
            changes[scope].append(
                Change("invoice.finalized", "invoice", invoice.public_id, draft.created, after)
            )
    update_rows(Invoice, ("status", "number", "issue_date", "due_date", "finalized_at"), issued)
    services.announce_issued([draft.invoice.public_id for _work, draft in drafts])
    for scope, scoped in changes.items():
        record_many(scope, scoped)


def _schedule(works: list[_Billed], now: datetime) -> None:
    existing = dict(
        BillingSchedule.objects.filter(
            subscription_id__any=[work.subscription.pk for work in works]
        ).values_list("subscription_id", "pk")
    )
    updates, inserts = [], []
    for work in works:
        subscription = work.subscription
        moment = next_billing_at(subscription, now)
        if subscription.pk in existing:
            updates.append((existing[subscription.pk], moment, now))
        else:
            inserts.append((subscription.tenant_id, subscription.livemode, subscription.pk, moment, now))
    update_rows(BillingSchedule, ("next_billing_at", "checked_at"), updates)
    insert_rows(
        BillingSchedule, ("tenant", "livemode", "subscription", "next_billing_at", "checked_at"), inserts
    )


@dataclass
class BatchResult:
    """What ``bill_batch`` did: the invoices it made and the subscriptions it left for the single way."""

    billed: int = 0
    invoices: list[Invoice] = field(default_factory=list)
    skipped: int = 0
    rest: list[Subscription] = field(default_factory=list)


def bill_batch(
    due: list[Subscription], now: datetime, graces: dict[int, timedelta], actor: Actor
) -> BatchResult:
    """Bill what it can of the locked, due subscriptions ``due`` (none of a tenant that consolidates
    invoices; customer and coupon loaded) with few statements; the rest (see the module's docstring) is
    returned, untouched, in ``rest``. Call inside the transaction that locked ``due``."""
    result = BatchResult()
    if not due:
        return result
    ids = [subscription.pk for subscription in due]
    reads = BatchReads()
    loaded = _prepare(due, reads)
    _read(reads, ids)
    with_addons = set(
        SubscriptionAddOn.objects.filter(subscription_id__any=ids).values_list("subscription_id", flat=True)
    )
    blocked = _customers_not_for_batch(loaded.values())
    tenants = Tenant.objects.in_bulk({subscription.tenant_id for subscription in due})
    cache = states.TermsCache()
    works: list[_Billed] = []
    for original in due:
        subscription = loaded[original.pk]
        work = _Billed(original, subscription, Scope(subscription.tenant_id, subscription.livemode, actor))
        try:
            _eligible(subscription, with_addons, blocked)
            _advance(work, cache, now)
            work.period = _due_period(work, reads, now)
        except NotForBatch:
            result.rest.append(original)
            continue
        works.append(work)
    _read_usage(works, reads)
    written = []
    for work in works:
        try:
            _compose(work, tenants, reads)
        except Exception:  # billed the single way, which records the failure
            result.rest.append(work.original)
            continue
        written.append(work)
    try:
        with transaction.atomic():
            _write(written, tenants, graces, now)
    except Exception:
        logger.exception("writing a billing batch failed; its subscriptions are billed one at a time")
        result.rest.extend(work.original for work in written)
        return result
    result.billed = len(written)
    result.invoices = [work.draft.invoice for work in written if work.draft is not None]
    result.skipped = sum(1 for work in written if work.draft is None)
    return result
