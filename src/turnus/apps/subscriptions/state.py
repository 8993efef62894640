"""Between the stored subscription and the engine's lifecycle state: load one, store the other."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from turnus.apps.catalog.models import ChargeKind, PlanVersion
from turnus.apps.subscriptions.models import Subscription
from turnus.engine import lifecycle
from turnus.engine.periods import Period


def _period(start: datetime | None, end: datetime | None) -> Period | None:
    return Period(start, end) if start is not None and end is not None else None


def _bounds(period: Period | None) -> tuple[datetime | None, datetime | None]:
    return (period.start, period.end) if period is not None else (None, None)


def _pause_to_json(pause: lifecycle.PauseState | None) -> dict[str, Any] | None:
    if pause is None:
        return None

    def span(period: Period | None) -> list[str] | None:
        return None if period is None else [period.start.isoformat(), period.end.isoformat()]

    return {
        "paused_at": pause.paused_at.isoformat(),
        "resume_at": pause.resume_at.isoformat() if pause.resume_at else None,
        "remaining_days": pause.remaining_days,
        "unused": span(pause.unused),
        "basis": span(pause.basis),
    }


def _pause_from_json(data: dict[str, Any] | None) -> lifecycle.PauseState | None:
    if not data:
        return None

    def span(value: list[str] | None) -> Period | None:
        return (
            None
            if value is None
            else Period(datetime.fromisoformat(value[0]), datetime.fromisoformat(value[1]))
        )

    return lifecycle.PauseState(
        paused_at=datetime.fromisoformat(data["paused_at"]),
        resume_at=datetime.fromisoformat(data["resume_at"]) if data["resume_at"] else None,
        remaining_days=int(data["remaining_days"]),
        unused=span(data["unused"]),
        basis=span(data["basis"]),
    )


class TermsCache:
    """Plan terms by version, built once per use case."""

    def __init__(self) -> None:
        self._terms: dict[int, lifecycle.PlanTerms] = {}
        self.versions: dict[str, PlanVersion] = {}

    def plan_ids(self) -> dict[str, str]:
        """Plan id by plan version id, for every version seen."""
        return {version_id: version.plan.public_id for version_id, version in self.versions.items()}

    def terms(self, version: PlanVersion) -> lifecycle.PlanTerms:
        if version.pk not in self._terms:
            self._terms[version.pk] = version.engine_terms()
            self.versions[version.public_id] = version
        return self._terms[version.pk]


def load(subscription: Subscription, cache: TermsCache) -> lifecycle.Subscription:
    scheduled = None
    if subscription.scheduled_plan_version is not None and subscription.scheduled_requested_at is not None:
        scheduled = lifecycle.ScheduledChange(
            plan=cache.terms(subscription.scheduled_plan_version),
            quantity=Decimal(subscription.scheduled_quantity or 0),
            requested_at=subscription.scheduled_requested_at,
        )
    return lifecycle.Subscription(
        status=lifecycle.SubscriptionStatus(subscription.status),
        plan=cache.terms(subscription.plan_version),
        quantity=Decimal(subscription.quantity),
        timezone=subscription.timezone,
        started_at=subscription.started_at,
        as_of=subscription.as_of,
        billing_anchor=subscription.billing_anchor,
        current_period=_period(subscription.current_period_start, subscription.current_period_end),
        proration_basis=_period(subscription.proration_basis_start, subscription.proration_basis_end),
        segment_start=subscription.segment_start,
        trial_end=subscription.trial_end,
        contract_start=subscription.contract_start,
        contract_end=subscription.contract_end,
        contract_renewals=subscription.contract_renewals,
        cancel_at=subscription.cancel_at,
        cancelled_at=subscription.cancelled_at,
        ended_at=subscription.ended_at,
        pause=_pause_from_json(subscription.pause),
        scheduled_change=scheduled,
    )


def store(subscription: Subscription, state: lifecycle.Subscription, cache: TermsCache) -> None:
    """Copy ``state`` onto ``subscription`` (not saved). Versions named by the state must be in ``cache``."""
    version = cache.versions[state.plan.plan_id]
    subscription.plan_version = version
    subscription.plan_id = version.plan_id
    subscription.quantity = state.quantity
    subscription.status = state.status.value
    subscription.timezone = state.timezone
    subscription.started_at = state.started_at
    subscription.as_of = state.as_of
    subscription.billing_anchor = state.billing_anchor
    subscription.current_period_start, subscription.current_period_end = _bounds(state.current_period)
    subscription.proration_basis_start, subscription.proration_basis_end = _bounds(state.proration_basis)
    subscription.segment_start = state.segment_start
    subscription.trial_end = state.trial_end
    subscription.contract_start = state.contract_start
    subscription.contract_end = state.contract_end
    subscription.contract_renewals = state.contract_renewals
    subscription.cancel_at = state.cancel_at
    subscription.cancelled_at = state.cancelled_at
    subscription.ended_at = state.ended_at
    subscription.pause = _pause_to_json(state.pause)
    change = state.scheduled_change
    subscription.scheduled_plan_version = cache.versions[change.plan.plan_id] if change else None
    subscription.scheduled_quantity = change.quantity if change else None
    subscription.scheduled_requested_at = change.requested_at if change else None
    subscription.next_event_at = lifecycle.next_event_at(state)


@dataclass(frozen=True)
class Components:
    """Quantities of the plan's quantity charges by charge code, and those scheduled to replace them."""

    quantities: dict[str, Decimal] = field(default_factory=dict)
    scheduled: dict[str, Decimal] | None = None
    scheduled_at: datetime | None = None


