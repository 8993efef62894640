"""The billing run: due subscriptions are invoiced once per period, failures are recorded, workers share."""

import threading
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from io import StringIO

import pytest
from django.core.management import call_command
from django.db import connection, connections

from tests.apps.billing.support import APRIL, MARCH, MAY, calls, scope_of, subscribe
from turnus.apps.billing import services, sweep, tasks
from turnus.apps.billing.models import BillingError, BillingSchedule, Invoice, InvoicedCharge
from turnus.apps.subscriptions.models import Subscription, SubscriptionCharge
from turnus.core.clock import FrozenClock, use_clock

JUNE = datetime(2026, 5, 31, 22, 0, tzinfo=UTC)


@pytest.fixture
def clock():
    frozen = FrozenClock(MARCH + timedelta(hours=9))
    with use_clock(frozen):
        yield frozen


@pytest.fixture
def scope(tenant):
    return scope_of(tenant)


def _subscriptions(scope, count, **overrides):
    return [subscribe(scope, code=f"plan{index}", **overrides).subscription for index in range(count)]


def _invoices_of(subscription):
    return Invoice.objects.filter(subscription__public_id=subscription, kind="invoice").order_by(
        "period_start"
    )


def _numbers():
    return sorted(Invoice.objects.exclude(number=None).values_list("number", flat=True))


class Crash(BaseException):
    """Stands for the worker process dying."""


def _fail_for(monkeypatch, subscription, error):
    """Composing ``subscription``'s invoice raises ``error``, whether the run bills it in a batch or alone."""
    collect = services.collect_lines

    def failing(tenant, scope, found, period, *args, **kwargs):
        if found.public_id == subscription:
            raise error
        return collect(tenant, scope, found, period, *args, **kwargs)

    monkeypatch.setattr(services, "collect_lines", failing)


@pytest.mark.django_db
def test_three_due_subscriptions_get_three_finalized_invoices_with_consecutive_numbers(scope, clock):
    subscribed = _subscriptions(scope, 3)
    summary = sweep.run_sweep(clock.now())
    assert (summary.invoices_created, summary.finalized, summary.errors) == (3, 3, [])
    assert summary.amounts == {"EUR": Decimal("357.00")}
    assert [_invoices_of(sub).get().status for sub in subscribed] == ["finalized"] * 3
    assert _numbers() == ["RE-2026-000001", "RE-2026-000002", "RE-2026-000003"]


@pytest.mark.django_db
def test_a_second_run_creates_nothing_and_finds_nothing_due(scope, clock):
    _subscriptions(scope, 2)
    sweep.run_sweep(clock.now())
    clock.advance(timedelta(minutes=1))
    second = sweep.run_sweep(clock.now())
    assert (second.invoices_created, second.subscriptions) == (0, 0)
    assert Invoice.objects.count() == 2
    assert sweep.due_subscriptions(clock.now(), limit=10) == []


@pytest.mark.django_db
def test_subscriptions_without_a_billing_schedule_are_found_once_per_run_and_billed(
    scope, clock, make_tenant
):
    subscribed = _subscriptions(scope, 5)  # new: billing has no schedule for them yet
    keys = sorted(Subscription.objects.filter(public_id__in=subscribed).values_list("pk", flat=True))
    listed = sweep.unscheduled_subscriptions()
    assert (listed.keys, listed.horizon) == (keys, keys[-1])
    assert sweep.unscheduled_subscriptions(tenant=make_tenant(legal_name="Andere GmbH")).keys == []
    # A batch takes at most ``limit`` of them and never passes a listed one it was not offered.
    first = sweep.due_subscriptions(clock.now(), limit=2, unscheduled=listed)
    assert [sub.public_id for sub in first] == subscribed[:2]
    summary = sweep.run_sweep(clock.now(), batch=2)
    assert (summary.invoices_created, summary.errors) == (5, [])
    assert [_invoices_of(sub).count() for sub in subscribed] == [1] * 5
    assert sweep.unscheduled_subscriptions().keys == []
    # Listed before another run billed them: no longer offered.
    assert sweep.due_subscriptions(clock.now(), limit=10, unscheduled=listed) == []
    # One made after the list was taken is found by key.
    late = subscribe(scope, code="later").subscription
    assert [sub.public_id for sub in sweep.due_subscriptions(clock.now(), limit=10, unscheduled=listed)] == [
        late
    ]


@pytest.mark.django_db
def test_a_subscription_made_while_the_run_is_under_way_is_billed_by_it(scope, clock):
    _subscriptions(scope, 3)
    made: list[str] = []

    def progress(summary):
        if not made:
            made.append(subscribe(scope, code="late").subscription)

    sweep.run_sweep(clock.now(), batch=1, progress=progress)
    assert _invoices_of(made[0]).count() == 1


