from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any, Literal

from ninja import Field, Schema

from turnus.apps.subscriptions.models import Subscription, SubscriptionAddOn, SubscriptionCharge
from turnus.apps.subscriptions.state import Components
from turnus.core.api import DecimalString, InputSchema, UtcDateTime
from turnus.engine import lifecycle
from turnus.engine.money import Money


class SubscriptionAddOnIn(InputSchema):
    addon: str = Field(min_length=1, max_length=40)
    quantity: DecimalString = Decimal(1)


class AddOnChangeIn(InputSchema):
    addon: str = Field(min_length=1, max_length=40)
    quantity: DecimalString = Decimal(1)
    effective: Literal["now", "period_end"] | None = None


class SubscriptionIn(InputSchema):
    customer: str = Field(min_length=1, max_length=40)
    plan: str = Field(min_length=1, max_length=40)
    quantity: DecimalString = Decimal(1)
    start_at: UtcDateTime | None = None
    trial_days: int | None = Field(default=None, ge=0, le=730)
    coupon: str | None = Field(default=None, min_length=1, max_length=64)
    addons: list[SubscriptionAddOnIn] = Field(default_factory=list, max_length=20)
    metadata: dict[str, str] = Field(default_factory=dict, max_length=50)
    quantities: dict[str, DecimalString] = Field(default_factory=dict, max_length=50)


class ChangeIn(InputSchema):
    plan: str | None = Field(default=None, min_length=1, max_length=40)
    quantity: DecimalString | None = None
    quantities: dict[str, DecimalString] | None = Field(default=None, max_length=50)
    effective: Literal["now", "period_end"] | None = None


class PauseIn(InputSchema):
    starts_at: UtcDateTime | None = None
    resume_at: UtcDateTime | None = None


class CancelIn(InputSchema):
    mode: Literal["now", "period_end", "contract_end"] = "period_end"


class EmptyIn(InputSchema):
    pass


class MigrateIn(InputSchema):
    effective: Literal["now", "period_end"] = "period_end"
    effective_at: UtcDateTime | None = None


class MoneyOut(Schema):
    amount: DecimalString
    currency: str


class ItemOut(Schema):
    kind: str
    description: str
    amount: DecimalString
    currency: str
    quantity: DecimalString
    plan_version: str
    period_start: datetime
    period_end: datetime

    @staticmethod
    def from_item(item: lifecycle.LifecycleItem) -> ItemOut:
        return ItemOut(
            kind=item.kind.value,
            description=item.description,
            amount=item.amount.amount,
            currency=item.amount.currency,
            quantity=item.quantity.normalize(),
            plan_version=item.plan_id,
            period_start=item.period.start,
            period_end=item.period.end,
        )

    @staticmethod
    def from_charge(charge: SubscriptionCharge) -> ItemOut:
        return ItemOut(
            kind=charge.kind,
            description=charge.description,
            amount=Money(charge.amount, charge.currency).rounded().amount,
            currency=charge.currency,
            quantity=charge.quantity.normalize(),
            plan_version=charge.plan_version,
            period_start=charge.period_start,
            period_end=charge.period_end,
        )


class ScheduledChangeOut(Schema):
    type: Literal["plan_change", "quantity_change", "addon_change", "cancellation", "pause", "resume"]
    effective_at: datetime | None
    plan_version: str | None = None
    quantity: DecimalString | None = None
    quantities: dict[str, DecimalString] | None = None
    addon: str | None = None


class SubscriptionAddOnOut(Schema):
    addon: str
    quantity: DecimalString


class SubscriptionOut(Schema):
    id: str
    object: str = "subscription"
    livemode: bool
    customer: str
    plan: str
    plan_version: str
    status: str
    quantity: DecimalString
    quantities: dict[str, DecimalString]
    currency: str
    recurring_price: DecimalString
    timezone: str
    started_at: datetime
    current_period_start: datetime | None
    current_period_end: datetime | None
    next_billing_at: datetime | None
    trial_end: datetime | None
    contract_start: datetime | None
    contract_end: datetime | None
    earliest_cancellation_at: datetime | None
    cancel_at: datetime | None
    cancelled_at: datetime | None
    ended_at: datetime | None
    paused_at: datetime | None
    resume_at: datetime | None
    scheduled_changes: list[ScheduledChangeOut]
    coupon: str | None
    addons: list[SubscriptionAddOnOut]
    metadata: dict[str, Any]
    created_at: datetime


class ChangeOut(Schema):
    object: str = "subscription_change"
    direction: str | None
    effective_at: datetime | None
    items: list[ItemOut]
    total: MoneyOut
    dropped_quantities: list[str]
    subscription: SubscriptionOut


