from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from turnus.engine.errors import InvalidPeriod, InvalidPriceSpec, InvalidTransition
from turnus.engine.lifecycle import (
    CUT_SHORT,
    PAUSE_CARRIED,
    CancelMode,
    ChangeDirection,
    ChangeTiming,
    ContractTerms,
    ItemKind,
    LifecycleEvent,
    PauseResume,
    PlanTerms,
    Subscription,
    SubscriptionStatus,
    Transition,
    advance,
    advance_period,
    cancel,
    carried_over,
    change,
    compare_plans,
    create,
    earliest_cancellation,
    end_trial,
    next_event_at,
    pause,
    reactivate,
    resume,
    resumed_basis,
    start,
    used_items,
)
from turnus.engine.money import Money
from turnus.engine.periods import Anchoring, Interval, IntervalUnit, Period
from turnus.engine.proration import ProrationMode

TZ = "Europe/Berlin"
BERLIN = ZoneInfo(TZ)
MONTHLY = Interval(IntervalUnit.MONTH)
YEARLY = Interval(IntervalUnit.YEAR)


def berlin(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=BERLIN)


def eur(amount: str) -> Money:
    return Money(Decimal(amount), "EUR")


def plan(plan_id: str = "basic", price: str = "10.00", **terms: object) -> PlanTerms:
    interval = terms.pop("interval", MONTHLY)
    return PlanTerms(plan_id, eur(price), interval, **terms)  # type: ignore[arg-type]


BASIC = plan("basic", "10.00")
PRO = plan("pro", "20.00")


def subscribe(terms: PlanTerms = BASIC, quantity: str = "1", at: datetime | None = None, **kwargs: object):
    return create(terms, Decimal(quantity), TZ, at=at or berlin(2025, 4, 1, 9), **kwargs).subscription


def amounts(transition: Transition) -> list[tuple[ItemKind, Money]]:
    return [(item.kind, item.amount) for item in transition.items]


def period(start: datetime, end: datetime) -> Period:
    return Period(start, end)


# create, start and trial


def test_creating_a_subscription_starts_a_period_at_local_midnight_and_charges_it_in_advance():
    created = create(BASIC, Decimal(2), TZ, at=berlin(2025, 4, 1, 9))
    sub = created.subscription
    assert sub.status is SubscriptionStatus.ACTIVE
    assert sub.current_period == period(berlin(2025, 4, 1), berlin(2025, 5, 1))
    assert amounts(created) == [(ItemKind.RECURRING, eur("20.00"))]
    assert created.events == (LifecycleEvent.CREATED, LifecycleEvent.STARTED)
    assert next_event_at(sub) == berlin(2025, 5, 1)


def test_a_subscription_starting_in_the_future_is_pending_until_it_starts():
    created = create(BASIC, Decimal(1), TZ, at=berlin(2025, 4, 1), start_at=berlin(2025, 4, 15, 12))
    sub = created.subscription
    assert sub.status is SubscriptionStatus.PENDING
    assert created.items == ()
    assert sub.current_period is None
    assert next_event_at(sub) == berlin(2025, 4, 15, 12)
    with pytest.raises(InvalidTransition) as refused:
        start(sub, at=berlin(2025, 4, 10))
    assert refused.value.field == "at"
    started = start(sub, at=berlin(2025, 4, 15, 12))
    assert started.subscription.status is SubscriptionStatus.ACTIVE
    assert started.subscription.current_period == period(berlin(2025, 4, 15), berlin(2025, 5, 15))
    assert amounts(started) == [(ItemKind.RECURRING, eur("10.00"))]
    assert started.events == (LifecycleEvent.STARTED,)


def test_only_a_pending_subscription_can_start():
    with pytest.raises(InvalidTransition, match="pending") as refused:
        start(subscribe(), at=berlin(2025, 4, 2))
    assert refused.value.field == "status"


def test_a_trial_costs_nothing_and_converts_at_its_end():
    created = create(plan(trial_days=14), Decimal(1), TZ, at=berlin(2025, 4, 1, 9))
    sub = created.subscription
    assert sub.status is SubscriptionStatus.TRIALING
    assert created.items == ()
    assert sub.trial_end == berlin(2025, 4, 15)
    assert created.events == (LifecycleEvent.CREATED, LifecycleEvent.STARTED, LifecycleEvent.TRIAL_STARTED)
    converted = advance(sub, at=berlin(2025, 4, 15, 8))
    active = converted.subscription
    assert active.status is SubscriptionStatus.ACTIVE
    assert active.current_period == period(berlin(2025, 4, 15), berlin(2025, 5, 15))
    assert amounts(converted) == [(ItemKind.RECURRING, eur("10.00"))]
    assert converted.events == (LifecycleEvent.TRIAL_ENDED,)


def test_trial_days_given_at_creation_override_the_plans():
    sub = subscribe(plan(trial_days=14), trial_days=0)
    assert sub.status is SubscriptionStatus.ACTIVE


def test_ending_a_trial_early_starts_the_billing_cycle_that_day():
    sub = subscribe(plan(trial_days=30))
    ended = end_trial(sub, at=berlin(2025, 4, 5, 17))
    assert ended.subscription.current_period == period(berlin(2025, 4, 5), berlin(2025, 5, 5))
    assert ended.subscription.trial_end == berlin(2025, 4, 5, 17)
    assert amounts(ended) == [(ItemKind.RECURRING, eur("10.00"))]


def test_only_a_trialing_subscription_can_end_its_trial():
    with pytest.raises(InvalidTransition, match="trialing"):
        end_trial(subscribe(), at=berlin(2025, 4, 2))


def test_a_trial_cancelled_at_its_end_cannot_be_converted_early():
    sub = cancel(subscribe(plan(trial_days=30)), CancelMode.PERIOD_END, at=berlin(2025, 4, 2)).subscription
    with pytest.raises(InvalidTransition, match="reactivate") as refused:
        end_trial(sub, at=berlin(2025, 4, 3))
    assert refused.value.field == "cancel_at"


def test_a_change_scheduled_during_the_trial_applies_when_it_converts():
    sub = subscribe(plan(trial_days=14))
    scheduled = change(sub, new_plan=PRO, effective="period_end", at=berlin(2025, 4, 2)).subscription
    converted = advance(scheduled, at=berlin(2025, 4, 15))
    assert converted.subscription.plan == PRO
    assert amounts(converted) == [(ItemKind.RECURRING, eur("20.00"))]
    assert converted.events == (LifecycleEvent.CHANGED, LifecycleEvent.TRIAL_ENDED)


def test_changing_during_the_trial_or_before_the_start_moves_no_money():
    trialing = change(subscribe(plan(trial_days=14)), new_quantity=Decimal(3), at=berlin(2025, 4, 2))
    assert trialing.items == ()
    assert trialing.subscription.quantity == 3
    pending = create(BASIC, Decimal(1), TZ, at=berlin(2025, 4, 1), start_at=berlin(2025, 5, 1)).subscription
    changed = change(pending, new_plan=PRO, effective="period_end", at=berlin(2025, 4, 2))
    assert changed.items == ()
    assert changed.subscription.plan == PRO
    assert changed.events == (LifecycleEvent.CHANGED,)


# upgrades and downgrades