@pytest.mark.django_db
def test_a_usage_only_plan_in_arrears_invoices_each_periods_usage_when_it_ends(scope, clock):
    billed = subscribe(scope, fee="0.00", billing_timing="in_arrears")
    with use_clock(FrozenClock(MARCH + timedelta(days=6))):
        calls(billed, 150, MARCH + timedelta(days=5))
    for at in (MARCH + timedelta(hours=10), APRIL + timedelta(hours=1), MAY + timedelta(hours=1)):
        sweep.run_sweep(at)
        sweep.run_sweep(at + timedelta(minutes=1))
    invoice = _invoices_of(billed.subscription).get()  # April had no usage: no invoice for it
    assert (invoice.period_start, invoice.period_end, invoice.status) == (MARCH, APRIL, "finalized")
    lines = [(line.kind, line.quantity, line.net_amount) for line in invoice.lines.order_by("position")]
    assert lines == [("usage", Decimal(150), Decimal("5.00"))]
    assert invoice.amount_due == Decimal("5.95")
    # Nothing of March or April is left pending (no period is taken up again).
    invoiced = InvoicedCharge.objects.values("charge_id")
    pending = SubscriptionCharge.objects.filter(subscription__public_id=billed.subscription)
    assert not pending.filter(period_end__lte=MAY).exclude(pk__in=invoiced).exists()


@pytest.mark.django_db
def test_a_subscription_whose_invoice_fails_is_recorded_and_the_others_are_invoiced(
    scope, clock, monkeypatch
):
    _, broken, _ = _subscriptions(scope, 3)
    _fail_for(monkeypatch, broken, RuntimeError("the catalogue is broken"))
    summary = sweep.run_sweep(clock.now(), batch=2)
    assert summary.invoices_created == 2
    assert summary.errors == [(broken, "RuntimeError: the catalogue is broken")]
    error = BillingError.objects.get()
    assert (error.subscription.public_id, error.code) == (broken, "RuntimeError")
    assert error.tenant_id == scope.tenant_id
    assert error.created_at == clock.now()
    assert not _invoices_of(broken).exists()
    assert _numbers() == ["RE-2026-000001", "RE-2026-000002"]
    monkeypatch.undo()
    clock.advance(sweep.RETRY_AFTER)
    retried = sweep.run_sweep(clock.now())
    assert (retried.invoices_created, retried.errors) == (1, [])
    assert _invoices_of(broken).get().number == "RE-2026-000003"


@pytest.mark.django_db
def test_a_crash_mid_run_leaves_no_partial_invoice_and_the_next_run_finishes_the_work(
    scope, clock, monkeypatch
):
    first, second, third = _subscriptions(scope, 3)
    _fail_for(monkeypatch, second, Crash())
    with pytest.raises(Crash):
        sweep.run_sweep(clock.now(), batch=1)
    assert _invoices_of(first).get().number == "RE-2026-000001"
    assert Invoice.objects.count() == 1
    assert not BillingSchedule.objects.filter(subscription__public_id__in=(second, third)).exists()
    monkeypatch.undo()
    summary = sweep.run_sweep(clock.now())
    assert (summary.invoices_created, summary.errors) == (2, [])
    assert _numbers() == ["RE-2026-000001", "RE-2026-000002", "RE-2026-000003"]


@pytest.mark.django_db
def test_a_monthly_plan_in_advance_run_every_day_for_three_months_gets_exactly_three_invoices(scope, clock):
    subscription = _subscriptions(scope, 1)[0]
    while clock.now() < JUNE - timedelta(days=1):
        sweep.run_sweep(clock.now())
        clock.advance(timedelta(days=1))
    periods = [(invoice.period_start, invoice.period_end) for invoice in _invoices_of(subscription)]
    assert periods == [(MARCH, APRIL), (APRIL, MAY), (MAY, JUNE)]
    assert _numbers() == ["RE-2026-000001", "RE-2026-000002", "RE-2026-000003"]


@pytest.mark.django_db
def test_a_run_after_three_months_without_one_catches_up_every_period_in_order(scope, clock):
    subscription = _subscriptions(scope, 1)[0]
    clock.set(MAY + timedelta(days=10))
    summary = sweep.run_sweep(clock.now())
    assert summary.invoices_created == 3
    invoices = list(_invoices_of(subscription))
    assert [(invoice.period_start, invoice.number) for invoice in invoices] == [
        (MARCH, "RE-2026-000001"),
        (APRIL, "RE-2026-000002"),
        (MAY, "RE-2026-000003"),
    ]


@pytest.mark.django_db
def test_a_plan_in_arrears_is_invoiced_when_its_period_ends(scope, clock):
    subscription = _subscriptions(scope, 1, billing_timing="in_arrears")[0]
    assert sweep.run_sweep(clock.now()).skipped == 1
    clock.set(APRIL - timedelta(minutes=1))
    assert sweep.run_sweep(clock.now()).subscriptions == 0
    clock.set(APRIL + timedelta(minutes=1))
    assert sweep.run_sweep(clock.now()).invoices_created == 1
    invoice = _invoices_of(subscription).get()
    assert (invoice.period_start, invoice.period_end, invoice.status) == (MARCH, APRIL, "finalized")


