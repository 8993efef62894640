"""Metering use cases: ingest usage events exactly once, void or correct them, close usage for billing.

Ingestion is the hot path. A batch is checked in plain Python after one query each for its metrics, its
customers, its subscriptions (with their watermarks) and the metrics their plans charge; then one
transaction claims the transaction ids in the ledger and writes the new events in bulk.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Q

from turnus.apps.catalog.models import BillableMetric, ChargeKind, PlanCharge
from turnus.apps.customers.clocks import frozen_times
from turnus.apps.customers.models import Customer
from turnus.apps.metering import store
from turnus.apps.metering.models import (
    GROUP_KEY_MAX_LENGTH,
    TRANSACTION_ID_MAX_LENGTH,
    EventTransaction,
    EventVoid,
    UsageEvent,
    UsageSettings,
    UsageWatermark,
    VoidReason,
)
from turnus.apps.subscriptions.models import Subscription
from turnus.core import clock
from turnus.core.audit import Change, record, record_many
from turnus.core.bulk import insert_rows, update_rows
from turnus.core.errors import Conflict, NotFound, TurnusError, ValidationFailed
from turnus.core.scope import Scope
from turnus.engine.aggregation import Aggregation

MAX_BATCH = 1000
MAX_PROPERTIES = 50
MAX_PROPERTY_NAME_LENGTH = 100
MAX_PROPERTY_TEXT_LENGTH = GROUP_KEY_MAX_LENGTH
MAX_PROPERTIES_BYTES = 4096
FUTURE_TOLERANCE = timedelta(minutes=5)
DEFAULT_LATE_EVENT_GRACE = timedelta(hours=24)
EVENT_FIELDS = frozenset(
    {"transaction_id", "customer", "subscription", "metric", "timestamp", "properties", "corrects"}
)
_MAX_VALUE = Decimal(10) ** 18
_VALUE_QUANTUM = Decimal(1).scaleb(-12)
_NUMERIC = frozenset({Aggregation.SUM, Aggregation.MAX, Aggregation.LATEST, Aggregation.WEIGHTED_SUM})


class UsageClosed(ValidationFailed):
    """The event falls before the subscription's usage watermark: that period's invoice is final.
    Record the change in the current period instead (a correcting event)."""

    code = "usage_closed"


class TransactionIdReused(Conflict):
    """This transaction id was accepted before with different content. Use a new transaction id."""

    code = "transaction_id_reused"


class EventStatus(StrEnum):
    CREATED = "created"
    DUPLICATE = "duplicate"
    REJECTED = "rejected"


@dataclass(slots=True)
class EventResult:
    index: int
    transaction_id: str | None
    status: EventStatus
    error: TurnusError | None = None
    event: AcceptedEvent | None = None


@dataclass(frozen=True, slots=True)
class AcceptedEvent:
    transaction_id: str
    subscription: str
    customer: str
    metric: str
    timestamp: datetime
    properties: Mapping[str, Any]
    created_at: datetime
    voided: bool = False


@dataclass(slots=True)
class _Candidate:
    index: int
    transaction_id: str
    content_hash: str
    metric: str
    customer: str | None
    subscription: str | None
    timestamp: datetime
    properties: dict[str, Any]
    corrects: str | None
    resolved: dict[str, Any] = field(default_factory=dict)
    requested: datetime | None = None  # the timestamp sent; ``timestamp`` is settled by its customer's time


@dataclass(frozen=True, slots=True)
class _MetricRow:
    id: int
    code: str
    aggregation: Aggregation
    property: str
    group_by: str


@dataclass(frozen=True, slots=True)
class _SubscriptionRow:
    id: int
    public_id: str
    customer_id: int
    customer_public_id: str
    plan_version_id: int
    started_at: datetime
    cancel_at: datetime | None
    ended_at: datetime | None
    pause: dict[str, Any] | None
    closed_until: datetime | None


# --- settings for billing -------------------------------------------------------------------------


def late_event_grace(scope: Scope) -> timedelta:
    """How long after a period ends its invoice stays a draft that late events still reach."""
    found = UsageSettings.objects.filter(tenant_id=scope.tenant_id).values_list("late_event_grace", flat=True)
    for grace in found:
        return grace
    default: timedelta = getattr(settings, "TURNUS_LATE_EVENT_GRACE", DEFAULT_LATE_EVENT_GRACE)
    return default


@transaction.atomic
def set_late_event_grace(scope: Scope, grace: timedelta) -> UsageSettings:
    if grace < timedelta(0) or grace > timedelta(days=90):
        raise ValidationFailed("the grace window lies between 0 and 90 days", field="late_event_grace")
    before = late_event_grace(scope)
    row, _ = UsageSettings.objects.update_or_create(
        tenant_id=scope.tenant_id, defaults={"late_event_grace": grace}
    )
    record(
        scope,
        "usage_settings.updated",
        "tenant",
        str(scope.tenant_id),
        before={"late_event_grace": before.total_seconds()},
        after={"late_event_grace": grace.total_seconds()},
    )
    return row


def usage_closed_until(scope: Scope, subscription_id: int) -> datetime | None:
    found = UsageWatermark.objects.filter(
        tenant_id=scope.tenant_id, livemode=scope.livemode, subscription_id=subscription_id
    ).values_list("closed_until", flat=True)
    return next(iter(found), None)


@transaction.atomic
def close_usage(scope: Scope, subscription_public_id: str, until: datetime) -> UsageWatermark:
    """Refuse events (and voids) before ``until`` for this subscription; billing calls it when it finalises
    an invoice. The watermark only moves forward."""
    subscription = Subscription.objects.filter(
        tenant_id=scope.tenant_id, livemode=scope.livemode, public_id=subscription_public_id
    ).first()
    if subscription is None:
        raise NotFound(f"no subscription {subscription_public_id}", field="subscription")
    record_many(scope, close_usage_many(scope, [(subscription, until)]))
    return UsageWatermark.objects.get(subscription=subscription)


def close_usage_many(scope: Scope, items: Sequence[tuple[Subscription, datetime]]) -> list[Change]:
    """``close_usage`` for many subscriptions of ``scope`` (a statement per table); returns the audit
    changes for the caller to record with its own."""
    wanted: dict[int, tuple[Subscription, datetime]] = {}
    for subscription, until in items:
        moment = until.astimezone(UTC)
        known = wanted.get(subscription.pk)
        if known is None or moment > known[1]:
            wanted[subscription.pk] = (subscription, moment)
    existing = {
        watermark.subscription_id: watermark
        for watermark in UsageWatermark.objects.select_for_update().filter(subscription_id__any=list(wanted))
    }
    now = clock.now()
    inserts: list[tuple[Any, ...]] = []
    updates: list[tuple[Any, ...]] = []
    changes: list[Change] = []
    for pk, (subscription, until) in wanted.items():
        watermark = existing.get(pk)
        if watermark is None:
            inserts.append((scope.tenant_id, scope.livemode, pk, until, now))
        elif until > watermark.closed_until:
            updates.append((watermark.pk, until, now))
        else:
            continue
        before = None if watermark is None else watermark.closed_until.isoformat()
        changes.append(
            Change(
                "usage.closed",
                "subscription",
                subscription.public_id,
                before={"closed_until": before},
                after={"closed_until": until.isoformat()},
            )
        )
    insert_rows(UsageWatermark, ("tenant", "livemode", "subscription", "closed_until", "updated_at"), inserts)
    update_rows(UsageWatermark, ("closed_until", "updated_at"), updates)
    return changes


# --- parsing --------------------------------------------------------------------------------------


def parse_body(body: bytes) -> Any:
    """JSON with exact decimals: a number with a fraction becomes a ``Decimal``, never a float."""
    try:
        return json.loads(body or b"null", parse_float=Decimal)
    except (ValueError, UnicodeDecodeError):
        raise ValidationFailed("the body is not valid JSON", field="body") from None


def _json_default(value: Any) -> str:
    if isinstance(value, Decimal):
        return format(value, "f")
    raise TypeError(type(value).__name__)


def _content_hash(raw: Mapping[str, Any]) -> str:
    content = {name: raw[name] for name in raw if name != "transaction_id"}
    text = json.dumps(content, sort_keys=True, separators=(",", ":"), default=_json_default)
    return hashlib.blake2b(text.encode(), digest_size=16).hexdigest()


def _text_field(raw: Mapping[str, Any], name: str, *, max_length: int = 255) -> str | None:
    value = raw.get(name)
    if value is None:
        return None
    if not isinstance(value, str) or not value or len(value) > max_length or not value.isprintable():
        raise ValidationFailed(f"{name} must be 1 to {max_length} printable characters", field=name)
    return value


def _required_text(raw: Mapping[str, Any], name: str, *, max_length: int) -> str:
    value = _text_field(raw, name, max_length=max_length)
    if value is None:
        raise ValidationFailed(f"{name} is required", field=name)
    return value


def _timestamp(value: Any) -> datetime | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValidationFailed("timestamp must be an RFC 3339 date-time string", field="timestamp")
    try:
        instant = datetime.fromisoformat(value)
    except ValueError:
        raise ValidationFailed(
            f"timestamp {value!r} is not an RFC 3339 date-time", field="timestamp"
        ) from None
    if instant.utcoffset() is None:
        raise ValidationFailed("timestamp needs a UTC offset, e.g. 2026-05-04T08:00:00Z", field="timestamp")
    try:
        instant = instant.astimezone(UTC)
    except OverflowError:
        raise ValidationFailed("timestamp lies outside the supported years", field="timestamp") from None
    return instant


def _property_value(name: str, value: Any) -> Any:
    """A property as stored: text, integer, boolean or null; exact decimals and huge integers as text."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int):
        return value if -(2**53) < value < 2**53 else str(value)
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise ValidationFailed(f"property {name!r} must be a finite number", field=f"properties.{name}")
        return format(value, "f") if abs(value.adjusted()) < 40 else str(value)
    if isinstance(value, str):
        if len(value) > MAX_PROPERTY_TEXT_LENGTH or "\x00" in value:
            raise ValidationFailed(
                f"property {name!r} holds at most {MAX_PROPERTY_TEXT_LENGTH} characters (no NUL)",
                field=f"properties.{name}",
            )
        return value
    raise ValidationFailed(
        f"property {name!r} must be text, a number, a boolean or null; properties are flat",
        field=f"properties.{name}",
    )


