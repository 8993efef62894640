"""Test clocks (test mode only): simulated time for the customers attached to them, as Stripe has them.

A customer created with ``test_clock`` lives at the clock's ``frozen_time``: every API call on its
objects runs with ``clock.now()`` standing there (``turnus.apps.customers.clocks``), and the regular
billing run leaves it alone. Advancing the clock moves it forward and runs the billing sweep for its
customers, and for them only, at every moment something falls due on the way (a billing schedule, a
lifecycle event, a subscription never billed yet, a draft whose grace period ends), each run with the
clock frozen at that moment. The advance holds the clock's row locked (``SELECT ... FOR UPDATE``) and runs
in one transaction, so two advances never interleave and a failed one changes nothing.

Bounded work: one call moves at most ``MAX_ADVANCE`` ahead and makes at most ``MAX_RUNS`` billing runs;
past that (hourly retries of a failing subscription, say) one last run at the target catches up every
period that fell due, since a run invoices all due periods of a subscription at once.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from django.db import transaction
from django.db.models import F, Min, Q, QuerySet

from turnus.apps.billing.models import BillingSchedule, BillingSettings, DocumentKind, Invoice, InvoiceStatus
from turnus.apps.billing.sweep import run_sweep
from turnus.apps.customers.clocks import customer_time, get_test_clock, owner_of
from turnus.apps.customers.models import TestClock
from turnus.apps.subscriptions.models import Subscription
from turnus.core import clock
from turnus.core.audit import record
from turnus.core.errors import Conflict, ValidationFailed
from turnus.core.ids import new_id
from turnus.core.scope import Scope

MAX_ADVANCE = timedelta(days=731)
MAX_RUNS = 2000
MAX_NAME_LENGTH = 300
EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
LATEST = datetime(2100, 1, 1, tzinfo=UTC)


@dataclass
class AdvanceSummary:
    """What one advance did: from where to where, how many billing runs, and their totals."""

    previous_time: datetime
    frozen_time: datetime
    billing_runs: int = 0
    invoices_created: int = 0
    finalized: int = 0
    errors: int = 0


@dataclass(frozen=True)
class Advanced:
    test_clock: TestClock
    summary: AdvanceSummary


def snapshot(test_clock: TestClock) -> dict[str, Any]:
    return {
        "id": test_clock.public_id,
        "name": test_clock.name,
        "frozen_time": test_clock.frozen_time.isoformat(),
        "deleted_at": test_clock.deleted_at.isoformat() if test_clock.deleted_at else None,
    }


def invoice_customer(scope: Scope, invoice_id: str) -> QuerySet[Any]:
    """The customer of invoice (or credit note) ``invoice_id``, for ``customers.clocks.customer_time``."""
    return owner_of(Invoice, scope, invoice_id)


def at_invoice_time(scope: Scope, invoice_id: str) -> Any:
    """Run the block at the time of the invoice's customer (its test clock's, if it has one)."""
    return customer_time(scope, invoice_customer(scope, invoice_id))


def _test_mode_only(scope: Scope) -> None:
    if scope.livemode:
        raise ValidationFailed(
            "test clocks exist in test mode only; use a test-mode secret key", field="livemode"
        )


def _instant(value: Any, *, field: str = "frozen_time") -> datetime:
    if not isinstance(value, datetime) or value.tzinfo is None or value.utcoffset() is None:
        raise ValidationFailed(f"{field} must be a date-time with a UTC offset", field=field)
    instant = value.astimezone(UTC)
    if not EARLIEST <= instant < LATEST:
        raise ValidationFailed(f"{field} must lie in the years 2000 to 2099", field=field)
    return instant


def clocks_of(scope: Scope) -> QuerySet[TestClock]:
    """The scope's test clocks that are not deleted (none in live mode)."""
    found: QuerySet[TestClock] = TestClock.objects.in_scope(scope.tenant_id, scope.livemode)
    return found.filter(deleted_at__isnull=True)


@transaction.atomic
def create_test_clock(scope: Scope, *, frozen_time: datetime, name: str | None = None) -> TestClock:
    _test_mode_only(scope)
    instant = _instant(frozen_time)
    label = (name or "").strip()
    if len(label) > MAX_NAME_LENGTH:
        raise ValidationFailed(f"name must be at most {MAX_NAME_LENGTH} characters", field="name")
    now = clock.system_now()
    test_clock = TestClock.objects.create(
        public_id=new_id("clock", at=now),
        tenant_id=scope.tenant_id,
        livemode=False,
        name=label,
        frozen_time=instant,
        created_at=now,
    )
    record(scope, "test_clock.created", "test_clock", test_clock.public_id, after=snapshot(test_clock))
    return test_clock