def quantity_codes(version: PlanVersion) -> list[str]:
    return [charge.code for charge in version.ordered_charges() if charge.kind == ChargeKind.QUANTITY]


def quantities_to_json(quantities: dict[str, Decimal]) -> dict[str, str]:
    return {code: str(int(value)) for code, value in quantities.items()}


def quantities_from_json(data: dict[str, Any] | None) -> dict[str, Decimal]:
    return {code: Decimal(value) for code, value in (data or {}).items()}


def load_components(subscription: Subscription) -> Components:
    scheduled = subscription.scheduled_component_quantities
    return Components(
        quantities_from_json(subscription.component_quantities),
        None if scheduled is None else quantities_from_json(scheduled),
        subscription.scheduled_components_at,
    )


def store_components(subscription: Subscription, components: Components) -> None:
    subscription.component_quantities = quantities_to_json(components.quantities)
    subscription.scheduled_component_quantities = (
        None if components.scheduled is None else quantities_to_json(components.scheduled)
    )
    subscription.scheduled_components_at = components.scheduled_at


def for_version(quantities: dict[str, Decimal], version: PlanVersion) -> dict[str, Decimal]:
    """``quantities`` of the codes ``version`` has; its other quantity charges start at 0."""
    return {code: quantities.get(code, Decimal(0)) for code in quantity_codes(version)}


def catch_up_components(
    components: Components, stored_version: str, state: lifecycle.Subscription, cache: TermsCache
) -> Components:
    """``components`` as of ``state``: the scheduled set applied once its instant has passed, and the
    quantities carried over to the plan version ``state`` is on if it is not ``stored_version``."""
    if state.is_terminal:
        return Components(components.quantities)
    quantities, scheduled, at = components.quantities, components.scheduled, components.scheduled_at
    if scheduled is not None and at is not None and state.as_of >= at:
        quantities, scheduled, at = {**quantities, **scheduled}, None, None
    if state.plan.plan_id != stored_version:
        version = cache.versions[state.plan.plan_id]
        quantities = for_version(quantities, version)
        if scheduled is not None:
            codes = set(quantities)
            scheduled = {code: value for code, value in scheduled.items() if code in codes} or None
            at = at if scheduled else None
    return Components(quantities, scheduled, at)