def _properties(value: Any) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ValidationFailed("properties must be an object", field="properties")
    if len(value) > MAX_PROPERTIES:
        raise ValidationFailed(f"properties holds at most {MAX_PROPERTIES} keys", field="properties")
    clean = {}
    for name, item in value.items():
        if not name or len(name) > MAX_PROPERTY_NAME_LENGTH or "\x00" in name:
            raise ValidationFailed(
                f"property names are 1 to {MAX_PROPERTY_NAME_LENGTH} characters", field="properties"
            )
        clean[name] = _property_value(name, item)
    return clean


def _candidate(index: int, raw: Any, now: datetime) -> _Candidate:
    if not isinstance(raw, dict):
        raise ValidationFailed("an event must be an object", field="body")
    for name in raw:
        if name not in EVENT_FIELDS:
            raise ValidationFailed(f"unknown field {name!r}", field=str(name))
    transaction_id = _required_text(raw, "transaction_id", max_length=TRANSACTION_ID_MAX_LENGTH)
    metric = _required_text(raw, "metric", max_length=64)
    customer = _text_field(raw, "customer", max_length=120)
    subscription = _text_field(raw, "subscription", max_length=40)
    if customer is None and subscription is None:
        raise ValidationFailed("name the customer (id or external id) or the subscription", field="customer")
    properties = _properties(raw.get("properties"))
    return _Candidate(
        index=index,
        transaction_id=transaction_id,
        content_hash=_content_hash(raw),
        metric=metric,
        customer=customer,
        subscription=subscription,
        timestamp=now,
        properties=properties,
        corrects=_text_field(raw, "corrects", max_length=TRANSACTION_ID_MAX_LENGTH),
        requested=_timestamp(raw.get("timestamp")),
    )


