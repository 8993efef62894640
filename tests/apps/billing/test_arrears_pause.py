"""A monthly plan paused in the middle of March, resumed on 20 April and cancelled now on 25 April: what each
invoice bills for the base fee, billed in arrears and in advance, with the rest of the period carried over
to the resume (``remaining``) or a new period begun on it (``restart``).

The plan costs 100.00 a month, periods follow the calendar in Berlin and the unused part is credited on a
cancellation. March has 31 days; the pause on 11 March leaves 21 of them (11-31 March) unused. Billed in
arrears, March's invoice comes at the end of March whatever the pause does, for the 10 days used before
it (100.00 - 100.00 x 21 / 31 = 32.26); the 21 days carried over (67.74) are billed with the remainder
they run in once it is over or cut short. Last, the usage around a pause is billed once.
"""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from tests.apps.billing.support import APRIL, MARCH, MAY, calls, scope_of, subscribe
from turnus.apps.billing import sweep
from turnus.apps.billing.models import BillingSchedule, Invoice, InvoicedCharge
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
#: 1 June 2026 in Berlin.
JUNE = datetime(2026, 5, 31, 22, 0, tzinfo=UTC)

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

    # March's invoice came with the run on 1 April, while paused: the 10 days used before the pause.
    [march] = _invoices(subscription)
    assert _base_lines(march) == [("used", 1, Decimal("32.26"), MARCH, PAUSED)]
    assert march.lines.get().description == "Used time: Pro"

    _cancel_now(scope, subscription)

    # Of the 21 carried-over days (67.74), 20-24 April were used; the 16 days from 25 April (the day of
    # the cancellation counts) to 10 May are credited at March's price per day: 100.00 x 16 / 31 = 51.61,
    # so the remainder's invoice bills 67.74 - 51.61 = 16.13 for 20-24 April.
    invoices = _invoices(subscription)
    assert [_base_lines(invoice) for invoice in invoices] == [
        [("used", 1, Decimal("32.26"), MARCH, PAUSED)],
        [("used", 1, Decimal("16.13"), RESUME_DAY, CANCELLED)],
    ]
    assert (invoices[-1].period_start, invoices[-1].period_end) == (RESUME_DAY, REMAINDER_END)
    assert invoices[-1].lines.get().description == "Used time: Pro"
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
    # 100.00 x 16 / 31 = 51.61. March's invoice bills both parts, each over the span it was used: the
    # 10 days before the pause, 32.26, and of the 21 carried over (67.74) the 5 before the cancellation,
    # 67.74 - 51.61 = 16.13; together 48.39.
    [march] = _invoices(subscription)
    assert _base_lines(march) == [
        ("used", 1, Decimal("32.26"), MARCH, PAUSED),
        ("used", 1, Decimal("16.13"), MARCH + timedelta(days=20), cancelled),
    ]
    assert Decimal(march.tax_exclusive) == Decimal("48.39")
    assert _uninvoiced(subscription) == []
    assert sweep.run_sweep(MAY).invoices_created == 0


def _paused_in_march(scope, *, credit: bool = True, **plan):
    """Billed in arrears, subscribed on 1 March, 120 calls on 3 March, paused on 11 March without a resume
    date; the billing run runs after each step."""
    with use_clock(FrozenClock(MARCH + timedelta(hours=1))):
        billed = subscribe(
            scope,
            billing_timing="in_arrears",
            credit_unused_on_cancel=credit,
            customer={"locale": "en"},
            **plan,
        )
    _run(MARCH + timedelta(hours=1))
    calls(billed, 120, MARCH + timedelta(days=2), prefix="march")
    _act(PAUSED, subscriptions.pause_subscription, scope, billed.subscription)
    return billed


def _usage(invoice: Invoice) -> list[tuple[Decimal, Decimal]]:
    return [(Decimal(line.quantity), Decimal(line.net_amount)) for line in invoice.lines.filter(kind="usage")]


