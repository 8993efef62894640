"""Subscription use cases: each one loads the state, asks the engine's lifecycle, stores what it says."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.db import transaction

from turnus.apps.catalog.models import AddOn, Coupon, Plan, PlanVersion
from turnus.apps.catalog.services import lock_version, redeem_coupon
from turnus.apps.customers.services import get_customer
from turnus.apps.subscriptions import state as states
from turnus.apps.subscriptions.models import Subscription, SubscriptionAddOn, SubscriptionCharge
from turnus.core import clock
from turnus.core.audit import record
from turnus.core.errors import Conflict, NotFound, ValidationFailed
from turnus.core.ids import new_id
from turnus.core.scope import Scope
from turnus.engine import lifecycle
from turnus.engine.errors import InvalidTransition
from turnus.engine.lifecycle import CancelMode, ChangeDirection, ChangeTiming

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
    now = clock.now()
    SubscriptionCharge.objects.bulk_create(
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
    )


def _record_transition(
    scope: Scope, subscription: Subscription, transition: lifecycle.Transition, before: dict[str, Any] | None
) -> None:
    after = snapshot(subscription)
    for event in dict.fromkeys(transition.events):
        record(
            scope,
            f"subscription.{event.value}",
            "subscription",
            subscription.public_id,
            before=before,
            after=after,
        )
    if before is not None:
        record(
            scope, "subscription.updated", "subscription", subscription.public_id, before=before, after=after
        )


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
) -> Subscription:
    owner = get_customer(scope, customer, field="customer")
    version = _plan_version(scope, plan)
    amount = _quantity(quantity)
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


Move = Callable[[lifecycle.Subscription, states.TermsCache, datetime], lifecycle.Transition]


def _apply(scope: Scope, public_id: str, move: Move, *, write: bool = True) -> Outcome:
    """Run ``move`` on the locked subscription's state as of now; store the result when ``write``."""
    subscription = get_subscription(scope, public_id, lock=write)
    before = snapshot(subscription)
    cache = states.TermsCache()
    current = states.load(subscription, cache)
    now = clock.now()
    transition = move(current, cache, now)
    if write:
        states.store(subscription, transition.subscription, cache)
        subscription.save()
        _store_items(scope, subscription, transition.items)
        _record_transition(scope, subscription, transition, before)
    return Outcome(subscription, transition, cache.plan_ids())


def _change_move(
    scope: Scope, plan: str | None, quantity: Decimal | int | None, effective: str | None
) -> tuple[Move, list[ChangeDirection]]:
    directions: list[ChangeDirection] = []
    if plan is None and quantity is None:
        raise ValidationFailed("give a new plan, a new quantity or both", field="plan")
    new_version = _plan_version(scope, plan) if plan is not None else None
    new_quantity = _quantity(quantity) if quantity is not None else None
    timing = ChangeTiming(effective) if effective is not None else None

    def move(
        current: lifecycle.Subscription, cache: states.TermsCache, now: datetime
    ) -> lifecycle.Transition:
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

    return move, directions


@transaction.atomic
def change_subscription(
    scope: Scope,
    public_id: str,
    *,
    plan: str | None = None,
    quantity: Decimal | int | None = None,
    effective: str | None = None,
) -> Outcome:
    move, directions = _change_move(scope, plan, quantity, effective)
    outcome = _apply(scope, public_id, move)
    if plan is not None:
        lock_version(outcome.subscription.plan_version)
    return Outcome(
        outcome.subscription, outcome.transition, outcome.plans, directions[0] if directions else None
    )


def preview_change(
    scope: Scope,
    public_id: str,
    *,
    plan: str | None = None,
    quantity: Decimal | int | None = None,
    effective: str | None = None,
) -> Outcome:
    """What ``change_subscription`` would do now, computed by the same code, without writing anything."""
    move, directions = _change_move(scope, plan, quantity, effective)
    outcome = _apply(scope, public_id, move, write=False)
    return Outcome(
        outcome.subscription, outcome.transition, outcome.plans, directions[0] if directions else None
    )


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


def current_view(scope: Scope, public_id: str) -> Outcome:
    """The subscription as of now (lifecycle caught up in memory; nothing is written)."""
    return _apply(scope, public_id, lambda current, _, now: lifecycle.advance(current, at=now), write=False)


@dataclass(frozen=True)
class Migration:
    migrated: list[Subscription]
    skipped: list[tuple[str, str]]


@transaction.atomic
def migrate_plan(scope: Scope, plan_id: str, *, effective: str) -> Migration:
    """Move every subscription on an older version of ``plan_id`` to its current version.

    Subscriptions that cannot move (ended, cancelled, …) are listed as skipped with the reason.
    """
    plan: Plan = _in_scope(Plan, scope, plan_id, field="id", label="plan")
    version = plan.current_version()
    timing = ChangeTiming(effective)
    migrated: list[Subscription] = []
    skipped: list[tuple[str, str]] = []
    candidates = Subscription.objects.filter(
        tenant_id=scope.tenant_id, livemode=scope.livemode, plan=plan
    ).exclude(plan_version=version)
    for public_id in candidates.values_list("public_id", flat=True).order_by("public_id"):
        try:
            outcome = _apply(
                scope,
                public_id,
                lambda current, cache, now: lifecycle.change(
                    current, cache.terms(version), None, timing, at=now
                ),
            )
        except InvalidTransition as refused:
            skipped.append((public_id, refused.message))
            continue
        migrated.append(outcome.subscription)
    if migrated:
        lock_version(version)
    return Migration(migrated, skipped)
