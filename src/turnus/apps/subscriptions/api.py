"""/v1/subscriptions and its lifecycle actions; /v1/plans/{id}/migrate."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django.http import HttpRequest
from ninja import Query, Router, Schema, Status

from turnus.apps.customers.clocks import at as clock_at
from turnus.apps.customers.clocks import customer_named, customer_time, frozen_times
from turnus.apps.subscriptions import queries, services
from turnus.apps.subscriptions import state as states
from turnus.apps.subscriptions.models import Subscription, SubscriptionCharge
from turnus.apps.subscriptions.schemas import (
    AddOnChangeIn,
    CancelIn,
    ChangeIn,
    ChangeOut,
    EmptyIn,
    ItemOut,
    MigrateIn,
    MigrationOut,
    MoneyOut,
    PauseIn,
    ScheduledChangeOut,
    SubscriptionIn,
    SubscriptionOut,
    scheduled_changes,
    subscription_out,
)
from turnus.core import clock
from turnus.core.api import ListResponse, scope_of
from turnus.core.pagination import DEFAULT_LIMIT, paginate
from turnus.core.scope import Scope
from turnus.engine import lifecycle
from turnus.engine.lifecycle import ItemKind
from turnus.engine.money import Money

router = Router(tags=["subscriptions"])


class SubscriptionFilters(Schema):
    limit: int = DEFAULT_LIMIT
    starting_after: str | None = None
    customer: str | None = None
    plan: str | None = None
    status: str | None = None


def _render(subscription: Subscription) -> SubscriptionOut:
    now = clock.now()
    cache = states.TermsCache()
    state = states.load(subscription, cache)
    current = lifecycle.advance(state, at=max(now, state.as_of)).subscription
    components = states.catch_up_components(
        states.load_components(subscription), subscription.plan_version.public_id, current, cache
    )
    return subscription_out(subscription, current, components, now, cache.plan_ids())


def _render_outcome(scope: Scope, outcome: services.Outcome) -> SubscriptionOut:
    subscription = services.get_subscription(scope, outcome.subscription.public_id)
    return subscription_out(
        subscription, outcome.transition.subscription, outcome.components, clock.now(), outcome.plans
    )


def _is_mark(kind: str, amount: Decimal, description: str) -> bool:
    """A 0.00 lifecycle item (a paid period's recurring fee, the credit of a period cut short) only
    marks a period for the fees billed with the recurring fee: bookkeeping, not shown as an item."""
    if amount:
        return False
    return kind == ItemKind.RECURRING or (
        kind == ItemKind.PRORATION_CREDIT and description in lifecycle.CUT_SHORT
    )


def _change_out(outcome: services.Outcome) -> ChangeOut:
    state = outcome.transition.subscription
    items = [
        ItemOut.from_item(item)
        for item in outcome.transition.items
        if not _is_mark(item.kind, item.amount.amount, item.description)
    ]
    currency = state.plan.currency
    total = sum(
        (Money(item.amount, item.currency) for item in items if item.currency == currency),
        Money.zero(currency),
    )
    now = clock.now()
    scheduled = state.scheduled_change is not None and state.current_period is not None
    effective_at = state.current_period.end if scheduled and state.current_period else now
    return ChangeOut(
        direction=outcome.direction.value if outcome.direction else None,
        effective_at=outcome.effective_at or effective_at,
        items=items,
        total=MoneyOut(amount=total.amount, currency=currency),
        dropped_quantities=list(outcome.dropped),
        subscription=subscription_out(
            outcome.subscription, state, outcome.components, now, outcome.plans, outcome.addons
        ),
    )


def _at_time_of(scope: Scope, subscription_id: str) -> Any:
    """The block runs at the time of the subscription's customer (a test clock's, if it has one)."""
    return customer_time(scope, queries.customer_of(scope, subscription_id))


@router.post("/subscriptions", response={201: SubscriptionOut}, operation_id="create_subscription")
def create_subscription(request: HttpRequest, body: SubscriptionIn) -> Status[SubscriptionOut]:
    scope = scope_of(request)
    with customer_time(scope, customer_named(scope, body.customer)):
        return _create_subscription(scope, body)


def _create_subscription(scope: Scope, body: SubscriptionIn) -> Status[SubscriptionOut]:
    subscription = services.create_subscription(
        scope,
        customer=body.customer,
        plan=body.plan,
        quantity=body.quantity,
        start_at=body.start_at,
        trial_days=body.trial_days,
        coupon=body.coupon,
        addons=[(item.addon, item.quantity) for item in body.addons],
        metadata=body.metadata,
        quantities=body.quantities,
    )
    return Status(201, _render(services.get_subscription(scope, subscription.public_id)))


@router.get("/subscriptions", response=ListResponse[SubscriptionOut], operation_id="list_subscriptions")
def list_subscriptions(request: HttpRequest, filters: Query[SubscriptionFilters]) -> dict[str, Any]:
    scope = scope_of(request)
    queryset = (
        Subscription.objects.filter(tenant_id=scope.tenant_id, livemode=scope.livemode)
        .select_related("customer", "plan", "plan_version__plan")
        .prefetch_related("addons__addon", "plan_version__charges")
    )
    if filters.customer:
        queryset = queryset.filter(customer__public_id=filters.customer)
    if filters.plan:
        queryset = queryset.filter(plan__public_id=filters.plan)
    if filters.status:
        queryset = queryset.filter(status=filters.status)
    page = paginate(queryset, limit=filters.limit, starting_after=filters.starting_after)
    times = frozen_times(scope, {subscription.customer_id for subscription in page.items})
    data = []
    for subscription in page.items:
        with clock_at(times.get(subscription.customer_id)):
            data.append(_render(subscription))
    return {"data": data, "has_more": page.has_more}


@router.get("/subscriptions/{id}", response=SubscriptionOut, operation_id="retrieve_subscription")
def retrieve_subscription(request: HttpRequest, id: str) -> SubscriptionOut:
    scope = scope_of(request)
    subscription = queries.view_subscription(scope, id)
    frozen = None
    if vars(subscription).get("customer_test_clock_id") is not None:
        frozen = frozen_times(scope, [subscription.customer_id]).get(subscription.customer_id)
    with clock_at(frozen):
        return _render(subscription)


@router.get(
    "/subscriptions/{id}/scheduled_changes",
    response=list[ScheduledChangeOut],
    operation_id="list_scheduled_changes",
)
def list_scheduled_changes(request: HttpRequest, id: str) -> list[ScheduledChangeOut]:
    scope = scope_of(request)
    with _at_time_of(scope, id):
        outcome = services.current_view(scope, id)
        addons = outcome.subscription.addons.select_related("addon")
        return scheduled_changes(outcome.transition.subscription, outcome.components, addons, clock.now())


@router.get(
    "/subscriptions/{id}/pending_charges", response=list[ItemOut], operation_id="list_pending_charges"
)
def list_pending_charges(request: HttpRequest, id: str) -> list[ItemOut]:
    subscription = services.get_subscription(scope_of(request), id)
    charges = SubscriptionCharge.objects.filter(subscription=subscription).order_by("public_id")
    return [
        ItemOut.from_charge(charge)
        for charge in charges
        if not _is_mark(charge.kind, charge.amount, charge.description)
    ]


@router.post("/subscriptions/{id}/change", response=ChangeOut, operation_id="change_subscription")
def change_subscription(request: HttpRequest, id: str, body: ChangeIn) -> ChangeOut:
    scope = scope_of(request)
    with _at_time_of(scope, id):
        outcome = services.change_subscription(
            scope,
            id,
            plan=body.plan,
            quantity=body.quantity,
            effective=body.effective,
            quantities=body.quantities,
        )
        return _change_out(outcome)


@router.post(
    "/subscriptions/{id}/preview_change", response=ChangeOut, operation_id="preview_subscription_change"
)
def preview_change(request: HttpRequest, id: str, body: ChangeIn) -> ChangeOut:
    scope = scope_of(request)
    with _at_time_of(scope, id):
        outcome = services.preview_change(
            scope,
            id,
            plan=body.plan,
            quantity=body.quantity,
            effective=body.effective,
            quantities=body.quantities,
        )
        return _change_out(outcome)


@router.post("/subscriptions/{id}/addons", response=ChangeOut, operation_id="change_subscription_addon")
def change_addon(request: HttpRequest, id: str, body: AddOnChangeIn) -> ChangeOut:
    scope = scope_of(request)
    with _at_time_of(scope, id):
        outcome = services.change_addon(
            scope, id, addon=body.addon, quantity=body.quantity, effective=body.effective
        )
        return _change_out(outcome)


@router.post(
    "/subscriptions/{id}/addons/preview",
    response=ChangeOut,
    operation_id="preview_subscription_addon_change",
)
def preview_addon_change(request: HttpRequest, id: str, body: AddOnChangeIn) -> ChangeOut:
    scope = scope_of(request)
    with _at_time_of(scope, id):
        outcome = services.preview_addon_change(
            scope, id, addon=body.addon, quantity=body.quantity, effective=body.effective
        )
        return _change_out(outcome)


@router.post("/subscriptions/{id}/pause", response=SubscriptionOut, operation_id="pause_subscription")
def pause_subscription(request: HttpRequest, id: str, body: PauseIn) -> SubscriptionOut:
    scope = scope_of(request)
    with _at_time_of(scope, id):
        outcome = services.pause_subscription(scope, id, starts_at=body.starts_at, resume_at=body.resume_at)
        return _render_outcome(scope, outcome)


@router.post("/subscriptions/{id}/resume", response=SubscriptionOut, operation_id="resume_subscription")
def resume_subscription(request: HttpRequest, id: str, body: EmptyIn | None = None) -> SubscriptionOut:
    scope = scope_of(request)
    with _at_time_of(scope, id):
        return _render_outcome(scope, services.resume_subscription(scope, id))


@router.post("/subscriptions/{id}/cancel", response=SubscriptionOut, operation_id="cancel_subscription")
def cancel_subscription(request: HttpRequest, id: str, body: CancelIn) -> SubscriptionOut:
    scope = scope_of(request)
    with _at_time_of(scope, id):
        return _render_outcome(scope, services.cancel_subscription(scope, id, mode=body.mode))


@router.post(
    "/subscriptions/{id}/reactivate", response=SubscriptionOut, operation_id="reactivate_subscription"
)
def reactivate_subscription(request: HttpRequest, id: str, body: EmptyIn | None = None) -> SubscriptionOut:
    scope = scope_of(request)
    with _at_time_of(scope, id):
        return _render_outcome(scope, services.reactivate_subscription(scope, id))


@router.post("/plans/{id}/migrate", response=MigrationOut, operation_id="migrate_plan")
def migrate_plan(request: HttpRequest, id: str, body: MigrateIn) -> MigrationOut:
    migration = services.migrate_plan(
        scope_of(request), id, effective=body.effective, effective_at=body.effective_at
    )
    return MigrationOut(
        id=migration.public_id,
        plan=id,
        version=migration.target_version.public_id,
        effective=migration.effective,
        effective_at=migration.effective_at,
        status="applied" if migration.applied_at else "scheduled",
        migrated=migration.migrated,
        skipped=migration.skipped,
    )