def _base_total(subscription: str) -> Decimal:
    lines = [line for invoice in _invoices(subscription) for line in invoice.lines.exclude(kind="usage")]
    return sum((Decimal(line.net_amount) for line in lines), Decimal(0))


@pytest.mark.django_db
def test_in_arrears_an_open_ended_pause_bills_the_used_part_of_the_period_at_its_original_end(scope):
    billed = _paused_in_march(scope)
    assert _invoices(billed.subscription) == []
    schedule = BillingSchedule.objects.get(subscription__public_id=billed.subscription)
    assert schedule.next_billing_at == APRIL

    _run(APRIL)

    # The 10 days before the pause, 100.00 - 100.00 x 21 / 31 = 32.26, and their usage: 120 calls, the
    # first 100 free, 20 x 0.10 = 2.00.
    [march] = _invoices(billed.subscription)
    assert (march.period_start, march.period_end) == (MARCH, APRIL)
    assert _base_lines(march) == [("used", 1, Decimal("32.26"), MARCH, PAUSED)]
    assert march.lines.get(kind="used").description == "Used time: Pro"
    assert _usage(march) == [(Decimal(120), Decimal("2.00"))]
    assert Decimal(march.tax_exclusive) == Decimal("34.26")
    assert _uninvoiced(billed.subscription) == []
    assert sweep.run_sweep(MAY + timedelta(days=40)).invoices_created == 0


@pytest.mark.django_db
def test_in_arrears_a_remainder_resumed_after_the_original_end_is_billed_when_it_is_over(scope):
    billed = _paused_in_march(scope)
    _run(APRIL)
    _act(RESUMED, subscriptions.resume_subscription, scope, billed.subscription)
    calls(billed, 150, RESUMED + timedelta(days=2), prefix="remainder")
    _run(REMAINDER_END - timedelta(hours=1))
    assert len(_invoices(billed.subscription)) == 1

    _run(REMAINDER_END)

    # The 21 days carried over, 20 April - 10 May: 100.00 x 21 / 31 = 67.74, and their 150 calls, 5.00.
    [_, remainder] = _invoices(billed.subscription)
    assert (remainder.period_start, remainder.period_end) == (RESUME_DAY, REMAINDER_END)
    assert _base_lines(remainder) == [("used", 1, Decimal("67.74"), RESUME_DAY, REMAINDER_END)]
    assert _usage(remainder) == [(Decimal(150), Decimal("5.00"))]
    assert _base_total(billed.subscription) == Decimal("100.00")
    assert sweep.run_sweep(REMAINDER_END + timedelta(days=1)).invoices_created == 0

    # The period after it, 11-31 May, is 21 of May's 31 days: 67.74.
    _run(JUNE)
    following = _invoices(billed.subscription)[-1]
    assert _base_lines(following) == [("used", 1, Decimal("67.74"), REMAINDER_END, JUNE)]
    assert [(charge.kind, charge.period_start) for charge in _uninvoiced(billed.subscription)] == [
        ("recurring", JUNE)
    ]


@pytest.mark.django_db
def test_in_arrears_a_remainder_resumed_before_the_original_end_is_billed_after_it(scope):
    billed = _paused_in_march(scope)
    # Resumed on 21 March: the 21 carried-over days run 21 March - 10 April.
    resumed_day = MARCH + timedelta(days=20)
    remainder_end = datetime(2026, 4, 10, 22, 0, tzinfo=UTC)
    _act(resumed_day + timedelta(hours=10), subscriptions.resume_subscription, scope, billed.subscription)
    calls(billed, 30, MARCH + timedelta(days=24), prefix="late-march")
    calls(billed, 40, APRIL + timedelta(days=4), prefix="april")

    _run(APRIL)

    # March's invoice still comes at the end of March, with the fee of the 10 days before the pause and
    # the usage up to the end of March (120 + 30 calls, 5.00).
    [march] = _invoices(billed.subscription)
    assert _base_lines(march) == [("used", 1, Decimal("32.26"), MARCH, PAUSED)]
    assert _usage(march) == [(Decimal(150), Decimal("5.00"))]
    _run(remainder_end - timedelta(hours=1))
    assert len(_invoices(billed.subscription)) == 1

    _run(remainder_end)

    march, remainder = _invoices(billed.subscription)
    assert (remainder.period_start, remainder.period_end) == (resumed_day, remainder_end)
    assert _base_lines(remainder) == [("used", 1, Decimal("67.74"), resumed_day, remainder_end)]
    assert _usage(remainder) == [(Decimal(40), Decimal("0.00"))]
    assert _base_total(billed.subscription) == Decimal("100.00")
    assert sweep.run_sweep(remainder_end + timedelta(days=1)).invoices_created == 0