def _properties_json(properties: Mapping[str, Any]) -> str:
    text = json.dumps(properties, separators=(",", ":"), ensure_ascii=False)
    if len(text) > MAX_PROPERTIES_BYTES:
        raise ValidationFailed(f"properties take at most {MAX_PROPERTIES_BYTES} bytes", field="properties")
    return text


# --- the reading of a property, as the engine reads it ----------------------------------------------


def property_text(value: Any) -> str | None:
    if value is None:
        return None
    if value is True:
        return "true"
    if value is False:
        return "false"
    return str(value)


def _number(name: str, value: Any) -> Decimal:
    field_name = f"properties.{name}"
    if value is None:
        raise ValidationFailed(f"the metric reads property {name!r}, which is missing", field=field_name)
    if isinstance(value, bool):
        raise ValidationFailed(f"property {name!r} must be a number", field=field_name)
    try:
        number = Decimal(value) if isinstance(value, int) else Decimal(str(value).strip())
    except InvalidOperation:
        raise ValidationFailed(
            f"property {name!r} must be a number, not {value!r}", field=field_name
        ) from None
    if not number.is_finite() or number < 0 or number >= _MAX_VALUE:
        raise ValidationFailed(f"property {name!r} must be a number from 0 to below 10^18", field=field_name)
    exponent = number.as_tuple().exponent
    if isinstance(exponent, int) and exponent < -12 and number != number.quantize(_VALUE_QUANTUM):
        raise ValidationFailed(f"property {name!r} has more than 12 decimal places", field=field_name)
    return number


