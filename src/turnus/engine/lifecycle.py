"""The subscription lifecycle as pure functions: a state and a request in, the next state and its money out.

Every transition takes the current ``Subscription`` and the instant ``at`` it happens (never the clock)
and returns a ``Transition``: the new state, the ``LifecycleItem`` charges and credits the move causes,
and the ``LifecycleEvent`` names that happened. Before doing what was asked, each transition first
applies everything that fell due up to ``at`` (a pending start, a trial end, period renewals, a
scheduled change, pause, resume or end, a contract term renewal), exactly as ``advance`` does, so a
state handed back by any call is valid as of its ``as_of`` instant; its items and events come first.

Billing timing. Items assume the recurring fee is billed in advance: each period that begins yields a
``recurring`` item (prorated for a first calendar-aligned period), and a change, pause or cancellation
credits the unused prepaid part. A plan billed in arrears ignores ``recurring`` and proration items and
instead asks ``used_items(state, instant)`` for the used part of the current price segment, on the state
*before* the move that closes the segment (a change or cancellation now, a pause, ``advance_period``).
A pause in ``remaining`` mode moves no money, so billed in arrears it splits the interrupted period by
``carried_over``: its credit of the carried-over part (``PAUSE_CARRIED``) leaves the part used before the
pause for that period's invoice, and a charge of the same amount (``RESUME_CARRIED``) bills the carried
part with the remainder it runs in.

Marks. Items of 0.00 are left out, except two that mark a period for the fees billed with the recurring
fee (per-seat components, add-ons), which the caller bills for the same spans: the ``recurring`` item of
every paid period (none in a trial, none for the remainder a pause carried over) and the credit of the
unused part a cancellation, pause or end gives back (``CUT_SHORT``), made whenever that credit is due.

Time. Periods run ``[start, end)`` between local midnights of the customer's timezone. A pause takes
whole local days: in ``remaining`` mode the days from the pause day to the period end are carried over
and the resumed period ends that many days after the resume day; in ``restart`` mode the unused part is
credited at the pause and a new period begins at local midnight of the resume day.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from fractions import Fraction
from typing import NoReturn, TypeVar

from dateutil.relativedelta import relativedelta

from turnus.engine.errors import EngineError, InvalidPeriod, InvalidPriceSpec, InvalidTransition
from turnus.engine.money import Money, to_decimal
from turnus.engine.periods import (
    Anchoring,
    BillingCycle,
    Interval,
    Period,
    calendar_days,
    check_aware,
    check_timezone,
    local_date,
    local_midnight,
)
from turnus.engine.proration import ProrationMode, change_proration, prorate

_MICROSECOND = timedelta(microseconds=1)
_ONE_DAY = timedelta(days=1)

_E = TypeVar("_E", bound=StrEnum)
_T = TypeVar("_T")


class SubscriptionStatus(StrEnum):
    PENDING = "pending"
    TRIALING = "trialing"
    ACTIVE = "active"
    PAUSED = "paused"
    CANCELLED = "cancelled"
    ENDED = "ended"


TERMINAL_STATUSES = frozenset({SubscriptionStatus.CANCELLED, SubscriptionStatus.ENDED})


class PauseResume(StrEnum):
    REMAINING = "remaining"
    RESTART = "restart"


class ChangeTiming(StrEnum):
    NOW = "now"
    PERIOD_END = "period_end"


class CancelMode(StrEnum):
    NOW = "now"
    PERIOD_END = "period_end"
    CONTRACT_END = "contract_end"


class ChangeDirection(StrEnum):
    UPGRADE = "upgrade"
    DOWNGRADE = "downgrade"
    SAME_RATE = "same_rate"


class ItemKind(StrEnum):
    RECURRING = "recurring"
    PRORATION_CREDIT = "proration_credit"
    PRORATION_CHARGE = "proration_charge"
    USED = "used"


#: The descriptions of the credits for the unused part of a period that a cancellation now, a pause that
#: restarts the period on resume, or an end inside the period gives back (made even at 0.00, see above).
CUT_SHORT = frozenset({"lifecycle.cancel.credit", "lifecycle.pause.credit", "lifecycle.end.credit"})
#: Billed in arrears, the credit of the part of a period a pause carried over (``carried_over``) and the
#: charge of the same amount for the remainder that part runs in.
PAUSE_CARRIED = "lifecycle.pause.carried"
RESUME_CARRIED = "lifecycle.resume.carried"


class LifecycleEvent(StrEnum):
    CREATED = "created"
    STARTED = "started"
    TRIAL_STARTED = "trial_started"
    TRIAL_ENDED = "trial_ended"
    PERIOD_RENEWED = "period_renewed"
    CHANGED = "changed"
    CHANGE_SCHEDULED = "change_scheduled"
    CHANGE_UNSCHEDULED = "change_unscheduled"
    PAUSED = "paused"
    PAUSE_SCHEDULED = "pause_scheduled"
    PAUSE_UNSCHEDULED = "pause_unscheduled"
    RESUMED = "resumed"
    CANCELLED = "cancelled"
    CANCELLATION_SCHEDULED = "cancellation_scheduled"
    REACTIVATED = "reactivated"
    ENDED = "ended"
    CONTRACT_RENEWED = "contract_renewed"
    CONTRACT_TERM_ENDED = "contract_term_ended"


def _member(enum: type[_E], value: object, name: str) -> _E:
    if isinstance(value, str) and value in enum.__members__.values():
        return enum(value)
    allowed = ", ".join(member.value for member in enum)
    raise InvalidTransition(f"{name} must be one of: {allowed}; got {value!r}", field=name)


def _refuse(message: str, field_name: str) -> NoReturn:
    raise InvalidTransition(message, field=field_name)


def _optional_interval(value: object, name: str) -> None:
    if value is not None and not isinstance(value, Interval):
        raise InvalidPeriod(f"{name} must be an Interval or None, got {type(value).__name__}", field=name)


@dataclass(frozen=True, slots=True)
class ContractTerms:
    """Minimum terms and notice periods, independent of the billing interval.

    ``ContractTerms(Interval(MONTH, 12), Interval(MONTH), Interval(MONTH), Interval(WEEK, 2))``: 12 months
    with one month's notice, then renewing monthly with two weeks' notice. Without an initial term there is
    no contract and ``initial_notice`` is the notice for ending at a period end. Without a renewal term the
    subscription runs on after the initial term, ending at a period end with ``renewal_notice``.
    """

    initial_term: Interval | None = None
    initial_notice: Interval | None = None
    renewal_term: Interval | None = None
    renewal_notice: Interval | None = None

    def __post_init__(self) -> None:
        for name in ("initial_term", "initial_notice", "renewal_term", "renewal_notice"):
            _optional_interval(getattr(self, name), name)
        if self.renewal_term is not None and self.initial_term is None:
            raise InvalidPeriod("a renewal term needs an initial term", field="renewal_term")


@dataclass(frozen=True, slots=True)
class PlanTerms:
    """What the lifecycle needs of a plan variant: its recurring price per period and unit, and its rules."""

    plan_id: str
    recurring_price: Money
    interval: Interval
    anchoring: Anchoring = Anchoring.ANNIVERSARY
    proration: ProrationMode = ProrationMode.DAY
    trial_days: int = 0
    contract: ContractTerms = field(default_factory=ContractTerms)
    credit_unused_on_downgrade: bool = True
    credit_unused_on_cancel: bool = False
    allow_downgrade_now: bool = False
    pause_resume: PauseResume = PauseResume.REMAINING

    def __post_init__(self) -> None:
        if not isinstance(self.plan_id, str) or not self.plan_id:
            raise InvalidPriceSpec("plan_id must be a non-empty string", field="plan_id")
        if not isinstance(self.recurring_price, Money) or self.recurring_price.is_negative():
            raise InvalidPriceSpec("recurring_price must be non-negative Money", field="recurring_price")
        if not isinstance(self.interval, Interval):
            raise InvalidPeriod("interval must be an Interval", field="interval")
        if not isinstance(self.contract, ContractTerms):
            raise InvalidPeriod("contract must be ContractTerms", field="contract")
        if isinstance(self.trial_days, bool) or not isinstance(self.trial_days, int) or self.trial_days < 0:
            raise InvalidPeriod(
                f"trial_days must be a non-negative integer: {self.trial_days!r}", field="trial_days"
            )
        for name, enum in (
            ("anchoring", Anchoring),
            ("proration", ProrationMode),
            ("pause_resume", PauseResume),
        ):
            value = getattr(self, name)
            if not (isinstance(value, str) and value in enum.__members__.values()):
                raise InvalidPeriod(f"{name} must be one of {', '.join(enum)}: {value!r}", field=name)
            object.__setattr__(self, name, enum(value))

    @property
    def currency(self) -> str:
        return self.recurring_price.currency

    def fee(self, quantity: Decimal) -> Money:
        """The exact recurring fee of one full period for ``quantity`` units."""
        return self.recurring_price * quantity

    def price_per_day(self, quantity: Decimal, on: date) -> Fraction:
        """The exact fee per day of a full period beginning on ``on``; it tells upgrades from downgrades."""
        days = (on + self.interval.delta() - on).days
        return Fraction(self.fee(quantity).amount) / days


def compare_plans(
    old: PlanTerms, old_quantity: Decimal, new: PlanTerms, new_quantity: Decimal, on: date
) -> ChangeDirection:
    """Upgrade or downgrade, by the recurring price per day of periods beginning on ``on``."""
    if old.currency != new.currency:
        _refuse(f"the new plan is priced in {new.currency}, the subscription in {old.currency}", "plan")
    old_rate, new_rate = old.price_per_day(old_quantity, on), new.price_per_day(new_quantity, on)
    if new_rate > old_rate:
        return ChangeDirection.UPGRADE
    if new_rate < old_rate:
        return ChangeDirection.DOWNGRADE
    return ChangeDirection.SAME_RATE


@dataclass(frozen=True, slots=True)
class PauseState:
    """A pause: scheduled while the subscription is active, in force while it is paused.

    ``unused`` is the prepaid part of the interrupted period still owed (``remaining`` mode only) and
    ``basis`` the full period its price covered; ``remaining_days`` its local days, carried to the resume.
    """

    paused_at: datetime
    resume_at: datetime | None = None
    remaining_days: int = 0
    unused: Period | None = None
    basis: Period | None = None


@dataclass(frozen=True, slots=True)
class ScheduledChange:
    plan: PlanTerms
    quantity: Decimal
    requested_at: datetime


@dataclass(frozen=True, slots=True)
class Subscription:
    """The lifecycle state of one subscription, valid as of ``as_of``; built by ``create`` and transitions.

    ``current_period`` is set exactly while trialing or active; ``proration_basis`` is the full period whose
    price covers it (longer for a first calendar period or a resumed remainder, same end); ``segment_start``
    is where the current plan and quantity began to apply inside it. ``cancelled_at`` is when a cancellation
    was requested, ``cancel_at`` when it takes (or took) effect, ``ended_at`` when the subscription stopped.
    """

    status: SubscriptionStatus
    plan: PlanTerms
    quantity: Decimal
    timezone: str
    started_at: datetime
    as_of: datetime
    billing_anchor: date
    current_period: Period | None = None
    proration_basis: Period | None = None
    segment_start: datetime | None = None
    trial_end: datetime | None = None
    contract_start: datetime | None = None
    contract_end: datetime | None = None
    contract_renewals: int = 0
    cancel_at: datetime | None = None
    cancelled_at: datetime | None = None
    ended_at: datetime | None = None
    pause: PauseState | None = None
    scheduled_change: ScheduledChange | None = None

    @property
    def is_terminal(self) -> bool:
        return self.status in TERMINAL_STATUSES


@dataclass(frozen=True, slots=True)
class LifecycleItem:
    """A rounded charge (positive ``amount``) or credit (negative) for ``quantity`` of ``plan_id``.

    ``period`` is the part of the service period it covers; ``description`` a translation key for the line.
    Only a ``recurring`` item and a ``CUT_SHORT`` credit can be 0.00 (they mark a period, see the module).
    """

    kind: ItemKind
    plan_id: str
    period: Period
    amount: Money
    description: str
    quantity: Decimal


@dataclass(frozen=True, slots=True)
class Transition:
    subscription: Subscription
    items: tuple[LifecycleItem, ...] = ()
    events: tuple[LifecycleEvent, ...] = ()


def _instant(value: object, name: str) -> datetime:
    if not isinstance(value, datetime):
        _refuse(f"{name} must be a datetime, got {type(value).__name__}", name)
    try:
        return check_aware(value, name)
    except InvalidPeriod as error:
        raise InvalidTransition(error.message, field=name) from None


def _quantity(value: object) -> Decimal:
    try:
        quantity = to_decimal(value, field="quantity")
    except EngineError as error:
        raise InvalidTransition(error.message, field="quantity") from None
    if quantity < 0:
        _refuse(f"quantity must not be negative, got {quantity}", "quantity")
    return quantity


def _timezone(name: object) -> str:
    if not isinstance(name, str):
        _refuse(f"timezone must be an IANA name, got {name!r}", "timezone")
    try:
        check_timezone(name)
    except InvalidPeriod as error:
        raise InvalidTransition(error.message, field="timezone") from None
    return name


def _add_local(instant: datetime, delta: relativedelta, timezone: str) -> datetime:
    zone = check_timezone(timezone)
    wall = instant.astimezone(zone).replace(tzinfo=None) + delta
    return wall.replace(tzinfo=zone).astimezone(UTC)


def _cycle(plan: PlanTerms, anchor: date, timezone: str) -> BillingCycle:
    return BillingCycle(plan.interval, anchor, timezone, plan.anchoring, start=anchor)


def _item(
    kind: ItemKind,
    plan: PlanTerms,
    quantity: Decimal,
    part: Period,
    amount: Money,
    description: str,
    *,
    mark: bool = False,
) -> tuple[LifecycleItem, ...]:
    if amount.is_zero() and not mark:
        return ()
    return (LifecycleItem(kind, plan.plan_id, part, amount, description, quantity),)


def _term_end(contract: ContractTerms, start: datetime, renewals: int, timezone: str) -> datetime | None:
    if contract.initial_term is None:
        return None
    offset = contract.initial_term.delta()
    if renewals > 0:
        if contract.renewal_term is None:
            return None
        offset = offset + contract.renewal_term.delta(renewals)
    return local_midnight(local_date(start, timezone) + offset, timezone)


def _notice(contract: ContractTerms, renewals: int) -> Interval | None:
    return contract.initial_notice if renewals == 0 else contract.renewal_notice


def _required(value: _T | None, name: str) -> _T:
    if value is None:
        _refuse(f"the subscription state is inconsistent: {name} is missing", name)
    return value


def _current(sub: Subscription) -> tuple[Period, Period]:
    return _required(sub.current_period, "current_period"), _required(sub.proration_basis, "proration_basis")


def _unused_credit(
    sub: Subscription, at: datetime, description: str, *, mark: bool = False
) -> tuple[LifecycleItem, ...]:
    """Credit for the prepaid part of the current period (or of the paused remainder) from ``at`` on;
    with ``mark`` also at 0.00 (a ``CUT_SHORT`` credit)."""
    if sub.status is SubscriptionStatus.PAUSED:
        paused = _required(sub.pause, "pause")
        if paused.unused is None or paused.basis is None:
            return ()
        part, basis = paused.unused, paused.basis
    elif sub.status is SubscriptionStatus.ACTIVE:
        period, basis = _current(sub)
        if at >= period.end:
            return ()
        part = Period(at, period.end)
    else:
        return ()
    amount = prorate(sub.plan.fee(sub.quantity), basis, part, sub.plan.proration, sub.timezone)
    return _item(ItemKind.PRORATION_CREDIT, sub.plan, sub.quantity, part, -amount, description, mark=mark)


def _recurring_items(sub: Subscription) -> tuple[LifecycleItem, ...]:
    period, basis = _current(sub)
    fee = sub.plan.fee(sub.quantity)
    amount = (
        fee.rounded() if period == basis else prorate(fee, basis, period, sub.plan.proration, sub.timezone)
    )
    return _item(ItemKind.RECURRING, sub.plan, sub.quantity, period, amount, "lifecycle.recurring", mark=True)


def _activate(sub: Subscription, day: date) -> Transition:
    """Start paid service with a fresh billing cycle on local ``day``."""
    cycle = _cycle(sub.plan, day, sub.timezone)
    period = cycle.first_period()
    sub = replace(
        sub,
        status=SubscriptionStatus.ACTIVE,
        billing_anchor=day,
        current_period=period,
        proration_basis=cycle.full_period_containing(period),
        segment_start=period.start,
    )
    if sub.contract_start is None:
        sub = replace(
            sub,
            contract_start=period.start,
            contract_end=_term_end(sub.plan.contract, period.start, 0, sub.timezone),
            contract_renewals=0,
        )
    return Transition(sub, _recurring_items(sub))


def _begin(sub: Subscription) -> Transition:
    if sub.trial_end is None:
        active = _activate(sub, local_date(sub.started_at, sub.timezone))
        return Transition(active.subscription, active.items, (LifecycleEvent.STARTED,))
    trial = Period(local_midnight(sub.billing_anchor, sub.timezone), sub.trial_end)
    sub = replace(
        sub,
        status=SubscriptionStatus.TRIALING,
        current_period=trial,
        proration_basis=trial,
        segment_start=trial.start,
    )
    return Transition(sub, (), (LifecycleEvent.STARTED, LifecycleEvent.TRIAL_STARTED))


def _apply_scheduled_change(sub: Subscription) -> tuple[Subscription, bool]:
    change = sub.scheduled_change
    if change is None:
        return sub, False
    new_cycle = change.plan.interval != sub.plan.interval or change.plan.anchoring != sub.plan.anchoring
    sub = replace(sub, plan=change.plan, quantity=change.quantity, scheduled_change=None)
    return sub, new_cycle


def _convert_trial(sub: Subscription, at: datetime) -> Transition:
    had_change = sub.scheduled_change is not None
    sub, _ = _apply_scheduled_change(sub)
    active = _activate(replace(sub, trial_end=at), local_date(at, sub.timezone))
    events = ((LifecycleEvent.CHANGED,) if had_change else ()) + (LifecycleEvent.TRIAL_ENDED,)
    return Transition(active.subscription, active.items, events)


def _roll(sub: Subscription) -> Transition:
    period, _ = _current(sub)
    had_change = sub.scheduled_change is not None
    sub, new_cycle = _apply_scheduled_change(sub)
    anchor = local_date(period.end, sub.timezone) if new_cycle else sub.billing_anchor
    cycle = _cycle(sub.plan, anchor, sub.timezone)
    following = cycle.period_at(period.end)
    sub = replace(
        sub,
        billing_anchor=anchor,
        current_period=following,
        proration_basis=cycle.full_period_containing(following),
        segment_start=following.start,
    )
    events = (LifecycleEvent.CHANGED,) if had_change else ()
    return Transition(sub, _recurring_items(sub), (*events, LifecycleEvent.PERIOD_RENEWED))


def _renew_contract(sub: Subscription) -> Transition:
    renewals = sub.contract_renewals + 1
    term_end = _term_end(
        sub.plan.contract, _required(sub.contract_start, "contract_start"), renewals, sub.timezone
    )
    sub = replace(sub, contract_renewals=renewals, contract_end=term_end)
    event = LifecycleEvent.CONTRACT_RENEWED if term_end is not None else LifecycleEvent.CONTRACT_TERM_ENDED
    return Transition(sub, (), (event,))


def _pause_now(sub: Subscription, at: datetime, resume_at: datetime | None) -> Transition:
    period, basis = _current(sub)
    items: tuple[LifecycleItem, ...] = ()
    pause = PauseState(at, resume_at)
    if at < period.end:
        if sub.plan.pause_resume is PauseResume.RESTART:
            items = _unused_credit(sub, at, "lifecycle.pause.credit", mark=True)
        else:
            days = (local_date(period.end, sub.timezone) - local_date(at, sub.timezone)).days
            pause = PauseState(at, resume_at, days, Period(at, period.end), basis)
    sub = replace(
        sub,
        status=SubscriptionStatus.PAUSED,
        current_period=None,
        proration_basis=None,
        segment_start=None,
        pause=pause,
    )
    return Transition(sub, items, (LifecycleEvent.PAUSED,))


def resumed_basis(pause: PauseState, resumed: Period, mode: ProrationMode, timezone: str) -> Period:
    """A period ending with ``resumed`` of which ``resumed`` is the same share as the unused part was: the
    proration basis of the remainder that ``pause`` (in ``remaining`` mode) carried over to ``resumed``."""
    unused, basis = _required(pause.unused, "pause.unused"), _required(pause.basis, "pause.basis")
    if mode is ProrationMode.DAY:
        first_day = local_date(resumed.end, timezone) - timedelta(days=calendar_days(basis, timezone))
        return Period(local_midnight(first_day, timezone), resumed.end)
    paid = unused.duration // _MICROSECOND
    whole = basis.duration // _MICROSECOND
    length = -(-(resumed.duration // _MICROSECOND) * whole // paid)
    return Period(resumed.end - length * _MICROSECOND, resumed.end)


def _resume_now(sub: Subscription, at: datetime) -> Transition:
    pause = _required(sub.pause, "pause")
    day = local_date(at, sub.timezone)
    if pause.unused is None:
        restarted = _activate(replace(sub, pause=None), day)
        return Transition(restarted.subscription, restarted.items, (LifecycleEvent.RESUMED,))
    end = local_midnight(day + timedelta(days=pause.remaining_days), sub.timezone)
    resumed = Period(local_midnight(day, sub.timezone), end)
    sub = replace(
        sub,
        status=SubscriptionStatus.ACTIVE,
        billing_anchor=local_date(end, sub.timezone),
        current_period=resumed,
        proration_basis=resumed_basis(pause, resumed, sub.plan.proration, sub.timezone),
        segment_start=resumed.start,
        pause=None,
    )
    return Transition(sub, (), (LifecycleEvent.RESUMED,))


def _stop(
    sub: Subscription, at: datetime, status: SubscriptionStatus, items: tuple[LifecycleItem, ...]
) -> Transition:
    stopped = replace(
        sub,
        status=status,
        current_period=None,
        proration_basis=None,
        segment_start=None,
        cancel_at=at,
        ended_at=at,
        pause=None,
        scheduled_change=None,
    )
    event = LifecycleEvent.CANCELLED if status is SubscriptionStatus.CANCELLED else LifecycleEvent.ENDED
    return Transition(stopped, items, (event,))


def next_event_at(subscription: Subscription) -> datetime | None:
    """When the next scheduled transition falls due (the app's wake-up time), or None if nothing is due."""
    sub = subscription
    candidates: list[datetime | None] = [sub.cancel_at]
    if sub.status is SubscriptionStatus.PENDING:
        candidates = [sub.started_at]
    elif sub.status is SubscriptionStatus.TRIALING:
        candidates.append(sub.trial_end)
    elif sub.status is SubscriptionStatus.ACTIVE:
        period, _ = _current(sub)
        candidates += [period.end, sub.contract_end, sub.pause.paused_at if sub.pause else None]
    elif sub.status is SubscriptionStatus.PAUSED:
        candidates += [_required(sub.pause, "pause").resume_at, sub.contract_end]
    else:
        return None
    due = [instant for instant in candidates if instant is not None]
    return min(due) if due else None


def _apply_due(sub: Subscription, due: datetime) -> Transition:
    if sub.status is SubscriptionStatus.PENDING:
        return _begin(sub)
    if sub.cancel_at is not None and sub.cancel_at <= due:
        return _stop(
            sub,
            sub.cancel_at,
            SubscriptionStatus.ENDED,
            _unused_credit(sub, due, "lifecycle.end.credit", mark=True),
        )
    if sub.status is SubscriptionStatus.TRIALING:
        return _convert_trial(sub, due)
    if sub.contract_end is not None and sub.contract_end <= due:
        return _renew_contract(sub)
    if sub.status is SubscriptionStatus.ACTIVE:
        if sub.pause is not None and sub.pause.paused_at <= due:
            return _pause_now(sub, due, sub.pause.resume_at)
        return _roll(sub)
    return _resume_now(sub, due)


def _catch_up(subscription: Subscription, at: object, *, upto: datetime | None = None) -> Transition:
    at_instant = _instant(at, "at")
    if not isinstance(subscription, Subscription):
        _refuse("subscription must be a Subscription", "subscription")
    if at_instant < subscription.as_of:
        _refuse(f"at ({at_instant}) is before the subscription's state as of {subscription.as_of}", "at")
    limit = at_instant if upto is None else upto
    sub = subscription
    items: list[LifecycleItem] = []
    events: list[LifecycleEvent] = []
    due = next_event_at(sub)
    while due is not None and due <= limit:
        step = _apply_due(sub, due)
        sub = step.subscription
        items += step.items
        events += step.events
        due = next_event_at(sub)
    return Transition(replace(sub, as_of=limit), tuple(items), tuple(events))


def _then(before: Transition, after: Transition) -> Transition:
    return Transition(after.subscription, before.items + after.items, before.events + after.events)


def _refuse_terminal(sub: Subscription, action: str) -> None:
    if sub.is_terminal:
        _refuse(f"a {sub.status} subscription cannot be {action}; it stopped at {sub.ended_at}", "status")


def advance(subscription: Subscription, *, at: datetime) -> Transition:
    """Apply every scheduled transition due up to and including ``at``, in time order."""
    return _catch_up(subscription, at)


def advance_period(subscription: Subscription, *, at: datetime) -> Transition:
    """Roll the current period to the next (or end the trial) at its end; ``at`` must not be before that end.

    The new state is as of the old period's end, so a worker can bill one period per call.
    """
    at_instant = _instant(at, "at")
    period = subscription.current_period
    if period is None:
        _refuse(f"a {subscription.status} subscription has no running period to advance", "status")
    if at_instant < period.end:
        _refuse(f"the current period runs until {period.end}; at ({at_instant}) is before it", "at")
    return _catch_up(subscription, at_instant, upto=period.end)


def create(
    plan: PlanTerms,
    quantity: Decimal,
    timezone: str,
    *,
    at: datetime,
    start_at: datetime | None = None,
    trial_days: int | None = None,
) -> Transition:
    """A new subscription at ``at``: pending if ``start_at`` lies ahead, else trialing or active."""
    at_instant = _instant(at, "at")
    if not isinstance(plan, PlanTerms):
        _refuse("plan must be PlanTerms", "plan")
    amount = _quantity(quantity)
    zone = _timezone(timezone)
    start = at_instant if start_at is None else _instant(start_at, "start_at")
    if start < at_instant:
        _refuse(f"start_at ({start}) must not be before at ({at_instant})", "start_at")
    days = plan.trial_days if trial_days is None else trial_days
    if isinstance(days, bool) or not isinstance(days, int) or days < 0:
        _refuse(f"trial_days must be a non-negative integer, got {days!r}", "trial_days")
    start_day = local_date(start, zone)
    sub = Subscription(
        status=SubscriptionStatus.PENDING,
        plan=plan,
        quantity=amount,
        timezone=zone,
        started_at=start,
        as_of=at_instant,
        billing_anchor=start_day,
        trial_end=local_midnight(start_day + timedelta(days=days), zone) if days else None,
    )
    created = Transition(sub, (), (LifecycleEvent.CREATED,))
    if start > at_instant:
        return created
    return _then(created, _begin(sub))


def start(subscription: Subscription, *, at: datetime) -> Transition:
    """A pending subscription reaching its start (then anything else due up to ``at``)."""
    at_instant = _instant(at, "at")
    if subscription.status is not SubscriptionStatus.PENDING:
        _refuse(f"only a pending subscription can start; this one is {subscription.status}", "status")
    if at_instant < subscription.started_at:
        _refuse(f"the subscription starts at {subscription.started_at}, after at ({at_instant})", "at")
    return _catch_up(subscription, at_instant)


def end_trial(subscription: Subscription, *, at: datetime) -> Transition:
    """End the trial early: paid service and a fresh billing cycle begin on the local day of ``at``."""
    caught = _catch_up(subscription, at)
    sub = caught.subscription
    if sub.status is not SubscriptionStatus.TRIALING:
        _refuse(f"only a trialing subscription can end its trial; this one is {sub.status}", "status")
    if sub.cancel_at is not None:
        _refuse(
            f"the subscription is cancelled at the trial end {sub.cancel_at}; reactivate it first",
            "cancel_at",
        )
    return _then(caught, _convert_trial(sub, sub.as_of))


def change(
    subscription: Subscription,
    new_plan: PlanTerms | None = None,
    new_quantity: Decimal | None = None,
    effective: ChangeTiming | str | None = None,
    *,
    at: datetime,
) -> Transition:
    """Move to ``new_plan`` and/or ``new_quantity``, now or at the period end.

    Without ``effective`` an upgrade (higher price per day) applies now and a downgrade at the period
    end. Now: the unused part of the old fee is credited (a downgrade only if the plan allows it and
    ``credit_unused_on_downgrade``) and the new fee charged for the rest of the period; a new billing
    interval or anchoring starts a new period on the day of the change instead. Asking for the current
    plan and quantity while a change is scheduled withdraws that change. Before the start, and during a
    trial unless ``effective="period_end"``, a change applies at once and moves no money.
    """
    caught = _catch_up(subscription, at)
    sub, now = caught.subscription, caught.subscription.as_of
    _refuse_terminal(sub, "changed")
    if sub.status is SubscriptionStatus.PAUSED:
        _refuse("a paused subscription cannot be changed; resume it first", "status")
    if new_plan is None and new_quantity is None:
        _refuse("name a new plan or a new quantity", "new_plan")
    if new_plan is not None and not isinstance(new_plan, PlanTerms):
        _refuse("new_plan must be PlanTerms", "new_plan")
    plan = sub.plan if new_plan is None else new_plan
    quantity = sub.quantity if new_quantity is None else _quantity(new_quantity)
    timing = None if effective is None else _member(ChangeTiming, effective, "effective")
    if plan.currency != sub.plan.currency:
        _refuse(
            f"the new plan is priced in {plan.currency}, the subscription in {sub.plan.currency}", "new_plan"
        )
    if plan == sub.plan and quantity == sub.quantity:
        if sub.scheduled_change is None:
            _refuse(f"the subscription is already on {plan.plan_id} with quantity {quantity}", "new_plan")
        withdrawn = replace(sub, scheduled_change=None)
        return _then(caught, Transition(withdrawn, (), (LifecycleEvent.CHANGE_UNSCHEDULED,)))
    if sub.status is SubscriptionStatus.PENDING or (
        sub.status is SubscriptionStatus.TRIALING and timing is not ChangeTiming.PERIOD_END
    ):
        swapped = replace(sub, plan=plan, quantity=quantity, scheduled_change=None)
        return _then(caught, Transition(swapped, (), (LifecycleEvent.CHANGED,)))
    direction = compare_plans(sub.plan, sub.quantity, plan, quantity, local_date(now, sub.timezone))
    if timing is None:
        timing = ChangeTiming.PERIOD_END if direction is ChangeDirection.DOWNGRADE else ChangeTiming.NOW
    if timing is ChangeTiming.PERIOD_END:
        scheduled = replace(sub, scheduled_change=ScheduledChange(plan, quantity, now))
        return _then(caught, Transition(scheduled, (), (LifecycleEvent.CHANGE_SCHEDULED,)))
    if direction is ChangeDirection.DOWNGRADE and not sub.plan.allow_downgrade_now:
        _refuse(f"plan {sub.plan.plan_id} allows downgrades only at the period end", "effective")
    return _then(caught, _change_now(sub, plan, quantity, direction, now))


def _change_now(
    sub: Subscription, plan: PlanTerms, quantity: Decimal, direction: ChangeDirection, at: datetime
) -> Transition:
    period, basis = _current(sub)
    credit_unused = direction is not ChangeDirection.DOWNGRADE or sub.plan.credit_unused_on_downgrade
    old_fee, new_fee = sub.plan.fee(sub.quantity), plan.fee(quantity)
    events = (LifecycleEvent.CHANGED,)
    if plan.interval != sub.plan.interval or plan.anchoring != sub.plan.anchoring:
        credit = _unused_credit(sub, at, f"lifecycle.{direction}.credit") if credit_unused else ()
        swapped = replace(sub, plan=plan, quantity=quantity, scheduled_change=None)
        restarted = _activate(swapped, local_date(at, sub.timezone))
        return Transition(restarted.subscription, credit + restarted.items, events)
    part = Period(at, period.end)
    items: tuple[LifecycleItem, ...] = ()
    if credit_unused:
        old_part = change_proration(old_fee, new_fee, basis, at, sub.plan.proration, sub.timezone)
        items = _item(
            ItemKind.PRORATION_CREDIT,
            sub.plan,
            sub.quantity,
            part,
            -old_part.credit,
            f"lifecycle.{direction}.credit",
        )
    new_part = change_proration(old_fee, new_fee, basis, at, plan.proration, sub.timezone)
    items += _item(
        ItemKind.PRORATION_CHARGE, plan, quantity, part, new_part.charge, f"lifecycle.{direction}.charge"
    )
    swapped = replace(sub, plan=plan, quantity=quantity, segment_start=at, scheduled_change=None)
    return Transition(swapped, items, events)


def pause(
    subscription: Subscription,
    *,
    at: datetime,
    starts_at: datetime | None = None,
    resume_at: datetime | None = None,
) -> Transition:
    """Pause now or from ``starts_at``; open-ended unless ``resume_at`` is given."""
    caught = _catch_up(subscription, at)
    sub, now = caught.subscription, caught.subscription.as_of
    _refuse_terminal(sub, "paused")
    if sub.status is not SubscriptionStatus.ACTIVE:
        _refuse(f"only an active subscription can be paused; this one is {sub.status}", "status")
    if sub.pause is not None:
        _refuse(f"a pause is already scheduled from {sub.pause.paused_at}", "starts_at")
    begins = now if starts_at is None else _instant(starts_at, "starts_at")
    if begins < now:
        _refuse(f"starts_at ({begins}) is in the past of at ({now})", "starts_at")
    ends = None if resume_at is None else _instant(resume_at, "resume_at")
    if ends is not None and ends <= begins:
        _refuse(f"resume_at ({ends}) must be after the pause begins ({begins})", "resume_at")
    if sub.cancel_at is not None and begins >= sub.cancel_at:
        _refuse(f"the subscription ends at {sub.cancel_at}, before the pause would begin", "starts_at")
    if begins == now:
        return _then(caught, _pause_now(sub, now, ends))
    scheduled = replace(sub, pause=PauseState(begins, ends))
    return _then(caught, Transition(scheduled, (), (LifecycleEvent.PAUSE_SCHEDULED,)))


def resume(subscription: Subscription, *, at: datetime) -> Transition:
    """Resume a paused subscription now (or withdraw a pause that has not begun yet)."""
    caught = _catch_up(subscription, at)
    sub = caught.subscription
    if sub.status is SubscriptionStatus.PAUSED:
        return _then(caught, _resume_now(sub, sub.as_of))
    if sub.status is SubscriptionStatus.ACTIVE and sub.pause is not None:
        withdrawn = replace(sub, pause=None)
        return _then(caught, Transition(withdrawn, (), (LifecycleEvent.PAUSE_UNSCHEDULED,)))
    _refuse(f"only a paused subscription can be resumed; this one is {sub.status}", "status")


def _period_end_on_or_after(sub: Subscription, threshold: datetime) -> datetime:
    if sub.status is not SubscriptionStatus.ACTIVE:
        return local_midnight(local_date(threshold, sub.timezone) + _ONE_DAY, sub.timezone)
    period, _ = _current(sub)
    cycle = _cycle(sub.plan, sub.billing_anchor, sub.timezone)
    while period.end < threshold:
        period = cycle.period_at(period.end)
    return period.end


def _earliest_end(sub: Subscription, at: datetime) -> datetime:
    if sub.status is SubscriptionStatus.PENDING:
        return at
    if sub.status is SubscriptionStatus.TRIALING:
        return _required(sub.trial_end, "trial_end")
    contract = sub.plan.contract
    renewals, term_end = sub.contract_renewals, sub.contract_end
    missed: datetime | None = None
    while True:
        notice = _notice(contract, renewals)
        earliest = at if notice is None else _add_local(at, notice.delta(), sub.timezone)
        if term_end is None:
            if missed is not None:
                earliest = max(earliest, missed + _MICROSECOND)
            return _period_end_on_or_after(sub, earliest)
        if earliest <= term_end:
            return term_end
        missed = term_end
        renewals += 1
        term_end = _term_end(
            contract, _required(sub.contract_start, "contract_start"), renewals, sub.timezone
        )


def earliest_cancellation(subscription: Subscription, at: datetime) -> datetime:
    """The earliest end a cancellation requested at ``at`` can have, given the contract terms and notice.

    Inside a term, a request at least ``notice`` before the term end ends the subscription then; a later
    request lets the term renew and ends it at the end of the next renewal term it can still give notice
    for. Without a running term it is the first period end at least ``notice`` after ``at``; while
    trialing, the trial end; before the start, ``at``.
    """
    sub = _catch_up(subscription, at).subscription
    _refuse_terminal(sub, "cancelled")
    return _earliest_end(sub, sub.as_of)


def cancel(subscription: Subscription, mode: CancelMode | str, *, at: datetime) -> Transition:
    """Cancel now, or schedule the end at the earliest possible period end or contract end.

    The scheduled end is ``transition.subscription.cancel_at``. Now: the unused prepaid part is credited
    only if the plan says ``credit_unused_on_cancel``. A pending subscription is cancelled at once.
    A scheduled end that falls inside a billing period credits the part after it when it takes effect.
    """
    caught = _catch_up(subscription, at)
    sub, now = caught.subscription, caught.subscription.as_of
    _refuse_terminal(sub, "cancelled")
    how = _member(CancelMode, mode, "mode")
    cancelled = replace(sub, cancelled_at=now)
    if how is CancelMode.NOW or sub.status is SubscriptionStatus.PENDING:
        credit = (
            _unused_credit(sub, now, "lifecycle.cancel.credit", mark=True)
            if sub.plan.credit_unused_on_cancel
            else ()
        )
        return _then(caught, _stop(cancelled, now, SubscriptionStatus.CANCELLED, credit))
    if sub.cancel_at is not None:
        _refuse(
            f"the subscription already ends at {sub.cancel_at}; reactivate it first or cancel now", "mode"
        )
    end = _earliest_end(sub, now)
    if how is CancelMode.PERIOD_END and sub.status is SubscriptionStatus.ACTIVE:
        end = _period_end_on_or_after(sub, end)
    scheduled = replace(cancelled, cancel_at=end)
    return _then(caught, Transition(scheduled, (), (LifecycleEvent.CANCELLATION_SCHEDULED,)))


def reactivate(subscription: Subscription, *, at: datetime) -> Transition:
    """Withdraw a scheduled cancellation before it takes effect."""
    caught = _catch_up(subscription, at)
    sub = caught.subscription
    _refuse_terminal(sub, "reactivated")
    if sub.cancel_at is None:
        _refuse("the subscription has no scheduled cancellation to withdraw", "cancel_at")
    restored = replace(sub, cancel_at=None, cancelled_at=None)
    return _then(caught, Transition(restored, (), (LifecycleEvent.REACTIVATED,)))


def used_items(subscription: Subscription, at: datetime) -> tuple[LifecycleItem, ...]:
    """The recurring fee for the used part ``[segment_start, at)`` of the current period (in-arrears billing).

    It equals what was charged in advance for the segment minus what a credit from ``at`` on would give
    back, so in-advance and in-arrears billing of the same history add up to the same money.
    """
    at_instant = _instant(at, "at")
    sub = subscription
    if sub.status is not SubscriptionStatus.ACTIVE:
        return ()
    period, basis = _current(sub)
    segment_start = _required(sub.segment_start, "segment_start")
    if not segment_start <= at_instant <= period.end:
        _refuse(f"at ({at_instant}) lies outside the current segment [{segment_start}, {period.end}]", "at")
    if at_instant == segment_start:
        return ()
    fee = sub.plan.fee(sub.quantity)
    segment = prorate(fee, basis, Period(segment_start, period.end), sub.plan.proration, sub.timezone)
    unused = Money.zero(fee.currency)
    if at_instant < period.end:
        unused = prorate(fee, basis, Period(at_instant, period.end), sub.plan.proration, sub.timezone)
    used = Period(segment_start, at_instant)
    return _item(ItemKind.USED, sub.plan, sub.quantity, used, segment - unused, "lifecycle.used")


def carried_over(subscription: Subscription) -> tuple[LifecycleItem, ...]:
    """The credit of the part of the interrupted period a pause in ``remaining`` mode carried over to the
    resume (``PAUSE_CARRIED``), prorated as a cancellation now would credit it; empty unless the
    subscription is paused with such a part.

    Billed in arrears, it is taken off the interrupted period's invoice, which then bills the part used
    before the pause; the same amount is charged back (``RESUME_CARRIED``) for the remainder it runs in.
    """
    if subscription.status is not SubscriptionStatus.PAUSED:
        return ()
    return _unused_credit(subscription, subscription.as_of, PAUSE_CARRIED)


__all__ = [
    "CUT_SHORT",
    "PAUSE_CARRIED",
    "RESUME_CARRIED",
    "TERMINAL_STATUSES",
    "CancelMode",
    "ChangeDirection",
    "ChangeTiming",
    "ContractTerms",
    "ItemKind",
    "LifecycleEvent",
    "LifecycleItem",
    "PauseResume",
    "PauseState",
    "PlanTerms",
    "ScheduledChange",
    "Subscription",
    "SubscriptionStatus",
    "Transition",
    "advance",
    "advance_period",
    "cancel",
    "carried_over",
    "change",
    "compare_plans",
    "create",
    "earliest_cancellation",
    "end_trial",
    "next_event_at",
    "pause",
    "reactivate",
    "resume",
    "resumed_basis",
    "start",
    "used_items",
]
