"""A subscription billed in advance that ends gets one closing invoice: the usage after its last invoice's
usage window up to the end, and the pending lifecycle charges its end created (a cancel-now credit)."""

from datetime import timedelta
from decimal import Decimal

import pytest

from tests.apps.billing.support import APRIL, MARCH, MAY, calls, scope_of, subscribe
from turnus.apps.billing import sweep
from turnus.apps.billing.models import BilledPeriod, BillingSchedule, Invoice
from turnus.apps.subscriptions import services as subscriptions
from turnus.apps.subscriptions.models import Subscription
from turnus.core.clock import FrozenClock, use_clock


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

    # The run looks at the subscription again when its interrupted period would have ended.
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
