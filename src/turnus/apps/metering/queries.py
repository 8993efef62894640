"""Read side: usage aggregated in SQL per (tenant, mode, subscription, metric, period), and priced by the
engine. ``usage_for_period`` serves the live usage endpoint now and billing later, by the same path.

Each aggregation is one indexed query over the events of one subscription and metric in the period;
only the time-weighted sum streams its ordered rows, into the engine's own ``aggregate``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from django.db import connection

from turnus.apps.catalog.models import BillableMetric, ChargeKind, PlanCharge
from turnus.apps.metering.models import EventVoid
from turnus.apps.metering.store import EVENTS_TABLE
from turnus.apps.subscriptions.models import Subscription
from turnus.core.scope import Scope
from turnus.engine.aggregation import Aggregation, GroupKey, Metric, UsageRecord, aggregate
from turnus.engine.money import Money
from turnus.engine.periods import Period
from turnus.engine.pricing import PercentagePrice, Rating, rate

_ZERO = Decimal(0)


@dataclass(frozen=True, slots=True)
class UsageLine:
    """One metered charge's usage in a period, for one group (``None`` when the metric is not grouped)."""

    charge: str
    charge_name_en: str
    charge_name_de: str
    metric: str
    group: str | None
    quantity: Decimal
    amount: Money
    rating: Rating


def _instant(value: Any) -> datetime:
    if isinstance(value, datetime):
        return value if value.tzinfo is not None else value.replace(tzinfo=UTC)
    return datetime.fromisoformat(value).replace(tzinfo=UTC)


def _decimal(value: Any) -> Decimal:
    return _ZERO if value is None else value if isinstance(value, Decimal) else Decimal(str(value))


def _adapt(instant: datetime) -> Any:
    return connection.ops.adapt_datetimefield_value(instant)


def _property_text_sql() -> str:
    """SQL for a property's text as the engine reads it (booleans as ``true``/``false``)."""
    if connection.vendor == "postgresql":
        return "(e.properties ->> %s)"
    return (
        "(CASE json_type(e.properties, %s) WHEN 'true' THEN 'true' WHEN 'false' THEN 'false' "
        "ELSE CAST(json_extract(e.properties, %s) AS TEXT) END)"
    )


def _json_path(name: str) -> str:
    return '$."' + name.replace('"', '\\"') + '"'


@dataclass(frozen=True, slots=True)
class _Where:
    sql: str
    params: list[Any]


def _where(
    scope: Scope,
    subscription_id: int,
    metric: BillableMetric,
    *,
    since: datetime | None,
    until: datetime,
    voided: Iterable[str],
) -> _Where:
    clauses = [
        "e.tenant_id = %s",
        "e.livemode = %s",
        "e.subscription_id = %s",
        "e.metric_id = %s",
        "e.timestamp < %s",
    ]
    params: list[Any] = [scope.tenant_id, scope.livemode, subscription_id, metric.pk, _adapt(until)]
    if since is not None:
        clauses.append("e.timestamp >= %s")
        params.append(_adapt(since))
    for item in metric.filters:
        values = list(item["values"])
        text = _property_text_sql()
        clauses.append(f"{text} IN ({', '.join(['%s'] * len(values))})")
        if connection.vendor == "postgresql":
            params.append(item["property"])
        else:
            params.extend([_json_path(item["property"])] * 2)
        params.extend(values)
    excluded = sorted(voided)
    if excluded:
        clauses.append(f"e.transaction_id NOT IN ({', '.join(['%s'] * len(excluded))})")
        params.extend(excluded)
    return _Where(" AND ".join(clauses), params)