def _key(value: Any, name: str) -> str | None:
    text = property_text(value)
    if text is not None and len(text) > GROUP_KEY_MAX_LENGTH:
        raise ValidationFailed(f"property {name!r} is too long to group by", field=f"properties.{name}")
    return text


# --- resolution: one query per kind for the whole batch ----------------------------------------------


def _metrics(scope: Scope, codes: set[str]) -> dict[str, _MetricRow]:
    rows = BillableMetric.objects.filter(
        tenant_id=scope.tenant_id, livemode=scope.livemode, code__in=codes
    ).values_list("id", "code", "aggregation", "property", "group_by")
    return {code: _MetricRow(pk, code, Aggregation(agg), prop, group) for pk, code, agg, prop, group in rows}


def _customers(scope: Scope, references: set[str]) -> dict[str, int]:
    """Customer pk by reference: its public id, else its external id (live customers only)."""
    if not references:
        return {}
    rows = (
        Customer.objects.filter(tenant_id=scope.tenant_id, livemode=scope.livemode, deleted_at__isnull=True)
        .filter(Q(public_id__in=references) | Q(external_id__in=references))
        .values_list("id", "public_id", "external_id")
    )
    by_public: dict[str, int] = {}
    by_external: dict[str, int] = {}
    for pk, public_id, external_id in rows:
        by_public[public_id] = pk
        if external_id:
            by_external[external_id] = pk
    return {
        ref: by_public.get(ref) or by_external[ref]
        for ref in references
        if ref in by_public or ref in by_external
    }


def _subscriptions(scope: Scope, public_ids: set[str], customer_ids: set[int]) -> list[_SubscriptionRow]:
    if not public_ids and not customer_ids:
        return []
    rows = (
        Subscription.objects.filter(tenant_id=scope.tenant_id, livemode=scope.livemode)
        .filter(Q(public_id__in=public_ids) | Q(customer_id__in=customer_ids))
        .values_list(
            "id",
            "public_id",
            "customer_id",
            "customer__public_id",
            "plan_version_id",
            "started_at",
            "cancel_at",
            "ended_at",
            "pause",
            "usage_watermark__closed_until",
        )
    )
    return [_SubscriptionRow(*row) for row in rows]


def _charged_metrics(version_ids: set[int]) -> dict[int, set[int]]:
    charged: dict[int, set[int]] = {}
    rows = PlanCharge.objects.filter(version_id__in=version_ids, kind=ChargeKind.METERED).values_list(
        "version_id", "metric_id"
    )
    for version_id, metric_id in rows:
        charged.setdefault(version_id, set()).add(metric_id)
    return charged