@pytest.mark.django_db
def test_in_arrears_a_remainder_cancelled_at_its_end_bills_all_of_it_then(scope):
    billed = _paused_in_march(scope)
    _run(APRIL)
    _act(RESUMED, subscriptions.resume_subscription, scope, billed.subscription)
    _act(CANCELLED, subscriptions.cancel_subscription, scope, billed.subscription, mode="period_end")
    assert len(_invoices(billed.subscription)) == 1

    _run(REMAINDER_END)

    [_, remainder] = _invoices(billed.subscription)
    assert _base_lines(remainder) == [("used", 1, Decimal("67.74"), RESUME_DAY, REMAINDER_END)]
    assert _base_total(billed.subscription) == Decimal("100.00")
    assert _uninvoiced(billed.subscription) == []
    assert sweep.run_sweep(MAY + timedelta(days=40)).invoices_created == 0


@pytest.mark.django_db
@pytest.mark.parametrize(("credit", "total"), [(True, Decimal("32.26")), (False, Decimal("100.00"))])
def test_in_arrears_a_cancellation_now_while_paused_after_the_original_end_settles_the_carried_days(
    scope, credit, total
):
    billed = _paused_in_march(scope, credit=credit)
    _run(APRIL)

    _cancel_now(scope, billed.subscription)

    # The carried-over days were never used: credited, they cost nothing more (100.00 - 67.74 in all, as
    # in advance); without the credit they are owed, 67.74, and March's fee is paid in full.
    invoices = _invoices(billed.subscription)
    assert _base_lines(invoices[0]) == [("used", 1, Decimal("32.26"), MARCH, PAUSED)]
    if not credit:
        assert _base_lines(invoices[1]) == [("used", 1, Decimal("67.74"), PAUSED, APRIL)]
    assert len(invoices) == (1 if credit else 2)
    assert _base_total(billed.subscription) == total
    assert _uninvoiced(billed.subscription) == []
    assert sweep.run_sweep(MAY + timedelta(days=40)).invoices_created == 0


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("credit", "line"),
    [
        (True, ("used", 1, Decimal("32.26"), MARCH, PAUSED)),
        (False, ("used", 1, Decimal("100.00"), MARCH, APRIL)),
    ],
)
def test_in_arrears_a_cancellation_now_while_paused_before_the_original_end_bills_march_at_once(
    scope, credit, line
):
    billed = _paused_in_march(scope, credit=credit)

    _cancel_now(scope, billed.subscription, MARCH + timedelta(days=15, hours=10))

    [march] = _invoices(billed.subscription)
    assert _base_lines(march) == [line]
    assert _uninvoiced(billed.subscription) == []
    assert sweep.run_sweep(MAY + timedelta(days=40)).invoices_created == 0


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("resumed", "cancelled"),
    [(RESUMED, CANCELLED), (MARCH + timedelta(days=20, hours=10), MARCH + timedelta(days=25, hours=10))],
)
def test_in_arrears_a_remainder_resumed_and_cancelled_between_two_runs_bills_the_used_days_once(
    scope, resumed, cancelled
):
    billed = _paused_in_march(scope)
    if resumed > APRIL:
        _run(APRIL)
    with use_clock(FrozenClock(resumed)):
        subscriptions.resume_subscription(scope, billed.subscription)

    _cancel_now(scope, billed.subscription, cancelled)

    # 10 days before the pause and 5 of the 21 carried over, the other 16 credited: 100.00 - 51.61.
    assert _base_total(billed.subscription) == Decimal("48.39")
    assert _uninvoiced(billed.subscription) == []
    assert sweep.run_sweep(MAY + timedelta(days=40)).invoices_created == 0