def _fetch(sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return list(cursor.fetchall())


def _aggregate_expression(aggregation: Aggregation) -> str:
    sqlite = connection.vendor != "postgresql"
    return {
        Aggregation.COUNT: "COUNT(*)",
        Aggregation.SUM: "turnus_decimal_sum(e.value)" if sqlite else "SUM(e.value)",
        Aggregation.MAX: "turnus_decimal_max(e.value)" if sqlite else "MAX(e.value)",
        Aggregation.UNIQUE_COUNT: "COUNT(DISTINCT e.distinct_key)",
    }[aggregation]


def _tiebreak() -> str:
    return 'e.transaction_id COLLATE "C"' if connection.vendor == "postgresql" else "e.transaction_id"


def _latest(where: _Where, grouped: bool) -> dict[GroupKey, Decimal]:
    if not grouped:
        rows = _fetch(
            f"SELECT e.value FROM {EVENTS_TABLE} e WHERE {where.sql} "  # noqa: S608
            f"ORDER BY e.timestamp DESC, {_tiebreak()} DESC LIMIT 1",
            where.params,
        )
        return {None: _decimal(rows[0][0])} if rows else {}
    rows = _fetch(
        "SELECT group_key, value FROM ("  # noqa: S608
        f"SELECT e.group_key, e.value, ROW_NUMBER() OVER (PARTITION BY e.group_key "
        f"ORDER BY e.timestamp DESC, {_tiebreak()} DESC) AS position "
        f"FROM {EVENTS_TABLE} e WHERE {where.sql}) ranked WHERE position = 1",
        where.params,
    )
    return {key: _decimal(value) for key, value in rows}


def _engine_metric(metric: BillableMetric) -> Metric:
    """The metric as the engine sees the streamed rows: filters already applied in SQL."""
    return Metric(
        code=metric.code,
        aggregation=Aggregation(metric.aggregation),
        property=metric.property or None,
        group_by=metric.group_by or None,
        recurring=metric.recurring,
    )


def _weighted_sum(
    metric: BillableMetric, where: _Where, period: Period, carry_in: dict[GroupKey, Decimal]
) -> dict[GroupKey, Decimal]:
    rows = _fetch(
        f"SELECT e.timestamp, e.transaction_id, e.group_key, e.value FROM {EVENTS_TABLE} e "  # noqa: S608
        f"WHERE {where.sql} ORDER BY e.timestamp, {_tiebreak()}",
        where.params,
    )
    group_by = metric.group_by or None
    records = [
        UsageRecord(
            _instant(timestamp),
            {metric.property: _decimal(value), **({group_by: key} if group_by else {})},
            transaction_id,
        )
        for timestamp, transaction_id, key, value in rows
    ]
    return aggregate(_engine_metric(metric), records, period, carry_in or None)


def aggregate_usage(
    scope: Scope,
    subscription_id: int,
    metric: BillableMetric,
    period: Period,
    *,
    voided: Iterable[str] = (),
) -> dict[GroupKey, Decimal]:
    """The metric's value per group in ``period`` for one subscription, as ``engine.aggregate`` defines it."""
    voided = tuple(voided)
    aggregation = Aggregation(metric.aggregation)
    grouped = bool(metric.group_by)
    where = _where(scope, subscription_id, metric, since=period.start, until=period.end, voided=voided)
    if aggregation in (Aggregation.LATEST, Aggregation.WEIGHTED_SUM):
        carry_in: dict[GroupKey, Decimal] = {}
        if metric.recurring:
            before = _where(scope, subscription_id, metric, since=None, until=period.start, voided=voided)
            carry_in = _latest(before, grouped)
        if aggregation is Aggregation.WEIGHTED_SUM:
            return _weighted_sum(metric, where, period, carry_in)
        values = {**carry_in, **_latest(where, grouped)}
        return _ordered(values) if grouped else {None: values.get(None, _ZERO)}
    expression = _aggregate_expression(aggregation)
    if not grouped:
        rows = _fetch(f"SELECT {expression} FROM {EVENTS_TABLE} e WHERE {where.sql}", where.params)  # noqa: S608
        return {None: _decimal(rows[0][0])}
    rows = _fetch(
        f"SELECT e.group_key, {expression} FROM {EVENTS_TABLE} e WHERE {where.sql} GROUP BY e.group_key",  # noqa: S608
        where.params,
    )
    return _ordered({key: _decimal(value) for key, value in rows})


def _ordered(values: dict[GroupKey, Decimal]) -> dict[GroupKey, Decimal]:
    return {key: values[key] for key in sorted(values, key=lambda key: (key is not None, key or ""))}


def _transactions(
    scope: Scope,
    subscription_id: int,
    metric: BillableMetric,
    period: Period,
    voided: Iterable[str],
    group: GroupKey,
) -> list[Decimal]:
    where = _where(scope, subscription_id, metric, since=period.start, until=period.end, voided=voided)
    sql, params = where.sql, list(where.params)
    if metric.group_by:
        sql += " AND e.group_key IS NULL" if group is None else " AND e.group_key = %s"
        params += [] if group is None else [group]
    rows = _fetch(
        f"SELECT e.value FROM {EVENTS_TABLE} e WHERE {sql} ORDER BY e.timestamp, {_tiebreak()}",  # noqa: S608
        params,
    )
    return [_decimal(value) for (value,) in rows]


def voided_transactions(scope: Scope, subscription_id: int, until: datetime) -> dict[int, set[str]]:
    """Voided transaction ids of a subscription's events before ``until``, by metric pk."""
    voided: dict[int, set[str]] = {}
    rows = EventVoid.objects.filter(
        tenant_id=scope.tenant_id,
        livemode=scope.livemode,
        subscription_id=subscription_id,
        timestamp__lt=until,
    ).values_list("metric_id", "transaction_id")
    for metric_id, transaction_id in rows:
        voided.setdefault(metric_id, set()).add(transaction_id)
    return voided


def metered_charges(subscription: Subscription) -> list[PlanCharge]:
    """The metered charges of the subscription's plan version in order, metrics loaded (a locked
    version's from the catalogue's process-wide cache)."""
    charges = subscription.plan_version.charges_with_metrics()
    return [charge for charge in charges if charge.kind == ChargeKind.METERED]


def usage_for_period(
    scope: Scope,
    subscription: Subscription,
    period: Period,
    *,
    aggregated: dict[int, Decimal] | None = None,
) -> list[UsageLine]:
    """Per metered charge of the subscription's plan version (and per group): the quantity used in
    ``period`` and the exact, unrounded amount the charge's price makes of it.

    ``aggregated``: the metrics' values by metric pk, read before for many subscriptions at once
    (``aggregate_many``); only for a subscription without voided events whose charges are all
    ``batchable``."""
    currency = subscription.plan_version.currency
    charges = metered_charges(subscription)
    if not charges:
        return []
    voided = voided_transactions(scope, subscription.pk, period.end) if aggregated is None else {}
    lines: list[UsageLine] = []
    for charge in charges:
        metric = charge.metric
        if metric is None:
            continue
        excluded = voided.get(metric.pk, set())
        price = charge.engine_price()
        values = (
            aggregate_usage(scope, subscription.pk, metric, period, voided=excluded)
            if aggregated is None
            else {None: aggregated.get(metric.pk, _ZERO)}
        )
        for group, quantity in values.items():
            transactions: Sequence[Decimal] = ()
            if isinstance(price, PercentagePrice):
                transactions = _transactions(scope, subscription.pk, metric, period, excluded, group)
                quantity = Decimal(len(transactions))
            rating = rate(price, quantity, currency, transactions=transactions)
            lines.append(
                UsageLine(
                    charge=charge.code,
                    charge_name_en=charge.name_en,
                    charge_name_de=charge.name_de,
                    metric=metric.code,
                    group=group,
                    quantity=quantity,
                    amount=rating.amount,
                    rating=rating,
                )
            )
    return lines


_BATCHABLE = (Aggregation.COUNT, Aggregation.SUM, Aggregation.MAX, Aggregation.UNIQUE_COUNT)


def batchable(charge: PlanCharge) -> bool:
    """Whether ``aggregate_many`` can read the usage of metered ``charge``: one value per period (no
    groups, no filters, no carried-over state) and a price that needs no single transactions."""
    metric = charge.metric
    return (
        metric is not None
        and Aggregation(metric.aggregation) in _BATCHABLE
        and not metric.group_by
        and not metric.filters
        and not isinstance(charge.engine_price(), PercentagePrice)
    )


def aggregate_many(
    tenant_id: int,
    livemode: bool,
    subscription_ids: Sequence[int],
    metrics: Sequence[BillableMetric],
    period: Period,
) -> dict[tuple[int, int], Decimal]:
    """The values of ``metrics`` (each ``batchable``) in ``period`` for many subscriptions, by
    (subscription pk, metric pk), a grouped query per aggregation; voided events are not excluded
    (read a subscription with voids by ``aggregate_usage``). Absent: no events."""
    found: dict[tuple[int, int], Decimal] = {}
    by_aggregation: dict[Aggregation, list[int]] = {}
    for metric in metrics:
        by_aggregation.setdefault(Aggregation(metric.aggregation), []).append(metric.pk)
    if not subscription_ids:
        return found
    for aggregation, metric_ids in by_aggregation.items():
        subscriptions_in = ", ".join(["%s"] * len(subscription_ids))
        metrics_in = ", ".join(["%s"] * len(metric_ids))
        rows = _fetch(
            f"SELECT e.subscription_id, e.metric_id, {_aggregate_expression(aggregation)} "  # noqa: S608
            f"FROM {EVENTS_TABLE} e WHERE e.tenant_id = %s AND e.livemode = %s "
            f"AND e.subscription_id IN ({subscriptions_in}) AND e.metric_id IN ({metrics_in}) "
            "AND e.timestamp >= %s AND e.timestamp < %s GROUP BY e.subscription_id, e.metric_id",
            [
                tenant_id,
                livemode,
                *subscription_ids,
                *metric_ids,
                _adapt(period.start),
                _adapt(period.end),
            ],
        )
        for subscription_id, metric_id, value in rows:
            found[(int(subscription_id), int(metric_id))] = _decimal(value)
    return found