def _pause_covers(pause: Mapping[str, Any] | None, instant: datetime) -> bool:
    if not pause or not pause.get("paused_at"):
        return False
    paused_at = datetime.fromisoformat(pause["paused_at"])
    resume_at = datetime.fromisoformat(pause["resume_at"]) if pause.get("resume_at") else None
    return paused_at <= instant and (resume_at is None or instant < resume_at)


def _refusal(subscription: _SubscriptionRow, instant: datetime) -> TurnusError | None:
    """Why ``subscription`` takes no usage at ``instant``, or None when it does."""
    if instant < subscription.started_at:
        return ValidationFailed(
            f"timestamp lies before subscription {subscription.public_id} started", field="timestamp"
        )
    if subscription.ended_at is not None and instant >= subscription.ended_at:
        return ValidationFailed(
            f"subscription {subscription.public_id} ended before timestamp",
            field="timestamp",
            code="subscription_ended",
        )
    if subscription.cancel_at is not None and instant >= subscription.cancel_at:
        return ValidationFailed(
            f"subscription {subscription.public_id} is cancelled from before timestamp",
            field="timestamp",
            code="subscription_cancelled",
        )
    if _pause_covers(subscription.pause, instant):
        return ValidationFailed(
            f"subscription {subscription.public_id} is paused at timestamp; a paused one takes no usage",
            field="timestamp",
            code="subscription_paused",
        )
    if subscription.closed_until is not None and instant < subscription.closed_until:
        return UsageClosed(
            f"usage of subscription {subscription.public_id} is invoiced until "
            f"{subscription.closed_until.isoformat()}; send a correction within the open period instead",
            field="timestamp",
        )
    return None


class _Resolver:
    def __init__(self, scope: Scope, candidates: Sequence[_Candidate]) -> None:
        self.metrics = _metrics(scope, {c.metric for c in candidates})
        self.customers = _customers(scope, {c.customer for c in candidates if c.customer})
        named = {c.subscription for c in candidates if c.subscription}
        rows = _subscriptions(scope, named, set(self.customers.values()))
        self.by_public_id = {row.public_id: row for row in rows}
        self.by_customer: dict[int, list[_SubscriptionRow]] = {}
        for row in rows:
            self.by_customer.setdefault(row.customer_id, []).append(row)
        self.charged = _charged_metrics({row.plan_version_id for row in rows})
        self.clock_times = frozen_times(scope, {*self.customers.values(), *(row.customer_id for row in rows)})

    def settle_timestamp(self, candidate: _Candidate, now: datetime) -> None:
        """The event's time: as sent, else its customer's now (a test clock's time, if on one), which also
        bounds how far ahead a sent one may lie."""
        customer_id = self.customers.get(candidate.customer) if candidate.customer is not None else None
        if candidate.customer is None and candidate.subscription is not None:
            row = self.by_public_id.get(candidate.subscription)
            customer_id = row.customer_id if row is not None else None
        reference = self.clock_times.get(customer_id, now) if customer_id is not None else now
        if candidate.requested is None:
            candidate.timestamp = reference
            return
        if candidate.requested > reference + FUTURE_TOLERANCE:
            raise ValidationFailed("timestamp lies more than 5 minutes in the future", field="timestamp")
        candidate.timestamp = candidate.requested

    def _charges(self, subscription: _SubscriptionRow, metric: _MetricRow) -> bool:
        return metric.id in self.charged.get(subscription.plan_version_id, ())

    def subscription(self, candidate: _Candidate, metric: _MetricRow) -> _SubscriptionRow:
        customer_id = None
        if candidate.customer is not None:
            customer_id = self.customers.get(candidate.customer)
            if customer_id is None:
                raise NotFound(f"no customer {candidate.customer}", field="customer")
        if candidate.subscription is not None:
            found = self.by_public_id.get(candidate.subscription)
            if found is None or (customer_id is not None and found.customer_id != customer_id):
                raise NotFound(f"no subscription {candidate.subscription}", field="subscription")
            if not self._charges(found, metric):
                raise ValidationFailed(
                    f"the plan of subscription {found.public_id} does not charge for metric {metric.code!r}",
                    field="metric",
                )
            refusal = _refusal(found, candidate.timestamp)
            if refusal is not None:
                raise refusal
            return found
        charging = [row for row in self.by_customer.get(customer_id or 0, ()) if self._charges(row, metric)]
        if not charging:
            raise ValidationFailed(
                f"no subscription of customer {candidate.customer} charges for metric {metric.code!r}",
                field="customer",
            )
        refusals = [(row, _refusal(row, candidate.timestamp)) for row in charging]
        open_ones = [row for row, refusal in refusals if refusal is None]
        if len(open_ones) > 1:
            raise ValidationFailed(
                f"customer {candidate.customer} has several subscriptions charging for {metric.code!r}; "
                "name the subscription",
                field="subscription",
            )
        if open_ones:
            return open_ones[0]
        first_refusal = min(refusals, key=lambda pair: pair[0].started_at)[1]
        raise first_refusal or ValidationFailed("the subscription takes no usage now", field="timestamp")


