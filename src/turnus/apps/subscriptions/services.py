"""Subscription use cases: each one loads the state, asks the engine's lifecycle, stores what it says."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.db import transaction
from django.db.models import F, Q
from django.utils import translation
from django.utils.translation import gettext

from turnus.apps.catalog.models import AddOn, BillingTiming, ChargeKind, Coupon, Plan, PlanCharge, PlanVersion
from turnus.apps.catalog.services import lock_version, redeem_coupon
from turnus.apps.customers.services import get_customer
from turnus.apps.subscriptions import state as states
from turnus.apps.subscriptions.models import (
    PlanMigration,
    Subscription,
    SubscriptionAddOn,
    SubscriptionCharge,
)
from turnus.apps.subscriptions.signals import subscription_changed
from turnus.core import clock
from turnus.core.audit import Change, record, record_many
from turnus.core.errors import Conflict, NotFound, ValidationFailed
from turnus.core.ids import new_id
from turnus.core.scope import Actor, ActorKind, Scope
from turnus.engine import lifecycle
from turnus.engine.errors import InvalidPeriod, InvalidTransition
from turnus.engine.lifecycle import (
    CancelMode,
    ChangeDirection,
    ChangeTiming,
    ItemKind,
    LifecycleEvent,
    LifecycleItem,
    SubscriptionStatus,
)
from turnus.engine.money import Money
from turnus.engine.periods import BillingCycle, Period, local_date
from turnus.engine.pricing import rate
from turnus.engine.proration import ProrationMode, change_proration

MAX_QUANTITY = Decimal(10) ** 9


def snapshot(subscription: Subscription) -> dict[str, Any]:
    def iso(value: datetime | None) -> str | None:
        return value.isoformat() if value else None

    return {
        "id": subscription.public_id,
        "customer": subscription.customer.public_id,
        "plan": subscription.plan.public_id,
        "plan_version": subscription.plan_version.public_id,
        "quantity": str(subscription.quantity),
        "status": subscription.status,
        "current_period_start": iso(subscription.current_period_start),
        "current_period_end": iso(subscription.current_period_end),
        "trial_end": iso(subscription.trial_end),
        "contract_end": iso(subscription.contract_end),
        "cancel_at": iso(subscription.cancel_at),
        "cancelled_at": iso(subscription.cancelled_at),
        "ended_at": iso(subscription.ended_at),
        "pause": subscription.pause,
        "scheduled_plan_version": (
            subscription.scheduled_plan_version.public_id if subscription.scheduled_plan_version else None
        ),
        "scheduled_quantity": None
        if subscription.scheduled_quantity is None
        else str(subscription.scheduled_quantity),
        "quantities": dict(subscription.component_quantities or {}),
        "scheduled_quantities": subscription.scheduled_component_quantities,
        "scheduled_quantities_at": iso(subscription.scheduled_components_at),
    }


def _in_scope(model: Any, scope: Scope, public_id: str, *, field: str, label: str) -> Any:
    found = model.objects.filter(
        tenant_id=scope.tenant_id, livemode=scope.livemode, public_id=public_id
    ).first()
    if found is None:
        raise NotFound(f"no {label} {public_id}", field=field)
    return found


def get_subscription(scope: Scope, public_id: str, *, lock: bool = False) -> Subscription:
    queryset = Subscription.objects.select_related("customer", "plan_version__plan")
    if lock:
        queryset = queryset.select_for_update(of=("self",))
    try:
        found = queryset.get(tenant_id=scope.tenant_id, livemode=scope.livemode, public_id=public_id)
    except Subscription.DoesNotExist:
        raise NotFound(f"no subscription {public_id}", field="id") from None
    found.plan = found.plan_version.plan
    return found


def _quantity(value: Decimal | int | None, *, field: str = "quantity") -> Decimal:
    quantity = Decimal(1) if value is None else Decimal(value)
    if quantity < 0:
        raise ValidationFailed("quantity must not be negative", field=field)
    if quantity > MAX_QUANTITY:
        raise ValidationFailed(f"quantity must be at most {MAX_QUANTITY}", field=field)
    if quantity != quantity.to_integral_value():
        raise ValidationFailed("quantity must be a whole number", field=field)
    return quantity


def _plan_version(scope: Scope, plan_id: str, *, field: str = "plan") -> PlanVersion:
    plan: Plan = _in_scope(Plan, scope, plan_id, field=field, label="plan")
    if not plan.active:
        raise Conflict(f"plan {plan_id} is archived and takes no new subscriptions", field=field)
    version = plan.current_version()
    return version


def _store_items(scope: Scope, subscription: Subscription, items: Iterable[lifecycle.LifecycleItem]) -> None:
    SubscriptionCharge.objects.bulk_create(charge_rows(scope, subscription, items))


def charge_rows(
    scope: Scope, subscription: Subscription, items: Iterable[lifecycle.LifecycleItem]
) -> list[SubscriptionCharge]:
    """The pending charges the lifecycle ``items`` make (not saved).

    An item of 0.00 is a mark (a paid period's recurring fee, the credit of a period cut short) for the
    fees billed with the recurring fee; it is kept only if the subscription has such fees, so a plan
    without a base fee, components and add-ons stores nothing and bills as before (its usage, if any)."""
    now = clock.now()
    items = tuple(items)
    marked = _marking_versions(subscription, {item.plan_id for item in items if item.amount.is_zero()})
    return [
        SubscriptionCharge(
            public_id=new_id("sch", at=now),
            tenant_id=scope.tenant_id,
            livemode=scope.livemode,
            subscription=subscription,
            kind=item.kind.value,
            plan_version=item.plan_id,
            period_start=item.period.start,
            period_end=item.period.end,
            amount=item.amount.amount,
            currency=item.amount.currency,
            quantity=item.quantity,
            description=item.description,
            created_at=now,
        )
        for item in items
        if item.plan_id in marked or not item.amount.is_zero()
    ]


def _billed_with_the_period(version: PlanVersion) -> bool:
    """Whether ``version`` has fees its 0.00 recurring fee's periods must still bill (see below)."""
    kinds = {charge.kind for charge in version.charges_with_metrics()}
    return ChargeKind.QUANTITY in kinds or (
        version.billing_timing == BillingTiming.IN_ARREARS and ChargeKind.METERED in kinds
    )


def _marking_versions(subscription: Subscription, versions: set[str]) -> set[str]:
    """Those of the plan ``versions`` for which the subscription has fees billed with the recurring fee
    (the version's quantity charges, or add-ons) or, billed in arrears, metered charges (the usage of a
    period is billed when the period ends, which its mark makes due): its 0.00 lifecycle items mark
    periods for them."""
    if not versions:
        return set()
    found = {subscription.plan_version.public_id: subscription.plan_version}
    missing = versions - set(found)
    if missing:
        found.update(
            {version.public_id: version for version in PlanVersion.objects.filter(public_id__in=missing)}
        )
    marked = {
        public_id
        for public_id in versions
        if public_id in found and _billed_with_the_period(found[public_id])
    }
    if (
        marked != versions
        and SubscriptionAddOn.objects.filter(subscription=subscription)
        .filter(Q(quantity__gt=0) | Q(scheduled_quantity__gt=0))
        .exists()
    ):
        return set(versions)
    return marked


def _record_transition(
    scope: Scope, subscription: Subscription, transition: lifecycle.Transition, before: dict[str, Any] | None
) -> None:
    record_many(scope, transition_changes(subscription, transition, before))


def transition_changes(
    subscription: Subscription, transition: lifecycle.Transition, before: dict[str, Any] | None
) -> list[Change]:
    """The audit changes (and domain events) of ``transition``, stored on ``subscription`` already."""
    after = snapshot(subscription)
    changes = [
        Change(f"subscription.{event.value}", "subscription", subscription.public_id, before, after)
        for event in dict.fromkeys(transition.events)
    ]
    if before is not None:
        changes.append(Change("subscription.updated", "subscription", subscription.public_id, before, after))
    return changes


@transaction.atomic
def create_subscription(
    scope: Scope,
    *,
    customer: str,
    plan: str,
    quantity: Decimal | int | None = None,
    start_at: datetime | None = None,
    trial_days: int | None = None,
    coupon: str | None = None,
    addons: Iterable[tuple[str, Decimal | int]] = (),
    metadata: dict[str, str] | None = None,
    quantities: Mapping[str, Decimal | int] | None = None,
) -> Subscription:
    owner = get_customer(scope, customer, field="customer")
    version = _plan_version(scope, plan)
    amount = _quantity(quantity)
    codes = states.quantity_codes(version)
    components = _component_quantities(quantities or {}, version, codes)
    now = clock.now()
    if start_at is not None and (start_at.tzinfo is None or start_at.utcoffset() is None):
        raise ValidationFailed("start_at must carry a timezone", field="start_at")
    if start_at is not None and start_at < now:
        raise ValidationFailed("start_at must not lie in the past", field="start_at")
    if trial_days is not None and not 0 <= trial_days <= 730:
        raise ValidationFailed("trial_days must be between 0 and 730", field="trial_days")
    attached: list[tuple[AddOn, Decimal]] = []
    for index, (addon_id, addon_quantity) in enumerate(addons):
        addon: AddOn = _in_scope(AddOn, scope, addon_id, field=f"addons[{index}].addon", label="add-on")
        if addon.currency != version.currency:
            raise ValidationFailed(
                f"add-on {addon_id} is in {addon.currency}, the plan in {version.currency}",
                field=f"addons[{index}].addon",
            )
        if any(existing.pk == addon.pk for existing, _ in attached):
            raise ValidationFailed(f"add-on {addon_id} is listed twice", field=f"addons[{index}].addon")
        attached.append((addon, _quantity(addon_quantity, field=f"addons[{index}].quantity")))
    chosen_coupon: Coupon | None = None
    if coupon:
        chosen_coupon = _coupon(scope, coupon)
        if chosen_coupon.kind == "amount" and chosen_coupon.currency != version.currency:
            raise ValidationFailed(
                f"coupon {coupon} is in {chosen_coupon.currency}, the plan in {version.currency}",
                field="coupon",
            )
    cache = states.TermsCache()
    transition = lifecycle.create(
        cache.terms(version), amount, owner.timezone, at=now, start_at=start_at, trial_days=trial_days
    )
    subscription = Subscription(
        public_id=new_id("sub", at=now),
        tenant_id=scope.tenant_id,
        livemode=scope.livemode,
        created_at=now,
        customer=owner,
        coupon=chosen_coupon,
        metadata=dict(metadata or {}),
    )
    states.store(subscription, transition.subscription, cache)
    states.store_components(subscription, states.Components(states.for_version(components, version)))
    subscription.save()
    lock_version(version)
    if chosen_coupon is not None:
        redeem_coupon(scope, chosen_coupon, now)
    for addon, addon_quantity in attached:
        SubscriptionAddOn.objects.create(
            subscription=subscription, addon=addon, quantity=addon_quantity, added_at=now
        )
    _store_items(scope, subscription, transition.items)
    _record_transition(scope, subscription, transition, None)
    subscription_changed.send(Subscription, subscription=subscription, at=now)
    return subscription


def _coupon(scope: Scope, reference: str) -> Coupon:
    found = (
        Coupon.objects.filter(tenant_id=scope.tenant_id, livemode=scope.livemode)
        .filter(public_id=reference)
        .first()
        or Coupon.objects.filter(tenant_id=scope.tenant_id, livemode=scope.livemode, code=reference).first()
    )
    if found is None:
        raise NotFound(f"no coupon {reference}", field="coupon")
    return found


@dataclass(frozen=True)
class Outcome:
    subscription: Subscription
    transition: lifecycle.Transition
    plans: dict[str, str]
    direction: ChangeDirection | None = None
    components: states.Components = field(default_factory=states.Components)
    dropped: tuple[str, ...] = ()
    effective_at: datetime | None = None
    addons: tuple[SubscriptionAddOn, ...] | None = None


Move = Callable[[lifecycle.Subscription, states.TermsCache, datetime], lifecycle.Transition]


@dataclass(frozen=True)
class ComponentRequest:
    """New quantities of quantity charges by code, for ``target`` (the new plan's version, if any)."""

    quantities: Mapping[str, Decimal | int]
    target: PlanVersion | None
    timing: ChangeTiming | None
    alone: bool


@dataclass(frozen=True)
class ComponentChange:
    components: states.Components
    items: tuple[LifecycleItem, ...] = ()
    events: tuple[LifecycleEvent, ...] = ()
    dropped: tuple[str, ...] = ()
    direction: ChangeDirection | None = None
    effective_at: datetime | None = None


def _apply(
    scope: Scope,
    public_id: str,
    move: Move,
    *,
    write: bool = True,
    request: ComponentRequest | None = None,
) -> Outcome:
    """Run ``move`` on the locked subscription's state as of now; store the result when ``write``."""
    subscription = get_subscription(scope, public_id, lock=write)
    before = snapshot(subscription)
    cache = states.TermsCache()
    current = states.load(subscription, cache)
    now = clock.now()
    caught = lifecycle.advance(current, at=now)
    components = states.catch_up_components(
        states.load_components(subscription),
        subscription.plan_version.public_id,
        caught.subscription,
        cache,
    )
    moved = move(caught.subscription, cache, now)
    change = _component_change(
        subscription, caught.subscription, components, moved.subscription, cache, request
    )
    transition = lifecycle.Transition(
        moved.subscription,
        caught.items + moved.items + change.items,
        caught.events + moved.events + change.events,
    )
    if write:
        states.store(subscription, transition.subscription, cache)
        states.store_components(subscription, change.components)
        subscription.save()
        _addons_due(subscription, now)
        _store_items(scope, subscription, transition.items)
        _record_transition(scope, subscription, transition, before)
        subscription_changed.send(Subscription, subscription=subscription, at=now)
    return Outcome(
        subscription,
        transition,
        cache.plan_ids(),
        change.direction,
        change.components,
        change.dropped,
        change.effective_at,
    )


def _component_quantities(
    raw: Mapping[str, Decimal | int], version: PlanVersion, codes: Iterable[str]
) -> dict[str, Decimal]:
    known = set(codes)
    validated: dict[str, Decimal] = {}
    for code, value in raw.items():
        name = f"quantities.{code}"
        if code not in known:
            raise ValidationFailed(
                f"plan version {version.public_id} has no quantity charge {code!r}", field=name
            )
        validated[code] = _quantity(value, field=name)
    return validated


def _quantity_charges(version: PlanVersion) -> dict[str, PlanCharge]:
    return {charge.code: charge for charge in version.ordered_charges() if charge.kind == ChargeKind.QUANTITY}


def _amount(charge: PlanCharge | None, quantity: Decimal, currency: str) -> Money:
    if charge is None:
        return Money.zero(currency)
    return rate(charge.engine_price(), quantity, currency).amount


def _refuse_component_change(state: lifecycle.Subscription) -> None:
    if state.is_terminal:
        raise InvalidTransition(
            f"a {state.status} subscription cannot be changed; it stopped at {state.ended_at}", field="status"
        )
    if state.status is SubscriptionStatus.PAUSED:
        raise InvalidTransition("a paused subscription cannot be changed; resume it first", field="status")


def _component_change(
    subscription: Subscription,
    before: lifecycle.Subscription,
    components: states.Components,
    after: lifecycle.Subscription,
    cache: states.TermsCache,
    request: ComponentRequest | None,
) -> ComponentChange:
    """The component quantities after a move from ``before`` to ``after``, and the money it moves.

    A plan change carries the quantities of codes the new version also has; a component whose
    per-period amount changes now is prorated like the plan's fee: the old amount's unused part is
    credited, the new amount charged for the rest of the period.
    """
    if request is not None:
        _refuse_component_change(before)
    if after.is_terminal:
        return ComponentChange(states.Components(components.quantities))
    old_version = cache.versions[before.plan.plan_id]
    new_version = cache.versions[after.plan.plan_id]
    if request is None and old_version.pk == new_version.pk:
        return ComponentChange(components)
    now = after.as_of
    currency = after.plan.currency
    old_charges = _quantity_charges(old_version)
    new_charges = old_charges if new_version.pk == old_version.pk else _quantity_charges(new_version)
    quantities = components.quantities
    carried = {code: quantities.get(code, Decimal(0)) for code in new_charges}
    scheduled = dict(components.scheduled or {})
    pending = after.scheduled_change
    final_version = cache.versions[pending.plan.plan_id] if pending is not None else new_version
    final_charges = new_charges if final_version.pk == new_version.pk else _quantity_charges(final_version)
    plan_changed = final_version.pk != old_version.pk and (
        new_version.pk != old_version.pk or (request is not None and request.target is not None)
    )
    dropped = tuple(code for code in old_charges if code not in final_charges) if plan_changed else ()
    now_changes: dict[str, Decimal] = {}
    later: dict[str, Decimal] = {}
    withdrawn = False
    old_total, new_total = Money.zero(currency), Money.zero(currency)
    if request is not None:
        target = request.target or old_version
        plan_scheduled = target.pk != new_version.pk
        target_charges = final_charges if target.pk == final_version.pk else _quantity_charges(target)
        requested = _component_quantities(request.quantities, target, target_charges)
        for code, quantity in requested.items():
            old_amount = _amount(old_charges.get(code), quantities.get(code, Decimal(0)), currency)
            new_amount = _amount(target_charges[code], quantity, currency)
            old_total, new_total = old_total + old_amount, new_total + new_amount
            if not plan_scheduled and quantity == carried.get(code):
                withdrawn = scheduled.pop(code, None) is not None or withdrawn
                continue
            if plan_scheduled:
                later[code] = quantity
                continue
            timing = request.timing
            if after.status is SubscriptionStatus.PENDING:
                timing = ChangeTiming.NOW
            elif after.status is SubscriptionStatus.TRIALING:
                timing = timing or ChangeTiming.NOW
            elif timing is None:
                timing = ChangeTiming.PERIOD_END if new_amount < old_amount else ChangeTiming.NOW
            elif (
                timing is ChangeTiming.NOW and new_amount < old_amount and not old_version.allow_downgrade_now
            ):
                raise InvalidTransition(
                    f"plan {old_version.public_id} allows lower quantities only at the period end",
                    field="effective",
                )
            if timing is ChangeTiming.NOW:
                now_changes[code] = quantity
            else:
                later[code] = quantity
        if request.alone and not (now_changes or later or withdrawn):
            raise InvalidTransition("the subscription already has these quantities", field="quantities")
    new_quantities = {**carried, **now_changes}
    for code in now_changes:
        scheduled.pop(code, None)
    scheduled.update(later)
    scheduled = {code: value for code, value in scheduled.items() if code in final_charges}
    period = after.current_period
    scheduled_at = (period.end if period is not None else components.scheduled_at) if scheduled else None
    items: tuple[LifecycleItem, ...] = ()
    if before.status is SubscriptionStatus.ACTIVE and after.status is SubscriptionStatus.ACTIVE:
        language = subscription.customer.locale
        # A change to a new billing cycle begins a new period, which its component fees (prorated from
        # now) pay for, however they compare with the old period's.
        restarted = after.current_period != before.current_period
        for code in dict.fromkeys([*old_charges, *new_charges]):
            charge = new_charges.get(code) or old_charges[code]
            old_quantity = quantities.get(code, Decimal(0)) if code in old_charges else Decimal(0)
            new_quantity = new_quantities.get(code, Decimal(0))
            old_amount = _amount(old_charges.get(code), old_quantity, currency)
            new_amount = _amount(new_charges.get(code), new_quantity, currency)
            if old_amount.amount == new_amount.amount and not restarted:
                continue
            description = f"{charge.name(language) or code} {int(old_quantity)} → {int(new_quantity)}"[:200]
            credit_unused = not new_amount < old_amount or old_version.credit_unused_on_downgrade
            items += _proration_items(
                before, after, old_amount, new_amount, old_quantity, new_quantity, description, credit_unused
            )
    events: tuple[LifecycleEvent, ...] = ()
    if request is not None:
        events = (
            ((LifecycleEvent.CHANGED,) if now_changes else ())
            + ((LifecycleEvent.CHANGE_SCHEDULED,) if later else ())
            + ((LifecycleEvent.CHANGE_UNSCHEDULED,) if withdrawn else ())
        )
    direction = None
    effective_at = None
    if request is not None and request.alone:
        direction = (
            ChangeDirection.UPGRADE
            if new_total > old_total
            else ChangeDirection.DOWNGRADE
            if new_total < old_total
            else ChangeDirection.SAME_RATE
        )
        effective_at = scheduled_at if later and not now_changes else now
    return ComponentChange(
        states.Components(new_quantities, scheduled or None, scheduled_at),
        items,
        events,
        dropped,
        direction,
        effective_at,
    )


def _proration_items(
    before: lifecycle.Subscription,
    after: lifecycle.Subscription,
    old_amount: Money,
    new_amount: Money,
    old_quantity: Decimal,
    new_quantity: Decimal,
    description: str,
    credit_unused: bool,
) -> tuple[LifecycleItem, ...]:
    now = after.as_of
    items: list[LifecycleItem] = []
    old_period, old_basis = before.current_period, before.proration_basis
    new_period, new_basis = after.current_period, after.proration_basis
    if old_period is None or old_basis is None or new_period is None or new_basis is None:
        return ()
    if credit_unused and now < old_period.end:
        credit = change_proration(
            old_amount, new_amount, old_basis, now, ProrationMode(before.plan.proration), before.timezone
        ).credit
        if not credit.is_zero():
            items.append(
                LifecycleItem(
                    ItemKind.PRORATION_CREDIT,
                    before.plan.plan_id,
                    Period(now, old_period.end),
                    -credit,
                    description,
                    old_quantity,
                )
            )
    start = max(now, new_period.start)
    if start < new_period.end:
        charge = change_proration(
            old_amount, new_amount, new_basis, start, ProrationMode(after.plan.proration), after.timezone
        ).charge
        if not charge.is_zero():
            items.append(
                LifecycleItem(
                    ItemKind.PRORATION_CHARGE,
                    after.plan.plan_id,
                    Period(start, new_period.end),
                    charge,
                    description,
                    new_quantity,
                )
            )
    return tuple(items)


def _change_move(
    scope: Scope,
    plan: str | None,
    quantity: Decimal | int | None,
    effective: str | None,
    quantities: Mapping[str, Decimal | int] | None = None,
) -> tuple[Move, list[ChangeDirection], ComponentRequest | None]:
    directions: list[ChangeDirection] = []
    if plan is None and quantity is None and not quantities:
        raise ValidationFailed("give a new plan, a new quantity, new quantities or more", field="plan")
    new_version = _plan_version(scope, plan) if plan is not None else None
    new_quantity = _quantity(quantity) if quantity is not None else None
    timing = ChangeTiming(effective) if effective is not None else None
    alone = plan is None and quantity is None
    request = ComponentRequest(dict(quantities), new_version, timing, alone) if quantities else None

    def move(
        current: lifecycle.Subscription, cache: states.TermsCache, now: datetime
    ) -> lifecycle.Transition:
        if alone:
            return lifecycle.Transition(current)
        terms = cache.terms(new_version) if new_version is not None else None
        target_terms = terms or current.plan
        target_quantity = new_quantity if new_quantity is not None else current.quantity
        if target_terms.currency == current.plan.currency:
            directions.append(
                lifecycle.compare_plans(
                    current.plan, current.quantity, target_terms, target_quantity, now.date()
                )
            )
        return lifecycle.change(current, terms, new_quantity, timing, at=now)

    return move, directions, request


@transaction.atomic
def change_subscription(
    scope: Scope,
    public_id: str,
    *,
    plan: str | None = None,
    quantity: Decimal | int | None = None,
    effective: str | None = None,
    quantities: Mapping[str, Decimal | int] | None = None,
) -> Outcome:
    move, directions, request = _change_move(scope, plan, quantity, effective, quantities)
    outcome = _apply(scope, public_id, move, request=request)
    if plan is not None:
        lock_version(outcome.subscription.plan_version)
    return replace(outcome, direction=directions[0] if directions else outcome.direction)


def preview_change(
    scope: Scope,
    public_id: str,
    *,
    plan: str | None = None,
    quantity: Decimal | int | None = None,
    effective: str | None = None,
    quantities: Mapping[str, Decimal | int] | None = None,
) -> Outcome:
    """What ``change_subscription`` would do now, computed by the same code, without writing anything."""
    move, directions, request = _change_move(scope, plan, quantity, effective, quantities)
    outcome = _apply(scope, public_id, move, write=False, request=request)
    return replace(outcome, direction=directions[0] if directions else outcome.direction)


@transaction.atomic
def pause_subscription(
    scope: Scope, public_id: str, *, starts_at: datetime | None = None, resume_at: datetime | None = None
) -> Outcome:
    return _apply(
        scope,
        public_id,
        lambda current, _, now: lifecycle.pause(current, at=now, starts_at=starts_at, resume_at=resume_at),
    )


@transaction.atomic
def resume_subscription(scope: Scope, public_id: str) -> Outcome:
    return _apply(scope, public_id, lambda current, _, now: lifecycle.resume(current, at=now))


@transaction.atomic
def cancel_subscription(scope: Scope, public_id: str, *, mode: str) -> Outcome:
    cancel_mode = CancelMode(mode)
    return _apply(scope, public_id, lambda current, _, now: lifecycle.cancel(current, cancel_mode, at=now))


@transaction.atomic
def reactivate_subscription(scope: Scope, public_id: str) -> Outcome:
    return _apply(scope, public_id, lambda current, _, now: lifecycle.reactivate(current, at=now))


@transaction.atomic
def advance_subscription(scope: Scope, public_id: str) -> Outcome:
    """Store everything the lifecycle says fell due up to now (renewals, trial end, scheduled moves)."""
    return _apply(scope, public_id, lambda current, _, now: lifecycle.advance(current, at=now))


def current_view(scope: Scope, public_id: str) -> Outcome:
    """The subscription as of now (lifecycle caught up in memory; nothing is written)."""
    return _apply(scope, public_id, lambda current, _, now: lifecycle.advance(current, at=now), write=False)


@transaction.atomic
def migrate_plan(
    scope: Scope, plan_id: str, *, effective: str, effective_at: datetime | None = None
) -> PlanMigration:
    """Move the subscribers on older versions of ``plan_id`` to its current version.

    Without ``effective_at`` (or with one already past) it happens now; otherwise the migration is kept
    and ``run_due_migrations`` carries it out once ``effective_at`` has come. ``effective`` says whether a
    subscription moves at that moment (with proration) or at the end of the period it is then in.
    """
    plan: Plan = _in_scope(Plan, scope, plan_id, field="id", label="plan")
    timing = ChangeTiming(effective)
    now = clock.now()
    if effective_at is not None and (effective_at.tzinfo is None or effective_at.utcoffset() is None):
        raise ValidationFailed("effective_at must carry a timezone", field="effective_at")
    migration = PlanMigration.objects.create(
        public_id=new_id("pmig", at=now),
        tenant_id=scope.tenant_id,
        livemode=scope.livemode,
        plan=plan,
        target_version=plan.current_version(),
        effective=timing.value,
        effective_at=effective_at if effective_at is not None and effective_at > now else now,
        created_at=now,
    )
    record(
        scope,
        "plan_migration.created",
        "plan_migration",
        migration.public_id,
        after={
            "plan": plan.public_id,
            "version": migration.target_version.public_id,
            "effective": timing.value,
            "effective_at": migration.effective_at.isoformat(),
        },
    )
    if migration.effective_at <= now:
        _carry_out(scope, migration, now)
    return migration


def _carry_out(scope: Scope, migration: PlanMigration, now: datetime) -> None:
    version = migration.target_version
    timing = ChangeTiming(migration.effective)
    candidates = Subscription.objects.filter(
        tenant_id=scope.tenant_id, livemode=scope.livemode, plan_id=migration.plan_id
    ).exclude(plan_version=version)
    migrated: list[str] = []
    skipped: list[dict[str, str]] = []
    for public_id in candidates.values_list("public_id", flat=True).order_by("public_id"):
        try:
            with transaction.atomic():
                _apply(
                    scope,
                    public_id,
                    lambda current, cache, at: lifecycle.change(
                        current, cache.terms(version), None, timing, at=at
                    ),
                )
        except InvalidTransition as refused:
            skipped.append({"subscription": public_id, "reason": refused.message})
            continue
        migrated.append(public_id)
    if migrated:
        lock_version(version)
    migration.applied_at = now
    migration.migrated = migrated
    migration.skipped = skipped
    migration.save(update_fields=("applied_at", "migrated", "skipped"))
    record(
        scope,
        "plan_migration.applied",
        "plan_migration",
        migration.public_id,
        after={"migrated": migrated, "skipped": skipped},
    )


def run_due_migrations(now: datetime, *, tenant_id: int | None = None) -> int:
    """Carry out every scheduled plan migration whose date has come; returns how many ran."""
    due = PlanMigration.objects.filter(applied_at__isnull=True, effective_at__lte=now).order_by("public_id")
    if tenant_id is not None:
        due = due.filter(tenant_id=tenant_id)
    ran = 0
    for migration_id in due.values_list("pk", flat=True):
        with transaction.atomic():
            migration = (
                PlanMigration.objects.select_for_update()
                .filter(pk=migration_id, applied_at__isnull=True)
                .first()
            )
            if migration is None:
                continue
            scope = Scope(migration.tenant_id, migration.livemode, Actor(ActorKind.SYSTEM, "plan migration"))
            _carry_out(scope, migration, now)
            ran += 1
    return ran


# --- add-ons of a running subscription -----------------------------------------------------------------


def addon_period_at(addon: AddOn, added_at: datetime, instant: datetime, timezone: str) -> Period | None:
    """The add-on's own period containing ``instant`` (its cycle begins on the day it was first added);
    ``None`` before that day."""
    cycle = BillingCycle(addon.interval(), local_date(added_at, timezone), timezone)
    try:
        return cycle.period_at(instant)
    except InvalidPeriod:
        return None


def _addons_due(subscription: Subscription, now: datetime) -> None:
    """Store the scheduled add-on quantities that have taken effect by ``now`` as the current ones (their
    ``changes`` already hold them)."""
    SubscriptionAddOn.objects.filter(subscription=subscription, scheduled_at__lte=now).update(
        quantity=F("scheduled_quantity"), scheduled_quantity=None, scheduled_at=None
    )


def _whole(quantity: Decimal) -> str:
    return format(quantity.normalize(), "f")


def addon_view(attachment: SubscriptionAddOn, instant: datetime) -> dict[str, Any]:
    """The add-on as of ``instant``: its quantity then and the change scheduled after it, if any."""
    pending = attachment.pending(instant)
    return {
        "addon": attachment.addon.public_id,
        "code": attachment.addon.code,
        "quantity": _whole(attachment.quantity_as_of(instant)),
        "scheduled_quantity": None if pending is None else _whole(pending.quantity),
        "scheduled_at": None if pending is None or pending.at is None else pending.at.isoformat(),
    }


@dataclass(frozen=True)
class AddOnChange:
    """Setting an add-on's quantity: the attachment as it is to be stored, the money that moves now, the
    lifecycle events it counts as, and the add-on before and after (for the audit trail)."""

    attachment: SubscriptionAddOn
    items: tuple[LifecycleItem, ...]
    events: tuple[LifecycleEvent, ...]
    direction: ChangeDirection
    effective_at: datetime
    before: dict[str, Any]
    after: dict[str, Any]


def _addon(scope: Scope, reference: str) -> AddOn:
    """The add-on with the id or else the code ``reference``."""
    found = AddOn.objects.filter(tenant_id=scope.tenant_id, livemode=scope.livemode)
    addon = found.filter(public_id=reference).first() or found.filter(code=reference).first()
    if addon is None:
        raise NotFound(f"no add-on {reference}", field="addon")
    return addon


def _addon_timing(effective: str | None) -> ChangeTiming | None:
    if effective is None:
        return None
    if effective not in {timing.value for timing in ChangeTiming}:
        allowed = ", ".join(timing.value for timing in ChangeTiming)
        raise ValidationFailed(f"effective must be one of: {allowed}; got {effective!r}", field="effective")
    return ChangeTiming(effective)


def _addon_amount(addon: AddOn, quantity: Decimal) -> Money:
    return rate(addon.engine_price(), quantity, addon.currency).amount


def _addon_entry(at: datetime | None, quantity: Decimal, timing: ChangeTiming) -> dict[str, Any]:
    return {
        "at": None if at is None else at.isoformat(),
        "quantity": _whole(quantity),
        "timing": timing.value,
    }


def _set_addon_quantities(
    attachment: SubscriptionAddOn, now: datetime, change: tuple[datetime, Decimal, ChangeTiming] | None
) -> None:
    """Keep what took effect by ``now``, drop the change scheduled after it, add ``change`` (if any)."""
    kept = [
        _addon_entry(
            entry.at, entry.quantity, ChangeTiming.PERIOD_END if entry.at_period_end else ChangeTiming.NOW
        )
        for entry in attachment.timeline()
        if entry.at is None or entry.at <= now
    ]
    if change is not None:
        kept.append(_addon_entry(*change))
    attachment.changes = kept
    attachment.quantity = attachment.quantity_as_of(now)
    pending = attachment.pending(now)
    attachment.scheduled_quantity = None if pending is None else pending.quantity
    attachment.scheduled_at = None if pending is None else pending.at


def _addon_proration(
    state: lifecycle.Subscription,
    version: PlanVersion,
    addon: AddOn,
    added_at: datetime,
    quantities: tuple[Decimal, Decimal],
    description: str,
    now: datetime,
) -> tuple[LifecycleItem, ...]:
    """Credit of the unused part of the add-on's current period at the old quantity and charge of the
    rest at the new one: the plan's period for an add-on with the plan's interval, else its own."""
    if state.status is not SubscriptionStatus.ACTIVE:
        return ()
    if addon.interval() == version.interval():
        period, basis = state.current_period, state.proration_basis
        if period is None or basis is None:
            return ()
        end = period.end
    else:
        basis = addon_period_at(addon, added_at, now, state.timezone)
        if basis is None:
            return ()
        end = basis.end
    if not (basis.start <= now < basis.end and now < end):
        return ()
    old, new = quantities
    old_amount, new_amount = _addon_amount(addon, old), _addon_amount(addon, new)
    moved = change_proration(
        old_amount, new_amount, basis, now, ProrationMode(state.plan.proration), state.timezone
    )
    part = Period(now, end)
    items: list[LifecycleItem] = []
    if (not new_amount < old_amount or version.credit_unused_on_downgrade) and not moved.credit.is_zero():
        items.append(
            LifecycleItem(
                ItemKind.PRORATION_CREDIT, state.plan.plan_id, part, -moved.credit, description, old
            )
        )
    if not moved.charge.is_zero():
        items.append(
            LifecycleItem(ItemKind.PRORATION_CHARGE, state.plan.plan_id, part, moved.charge, description, new)
        )
    return tuple(items)


def _period_mark(subscription: Subscription, state: lifecycle.Subscription) -> tuple[LifecycleItem, ...]:
    """The 0.00 ``recurring`` mark of the current period, should an add-on changed now need one the period
    lacks: a paid period that began with nothing billed with the recurring fee (a plan without a base
    fee and quantity charges, no add-on) kept no mark (``charge_rows``). With it, the period's invoice
    bills the add-on's proration and a cut (a cancellation now, a pause, an end) credits the add-on's
    unused part, as in a period that began with it. None for the remainder a pause carried over (it ends
    on the new billing anchor): the lifecycle marks no such period, its fee was paid before the pause."""
    period = state.current_period
    if state.status is not SubscriptionStatus.ACTIVE or period is None:
        return ()
    if local_date(period.end, state.timezone) == state.billing_anchor:
        return ()
    marked = SubscriptionCharge.objects.filter(
        subscription=subscription,
        kind=ItemKind.RECURRING,
        period_start=period.start,
        period_end=period.end,
    ).exists()
    if marked:
        return ()
    zero = Money.zero(state.plan.currency)
    return (
        LifecycleItem(
            ItemKind.RECURRING, state.plan.plan_id, period, zero, "lifecycle.recurring", state.quantity
        ),
    )


def _addon_change(
    subscription: Subscription,
    state: lifecycle.Subscription,
    version: PlanVersion,
    addon: AddOn,
    attachment: SubscriptionAddOn | None,
    quantity: Decimal,
    timing: ChangeTiming | None,
    now: datetime,
) -> AddOnChange:
    """What setting ``addon``'s quantity to ``quantity`` on ``state`` (caught up to ``now``) does.

    Like a change of a component quantity, an active subscription raises now and lowers at the period
    end by default, and lowers now only if the plan allows it (crediting the unused part only if the plan
    says so). The period is the plan's for an add-on with the plan's interval, else the add-on's own.
    Before paid service begins (pending, trialing) nothing has been billed, so a change takes effect at
    once and for everything billed later. Setting the quantity it has withdraws a scheduled change."""
    _refuse_component_change(state)
    if addon.currency != state.plan.currency:
        raise ValidationFailed(
            f"add-on {addon.public_id} is in {addon.currency}, the plan in {state.plan.currency}",
            field="addon",
        )
    row = attachment or SubscriptionAddOn(subscription=subscription, addon=addon, quantity=0, added_at=now)
    before = addon_view(row, now)
    old, pending = row.quantity_as_of(now), row.pending(now)
    old_amount, new_amount = _addon_amount(addon, old), _addon_amount(addon, quantity)
    direction = (
        ChangeDirection.UPGRADE
        if old_amount < new_amount
        else ChangeDirection.DOWNGRADE
        if new_amount < old_amount
        else ChangeDirection.SAME_RATE
    )
    items: tuple[LifecycleItem, ...] = ()
    if quantity == old:
        if pending is None:
            if not quantity:
                raise InvalidTransition(
                    f"the subscription has no add-on {addon.public_id} to remove", field="addon"
                )
            raise InvalidTransition(
                f"the subscription already has add-on {addon.public_id} at quantity {_whole(quantity)}",
                field="quantity",
            )
        _set_addon_quantities(row, now, None)
        return AddOnChange(
            row, (), (LifecycleEvent.CHANGE_UNSCHEDULED,), direction, now, before, addon_view(row, now)
        )
    if not old and not addon.active:
        raise Conflict(f"add-on {addon.public_id} is archived and cannot be added", field="addon")
    # Never in effect so far: its own cycle begins when it takes effect.
    fresh = not any(entry.quantity > 0 and (entry.at is None or entry.at <= now) for entry in row.timeline())
    if state.status is not SubscriptionStatus.ACTIVE:
        if fresh:
            row.added_at = now
        row.changes = [_addon_entry(None, quantity, ChangeTiming.NOW)]
        _set_addon_quantities(row, now, None)
        return AddOnChange(row, (), (LifecycleEvent.CHANGED,), direction, now, before, addon_view(row, now))
    if timing is None:
        timing = ChangeTiming.PERIOD_END if new_amount < old_amount else ChangeTiming.NOW
    elif timing is ChangeTiming.NOW and new_amount < old_amount and not version.allow_downgrade_now:
        raise InvalidTransition(
            f"plan {version.public_id} allows lower add-on quantities only at the period end",
            field="effective",
        )
    own_cycle = addon.interval() != version.interval()
    if timing is ChangeTiming.NOW:
        effective_at = now
        if fresh:
            row.added_at = now
        with translation.override(subscription.customer.locale):
            description = gettext("Add-on: %(addon)s %(old)s → %(new)s") % {
                "addon": addon.name(subscription.customer.locale) or addon.code,
                "old": _whole(old),
                "new": _whole(quantity),
            }
        items = _addon_proration(state, version, addon, row.added_at, (old, quantity), description[:200], now)
        if items and addon.tax_category != version.plan.product.tax_category:
            raise InvalidTransition(
                f"add-on {addon.public_id} is taxed in another category than the plan, so it changes only "
                "at the period end",
                field="effective",
            )
        events: tuple[LifecycleEvent, ...] = (LifecycleEvent.CHANGED,)
    else:
        span = addon_period_at(addon, row.added_at, now, state.timezone) if own_cycle and not fresh else None
        period = span or state.current_period
        if period is None:
            raise InvalidTransition("the subscription has no current period to end", field="effective")
        effective_at = period.end
        if fresh:
            row.added_at = effective_at
        events = (LifecycleEvent.CHANGE_SCHEDULED,)
    _set_addon_quantities(row, now, (effective_at, quantity, timing))
    return AddOnChange(row, items, events, direction, effective_at, before, addon_view(row, now))


def _addon_outcome(
    scope: Scope,
    public_id: str,
    addon_id: str,
    quantity: Decimal | int | None,
    effective: str | None,
    *,
    write: bool,
) -> Outcome:
    new_quantity = _quantity(quantity)
    timing = _addon_timing(effective)
    subscription = get_subscription(scope, public_id, lock=write)
    addon = _addon(scope, addon_id)
    attached = {
        row.addon_id: row
        for row in SubscriptionAddOn.objects.filter(subscription=subscription).select_related("addon")
    }
    changes: list[AddOnChange] = []

    def move(
        current: lifecycle.Subscription, cache: states.TermsCache, now: datetime
    ) -> lifecycle.Transition:
        version = cache.versions[current.plan.plan_id]
        change = _addon_change(
            subscription, current, version, addon, attached.get(addon.pk), new_quantity, timing, now
        )
        changes.append(change)
        return lifecycle.Transition(current, change.items, change.events)

    outcome = _apply(scope, public_id, move, write=write)
    [change] = changes
    if write:
        change.attachment.save()
        if change.items:
            # Stored once the add-on is, so ``charge_rows`` keeps the mark for it.
            stored = outcome.subscription
            _store_items(scope, stored, _period_mark(stored, outcome.transition.subscription))
        record(
            scope,
            "subscription.addon_changed",
            "subscription",
            public_id,
            before={"id": public_id, **change.before},
            after={"id": public_id, **change.after},
        )
    attached[addon.pk] = change.attachment
    rows = sorted(attached.values(), key=lambda row: (row.added_at, row.addon.public_id))
    return replace(
        outcome,
        direction=change.direction,
        effective_at=change.effective_at,
        addons=tuple(rows),
    )


@transaction.atomic
def change_addon(
    scope: Scope,
    public_id: str,
    *,
    addon: str,
    quantity: Decimal | int | None = None,
    effective: str | None = None,
) -> Outcome:
    """Add ``addon`` (its id or code) to the subscription, change its quantity or remove it (quantity 0),
    now (prorated for the rest of its current period) or at the end of that period (``effective``)."""
    return _addon_outcome(scope, public_id, addon, quantity, effective, write=True)


def preview_addon_change(
    scope: Scope,
    public_id: str,
    *,
    addon: str,
    quantity: Decimal | int | None = None,
    effective: str | None = None,
) -> Outcome:
    """What ``change_addon`` would do now, computed by the same code, without writing anything."""
    return _addon_outcome(scope, public_id, addon, quantity, effective, write=False)