class MigrationOut(Schema):
    id: str
    object: str = "plan_migration"
    plan: str
    version: str
    effective: str
    effective_at: datetime
    status: Literal["scheduled", "applied"]
    migrated: list[str]
    skipped: list[dict[str, str]]


def _addons_as_of(addons: Iterable[SubscriptionAddOn], now: datetime) -> list[SubscriptionAddOnOut]:
    """The add-ons attached at ``now`` or to be attached later (quantity 0 until then)."""
    return [
        SubscriptionAddOnOut(addon=attachment.addon.public_id, quantity=quantity.normalize())
        for attachment in addons
        if (quantity := attachment.quantity_as_of(now)) or attachment.pending(now) is not None
    ]


def _addon_changes(addons: Iterable[SubscriptionAddOn], now: datetime) -> list[ScheduledChangeOut]:
    return [
        ScheduledChangeOut(
            type="addon_change",
            effective_at=pending.at,
            addon=attachment.addon.public_id,
            quantity=pending.quantity.normalize(),
        )
        for attachment in addons
        if (pending := attachment.pending(now)) is not None
    ]


def scheduled_changes(
    state: lifecycle.Subscription,
    components: Components,
    addons: Iterable[SubscriptionAddOn] = (),
    now: datetime | None = None,
) -> list[ScheduledChangeOut]:
    changes: list[ScheduledChangeOut] = []
    if not state.is_terminal:
        changes += _addon_changes(addons, now or state.as_of)
    if components.scheduled and not state.is_terminal:
        changes.append(
            ScheduledChangeOut(
                type="quantity_change",
                effective_at=components.scheduled_at,
                quantities=components.scheduled,
            )
        )
    if state.scheduled_change is not None and state.current_period is not None:
        changes.append(
            ScheduledChangeOut(
                type="plan_change",
                effective_at=state.current_period.end,
                plan_version=state.scheduled_change.plan.plan_id,
                quantity=state.scheduled_change.quantity.normalize(),
            )
        )
    if state.pause is not None:
        if state.status is not lifecycle.SubscriptionStatus.PAUSED:
            changes.append(ScheduledChangeOut(type="pause", effective_at=state.pause.paused_at))
        if state.pause.resume_at is not None:
            changes.append(ScheduledChangeOut(type="resume", effective_at=state.pause.resume_at))
    if state.cancel_at is not None and not state.is_terminal:
        changes.append(ScheduledChangeOut(type="cancellation", effective_at=state.cancel_at))
    return sorted(changes, key=lambda change: (change.effective_at is None, change.effective_at))


def subscription_out(
    subscription: Subscription,
    state: lifecycle.Subscription,
    components: Components,
    now: datetime,
    plans: Mapping[str, str],
    addons: Iterable[SubscriptionAddOn] | None = None,
) -> SubscriptionOut:
    """The API view of ``state`` and ``components``; ``plans`` maps plan version ids to their plan's id;
    ``addons`` are the subscription's stored add-ons unless given."""
    if addons is None:
        addons = subscription.addons.all() if getattr(subscription, "has_addons", True) else ()
    addons = list(addons)
    period = state.current_period
    earliest = None if state.is_terminal else lifecycle.earliest_cancellation(state, max(now, state.as_of))
    return SubscriptionOut(
        id=subscription.public_id,
        livemode=subscription.livemode,
        customer=subscription.customer.public_id,
        plan=plans[state.plan.plan_id],
        plan_version=state.plan.plan_id,
        status=state.status.value,
        quantity=state.quantity.normalize(),
        quantities=components.quantities,
        currency=state.plan.currency,
        recurring_price=state.plan.recurring_price.amount,
        timezone=state.timezone,
        started_at=state.started_at,
        current_period_start=period.start if period else None,
        current_period_end=period.end if period else None,
        next_billing_at=lifecycle.next_event_at(state),
        trial_end=state.trial_end,
        contract_start=state.contract_start,
        contract_end=state.contract_end,
        earliest_cancellation_at=earliest,
        cancel_at=state.cancel_at,
        cancelled_at=state.cancelled_at,
        ended_at=state.ended_at,
        paused_at=state.pause.paused_at
        if state.pause and state.status is lifecycle.SubscriptionStatus.PAUSED
        else None,
        resume_at=state.pause.resume_at if state.pause else None,
        scheduled_changes=scheduled_changes(state, components, addons, now),
        coupon=subscription.coupon.code if subscription.coupon else None,
        addons=_addons_as_of(addons, now),
        metadata=subscription.metadata,
        created_at=subscription.created_at,
    )
