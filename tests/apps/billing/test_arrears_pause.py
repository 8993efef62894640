"""A monthly plan paused in the middle of March, resumed on 20 April and cancelled now on 25 April: what each
invoice bills for the base fee, billed in arrears and in advance, with the rest of the period carried over
to the resume (``remaining``) or a new period begun on it (``restart``).

The plan costs 100.00 a month, periods follow the calendar in Berlin and the unused part is credited on a
cancellation. March has 31 days; the pause on 11 March leaves 21 of them (11-31 March) unused. Last, the
usage around a pause is billed once.
"""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from tests.apps.billing.support import APRIL, MARCH, MAY, calls, scope_of, subscribe
from turnus.apps.billing import sweep
from turnus.apps.billing.models import Invoice, InvoicedCharge
from turnus.apps.subscriptions import services as subscriptions
from turnus.apps.subscriptions.models import SubscriptionCharge
from turnus.core.clock import FrozenClock, use_clock

#: 11 March 2026, 10:00 in Berlin: the pause.
PAUSED = MARCH + timedelta(days=10, hours=10)
#: 20 April 2026: midnight in Berlin, and 10:00, the resume.
RESUME_DAY = datetime(2026, 4, 19, 22, 0, tzinfo=UTC)
RESUMED = RESUME_DAY + timedelta(hours=10)
#: 25 April 2026, 10:00 in Berlin: the cancellation.
CANCELLED = datetime(2026, 4, 25, 8, 0, tzinfo=UTC)
#: 11 May 2026 in Berlin: the end of the 21 days carried over from 20 April on.
REMAINDER_END = datetime(2026, 5, 10, 22, 0, tzinfo=UTC)

#: The base fee's lines (usage lines aside): kind, quantity, net amount, period.
BaseLine = tuple[str, Decimal, Decimal, datetime | None, datetime | None]


@pytest.fixture
def scope(tenant):
    return scope_of(tenant)


def _invoices(subscription: str) -> list[Invoice]:
    return list(Invoice.objects.filter(subscription__public_id=subscription, kind="invoice").order_by("pk"))


def _base_lines(invoice: Invoice) -> list[BaseLine]:
    return [
        (line.kind, Decimal(line.quantity), Decimal(line.net_amount), line.period_start, line.period_end)
        for line in invoice.lines.order_by("position")
        if line.kind != "usage"
    ]


def _uninvoiced(subscription: str) -> list[SubscriptionCharge]:
    invoiced = InvoicedCharge.objects.values("charge_id")
    return list(
        SubscriptionCharge.objects.filter(subscription__public_id=subscription).exclude(pk__in=invoiced)
    )


def _run(at: datetime) -> None:
    sweep.run_sweep(at + timedelta(minutes=1))


def _act(at: datetime, action, *args, **kwargs) -> None:
    """``action`` at ``at``, then the billing run a minute later."""
    with use_clock(FrozenClock(at)):
        action(*args, **kwargs)
    _run(at)


def _paused_and_resumed(scope, *, timing: str, mode: str) -> str:
    """Subscribed on 1 March, paused on 11 March, resumed on 20 April; the billing run runs after each
    step and on 1 April (while paused)."""
    with use_clock(FrozenClock(MARCH + timedelta(hours=1))):
        billed = subscribe(
            scope,
            billing_timing=timing,
            pause_resume=mode,
            credit_unused_on_cancel=True,
            customer={"locale": "en"},
        )
    _run(MARCH + timedelta(hours=1))
    _act(PAUSED, subscriptions.pause_subscription, scope, billed.subscription)
    _run(APRIL)
    _act(RESUMED, subscriptions.resume_subscription, scope, billed.subscription)
    return billed.subscription


def _cancel_now(scope, subscription: str, at: datetime = CANCELLED) -> None:
    _act(at, subscriptions.cancel_subscription, scope, subscription, mode="now")