def _measure(candidate: _Candidate, metric: _MetricRow) -> tuple[Decimal | None, str | None, str | None]:
    """The event's value, group key and distinct key under ``metric``."""
    properties = candidate.properties
    value = None
    distinct = None
    if metric.aggregation in _NUMERIC:
        value = _number(metric.property, properties.get(metric.property))
    elif metric.aggregation is Aggregation.UNIQUE_COUNT:
        distinct = _key(properties.get(metric.property), metric.property)
    group = _key(properties.get(metric.group_by), metric.group_by) if metric.group_by else None
    return value, group, distinct


# --- ingestion ------------------------------------------------------------------------------------


def ingest(scope: Scope, events: Sequence[Any]) -> list[EventResult]:
    """Accept each event exactly once; answer each on its own. Accepted events are committed on return."""
    if not isinstance(events, list | tuple) or not 1 <= len(events) <= MAX_BATCH:
        raise ValidationFailed(f"events must be a list of 1 to {MAX_BATCH} events", field="events")
    now = clock.now()
    results: list[EventResult | None] = [None] * len(events)
    candidates: list[_Candidate] = []
    first_of: dict[str, _Candidate] = {}
    repeats: list[_Candidate] = []
    for index, raw in enumerate(events):
        try:
            candidate = _candidate(index, raw, now)
        except ValidationFailed as error:
            tid = raw.get("transaction_id") if isinstance(raw, dict) else None
            results[index] = EventResult(
                index, tid if isinstance(tid, str) else None, EventStatus.REJECTED, error
            )
            continue
        if candidate.transaction_id in first_of:
            repeats.append(candidate)
        else:
            first_of[candidate.transaction_id] = candidate
            candidates.append(candidate)

    rows: list[tuple[Any, ...]] = []
    ledger: list[tuple[Any, ...]] = []
    accepted: dict[str, _Candidate] = {}
    refused: list[tuple[_Candidate, TurnusError]] = []
    resolver = _Resolver(scope, candidates)
    for candidate in candidates:
        try:
            metric = resolver.metrics.get(candidate.metric)
            if metric is None:
                raise NotFound(f"no billable metric {candidate.metric!r}", field="metric")
            resolver.settle_timestamp(candidate, now)
            subscription = resolver.subscription(candidate, metric)
            value, group, distinct = _measure(candidate, metric)
            properties_json = _properties_json(candidate.properties)
        except TurnusError as error:
            refused.append((candidate, error))
            continue
        candidate.resolved = {"subscription": subscription, "metric": metric}
        accepted[candidate.transaction_id] = candidate
        rows.append(
            (
                scope.tenant_id,
                scope.livemode,
                candidate.transaction_id,
                subscription.id,
                metric.id,
                candidate.timestamp,
                value,
                group,
                distinct,
                properties_json,
                now,
            )
        )
        ledger.append(
            (
                scope.tenant_id,
                scope.livemode,
                candidate.transaction_id,
                candidate.content_hash,
                subscription.id,
                metric.id,
                candidate.timestamp,
                now,
            )
        )

    corrections = _corrections(scope, [c for c in accepted.values() if c.corrects])
    for candidate, refusal in corrections.refused:
        refused.append((candidate, refusal))
        del accepted[candidate.transaction_id]
    if corrections.refused:
        keep = set(accepted)
        rows = [row for row in rows if row[2] in keep]
        ledger = [row for row in ledger if row[2] in keep]

    store.ensure_partitions(candidate.timestamp for candidate in accepted.values())
    with transaction.atomic():
        ledger.sort(key=lambda row: row[2])
        claimed = store.claim_transaction_ids(ledger)
        unclaimed = [tid for tid in accepted if tid not in claimed]
        known = store.existing_hashes(
            scope.tenant_id,
            scope.livemode,
            unclaimed + [candidate.transaction_id for candidate, _ in refused],
        )
        store.insert_events([row for row in rows if row[2] in claimed])
        _apply_corrections(
            scope, [accepted[tid] for tid in claimed if accepted[tid].corrects], corrections, now
        )

    for tid, candidate in accepted.items():
        if tid in claimed:
            results[candidate.index] = EventResult(
                candidate.index, tid, EventStatus.CREATED, event=_accepted(candidate, now)
            )
        else:
            results[candidate.index] = _repeat(candidate, known.get(tid))
    for candidate, refusal in refused:
        stored_hash = known.get(candidate.transaction_id)
        if stored_hash is None:
            results[candidate.index] = EventResult(
                candidate.index, candidate.transaction_id, EventStatus.REJECTED, refusal
            )
        else:
            results[candidate.index] = _repeat(candidate, stored_hash)
    for candidate in repeats:
        first = results[first_of[candidate.transaction_id].index]
        if candidate.content_hash != first_of[candidate.transaction_id].content_hash:
            results[candidate.index] = _repeat(candidate, first_of[candidate.transaction_id].content_hash)
        elif first is not None and first.status is EventStatus.REJECTED:
            results[candidate.index] = EventResult(
                candidate.index, candidate.transaction_id, EventStatus.REJECTED, first.error
            )
        else:
            results[candidate.index] = EventResult(
                candidate.index, candidate.transaction_id, EventStatus.DUPLICATE
            )
    return [result for result in results if result is not None]