@pytest.mark.django_db
def test_in_arrears_a_pause_resumed_the_same_day_bills_both_parts_at_the_original_end(scope):
    billed = _paused_in_march(scope)
    _act(PAUSED + timedelta(hours=5), subscriptions.resume_subscription, scope, billed.subscription)

    _run(APRIL)

    # The 21 days from 11 March are carried over to 11 March itself: the remainder ends with March.
    pause_day = MARCH + timedelta(days=10)
    march, remainder = _invoices(billed.subscription)
    assert _base_lines(march) == [("used", 1, Decimal("32.26"), MARCH, PAUSED)]
    assert _base_lines(remainder) == [("used", 1, Decimal("67.74"), pause_day, APRIL)]
    assert [(charge.kind, charge.period_start) for charge in _uninvoiced(billed.subscription)] == [
        ("recurring", APRIL)
    ]


@pytest.mark.django_db
def test_in_arrears_a_remainder_paused_again_carries_its_own_rest_over_to_the_next_resume(scope):
    billed = _paused_in_march(scope)
    _run(APRIL)
    _act(RESUMED, subscriptions.resume_subscription, scope, billed.subscription)
    _act(CANCELLED, subscriptions.pause_subscription, scope, billed.subscription)

    # Paused again on 25 April: the remainder's invoice at its original end bills the 5 days used of it,
    # 67.74 - 100.00 x 16 / 31 = 16.13; its last 16 days (51.61) are carried over once more.
    _run(REMAINDER_END)
    [_, remainder] = _invoices(billed.subscription)
    assert _base_lines(remainder) == [("used", 1, Decimal("16.13"), RESUME_DAY, CANCELLED)]

    # Resumed on 20 May, they run 20 May - 4 June and are billed at their end.
    second_day = datetime(2026, 5, 19, 22, 0, tzinfo=UTC)
    second_end = datetime(2026, 6, 4, 22, 0, tzinfo=UTC)
    _act(second_day + timedelta(hours=10), subscriptions.resume_subscription, scope, billed.subscription)
    _run(second_end)
    last = _invoices(billed.subscription)[-1]
    assert _base_lines(last) == [("used", 1, Decimal("51.61"), second_day, second_end)]
    assert _base_total(billed.subscription) == Decimal("100.00")
    assert len(_invoices(billed.subscription)) == 3


@pytest.mark.django_db
def test_in_arrears_the_parts_of_a_period_split_by_a_pause_are_prorated_by_the_second(scope):
    billed = _paused_in_march(scope, proration_mode="second")
    _run(APRIL)
    _act(RESUMED, subscriptions.resume_subscription, scope, billed.subscription)

    _cancel_now(scope, billed.subscription)

    # March has 743 hours (summer time takes one); the 493 from the pause (11 March, 10:00) on are carried
    # over, 100.00 x 493 / 743 = 66.35, so March's invoice bills 33.65 for the 250 hours before it.
    # The remainder, 20 April - 10 May (504 hours), is that share of a basis of 504 x 743 / 493 = 759.58
    # hours; the 374 hours from 25 April, 10:00 on are credited, 100.00 x 374 / 759.58 = 49.24, and the
    # remainder bills 66.35 - 49.24 = 17.11.
    march, remainder = _invoices(billed.subscription)
    assert _base_lines(march) == [("used", 1, Decimal("33.65"), MARCH, PAUSED)]
    assert _base_lines(remainder) == [("used", 1, Decimal("17.11"), RESUME_DAY, CANCELLED)]
    # 100.00 - 49.24, as billed in advance.
    assert _base_total(billed.subscription) == Decimal("50.76")
    assert _uninvoiced(billed.subscription) == []


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