# --- remaining: the 21 unused days of March are carried over to 20 April - 10 May ---------------------


@pytest.mark.django_db
def test_in_arrears_a_cancellation_now_in_a_resumed_remainder_credits_its_unused_days(scope):
    subscription = _paused_and_resumed(scope, timing="in_arrears", mode="remaining")

    # March's invoice comes with the first run after the resume and bills the fee of all of March: the 10
    # days used before the pause and the 21 carried over to 20 April - 10 May.
    [march] = _invoices(subscription)
    assert _base_lines(march) == [("used", 1, Decimal("100.00"), MARCH, APRIL)]
    assert march.lines.get().description == "Used time: Pro"

    _cancel_now(scope, subscription)

    # Of the 21 carried-over days, 20-24 April were used; the 16 days from 25 April (the day of the
    # cancellation counts) to 10 May are credited at March's price per day: 100.00 x 16 / 31 = 51.61.
    invoices = _invoices(subscription)
    assert [_base_lines(invoice) for invoice in invoices] == [
        [("used", 1, Decimal("100.00"), MARCH, APRIL)],
        [("proration_credit", 1, Decimal("-51.61"), CANCELLED, REMAINDER_END)],
    ]
    assert invoices[-1].lines.get().description == "Credit for unused time: Pro"
    # 15 days used (1-10 March, 20-24 April) of a 31-day month: 100.00 - 51.61 = 48.39, as in advance.
    assert sum(Decimal(invoice.tax_exclusive) for invoice in invoices) == Decimal("48.39")
    assert _uninvoiced(subscription) == []
    assert sweep.run_sweep(MAY + timedelta(days=40)).invoices_created == 0


@pytest.mark.django_db
def test_in_advance_a_cancellation_now_in_a_resumed_remainder_credits_its_unused_days(scope):
    subscription = _paused_and_resumed(scope, timing="in_advance", mode="remaining")
    [march] = _invoices(subscription)
    assert _base_lines(march) == [("recurring", 1, Decimal("100.00"), MARCH, APRIL)]

    _cancel_now(scope, subscription)

    march, closing = _invoices(subscription)
    assert _base_lines(closing) == [("proration_credit", 1, Decimal("-51.61"), CANCELLED, REMAINDER_END)]
    assert closing.lines.get().description == "Credit for unused time: Pro"
    assert Decimal(march.tax_exclusive) + Decimal(closing.tax_exclusive) == Decimal("48.39")
    assert _uninvoiced(subscription) == []
    assert sweep.run_sweep(MAY + timedelta(days=40)).invoices_created == 0


@pytest.mark.django_db
def test_in_arrears_a_remainder_resumed_and_cancelled_within_its_period_bills_the_used_days_once(scope):
    with use_clock(FrozenClock(MARCH + timedelta(hours=1))):
        billed = subscribe(scope, billing_timing="in_arrears", credit_unused_on_cancel=True)
    subscription = billed.subscription
    _act(PAUSED, subscriptions.pause_subscription, scope, subscription)
    # Resumed on 21 March: the 21 carried-over days run 21 March - 10 April.
    _act(MARCH + timedelta(days=20, hours=10), subscriptions.resume_subscription, scope, subscription)
    cancelled = MARCH + timedelta(days=25, hours=10)
    _cancel_now(scope, subscription, cancelled)

    # 1-10 and 21-25 March were used: the 16 days from 26 March to 10 April are credited,
    # 100.00 x 16 / 31 = 51.61, and March's invoice bills 100.00 - 51.61 = 48.39.
    [march] = _invoices(subscription)
    assert _base_lines(march) == [("used", 1, Decimal("48.39"), MARCH, cancelled)]
    assert _uninvoiced(subscription) == []
    assert sweep.run_sweep(MAY).invoices_created == 0


# --- restart: the 21 unused days are credited at the pause, a new period begins on 20 April -----------