def _repeat(candidate: _Candidate, stored_hash: str | None) -> EventResult:
    if stored_hash == candidate.content_hash:
        return EventResult(candidate.index, candidate.transaction_id, EventStatus.DUPLICATE)
    error = TransactionIdReused(
        f"transaction id {candidate.transaction_id!r} was accepted before with different content",
        field="transaction_id",
    )
    return EventResult(candidate.index, candidate.transaction_id, EventStatus.REJECTED, error)


def _accepted(candidate: _Candidate, now: datetime) -> AcceptedEvent:
    subscription: _SubscriptionRow = candidate.resolved["subscription"]
    return AcceptedEvent(
        transaction_id=candidate.transaction_id,
        subscription=subscription.public_id,
        customer=subscription.customer_public_id,
        metric=candidate.metric,
        timestamp=candidate.timestamp,
        properties=candidate.properties,
        created_at=now,
    )


# --- corrections and voids ------------------------------------------------------------------------


@dataclass(slots=True)
class _Corrections:
    targets: dict[str, EventTransaction] = field(default_factory=dict)
    refused: list[tuple[_Candidate, TurnusError]] = field(default_factory=list)


def _void_refusal(
    scope: Scope, target: EventTransaction | None, transaction_id: str, field_name: str
) -> TurnusError | None:
    if target is None:
        return NotFound(f"no usage event {transaction_id!r}", field=field_name)
    closed = usage_closed_until(scope, target.subscription_id)
    if closed is not None and target.timestamp < closed:
        return Conflict(
            f"usage event {transaction_id!r} lies in an invoiced period (usage closed until "
            f"{closed.isoformat()})",
            field=field_name,
            code="usage_closed",
        )
    if EventVoid.objects.filter(
        tenant_id=scope.tenant_id, livemode=scope.livemode, transaction_id=transaction_id
    ).exists():
        return Conflict(
            f"usage event {transaction_id!r} is already voided", field=field_name, code="already_voided"
        )
    return None