@transaction.atomic
def delete_test_clock(scope: Scope, public_id: str) -> TestClock:
    """Delete a test clock no (undeleted) customer is attached to; its deleted customers stay frozen."""
    test_clock = get_test_clock(scope, public_id, lock=True)
    attached = test_clock.customers.filter(deleted_at__isnull=True).count()
    if attached:
        raise Conflict(
            f"test clock {public_id} still has {attached} customer(s) attached; delete them first",
            field="id",
        )
    before = snapshot(test_clock)
    test_clock.deleted_at = clock.system_now()
    test_clock.save(update_fields=("deleted_at",))
    record(scope, "test_clock.deleted", "test_clock", public_id, before=before, after=snapshot(test_clock))
    return test_clock


def _grace(test_clock: TestClock) -> timedelta | None:
    grace: timedelta | None = (
        BillingSettings.objects.filter(tenant_id=test_clock.tenant_id, draft_grace_period__gt=timedelta(0))
        .values_list("draft_grace_period", flat=True)
        .first()
    )
    return grace


def _earliest_due(test_clock: TestClock, after: datetime | None, grace: timedelta | None) -> datetime | None:
    """The first moment (after ``after``, if given) at which something of the clock's customers falls
    due; a subscription never billed is due at once (``after`` is ``None`` then)."""
    subscriptions = Subscription.objects.filter(customer__test_clock=test_clock.pk)
    moments: list[datetime] = []
    if after is None and subscriptions.filter(billing_schedule__isnull=True).exists():
        return test_clock.frozen_time
    schedules = BillingSchedule.objects.filter(subscription__customer__test_clock=test_clock.pk)
    events = subscriptions.exclude(billing_schedule__checked_at__gte=F("next_event_at"))
    if after is not None:
        schedules = schedules.filter(next_billing_at__gt=after)
        events = events.filter(next_event_at__gt=after)
    moments += [
        moment
        for moment in (
            schedules.aggregate(first=Min("next_billing_at"))["first"],
            events.aggregate(first=Min("next_event_at"))["first"],
        )
        if moment is not None
    ]
    if grace is not None:
        drafts = Invoice.objects.filter(
            tenant_id=test_clock.tenant_id,
            customer__test_clock=test_clock.pk,
            kind=DocumentKind.INVOICE,
            status=InvoiceStatus.DRAFT,
        ).filter(Q(subscription__isnull=False) | Q(billed_periods__isnull=False))
        if after is not None:
            drafts = drafts.filter(created_at__gt=after - grace)
        oldest = drafts.aggregate(first=Min("created_at"))["first"]
        if oldest is not None:
            moments.append(oldest + grace)
    return min(moments, default=None)


#: Set while a test clock's billing run is under way: the changes it makes bill nothing more by themselves.
_in_clock_run: ContextVar[bool] = ContextVar("turnus_test_clock_run", default=False)


def in_clock_run() -> bool:
    return _in_clock_run.get()


@contextmanager
def _clock_run() -> Iterator[None]:
    token = _in_clock_run.set(True)
    try:
        yield
    finally:
        _in_clock_run.reset(token)


def bill_now(test_clock_id: int) -> None:
    """Run the billing run of a test clock's customers at the clock's time, with its row locked: what a
    change made through a call made due (a new subscription's first invoice, a cancellation's closing
    invoice) is billed at once, as it would be by the next regular run for a customer on no clock."""
    with transaction.atomic():
        found = TestClock.objects.select_for_update().filter(pk=test_clock_id).first()
        if found is not None:
            with _clock_run():
                run_sweep(found.frozen_time, test_clock=found)


def _run(test_clock: TestClock, at: datetime, summary: AdvanceSummary) -> None:
    with _clock_run():
        swept = run_sweep(at, test_clock=test_clock)
    summary.billing_runs += 1
    summary.invoices_created += swept.invoices_created
    summary.finalized += swept.finalized
    summary.errors += len(swept.errors)


@transaction.atomic
def advance_test_clock(scope: Scope, public_id: str, *, frozen_time: datetime) -> Advanced:
    """Move the clock to ``frozen_time``, billing its customers at every moment something falls due."""
    test_clock = get_test_clock(scope, public_id, lock=True)
    target = _instant(frozen_time)
    start = test_clock.frozen_time
    if target <= start:
        raise ValidationFailed(
            f"frozen_time must lie after the clock's current time {start.isoformat()}", field="frozen_time"
        )
    if target - start > MAX_ADVANCE:
        raise ValidationFailed(
            f"a test clock advances at most {MAX_ADVANCE.days} days per call", field="frozen_time"
        )
    before = snapshot(test_clock)
    summary = AdvanceSummary(previous_time=start, frozen_time=target)
    grace = _grace(test_clock)
    last: datetime | None = None
    while summary.billing_runs < MAX_RUNS:
        due = _earliest_due(test_clock, last, grace)
        if due is None:
            break
        moment = max(due, start)
        if moment > target:
            break
        _run(test_clock, moment, summary)
        last = moment
    else:
        _run(test_clock, target, summary)
    test_clock.frozen_time = target
    test_clock.save(update_fields=("frozen_time",))
    after = {**snapshot(test_clock), "billing_runs": summary.billing_runs, "errors": summary.errors}
    record(scope, "test_clock.advanced", "test_clock", public_id, before=before, after=after)
    return Advanced(test_clock, summary)