@pytest.mark.django_db
def test_in_arrears_restart_bills_the_used_part_of_march_and_of_the_restarted_period(scope):
    subscription = _paused_and_resumed(scope, timing="in_arrears", mode="restart")
    # March: 100.00 less the 21 days from the pause, 100.00 x 21 / 31 = 67.74.
    [march] = _invoices(subscription)
    assert _base_lines(march) == [("used", 1, Decimal("32.26"), MARCH, PAUSED)]

    _cancel_now(scope, subscription)

    # The restarted period runs to 1 May: 11 of April's 30 days, 36.67; the 6 days from 25 April on are
    # credited, 100.00 x 6 / 30 = 20.00, so 20-24 April cost 16.67.
    march, restarted = _invoices(subscription)
    assert (restarted.period_start, restarted.period_end) == (RESUME_DAY, MAY)
    assert _base_lines(restarted) == [("used", 1, Decimal("16.67"), RESUME_DAY, CANCELLED)]
    assert restarted.lines.get().description == "Used time: Pro"
    assert Decimal(march.tax_exclusive) + Decimal(restarted.tax_exclusive) == Decimal("48.93")
    assert _uninvoiced(subscription) == []
    assert sweep.run_sweep(MAY + timedelta(days=40)).invoices_created == 0


@pytest.mark.django_db
def test_in_advance_restart_credits_march_at_the_resume_and_the_restarted_period_at_the_cancellation(scope):
    subscription = _paused_and_resumed(scope, timing="in_advance", mode="restart")
    march, restarted = _invoices(subscription)
    assert _base_lines(march) == [("recurring", 1, Decimal("100.00"), MARCH, APRIL)]
    assert _base_lines(restarted) == [
        ("proration_credit", 1, Decimal("-67.74"), PAUSED, APRIL),
        ("recurring", 1, Decimal("36.67"), RESUME_DAY, MAY),
    ]

    _cancel_now(scope, subscription)

    closing = _invoices(subscription)[-1]
    assert _base_lines(closing) == [("proration_credit", 1, Decimal("-20.00"), CANCELLED, MAY)]
    total = sum(Decimal(invoice.tax_exclusive) for invoice in _invoices(subscription))
    assert total == Decimal("48.93")
    assert _uninvoiced(subscription) == []


# --- usage around a pause, billed in arrears ------------------------------------------------------------


def _usage_billed(subscription: str) -> Decimal:
    lines = [line for invoice in _invoices(subscription) for line in invoice.lines.filter(kind="usage")]
    return sum((Decimal(line.quantity) for line in lines), Decimal(0))


@pytest.mark.django_db
def test_in_arrears_the_usage_of_a_resumed_remainder_is_billed_once(scope):
    with use_clock(FrozenClock(MARCH + timedelta(hours=1))):
        billed = subscribe(scope, billing_timing="in_arrears")
    calls(billed, 120, MARCH + timedelta(days=2), prefix="march")
    _act(PAUSED, subscriptions.pause_subscription, scope, billed.subscription)
    _act(RESUMED, subscriptions.resume_subscription, scope, billed.subscription)
    calls(billed, 150, RESUMED + timedelta(days=2), prefix="remainder")

    for day in range(0, 62, 2):
        _run(RESUMED + timedelta(days=day))

    assert _usage_billed(billed.subscription) == 270


@pytest.mark.django_db
def test_in_arrears_the_usage_of_a_period_restarted_within_the_paused_one_is_billed_once(scope):
    with use_clock(FrozenClock(MARCH + timedelta(hours=1))):
        billed = subscribe(scope, billing_timing="in_arrears", pause_resume="restart")
    _act(PAUSED, subscriptions.pause_subscription, scope, billed.subscription)
    _act(MARCH + timedelta(days=20, hours=10), subscriptions.resume_subscription, scope, billed.subscription)
    calls(billed, 150, MARCH + timedelta(days=22))

    _run(APRIL + timedelta(hours=1))

    assert _usage_billed(billed.subscription) == 150