def test_upgrade_mid_period_by_day_credits_the_unused_days_and_charges_the_new_plan_for_them():
    sub = subscribe()
    upgraded = change(sub, new_plan=PRO, at=berlin(2025, 4, 10, 9))
    # April has 30 days; the 10th belongs to the new plan, so 21 days remain
    assert amounts(upgraded) == [
        (ItemKind.PRORATION_CREDIT, eur("-7.00")),
        (ItemKind.PRORATION_CHARGE, eur("14.00")),
    ]
    assert upgraded.subscription.plan == PRO
    assert upgraded.subscription.segment_start == berlin(2025, 4, 10, 9)
    assert upgraded.events == (LifecycleEvent.CHANGED,)
    credit, charge = upgraded.items
    assert credit.plan_id == "basic"
    assert charge.plan_id == "pro"
    assert credit.description == "lifecycle.upgrade.credit"
    assert charge.period == period(berlin(2025, 4, 10, 9), berlin(2025, 5, 1))


def test_upgrade_mid_period_by_second_splits_at_the_exact_instant():
    by_second = plan(proration=ProrationMode.SECOND)
    sub = subscribe(by_second)
    upgraded = change(sub, new_plan=plan("pro", "20.00", proration="second"), at=berlin(2025, 4, 10, 12))
    # 20.5 of 30 days remain: 10 x 20.5/30 = 6.833.., 20 x 20.5/30 = 13.666..
    assert amounts(upgraded) == [
        (ItemKind.PRORATION_CREDIT, eur("-6.83")),
        (ItemKind.PRORATION_CHARGE, eur("13.67")),
    ]


def test_more_seats_is_an_upgrade_that_applies_now():
    more = change(subscribe(quantity="2"), new_quantity=Decimal(5), at=berlin(2025, 4, 16))
    assert amounts(more) == [
        (ItemKind.PRORATION_CREDIT, eur("-10.00")),
        (ItemKind.PRORATION_CHARGE, eur("25.00")),
    ]
    assert more.subscription.quantity == 5


def test_downgrade_waits_for_the_period_end_by_default():
    sub = subscribe(PRO)
    scheduled = change(sub, new_plan=BASIC, at=berlin(2025, 4, 10))
    assert scheduled.items == ()
    assert scheduled.events == (LifecycleEvent.CHANGE_SCHEDULED,)
    assert scheduled.subscription.plan == PRO
    assert scheduled.subscription.scheduled_change is not None
    renewed = advance(scheduled.subscription, at=berlin(2025, 5, 1))
    assert renewed.subscription.plan == BASIC
    assert renewed.subscription.scheduled_change is None
    assert amounts(renewed) == [(ItemKind.RECURRING, eur("10.00"))]
    assert renewed.events == (LifecycleEvent.CHANGED, LifecycleEvent.PERIOD_RENEWED)


def test_downgrade_now_is_refused_unless_the_plan_allows_it():
    with pytest.raises(InvalidTransition, match="period end") as refused:
        change(subscribe(PRO), new_plan=BASIC, effective="now", at=berlin(2025, 4, 10))
    assert refused.value.field == "effective"


def test_downgrade_now_credits_the_unused_part_when_the_plan_says_so():
    generous = plan("pro", "20.00", allow_downgrade_now=True, credit_unused_on_downgrade=True)
    down = change(subscribe(generous), new_plan=BASIC, effective=ChangeTiming.NOW, at=berlin(2025, 4, 10))
    assert amounts(down) == [
        (ItemKind.PRORATION_CREDIT, eur("-14.00")),
        (ItemKind.PRORATION_CHARGE, eur("7.00")),
    ]
    assert down.items[0].description == "lifecycle.downgrade.credit"


def test_downgrade_now_without_credit_only_charges_the_new_plan():
    strict = plan("pro", "20.00", allow_downgrade_now=True, credit_unused_on_downgrade=False)
    down = change(subscribe(strict), new_plan=BASIC, effective="now", at=berlin(2025, 4, 10))
    assert amounts(down) == [(ItemKind.PRORATION_CHARGE, eur("7.00"))]


def test_an_upgrade_can_be_scheduled_for_the_period_end():
    scheduled = change(subscribe(), new_plan=PRO, effective="period_end", at=berlin(2025, 4, 10))
    assert scheduled.items == ()
    assert scheduled.subscription.scheduled_change is not None


def test_asking_for_the_current_plan_withdraws_a_scheduled_change():
    scheduled = change(subscribe(PRO), new_plan=BASIC, at=berlin(2025, 4, 10)).subscription
    withdrawn = change(scheduled, new_plan=PRO, at=berlin(2025, 4, 11))
    assert withdrawn.subscription.scheduled_change is None
    assert withdrawn.events == (LifecycleEvent.CHANGE_UNSCHEDULED,)


def test_a_new_billing_interval_starts_a_new_period_on_the_day_of_the_change():
    yearly = plan("yearly", "200.00", interval=YEARLY)
    switched = change(subscribe(), new_plan=yearly, at=berlin(2025, 4, 16, 10))
    assert switched.subscription.current_period == period(berlin(2025, 4, 16), berlin(2026, 4, 16))
    assert switched.subscription.billing_anchor == berlin(2025, 4, 16).date()
    assert amounts(switched) == [
        (ItemKind.PRORATION_CREDIT, eur("-5.00")),
        (ItemKind.RECURRING, eur("200.00")),
    ]


def test_a_scheduled_pause_survives_a_change_of_interval():
    scheduled = pause(subscribe(), at=berlin(2025, 4, 5), starts_at=berlin(2025, 6, 1)).subscription
    yearly = plan("yearly", "200.00", interval=YEARLY)
    switched = change(scheduled, new_plan=yearly, at=berlin(2025, 4, 16)).subscription
    assert switched.pause == scheduled.pause


def test_a_scheduled_change_of_interval_anchors_the_new_cycle_on_the_old_period_end():
    weekly = plan("weekly", "1.00", interval=Interval(IntervalUnit.WEEK))
    scheduled = change(subscribe(), new_plan=weekly, at=berlin(2025, 4, 10)).subscription
    renewed = advance(scheduled, at=berlin(2025, 5, 1))
    assert renewed.subscription.current_period == period(berlin(2025, 5, 1), berlin(2025, 5, 8))


def test_plans_compare_by_price_per_day_across_intervals():
    yearly = plan("yearly", "100.00", interval=YEARLY)
    day = berlin(2025, 4, 1).date()
    assert compare_plans(BASIC, Decimal(1), yearly, Decimal(1), day) is ChangeDirection.DOWNGRADE
    assert compare_plans(yearly, Decimal(1), BASIC, Decimal(1), day) is ChangeDirection.UPGRADE
    assert compare_plans(BASIC, Decimal(2), PRO, Decimal(1), day) is ChangeDirection.SAME_RATE


def test_a_same_rate_change_applies_now_and_nets_to_zero():
    twin = plan("twin", "10.00")
    same = change(subscribe(), new_plan=twin, at=berlin(2025, 4, 10))
    assert amounts(same) == [
        (ItemKind.PRORATION_CREDIT, eur("-7.00")),
        (ItemKind.PRORATION_CHARGE, eur("7.00")),
    ]
    assert same.items[0].description == "lifecycle.same_rate.credit"


