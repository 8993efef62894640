"""A subscription billed in advance that ends gets one closing invoice: the usage after its last invoice's
usage window up to the end, and the pending lifecycle charges its end created (a cancel-now credit)."""

from datetime import timedelta
from decimal import Decimal

import pytest

from tests.apps.billing.support import APRIL, MARCH, MAY, calls, plan, scope_of, subscribe
from tests.apps.customers.support import customer_data
from turnus.apps.billing import services, sweep
from turnus.apps.billing.models import BilledPeriod, BillingSchedule, Invoice
from turnus.apps.subscriptions import services as subscriptions
from turnus.apps.subscriptions.models import Subscription, SubscriptionCharge
from turnus.core.clock import FrozenClock, use_clock
from turnus.engine.periods import Period


@pytest.fixture
def scope(tenant):
    return scope_of(tenant)


def _invoices(subscription):
    return list(Invoice.objects.filter(subscription__public_id=subscription, kind="invoice").order_by("pk"))


def _usage(invoice):
    return [line for line in invoice.lines.order_by("position") if line.kind == "usage"]


def test_cancel_at_period_end_bills_the_usage_of_the_last_period_once(scope):
    with use_clock(FrozenClock(MARCH + timedelta(hours=1))):
        billed = subscribe(scope)
        sweep.run_sweep(MARCH + timedelta(hours=1))
        subscriptions.cancel_subscription(scope, billed.subscription, mode="period_end")
    calls(billed, 150, MARCH + timedelta(days=10))
    assert len(_invoices(billed.subscription)) == 1

    summary = sweep.run_sweep(APRIL + timedelta(hours=1))

    invoices = _invoices(billed.subscription)
    assert len(invoices) == 2, summary
    closing = invoices[-1]
    assert (closing.usage_start, closing.usage_end) == (MARCH, APRIL)
    [usage] = _usage(closing)
    assert Decimal(usage.quantity) == 150
    assert Decimal(usage.net_amount) == Decimal("5.00")
    assert not [line for line in closing.lines.all() if line.kind == "recurring"]
    assert Subscription.objects.get(public_id=billed.subscription).ended_at == APRIL

    again = sweep.run_sweep(APRIL + timedelta(days=2))
    assert again.invoices_created == 0
    assert len(_invoices(billed.subscription)) == 2
    schedule = BillingSchedule.objects.get(subscription__public_id=billed.subscription)
    assert schedule.next_billing_at is None
    assert sweep.count_due(MAY + timedelta(days=40)) == 0


def test_cancel_now_bills_the_credit_and_the_usage_up_to_the_cancellation(scope):
    cancelled_at = MARCH + timedelta(days=15, hours=1)
    with use_clock(FrozenClock(MARCH + timedelta(hours=1))):
        billed = subscribe(scope, credit_unused_on_cancel=True)
        sweep.run_sweep(MARCH + timedelta(hours=1))
    calls(billed, 130, MARCH + timedelta(days=10))
    with use_clock(FrozenClock(cancelled_at)):
        subscriptions.cancel_subscription(scope, billed.subscription, mode="now")

    # A run long after the end (none ran since the cancellation) makes the closing invoice all the same.
    sweep.run_sweep(APRIL + timedelta(hours=1))

    invoices = _invoices(billed.subscription)
    assert len(invoices) == 2
    closing = invoices[-1]
    assert (closing.usage_start, closing.usage_end) == (MARCH, cancelled_at)
    [usage] = _usage(closing)
    assert Decimal(usage.quantity) == 130
    assert Decimal(usage.net_amount) == Decimal("3.00")
    [credit] = [line for line in closing.lines.all() if line.kind == "proration_credit"]
    assert Decimal(credit.net_amount) < 0
    assert BilledPeriod.objects.filter(subscription__public_id=billed.subscription).count() == 2

    assert sweep.run_sweep(APRIL + timedelta(hours=2)).invoices_created == 0
    assert len(_invoices(billed.subscription)) == 2
    assert sweep.count_due(MAY) == 0