def _corrections(scope: Scope, candidates: list[_Candidate]) -> _Corrections:
    found = _Corrections()
    if not candidates:
        return found
    targets = {
        row.transaction_id: row
        for row in EventTransaction.objects.filter(
            tenant_id=scope.tenant_id,
            livemode=scope.livemode,
            transaction_id__in={c.corrects for c in candidates},
        )
    }
    for candidate in candidates:
        corrected = candidate.corrects or ""
        target = targets.get(corrected)
        refusal = _void_refusal(scope, target, corrected, "corrects")
        if refusal is None and corrected == candidate.transaction_id:
            refusal = ValidationFailed("an event cannot correct itself", field="corrects")
        if refusal is not None or target is None:
            found.refused.append(
                (candidate, refusal or NotFound(f"no usage event {corrected!r}", field="corrects"))
            )
        else:
            found.targets[corrected] = target
    return found


def _void(
    scope: Scope, target: EventTransaction, reason: VoidReason, now: datetime, corrected_by: str = ""
) -> None:
    try:
        with transaction.atomic():
            EventVoid.objects.create(
                tenant_id=scope.tenant_id,
                livemode=scope.livemode,
                transaction_id=target.transaction_id,
                subscription_id=target.subscription_id,
                metric_id=target.metric_id,
                timestamp=target.timestamp,
                reason=reason,
                corrected_by=corrected_by,
                created_at=now,
            )
    except IntegrityError:
        raise Conflict(
            f"usage event {target.transaction_id!r} is already voided",
            field="transaction_id",
            code="already_voided",
        ) from None
    record(
        scope,
        f"usage_event.{reason}",
        "usage_event",
        target.transaction_id,
        before={"transaction_id": target.transaction_id, "voided": False},
        after={"transaction_id": target.transaction_id, "voided": True, "corrected_by": corrected_by or None},
    )


def _apply_corrections(
    scope: Scope, candidates: list[_Candidate], corrections: _Corrections, now: datetime
) -> None:
    for candidate in candidates:
        target = corrections.targets[candidate.corrects or ""]
        with suppress(Conflict):
            _void(scope, target, VoidReason.CORRECTED, now, corrected_by=candidate.transaction_id)


@transaction.atomic
def void_event(scope: Scope, transaction_id: str) -> AcceptedEvent:
    """Cancel an event sent by mistake; allowed until its period is invoiced."""
    target = EventTransaction.objects.filter(
        tenant_id=scope.tenant_id, livemode=scope.livemode, transaction_id=transaction_id
    ).first()
    if target is None:
        raise NotFound(f"no usage event {transaction_id!r}", field="id")
    refusal = _void_refusal(scope, target, transaction_id, "transaction_id")
    if refusal is not None:
        raise refusal
    _void(scope, target, VoidReason.VOIDED, clock.now())
    return stored_event(scope, transaction_id)


def stored_event(scope: Scope, transaction_id: str) -> AcceptedEvent:
    """The event ``transaction_id`` as stored (whether voided included)."""
    target = EventTransaction.objects.filter(
        tenant_id=scope.tenant_id, livemode=scope.livemode, transaction_id=transaction_id
    ).first()
    if target is None:
        raise NotFound(f"no usage event {transaction_id!r}", field="id")
    event = (
        UsageEvent.objects.filter(
            tenant_id=scope.tenant_id,
            livemode=scope.livemode,
            subscription_id=target.subscription_id,
            metric_id=target.metric_id,
            timestamp=target.timestamp,
            transaction_id=transaction_id,
        )
        .select_related("subscription__customer", "metric")
        .get()
    )
    voided = EventVoid.objects.filter(
        tenant_id=scope.tenant_id, livemode=scope.livemode, transaction_id=transaction_id
    ).exists()
    return AcceptedEvent(
        transaction_id=transaction_id,
        subscription=event.subscription.public_id,
        customer=event.subscription.customer.public_id,
        metric=event.metric.code,
        timestamp=event.timestamp,
        properties=event.properties,
        created_at=event.created_at,
        voided=voided,
    )