@pytest.mark.parametrize(
    ("request_kwargs", "field", "reason"),
    [
        ({"new_plan": BASIC}, "new_plan", "already on"),
        ({}, "new_plan", "name a new plan"),
        ({"new_quantity": Decimal(-1)}, "quantity", "negative"),
        ({"new_quantity": 1.5}, "quantity", "float"),
        ({"new_plan": "pro"}, "new_plan", "PlanTerms"),
        ({"new_plan": PlanTerms("usd", Money(Decimal(20), "USD"), MONTHLY)}, "new_plan", "USD"),
        ({"new_plan": PRO, "effective": "tomorrow"}, "effective", "one of"),
    ],
)
def test_impossible_changes_are_refused_naming_the_field(request_kwargs, field, reason):
    with pytest.raises(InvalidTransition, match=reason) as refused:
        change(subscribe(), at=berlin(2025, 4, 10), **request_kwargs)
    assert refused.value.field == field


def test_a_paused_or_cancelled_subscription_cannot_be_changed():
    paused = pause(subscribe(), at=berlin(2025, 4, 10)).subscription
    with pytest.raises(InvalidTransition, match="resume it first"):
        change(paused, new_plan=PRO, at=berlin(2025, 4, 11))
    cancelled = cancel(subscribe(), "now", at=berlin(2025, 4, 10)).subscription
    with pytest.raises(InvalidTransition, match="cancelled subscription cannot be changed"):
        change(cancelled, new_plan=PRO, at=berlin(2025, 4, 11))


def test_plans_compared_in_different_currencies_are_refused():
    usd = PlanTerms("usd", Money(Decimal(20), "USD"), MONTHLY)
    with pytest.raises(InvalidTransition, match="USD"):
        compare_plans(BASIC, Decimal(1), usd, Decimal(1), berlin(2025, 4, 1).date())


# cancellation


def test_cancel_now_without_credit_stops_at_once_and_gives_nothing_back():
    cancelled = cancel(subscribe(), CancelMode.NOW, at=berlin(2025, 4, 10, 9))
    sub = cancelled.subscription
    assert sub.status is SubscriptionStatus.CANCELLED
    assert sub.ended_at == sub.cancel_at == sub.cancelled_at == berlin(2025, 4, 10, 9)
    assert sub.current_period is None
    assert cancelled.items == ()
    assert cancelled.events == (LifecycleEvent.CANCELLED,)
    assert next_event_at(sub) is None


def test_cancel_now_with_credit_returns_the_unused_prepaid_days():
    cancelled = cancel(subscribe(plan(credit_unused_on_cancel=True)), "now", at=berlin(2025, 4, 10, 9))
    assert amounts(cancelled) == [(ItemKind.PRORATION_CREDIT, eur("-7.00"))]
    assert cancelled.items[0].description == "lifecycle.cancel.credit"


def test_cancel_at_period_end_can_be_reactivated_before_it_takes_effect():
    scheduled = cancel(subscribe(), CancelMode.PERIOD_END, at=berlin(2025, 4, 10))
    sub = scheduled.subscription
    assert sub.status is SubscriptionStatus.ACTIVE
    assert sub.cancel_at == berlin(2025, 5, 1)
    assert sub.cancelled_at == berlin(2025, 4, 10)
    assert scheduled.events == (LifecycleEvent.CANCELLATION_SCHEDULED,)
    reactivated = reactivate(sub, at=berlin(2025, 4, 20))
    assert reactivated.subscription.cancel_at is None
    assert reactivated.events == (LifecycleEvent.REACTIVATED,)
    renewed = advance(reactivated.subscription, at=berlin(2025, 5, 1))
    assert renewed.subscription.status is SubscriptionStatus.ACTIVE


def test_a_cancellation_at_period_end_ends_the_subscription_without_a_new_charge():
    scheduled = cancel(subscribe(), "period_end", at=berlin(2025, 4, 10)).subscription
    ended = advance(scheduled, at=berlin(2025, 5, 3))
    assert ended.subscription.status is SubscriptionStatus.ENDED
    assert ended.subscription.ended_at == berlin(2025, 5, 1)
    assert ended.items == ()
    assert ended.events == (LifecycleEvent.ENDED,)
    with pytest.raises(InvalidTransition, match="ended subscription cannot be reactivated"):
        reactivate(ended.subscription, at=berlin(2025, 5, 4))


def test_a_cancellation_cannot_be_scheduled_twice_but_can_be_made_immediate():
    scheduled = cancel(subscribe(), "period_end", at=berlin(2025, 4, 10)).subscription
    with pytest.raises(InvalidTransition, match="already ends") as refused:
        cancel(scheduled, "contract_end", at=berlin(2025, 4, 11))
    assert refused.value.field == "mode"
    assert (
        cancel(scheduled, "now", at=berlin(2025, 4, 11)).subscription.status is SubscriptionStatus.CANCELLED
    )


def test_reactivating_without_a_scheduled_cancellation_is_refused():
    with pytest.raises(InvalidTransition, match="no scheduled cancellation") as refused:
        reactivate(subscribe(), at=berlin(2025, 4, 2))
    assert refused.value.field == "cancel_at"


def test_a_pending_subscription_is_cancelled_at_once_whatever_the_mode():
    pending = create(BASIC, Decimal(1), TZ, at=berlin(2025, 4, 1), start_at=berlin(2025, 5, 1)).subscription
    cancelled = cancel(pending, "contract_end", at=berlin(2025, 4, 2))
    assert cancelled.subscription.status is SubscriptionStatus.CANCELLED
    assert earliest_cancellation(pending, berlin(2025, 4, 2)) == berlin(2025, 4, 2)


def test_a_trial_cancelled_at_period_end_ends_with_the_trial():
    sub = subscribe(plan(trial_days=14))
    assert earliest_cancellation(sub, berlin(2025, 4, 2)) == berlin(2025, 4, 15)
    scheduled = cancel(sub, "period_end", at=berlin(2025, 4, 2)).subscription
    ended = advance(scheduled, at=berlin(2025, 4, 20))
    assert ended.subscription.status is SubscriptionStatus.ENDED
    assert ended.items == ()


def test_a_cancelled_subscription_cannot_be_cancelled_again():
    cancelled = cancel(subscribe(), "now", at=berlin(2025, 4, 2)).subscription
    with pytest.raises(InvalidTransition, match="stopped") as refused:
        cancel(cancelled, "now", at=berlin(2025, 4, 3))
    assert refused.value.field == "status"
    with pytest.raises(InvalidTransition):
        earliest_cancellation(cancelled, berlin(2025, 4, 3))


def test_cancelling_with_an_unknown_mode_is_refused():
    with pytest.raises(InvalidTransition, match="mode must be one of"):
        cancel(subscribe(), "whenever", at=berlin(2025, 4, 2))


# contract terms and notice


YEAR_CONTRACT = ContractTerms(
    initial_term=Interval(IntervalUnit.MONTH, 12),
    initial_notice=Interval(IntervalUnit.MONTH),
    renewal_term=Interval(IntervalUnit.MONTH),
    renewal_notice=Interval(IntervalUnit.WEEK, 2),
)


def contracted(contract: ContractTerms = YEAR_CONTRACT, **terms: object) -> Subscription:
    return subscribe(plan(contract=contract, **terms), at=berlin(2025, 1, 1, 9))


def test_a_cancellation_in_time_ends_the_subscription_with_the_initial_term():
    sub = contracted()
    assert sub.contract_end == berlin(2026, 1, 1)
    assert earliest_cancellation(sub, berlin(2025, 11, 15)) == berlin(2026, 1, 1)
    assert earliest_cancellation(sub, berlin(2025, 12, 1)) == berlin(2026, 1, 1)
    scheduled = cancel(sub, CancelMode.CONTRACT_END, at=berlin(2025, 11, 15))
    assert scheduled.subscription.cancel_at == berlin(2026, 1, 1)
    ended = advance(scheduled.subscription, at=berlin(2026, 1, 1))
    assert ended.subscription.status is SubscriptionStatus.ENDED
    assert LifecycleEvent.CONTRACT_RENEWED not in ended.events