def test_an_ended_subscription_without_usage_gets_no_closing_invoice(scope):
    with use_clock(FrozenClock(MARCH + timedelta(hours=1))):
        billed = subscribe(scope)
        sweep.run_sweep(MARCH + timedelta(hours=1))
        subscriptions.cancel_subscription(scope, billed.subscription, mode="period_end")

    assert sweep.run_sweep(APRIL + timedelta(hours=1)).invoices_created == 0
    assert len(_invoices(billed.subscription)) == 1
    assert sweep.count_due(MAY) == 0


def test_in_arrears_the_ended_period_bills_its_usage_and_no_closing_invoice_follows(scope):
    with use_clock(FrozenClock(MARCH + timedelta(hours=1))):
        billed = subscribe(scope, billing_timing="in_arrears")
        sweep.run_sweep(MARCH + timedelta(hours=1))
        subscriptions.cancel_subscription(scope, billed.subscription, mode="period_end")
    calls(billed, 150, MARCH + timedelta(days=10))

    sweep.run_sweep(APRIL + timedelta(hours=1))
    sweep.run_sweep(APRIL + timedelta(days=1))

    [invoice] = _invoices(billed.subscription)
    assert (invoice.period_start, invoice.period_end) == (MARCH, APRIL)
    [usage] = _usage(invoice)
    assert Decimal(usage.quantity) == 150


#: 11 March 2026, 10:00 in Berlin.
ELEVENTH = MARCH + timedelta(days=10, hours=10)


def _schedule(subscription):
    return BillingSchedule.objects.get(subscription__public_id=subscription)


def _written():
    return Invoice.objects.count(), BilledPeriod.objects.count(), SubscriptionCharge.objects.count()


def _cancelled_now(scope, *, at=ELEVENTH, usage=130):
    """A subscription billed for March on 1 March, ``usage`` calls on 5 March, cancelled now at ``at``."""
    with use_clock(FrozenClock(MARCH + timedelta(hours=1))):
        billed = subscribe(scope, credit_unused_on_cancel=True)
        sweep.run_sweep(MARCH + timedelta(hours=1))
    calls(billed, usage, MARCH + timedelta(days=4))
    with use_clock(FrozenClock(at)):
        subscriptions.cancel_subscription(scope, billed.subscription, mode="now")
    return billed


def test_cancel_now_makes_the_subscription_due_at_once(scope):
    billed = _cancelled_now(scope)

    assert _schedule(billed.subscription).next_billing_at == ELEVENTH
    assert sweep.count_due(ELEVENTH) == 1
    assert sweep.count_due(ELEVENTH - timedelta(seconds=1)) == 0


def test_cancel_now_gets_its_closing_invoice_at_the_next_run(scope):
    billed = _cancelled_now(scope)

    summary = sweep.run_sweep(ELEVENTH + timedelta(minutes=1))

    assert summary.invoices_created == 1, summary
    first, closing = _invoices(billed.subscription)
    assert closing.status == "finalized"
    assert (closing.usage_start, closing.usage_end) == (MARCH, ELEVENTH)
    [usage] = _usage(closing)
    assert (Decimal(usage.quantity), Decimal(usage.net_amount)) == (130, Decimal("3.00"))
    [credit] = [line for line in closing.lines.all() if line.kind == "proration_credit"]
    assert (credit.period_start, credit.period_end) == (ELEVENTH, APRIL)
    # 100.00 for March's 31 days; the 21 days from 11 March on (the day of the cancellation counts) are
    # credited: 100 * 21 / 31 = 67.74.
    assert Decimal(credit.net_amount) == Decimal("-67.74")
    assert Decimal(closing.line_total) == Decimal("-64.74")
    assert not [line for line in closing.lines.all() if line.kind == "recurring"]

    # The invoice shows the span its lines cover; the one-microsecond period only keys its billed period.
    assert (closing.period_start, closing.period_end) == (MARCH, APRIL)
    keys = BilledPeriod.objects.filter(invoice=closing).values_list("period_start", "period_end")
    assert list(keys) == [(ELEVENTH, ELEVENTH + timedelta(microseconds=1))]
    assert (first.period_start, first.period_end) == (MARCH, APRIL)

    assert _schedule(billed.subscription).next_billing_at is None
    assert sweep.run_sweep(ELEVENTH + timedelta(minutes=2)).invoices_created == 0
    assert sweep.run_sweep(APRIL + timedelta(hours=1)).invoices_created == 0
    assert len(_invoices(billed.subscription)) == 2
    assert sweep.count_due(MAY) == 0