@pytest.mark.django_db
def test_with_a_grace_period_invoices_stay_drafts_until_it_has_passed(scope, clock):
    services.set_draft_grace_period(scope, timedelta(days=2))
    subscription = _subscriptions(scope, 1)[0]
    summary = sweep.run_sweep(clock.now())
    assert (summary.invoices_created, summary.finalized) == (1, 0)
    clock.advance(timedelta(days=1))
    sweep.run_sweep(clock.now())
    assert _invoices_of(subscription).get().status == "draft"
    clock.advance(timedelta(days=1))
    assert sweep.run_sweep(clock.now()).finalized == 1
    assert _invoices_of(subscription).get().number == "RE-2026-000001"


@pytest.mark.django_db
def test_the_run_bills_only_the_tenant_asked_for(scope, clock, make_tenant):
    other_tenant = make_tenant()
    other = scope_of(other_tenant)
    mine = _subscriptions(scope, 1)[0]
    theirs = _subscriptions(other, 1)[0]
    sweep.run_sweep(clock.now(), tenant=other_tenant)
    assert not _invoices_of(mine).exists()
    assert _invoices_of(theirs).count() == 1


@pytest.mark.django_db
def test_the_periodic_job_runs_the_billing_as_of_now(scope, clock):
    _subscriptions(scope, 2)
    tasks.billing_sweep()
    assert Invoice.objects.filter(status="finalized").count() == 2


@pytest.mark.django_db
def test_worker_once_runs_every_periodic_job_once_and_exits(scope, clock):
    _subscriptions(scope, 1)
    out = StringIO()
    call_command("worker", once=True, stdout=out)
    assert "ran billing.sweep" in out.getvalue()
    assert Invoice.objects.filter(status="finalized").count() == 1


@pytest.mark.django_db
def test_bill_runs_the_billing_for_a_tenant_until_a_moment_and_prints_a_summary(scope, clock, tenant):
    subscription = _subscriptions(scope, 1)[0]
    out = StringIO()
    call_command("bill", tenant=tenant.slug, until=(APRIL + timedelta(hours=2)).isoformat(), stdout=out)
    text = out.getvalue()
    assert "Invoices created: 2 (2 finalized)" in text
    assert "EUR 238.00" in text
    assert "Errors: 0" in text
    assert "[##############################] 1/1 subscriptions" in text
    assert _invoices_of(subscription).count() == 2


@pytest.mark.django_db
def test_bills_progress_bar_counts_the_due_subscriptions_before_the_run(scope, clock, tenant):
    from turnus.apps.billing.management.commands.bill import progress_bar

    _subscriptions(scope, 3)
    assert sweep.count_due(clock.now(), tenant=tenant) == 3
    sweep.run_sweep(clock.now())
    assert sweep.count_due(clock.now(), tenant=tenant) == 0
    assert progress_bar(1, 3, width=9) == "[###......]"
    assert progress_bar(0, 0, width=4) == "[####]"
    assert progress_bar(5, 3, width=4) == "[####]"


@pytest.mark.django_db
def test_bill_refuses_an_unknown_tenant(clock):
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="no tenant"):
        call_command("bill", tenant="nobody", stdout=StringIO())


@pytest.mark.django_db(transaction=True)
def test_two_concurrent_runs_never_bill_a_period_twice_and_numbers_have_no_gaps(tenant):
    if connection.vendor != "postgresql":
        pytest.skip("SQLite serialises writers; concurrent workers are a PostgreSQL concern")
    clock = FrozenClock(MARCH + timedelta(hours=9))
    scope = scope_of(tenant)
    with use_clock(clock):
        subscribed = _subscriptions(scope, 12)
    summaries: list[sweep.SweepSummary] = []
    failures: list[BaseException] = []
    barrier = threading.Barrier(2)

    def run() -> None:
        try:
            barrier.wait()
            summaries.append(sweep.run_sweep(clock.now(), batch=2))
        except BaseException as error:
            failures.append(error)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    assert sum(summary.invoices_created for summary in summaries) == 12
    assert all(_invoices_of(sub).count() == 1 for sub in subscribed)
    assert _numbers() == [f"RE-2026-{seq:06}" for seq in range(1, 13)]


@pytest.mark.django_db
def test_bill_takes_a_batch_size_and_refuses_one_below_one(scope, clock):
    from django.core.management.base import CommandError

    _subscriptions(scope, 3)
    with pytest.raises(CommandError, match="--batch"):
        call_command("bill", "--batch", "0", stdout=StringIO())
    out = StringIO()
    call_command("bill", "--batch", "2", stdout=out)
    assert Invoice.objects.filter(kind="invoice").count() == 3