def test_a_cancellation_too_late_lets_the_term_renew_and_ends_with_the_renewal_term():
    sub = contracted()
    assert earliest_cancellation(sub, berlin(2025, 12, 1, 0, 1)) == berlin(2026, 2, 1)
    scheduled = cancel(sub, "contract_end", at=berlin(2025, 12, 15)).subscription
    assert scheduled.cancel_at == berlin(2026, 2, 1)
    renewed = advance(scheduled, at=berlin(2026, 1, 1))
    assert LifecycleEvent.CONTRACT_RENEWED in renewed.events
    assert renewed.subscription.contract_end == berlin(2026, 2, 1)
    assert renewed.subscription.contract_renewals == 1


def test_renewal_terms_carry_their_own_notice_period():
    renewed = advance(contracted(), at=berlin(2026, 1, 2)).subscription
    assert earliest_cancellation(renewed, berlin(2026, 1, 18)) == berlin(2026, 2, 1)
    assert earliest_cancellation(renewed, berlin(2026, 1, 19)) == berlin(2026, 3, 1)


def test_without_a_contract_the_earliest_end_is_the_current_period_end():
    assert earliest_cancellation(subscribe(), berlin(2025, 4, 29)) == berlin(2025, 5, 1)


def test_a_notice_period_without_a_term_pushes_the_end_to_a_later_period_end():
    notice_only = subscribe(plan(contract=ContractTerms(initial_notice=Interval(IntervalUnit.WEEK))))
    assert earliest_cancellation(notice_only, berlin(2025, 4, 20)) == berlin(2025, 5, 1)
    assert earliest_cancellation(notice_only, berlin(2025, 4, 25)) == berlin(2025, 6, 1)


def test_after_an_initial_term_without_renewal_term_the_subscription_runs_on_with_renewal_notice():
    terms = ContractTerms(
        initial_term=Interval(IntervalUnit.MONTH, 3), renewal_notice=Interval(IntervalUnit.MONTH)
    )
    sub = contracted(terms)
    assert earliest_cancellation(sub, berlin(2025, 3, 15)) == berlin(2025, 4, 1)
    after = advance(sub, at=berlin(2025, 4, 2))
    assert LifecycleEvent.CONTRACT_TERM_ENDED in after.events
    assert after.subscription.contract_end is None
    assert earliest_cancellation(after.subscription, berlin(2025, 4, 2)) == berlin(2025, 6, 1)


def test_a_notice_too_late_for_an_initial_term_without_renewal_term_ends_after_that_term():
    terms = ContractTerms(
        initial_term=Interval(IntervalUnit.MONTH, 3), initial_notice=Interval(IntervalUnit.MONTH)
    )
    sub = contracted(terms)
    assert earliest_cancellation(sub, berlin(2025, 2, 15)) == berlin(2025, 4, 1)
    assert earliest_cancellation(sub, berlin(2025, 3, 15)) == berlin(2025, 5, 1)


def test_a_contract_end_inside_a_billing_period_credits_the_rest_of_that_period_when_it_ends():
    quarterly = ContractTerms(
        initial_term=Interval(IntervalUnit.MONTH, 3), renewal_term=Interval(IntervalUnit.MONTH, 3)
    )
    sub = contracted(quarterly, interval=YEARLY, price="120.00")
    by_contract = cancel(sub, "contract_end", at=berlin(2025, 2, 1)).subscription
    by_period = cancel(sub, "period_end", at=berlin(2025, 2, 1)).subscription
    assert by_contract.cancel_at == berlin(2025, 4, 1)
    assert by_period.cancel_at == berlin(2026, 1, 1)
    ended = advance(by_contract, at=berlin(2025, 4, 1))
    # 275 of 365 days remain after 1 April
    assert amounts(ended) == [(ItemKind.PRORATION_CREDIT, eur("-90.41"))]
    assert ended.items[0].description == "lifecycle.end.credit"


def test_contract_terms_need_an_initial_term_before_a_renewal_term():
    with pytest.raises(InvalidPeriod) as refused:
        ContractTerms(renewal_term=MONTHLY)
    assert refused.value.field == "renewal_term"
    with pytest.raises(InvalidPeriod):
        ContractTerms(initial_term="12 months")  # type: ignore[arg-type]


# pause and resume


def test_an_open_ended_pause_stops_the_period_and_resuming_continues_with_the_remaining_days():
    paused = pause(subscribe(), at=berlin(2025, 4, 21, 10))
    sub = paused.subscription
    assert sub.status is SubscriptionStatus.PAUSED
    assert paused.items == ()
    assert sub.current_period is None
    assert sub.pause is not None
    assert sub.pause.remaining_days == 10
    assert next_event_at(sub) is None
    assert advance(sub, at=berlin(2025, 6, 1)).subscription.status is SubscriptionStatus.PAUSED
    resumed = resume(sub, at=berlin(2025, 6, 10, 15))
    active = resumed.subscription
    assert active.status is SubscriptionStatus.ACTIVE
    assert active.current_period == period(berlin(2025, 6, 10), berlin(2025, 6, 20))
    assert resumed.items == ()
    assert resumed.events == (LifecycleEvent.RESUMED,)
    renewed = advance(active, at=berlin(2025, 6, 20))
    assert renewed.subscription.current_period == period(berlin(2025, 6, 20), berlin(2025, 7, 20))
    assert amounts(renewed) == [(ItemKind.RECURRING, eur("10.00"))]


def test_a_resumed_remainder_is_prorated_as_the_share_of_the_period_it_was():
    sub = pause(subscribe(), at=berlin(2025, 4, 21, 10)).subscription
    active = resume(sub, at=berlin(2025, 6, 10)).subscription
    upgraded = change(active, new_plan=PRO, at=berlin(2025, 6, 15))
    # 5 of the 10 carried days remain, of a 30-day period
    assert amounts(upgraded) == [
        (ItemKind.PRORATION_CREDIT, eur("-1.67")),
        (ItemKind.PRORATION_CHARGE, eur("3.33")),
    ]


def test_a_resumed_remainder_by_second_is_worth_what_was_left_unused():
    by_second = plan(proration="second", credit_unused_on_cancel=True)
    sub = pause(subscribe(by_second), at=berlin(2025, 4, 16)).subscription
    active = resume(sub, at=berlin(2025, 6, 1)).subscription
    cancelled = cancel(active, "now", at=berlin(2025, 6, 1))
    assert amounts(cancelled) == [(ItemKind.PRORATION_CREDIT, eur("-5.00"))]


def test_a_pause_with_a_resume_date_resumes_by_itself():
    paused = pause(subscribe(), at=berlin(2025, 4, 21), resume_at=berlin(2025, 5, 5, 12)).subscription
    assert next_event_at(paused) == berlin(2025, 5, 5, 12)
    resumed = advance(paused, at=berlin(2025, 5, 6))
    assert resumed.subscription.current_period == period(berlin(2025, 5, 5), berlin(2025, 5, 15))
    assert resumed.events == (LifecycleEvent.RESUMED,)