def test_the_closing_invoice_of_an_end_at_the_period_end_shows_the_period_its_usage_covers(scope):
    with use_clock(FrozenClock(MARCH + timedelta(hours=1))):
        billed = subscribe(scope)
        sweep.run_sweep(MARCH + timedelta(hours=1))
        subscriptions.cancel_subscription(scope, billed.subscription, mode="period_end")
    calls(billed, 150, MARCH + timedelta(days=10))

    sweep.run_sweep(APRIL + timedelta(hours=1))

    closing = _invoices(billed.subscription)[-1]
    assert (closing.period_start, closing.period_end) == (MARCH, APRIL)
    [key] = BilledPeriod.objects.filter(invoice=closing)
    assert (key.period_start, key.period_end) == (APRIL, APRIL + timedelta(microseconds=1))


def test_a_pause_makes_the_subscription_due_and_the_run_bills_nothing_twice(scope):
    with use_clock(FrozenClock(MARCH + timedelta(hours=1))):
        billed = subscribe(scope)
        sweep.run_sweep(MARCH + timedelta(hours=1))
    assert _schedule(billed.subscription).next_billing_at == APRIL
    paused_at = MARCH + timedelta(days=3)
    with use_clock(FrozenClock(paused_at)):
        subscriptions.pause_subscription(scope, billed.subscription)

    assert _schedule(billed.subscription).next_billing_at == paused_at
    assert sweep.run_sweep(paused_at + timedelta(minutes=1)).invoices_created == 0
    assert len(_invoices(billed.subscription)) == 1
    schedule = _schedule(billed.subscription)
    assert schedule.checked_at == paused_at + timedelta(minutes=1)
    assert schedule.next_billing_at is None or schedule.next_billing_at > schedule.checked_at


def test_a_change_never_moves_a_due_schedule_later(scope):
    with use_clock(FrozenClock(MARCH + timedelta(hours=1))):
        billed = subscribe(scope)
        sweep.run_sweep(MARCH + timedelta(hours=1))
    earlier = MARCH - timedelta(days=1)
    BillingSchedule.objects.filter(pk=_schedule(billed.subscription).pk).update(next_billing_at=earlier)
    with use_clock(FrozenClock(MARCH + timedelta(hours=2))):
        subscriptions.cancel_subscription(scope, billed.subscription, mode="period_end")
    assert _schedule(billed.subscription).next_billing_at == earlier


def test_a_preview_writes_nothing_and_keeps_the_schedule(scope):
    with use_clock(FrozenClock(MARCH + timedelta(hours=1))):
        billed = subscribe(scope)
        sweep.run_sweep(MARCH + timedelta(hours=1))
    before = _schedule(billed.subscription)
    with use_clock(FrozenClock(APRIL + timedelta(hours=1))):
        preview = services.preview_invoice(scope, billed.subscription)
    assert preview.period.start == APRIL
    after = _schedule(billed.subscription)
    assert (after.next_billing_at, after.checked_at) == (before.next_billing_at, before.checked_at)