def test_restart_mode_credits_the_unused_part_and_begins_a_new_period_on_resume():
    restarting = plan(pause_resume=PauseResume.RESTART)
    paused = pause(subscribe(restarting), at=berlin(2025, 4, 21, 10))
    assert amounts(paused) == [(ItemKind.PRORATION_CREDIT, eur("-3.33"))]
    assert paused.items[0].description == "lifecycle.pause.credit"
    resumed = resume(paused.subscription, at=berlin(2025, 6, 10, 15))
    assert resumed.subscription.current_period == period(berlin(2025, 6, 10), berlin(2025, 7, 10))
    assert amounts(resumed) == [(ItemKind.RECURRING, eur("10.00"))]


def test_a_scheduled_pause_begins_by_itself_and_can_be_withdrawn():
    sub = subscribe()
    scheduled = pause(sub, at=berlin(2025, 4, 5), starts_at=berlin(2025, 4, 21))
    assert scheduled.events == (LifecycleEvent.PAUSE_SCHEDULED,)
    assert scheduled.subscription.status is SubscriptionStatus.ACTIVE
    begun = advance(scheduled.subscription, at=berlin(2025, 4, 22))
    assert begun.subscription.status is SubscriptionStatus.PAUSED
    assert begun.subscription.pause is not None
    assert begun.subscription.pause.remaining_days == 10
    withdrawn = resume(scheduled.subscription, at=berlin(2025, 4, 6))
    assert withdrawn.events == (LifecycleEvent.PAUSE_UNSCHEDULED,)
    assert withdrawn.subscription.pause is None


def test_a_pause_from_the_period_end_carries_nothing_and_resumes_with_a_fresh_period():
    scheduled = pause(subscribe(), at=berlin(2025, 4, 5), starts_at=berlin(2025, 5, 1)).subscription
    paused = advance(scheduled, at=berlin(2025, 5, 2))
    assert paused.items == ()
    assert paused.subscription.pause is not None
    assert paused.subscription.pause.unused is None
    resumed = resume(paused.subscription, at=berlin(2025, 5, 20))
    assert resumed.subscription.current_period == period(berlin(2025, 5, 20), berlin(2025, 6, 20))
    assert amounts(resumed) == [(ItemKind.RECURRING, eur("10.00"))]


def test_cancelling_a_paused_subscription_credits_the_carried_days_when_the_plan_says_so():
    paused = pause(subscribe(plan(credit_unused_on_cancel=True)), at=berlin(2025, 4, 21)).subscription
    assert amounts(cancel(paused, "now", at=berlin(2025, 5, 10))) == [
        (ItemKind.PRORATION_CREDIT, eur("-3.33"))
    ]
    restarting = pause(
        subscribe(plan(pause_resume="restart", credit_unused_on_cancel=True)), at=berlin(2025, 4, 21)
    )
    assert cancel(restarting.subscription, "now", at=berlin(2025, 5, 10)).items == ()


def _spans(transition: Transition) -> list[tuple[ItemKind, Money, Period, str]]:
    return [(item.kind, item.amount, item.period, item.description) for item in transition.items]


def test_a_cancellation_now_in_a_resumed_remainder_credits_days_that_no_recurring_item_covers():
    monthly = plan("monthly", "100.00", credit_unused_on_cancel=True)
    created = create(monthly, Decimal(1), TZ, at=berlin(2026, 3, 1, 9))
    march = period(berlin(2026, 3, 1), berlin(2026, 4, 1))
    assert _spans(created) == [(ItemKind.RECURRING, eur("100.00"), march, "lifecycle.recurring")]
    # Paused on 11 March: 11-31 March (21 days) are carried over; neither the pause nor the resume moves
    # money, so no item of the lifecycle names the remainder's 21 days from 20 April on.
    paused = pause(created.subscription, at=berlin(2026, 3, 11, 10))
    assert paused.items == ()
    resumed = resume(paused.subscription, at=berlin(2026, 4, 20, 10))
    assert resumed.items == ()
    remainder = resumed.subscription
    assert remainder.current_period == period(berlin(2026, 4, 20), berlin(2026, 5, 11))
    assert remainder.proration_basis == period(berlin(2026, 4, 10), berlin(2026, 5, 11))

    cancelled = cancel(remainder, "now", at=berlin(2026, 4, 25, 10))

    # 25 April - 10 May: 16 of the 31 days March's 100.00 paid for.
    unused = period(berlin(2026, 4, 25, 10), berlin(2026, 5, 11))
    assert _spans(cancelled) == [
        (ItemKind.PRORATION_CREDIT, eur("-51.61"), unused, "lifecycle.cancel.credit")
    ]
    assert "lifecycle.cancel.credit" in CUT_SHORT
    assert not march.contains(unused.start)
    # Billed in arrears by the engine's own measure, 20-24 April are the used part; used and credited
    # add up to the carried-over share of March's fee, 100.00 x 21 / 31 = 67.74.
    [used] = used_items(remainder, berlin(2026, 4, 25, 10))
    assert (used.kind, used.amount, used.period) == (
        ItemKind.USED,
        eur("16.13"),
        period(berlin(2026, 4, 20), berlin(2026, 4, 25, 10)),
    )
    assert used.amount - cancelled.items[0].amount == eur("67.74")


def test_billed_in_arrears_a_pause_carrying_days_over_credits_them_for_the_remainder_to_bill():
    monthly = plan("monthly", "100.00")
    created = create(monthly, Decimal(1), TZ, at=berlin(2026, 3, 1, 9))
    assert carried_over(created.subscription) == ()
    paused = pause(created.subscription, at=berlin(2026, 3, 11, 10)).subscription

    # 11-31 March, 21 of March's 31 days: 100.00 x 21 / 31 = 67.74 off March's fee, 32.26 left for the
    # 10 days used, as in restart mode; the state is not changed.
    unused = period(berlin(2026, 3, 11, 10), berlin(2026, 4, 1))
    assert _spans(Transition(paused, carried_over(paused))) == [
        (ItemKind.PRORATION_CREDIT, eur("-67.74"), unused, PAUSE_CARRIED)
    ]
    assert PAUSE_CARRIED not in CUT_SHORT
    by_second = pause(subscribe(plan(proration="second")), at=berlin(2025, 4, 16)).subscription
    assert amounts(Transition(by_second, carried_over(by_second))) == [
        (ItemKind.PRORATION_CREDIT, eur("-5.00"))
    ]
    restarting = pause(subscribe(plan(pause_resume="restart")), at=berlin(2025, 4, 21)).subscription
    assert carried_over(restarting) == ()


def test_in_restart_mode_a_cancellation_now_credits_a_part_of_the_period_the_resume_charged():
    restarting = plan("monthly", "100.00", credit_unused_on_cancel=True, pause_resume="restart")
    created = create(restarting, Decimal(1), TZ, at=berlin(2026, 3, 1, 9))
    paused = pause(created.subscription, at=berlin(2026, 3, 11, 10))
    assert _spans(paused) == [
        (
            ItemKind.PRORATION_CREDIT,
            eur("-67.74"),
            period(berlin(2026, 3, 11, 10), berlin(2026, 4, 1)),
            "lifecycle.pause.credit",
        )
    ]
    resumed = resume(paused.subscription, at=berlin(2026, 4, 20, 10))
    restarted = period(berlin(2026, 4, 20), berlin(2026, 5, 20))
    assert _spans(resumed) == [(ItemKind.RECURRING, eur("100.00"), restarted, "lifecycle.recurring")]

    cancelled = cancel(resumed.subscription, "now", at=berlin(2026, 4, 25, 10))

    # 25 April - 19 May: 25 of the restarted period's 30 days.
    unused = period(berlin(2026, 4, 25, 10), berlin(2026, 5, 20))
    assert _spans(cancelled) == [
        (ItemKind.PRORATION_CREDIT, eur("-83.33"), unused, "lifecycle.cancel.credit")
    ]
    assert restarted.contains(unused.start)
    assert unused.end == restarted.end


def test_a_paused_subscription_scheduled_to_end_ends_at_the_next_local_midnight_and_gets_its_days_back():
    paused = pause(subscribe(), at=berlin(2025, 4, 21)).subscription
    scheduled = cancel(paused, "period_end", at=berlin(2025, 5, 10, 15)).subscription
    assert scheduled.cancel_at == berlin(2025, 5, 11)
    ended = advance(scheduled, at=berlin(2025, 5, 11))
    assert ended.subscription.status is SubscriptionStatus.ENDED
    assert amounts(ended) == [(ItemKind.PRORATION_CREDIT, eur("-3.33"))]


def test_a_contract_term_renews_while_paused():
    paused = pause(contracted(), at=berlin(2025, 12, 20)).subscription
    renewed = advance(paused, at=berlin(2026, 1, 2))
    assert renewed.events == (LifecycleEvent.CONTRACT_RENEWED,)
    assert renewed.subscription.status is SubscriptionStatus.PAUSED


@pytest.mark.parametrize(
    ("kwargs", "field", "reason"),
    [
        ({"starts_at": berlin(2025, 4, 5)}, "starts_at", "in the past"),
        ({"resume_at": berlin(2025, 4, 10)}, "resume_at", "must be after"),
        ({"starts_at": datetime(2025, 4, 20)}, "starts_at", "timezone-aware"),  # noqa: DTZ001
        ({"resume_at": "tomorrow"}, "resume_at", "datetime"),
    ],
)
def test_impossible_pauses_are_refused_naming_the_field(kwargs, field, reason):
    with pytest.raises(InvalidTransition, match=reason) as refused:
        pause(subscribe(), at=berlin(2025, 4, 10), **kwargs)
    assert refused.value.field == field


def test_only_an_active_subscription_without_a_pending_pause_can_be_paused():
    cancelled = cancel(subscribe(), "now", at=berlin(2025, 4, 2)).subscription
    with pytest.raises(InvalidTransition, match="cancelled subscription cannot be paused"):
        pause(cancelled, at=berlin(2025, 4, 3))
    with pytest.raises(InvalidTransition, match="trialing"):
        pause(subscribe(plan(trial_days=7)), at=berlin(2025, 4, 3))
    scheduled = pause(subscribe(), at=berlin(2025, 4, 2), starts_at=berlin(2025, 4, 20)).subscription
    with pytest.raises(InvalidTransition, match="already scheduled"):
        pause(scheduled, at=berlin(2025, 4, 3))
    ending = cancel(subscribe(), "period_end", at=berlin(2025, 4, 2)).subscription
    with pytest.raises(InvalidTransition, match="before the pause would begin"):
        pause(ending, at=berlin(2025, 4, 3), starts_at=berlin(2025, 5, 2))


def test_resuming_an_active_subscription_is_refused():
    with pytest.raises(InvalidTransition, match="only a paused subscription can be resumed") as refused:
        resume(subscribe(), at=berlin(2025, 4, 3))
    assert refused.value.field == "status"


# renewal and anchors


def test_a_month_end_anchor_renews_on_the_last_day_of_short_months_and_returns_to_the_31st():
    sub = subscribe(at=berlin(2025, 1, 31, 9))
    assert sub.current_period == period(berlin(2025, 1, 31), berlin(2025, 2, 28))
    second = advance_period(sub, at=berlin(2025, 2, 28, 1)).subscription
    assert second.current_period == period(berlin(2025, 2, 28), berlin(2025, 3, 31))
    assert second.as_of == berlin(2025, 2, 28)
    third = advance_period(second, at=berlin(2025, 3, 31)).subscription
    assert third.current_period == period(berlin(2025, 3, 31), berlin(2025, 4, 30))


def test_advancing_a_period_before_its_end_or_without_a_period_is_refused():
    with pytest.raises(InvalidTransition, match="runs until"):
        advance_period(subscribe(), at=berlin(2025, 4, 20))
    paused = pause(subscribe(), at=berlin(2025, 4, 10)).subscription
    with pytest.raises(InvalidTransition, match="no running period"):
        advance_period(paused, at=berlin(2025, 6, 1))


def test_calendar_billing_charges_the_first_partial_period_prorated():
    calendar = plan("cal", "30.00", anchoring=Anchoring.CALENDAR)
    created = create(calendar, Decimal(1), TZ, at=berlin(2025, 4, 11, 14))
    assert created.subscription.current_period == period(berlin(2025, 4, 11), berlin(2025, 5, 1))
    assert amounts(created) == [(ItemKind.RECURRING, eur("20.00"))]
    renewed = advance(created.subscription, at=berlin(2025, 5, 1))
    assert amounts(renewed) == [(ItemKind.RECURRING, eur("30.00"))]


def test_periods_follow_local_midnight_across_daylight_saving_time():
    sub = subscribe(at=berlin(2025, 3, 1, 9))
    assert sub.current_period is not None
    assert sub.current_period.end - sub.current_period.start == timedelta(days=31) - timedelta(hours=1)


def test_a_catch_up_applies_every_due_period_in_order():
    caught = advance(subscribe(), at=berlin(2025, 7, 15))
    assert caught.events == (LifecycleEvent.PERIOD_RENEWED,) * 3
    assert [item.period.start for item in caught.items] == [berlin(2025, m, 1) for m in (5, 6, 7)]


# marks: the 0.00 items of a plan without a base fee


FREE = plan("free", "0.00", credit_unused_on_cancel=True)


def marks(transition: Transition) -> list[tuple[ItemKind, Money, str, Period]]:
    return [(item.kind, item.amount, item.description, item.period) for item in transition.items]


def test_every_paid_period_of_a_plan_without_a_base_fee_is_marked_by_a_zero_recurring_item():
    created = create(FREE, Decimal(1), TZ, at=berlin(2025, 4, 1, 9))
    april = period(berlin(2025, 4, 1), berlin(2025, 5, 1))
    assert marks(created) == [(ItemKind.RECURRING, eur("0.00"), "lifecycle.recurring", april)]
    renewed = advance(created.subscription, at=berlin(2025, 5, 1))
    may = period(berlin(2025, 5, 1), berlin(2025, 6, 1))
    assert marks(renewed) == [(ItemKind.RECURRING, eur("0.00"), "lifecycle.recurring", may)]
    # a fee of 0.00 because the quantity is 0 marks its periods too
    assert amounts(create(BASIC, Decimal(0), TZ, at=berlin(2025, 4, 1, 9))) == [
        (ItemKind.RECURRING, eur("0.00"))
    ]


def test_a_trial_and_a_resumed_remainder_are_not_marked_as_paid():
    trialing = create(plan("free", "0.00", trial_days=14), Decimal(1), TZ, at=berlin(2025, 4, 1, 9))
    assert trialing.items == ()
    converted = advance(trialing.subscription, at=berlin(2025, 4, 15))
    assert amounts(converted) == [(ItemKind.RECURRING, eur("0.00"))]
    paused = pause(subscribe(FREE), at=berlin(2025, 4, 21, 10))
    assert paused.items == ()
    resumed = resume(paused.subscription, at=berlin(2025, 6, 10))
    assert resumed.items == ()
    assert amounts(advance(resumed.subscription, at=berlin(2025, 6, 20))) == [
        (ItemKind.RECURRING, eur("0.00"))
    ]