def test_the_preview_shows_the_closing_invoice_the_run_makes_and_writes_nothing(scope):
    billed = _cancelled_now(scope)
    schedule = _schedule(billed.subscription)
    written = _written()

    with use_clock(FrozenClock(ELEVENTH + timedelta(seconds=30))):
        preview = services.preview_invoice(scope, billed.subscription)

    assert _written() == written
    unchanged = _schedule(billed.subscription)
    assert (unchanged.next_billing_at, unchanged.checked_at) == (
        schedule.next_billing_at,
        schedule.checked_at,
    )
    assert preview.period == Period(MARCH, APRIL)
    assert preview.usage_period == Period(MARCH, ELEVENTH)
    assert preview.composed is not None
    previewed = [(line.kind, line.net_amount.amount) for line in preview.composed.lines]

    sweep.run_sweep(ELEVENTH + timedelta(minutes=1))

    closing = _invoices(billed.subscription)[-1]
    made = [(line.kind, Decimal(line.net_amount)) for line in closing.lines.order_by("position")]
    assert made == previewed
    assert Decimal(closing.amount_due) == preview.composed.totals.amount_due.amount
    assert (closing.period_start, closing.period_end) == (preview.period.start, preview.period.end)
    with use_clock(FrozenClock(ELEVENTH + timedelta(minutes=2))), pytest.raises(services.NothingToInvoice):
        services.preview_invoice(scope, billed.subscription)


def _advance(api, clock, to):
    response = api.post(f"/v1/test_clocks/{clock}/advance", {"frozen_time": to.isoformat()})
    assert response.status_code == 200, response.content


def _on_test_clock(api, **plan_overrides):
    """A test clock at 1 March, a customer on it and a subscription, billed for March, the clock moved to
    11 March 10:00."""
    plan_id = plan(scope_of(api.tenant), **plan_overrides)
    clock = api.post("/v1/test_clocks", {"frozen_time": MARCH.isoformat()}).json()["id"]
    customer = api.post("/v1/customers", {**customer_data(timezone="Europe/Berlin"), "test_clock": clock})
    body = {"customer": customer.json()["id"], "plan": plan_id}
    subscription = api.post("/v1/subscriptions", body).json()["id"]
    _advance(api, clock, ELEVENTH)
    assert len(_invoices(subscription)) == 1
    return clock, plan_id, subscription


@pytest.mark.django_db
def test_on_a_test_clock_a_cancellation_is_due_at_the_clocks_time(api):
    clock, _plan, subscription = _on_test_clock(api, credit_unused_on_cancel=True)

    cancelled = api.post(f"/v1/subscriptions/{subscription}/cancel", {"mode": "now"})
    assert cancelled.status_code == 200, cancelled.content
    assert _schedule(subscription).next_billing_at == ELEVENTH
    upcoming = api.get(f"/v1/subscriptions/{subscription}/upcoming_invoice")
    assert upcoming.status_code == 200, upcoming.content

    _advance(api, clock, ELEVENTH + timedelta(minutes=1))

    _first, closing = _invoices(subscription)
    assert [line.kind for line in closing.lines.all()] == ["proration_credit"]
    # The credit of 21 of March's 31 days: -67.74 net, -80.61 with 19 % VAT.
    assert upcoming.json()["totals"]["grand_total"] == "-80.61"
    assert Decimal(closing.grand_total) == Decimal("-80.61")


@pytest.mark.django_db
def test_a_change_at_the_real_time_makes_a_test_clock_customer_due_at_the_clocks_time(api):
    _clock, plan_id, subscription = _on_test_clock(api)
    assert _schedule(subscription).next_billing_at == APRIL
    price = {"model": "flat", "amount": "120"}
    charge = {"code": "base", "name_en": "Base", "name_de": "Basis", "kind": "recurring", "price": price}
    edited = api.post(f"/v1/plans/{plan_id}", {"charges": [charge]})
    assert edited.status_code == 200, edited.content

    # A plan migration runs at the real time (here two days after the clock's) for every subscriber.
    with use_clock(FrozenClock(ELEVENTH + timedelta(days=2))):
        migrated = api.post(f"/v1/plans/{plan_id}/migrate", {"effective": "period_end"})
    assert migrated.json()["migrated"] == [subscription], migrated.content

    assert _schedule(subscription).next_billing_at == ELEVENTH