def test_a_period_cut_short_by_a_cancellation_pause_or_end_is_marked_by_a_zero_credit_of_the_rest():
    rest = period(berlin(2025, 4, 21, 10), berlin(2025, 5, 1))
    cancelled = cancel(subscribe(FREE), "now", at=berlin(2025, 4, 21, 10))
    assert marks(cancelled) == [(ItemKind.PRORATION_CREDIT, eur("0.00"), "lifecycle.cancel.credit", rest)]
    assert cancel(subscribe(plan("free", "0.00")), "now", at=berlin(2025, 4, 21, 10)).items == ()
    restarting = plan("free", "0.00", pause_resume="restart")
    paused = pause(subscribe(restarting), at=berlin(2025, 4, 21, 10))
    assert marks(paused) == [(ItemKind.PRORATION_CREDIT, eur("0.00"), "lifecycle.pause.credit", rest)]
    # a calendar plan whose contract began on 15 April ends inside April 2026 and credits its rest
    calendar = plan("free", "0.00", anchoring=Anchoring.CALENDAR, contract=YEAR_CONTRACT)
    sub = subscribe(calendar, at=berlin(2025, 4, 15, 9))
    scheduled = cancel(sub, CancelMode.CONTRACT_END, at=berlin(2025, 6, 1)).subscription
    assert scheduled.cancel_at == berlin(2026, 4, 15)
    ended = advance(scheduled, at=berlin(2026, 4, 16))
    assert marks(ended)[-1] == (
        ItemKind.PRORATION_CREDIT,
        eur("0.00"),
        "lifecycle.end.credit",
        period(berlin(2026, 4, 15), berlin(2026, 5, 1)),
    )
    cuts = [*cancelled.items, *paused.items, ended.items[-1]]
    assert {item.description for item in cuts} == CUT_SHORT


def test_changes_and_the_used_part_of_a_plan_without_a_base_fee_move_no_zero_items():
    sub = subscribe(FREE)
    assert change(sub, new_plan=plan("twin", "0.00"), at=berlin(2025, 4, 10)).items == ()
    yearly = plan("yearly", "0.00", interval=YEARLY)
    restarted = change(sub, new_plan=yearly, effective="now", at=berlin(2025, 4, 10))
    assert amounts(restarted) == [(ItemKind.RECURRING, eur("0.00"))]
    assert used_items(sub, berlin(2025, 4, 16)) == ()


def test_the_resumed_basis_is_the_proration_basis_the_resumed_remainder_gets():
    by_second = plan(proration="second")
    paused = pause(subscribe(by_second), at=berlin(2025, 4, 16, 6)).subscription
    resumed = resume(paused, at=berlin(2025, 6, 1, 12)).subscription
    assert paused.pause is not None
    assert resumed.current_period is not None
    basis = resumed_basis(paused.pause, resumed.current_period, ProrationMode.SECOND, TZ)
    assert basis == resumed.proration_basis
    assert basis.end == resumed.current_period.end
    assert basis.duration > timedelta(days=30)


# in-arrears usage of the recurring fee


def test_used_items_bill_the_used_part_so_that_used_plus_credit_is_what_was_charged():
    sub = subscribe()
    used = used_items(sub, berlin(2025, 4, 16))
    assert amounts(Transition(sub, used)) == [(ItemKind.USED, eur("5.00"))]
    assert used[0].period == period(berlin(2025, 4, 1), berlin(2025, 4, 16))
    upgraded = change(sub, new_plan=PRO, at=berlin(2025, 4, 10)).subscription
    assert amounts(Transition(sub, used_items(upgraded, berlin(2025, 5, 1)))) == [
        (ItemKind.USED, eur("14.00"))
    ]
    assert used_items(upgraded, berlin(2025, 4, 10)) == ()
    assert used_items(pause(sub, at=berlin(2025, 4, 10)).subscription, berlin(2025, 4, 11)) == ()


def test_used_items_outside_the_current_segment_are_refused():
    with pytest.raises(InvalidTransition, match="outside") as refused:
        used_items(subscribe(), berlin(2025, 5, 2))
    assert refused.value.field == "at"


# input validation


@pytest.mark.parametrize(
    ("args", "kwargs", "field"),
    [
        ((BASIC, Decimal(-1), TZ), {"at": berlin(2025, 4, 1)}, "quantity"),
        ((BASIC, Decimal(1), "Mars/Olympus"), {"at": berlin(2025, 4, 1)}, "timezone"),
        ((BASIC, Decimal(1), None), {"at": berlin(2025, 4, 1)}, "timezone"),
        ((BASIC, Decimal(1), TZ), {"at": datetime(2025, 4, 1)}, "at"),  # noqa: DTZ001
        ((BASIC, Decimal(1), TZ), {"at": berlin(2025, 4, 2), "start_at": berlin(2025, 4, 1)}, "start_at"),
        ((BASIC, Decimal(1), TZ), {"at": berlin(2025, 4, 1), "trial_days": -1}, "trial_days"),
        (("basic", Decimal(1), TZ), {"at": berlin(2025, 4, 1)}, "plan"),
    ],
)
def test_creating_with_bad_input_is_refused_naming_the_field(args, kwargs, field):
    with pytest.raises(InvalidTransition) as refused:
        create(*args, **kwargs)
    assert refused.value.field == field


def test_a_transition_before_the_state_it_starts_from_is_refused():
    sub = subscribe(at=berlin(2025, 4, 10))
    with pytest.raises(InvalidTransition, match="before the subscription's state") as refused:
        cancel(sub, "now", at=berlin(2025, 4, 9))
    assert refused.value.field == "at"
    with pytest.raises(InvalidTransition, match="Subscription"):
        advance("sub_123", at=berlin(2025, 4, 9))  # type: ignore[arg-type]


def test_an_inconsistent_state_is_refused_rather_than_guessed():
    broken = replace(subscribe(), current_period=None)
    with pytest.raises(InvalidTransition, match="inconsistent") as refused:
        next_event_at(broken)
    assert refused.value.field == "current_period"


@pytest.mark.parametrize(
    ("kwargs", "error", "field"),
    [
        ({"plan_id": ""}, InvalidPriceSpec, "plan_id"),
        ({"recurring_price": eur("-1")}, InvalidPriceSpec, "recurring_price"),
        ({"interval": "month"}, InvalidPeriod, "interval"),
        ({"contract": None}, InvalidPeriod, "contract"),
        ({"trial_days": -3}, InvalidPeriod, "trial_days"),
        ({"anchoring": "fortnightly"}, InvalidPeriod, "anchoring"),
        ({"pause_resume": "later"}, InvalidPeriod, "pause_resume"),
    ],
)
def test_plan_terms_refuse_inconsistent_definitions(kwargs, error, field):
    values = {"plan_id": "p", "recurring_price": eur("1"), "interval": MONTHLY, **kwargs}
    with pytest.raises(error) as refused:
        PlanTerms(**values)  # type: ignore[arg-type]
    assert refused.value.field == field


def test_plan_terms_accept_their_settings_as_strings():
    terms = plan(anchoring="calendar", proration="second", pause_resume="restart")
    assert terms.anchoring is Anchoring.CALENDAR
    assert terms.proration is ProrationMode.SECOND
    assert terms.pause_resume is PauseResume.RESTART


# the state machine


MACHINE_PLANS = [
    plan("basic", "10.00"),
    plan("pro", "29.99", proration="second", allow_downgrade_now=True, credit_unused_on_cancel=True),
    plan("team", "7.77", pause_resume="restart", allow_downgrade_now=True, credit_unused_on_downgrade=False),
    plan("yearly", "99.00", interval=YEARLY, contract=YEAR_CONTRACT, credit_unused_on_cancel=True),
    plan(
        "calendar", "15.00", anchoring="calendar", trial_days=10, proration="second", pause_resume="restart"
    ),
    plan(
        "weekly",
        "3.00",
        interval=Interval(IntervalUnit.WEEK, 2),
        contract=ContractTerms(
            initial_term=Interval(IntervalUnit.MONTH, 3), renewal_notice=Interval(IntervalUnit.DAY, 10)
        ),
    ),
]
SECONDS = st.integers(min_value=0, max_value=20 * 86_400)


class SubscriptionLifecycle(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.sub: Subscription
        self.clock = datetime(2024, 12, 30, 7, 30, tzinfo=UTC)
        self.net = Decimal(0)
        self.was_terminal = False
        self.refused_fields: set[str | None] = set()

    @initialize(
        terms=st.sampled_from(MACHINE_PLANS),
        quantity=st.integers(min_value=0, max_value=4),
        timezone=st.sampled_from(["UTC", "Europe/Berlin", "America/New_York", "Pacific/Auckland"]),
        starts_in=st.one_of(st.just(0), SECONDS),
    )
    def subscribe(self, terms, quantity, timezone, starts_in):
        start_at = self.clock + timedelta(seconds=starts_in)
        self.record(create(terms, Decimal(quantity), timezone, at=self.clock, start_at=start_at))

    def record(self, transition: Transition) -> None:
        before, after = self.sub if hasattr(self, "sub") else None, transition.subscription
        if before is not None:
            assert after.as_of >= before.as_of
            assert not before.is_terminal or replace(after, as_of=before.as_of) == before
        for item in transition.items:
            assert item.amount.is_rounded
            assert item.quantity >= 0
            self.net += item.amount.amount
        self.sub = after

    def attempt(self, move) -> Transition | None:
        try:
            transition = move()
        except InvalidTransition as refused:
            self.refused_fields.add(refused.field)
            return None
        self.record(transition)
        return transition

    def tick(self, seconds: int) -> datetime:
        self.clock += timedelta(seconds=seconds)
        return self.clock

    @rule(seconds=SECONDS)
    def let_time_pass(self, seconds):
        self.attempt(lambda: advance(self.sub, at=self.tick(seconds)))

    @precondition(lambda self: self.sub.current_period is not None)
    @rule(extra=st.integers(min_value=0, max_value=3600))
    def roll_the_period(self, extra):
        ending = self.sub.current_period
        assert ending is not None
        self.clock = max(self.clock, ending.end + timedelta(seconds=extra))
        rolled = self.attempt(lambda: advance_period(self.sub, at=self.clock))
        assert rolled is not None
        now = self.sub.current_period
        if LifecycleEvent.PERIOD_RENEWED in rolled.events and now is not None:
            assert now.start == ending.end

    @rule(
        seconds=SECONDS,
        terms=st.none() | st.sampled_from(MACHINE_PLANS),
        quantity=st.none() | st.integers(min_value=-1, max_value=5),
        effective=st.sampled_from([None, "now", "period_end"]),
    )
    def change_plan(self, seconds, terms, quantity, effective):
        new_quantity = None if quantity is None else Decimal(quantity)
        at = self.tick(seconds)
        self.attempt(lambda: change(self.sub, terms, new_quantity, effective, at=at))

    @rule(seconds=SECONDS, starts_in=st.none() | SECONDS, lasts=st.none() | SECONDS)
    def pause_it(self, seconds, starts_in, lasts):
        at = self.tick(seconds)
        starts_at = None if starts_in is None else at + timedelta(seconds=starts_in)
        resume_at = None if lasts is None else (starts_at or at) + timedelta(seconds=lasts)
        self.attempt(lambda: pause(self.sub, at=at, starts_at=starts_at, resume_at=resume_at))

    @rule(seconds=SECONDS)
    def resume_it(self, seconds):
        self.attempt(lambda: resume(self.sub, at=self.tick(seconds)))

    @rule(seconds=SECONDS, mode=st.sampled_from(list(CancelMode)))
    def cancel_it(self, seconds, mode):
        at = self.tick(seconds)
        before = self.sub
        cancelled = self.attempt(lambda: cancel(self.sub, mode, at=at))
        if cancelled is not None and mode is not CancelMode.NOW and not before.is_terminal:
            end = self.sub.cancel_at
            assert end is None or end >= at

    @rule(seconds=SECONDS)
    def ask_for_the_earliest_end(self, seconds):
        at = self.tick(seconds)
        try:
            earliest = earliest_cancellation(self.sub, at)
        except InvalidTransition:
            return
        assert earliest >= at

    @rule(seconds=SECONDS)
    def reactivate_it(self, seconds):
        self.attempt(lambda: reactivate(self.sub, at=self.tick(seconds)))

    @rule(seconds=SECONDS)
    def end_the_trial(self, seconds):
        self.attempt(lambda: end_trial(self.sub, at=self.tick(seconds)))

    @rule(seconds=SECONDS)
    def start_it(self, seconds):
        self.attempt(lambda: start(self.sub, at=self.tick(seconds)))

    @invariant()
    def terminal_states_stay_terminal(self):
        if self.was_terminal:
            assert self.sub.is_terminal
        self.was_terminal = self.sub.is_terminal

    @invariant()
    def the_state_is_consistent_with_its_status(self):
        sub = self.sub
        assert sub.quantity >= 0
        due = next_event_at(sub)
        assert due is None or due > sub.as_of
        if sub.status in (SubscriptionStatus.TRIALING, SubscriptionStatus.ACTIVE):
            assert sub.current_period is not None
            assert sub.proration_basis is not None
            assert sub.segment_start is not None
            assert sub.current_period.contains(sub.as_of)
            assert sub.proration_basis.end == sub.current_period.end
            assert sub.proration_basis.start <= sub.current_period.start <= sub.segment_start <= sub.as_of
        else:
            assert sub.current_period is None
        if sub.status is SubscriptionStatus.PAUSED:
            assert sub.pause is not None
        if sub.status is SubscriptionStatus.PENDING:
            assert sub.as_of < sub.started_at
        if sub.is_terminal:
            assert sub.ended_at is not None
            assert due is None
        elif sub.cancel_at is not None:
            assert sub.cancel_at > sub.as_of

    @invariant()
    def every_refusal_names_a_field(self):
        assert None not in self.refused_fields

    @invariant()
    def credits_never_exceed_what_was_charged(self):
        assert self.net >= 0

    @invariant()
    def the_used_part_never_exceeds_the_period_fee(self):
        sub = self.sub
        if sub.status is SubscriptionStatus.ACTIVE:
            for item in used_items(sub, sub.as_of):
                assert Decimal(0) <= item.amount.amount <= sub.plan.fee(sub.quantity).rounded().amount


SubscriptionLifecycle.TestCase.settings = settings(max_examples=150, stateful_step_count=40, deadline=None)
test_subscription_lifecycle_keeps_its_invariants = SubscriptionLifecycle.TestCase
