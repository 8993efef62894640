"""Usage aggregation: turn a period's usage records into one quantity per group.

Rules:

- Only records inside the period (``[start, end)``) that pass every filter count; the others are
  ignored without being checked. A filter matches when the property's text is one of its values.
- Property values are compared and grouped as text: strings as they are, integers and decimals by
  ``str``, booleans as JSON spells them (``"true"``/``"false"``). Floats, ``None`` and other types are
  never read as a value.
- Grouped metrics: the key is the text of the ``group_by`` property; records lacking it (or holding
  null) fall into the ``None`` group, the same key an ungrouped metric uses. Only groups with records
  (or, for gauges, a carried-in value) appear. An ungrouped metric always returns ``{None: value}``,
  zero when nothing was used.
- Numeric properties are integers, decimals or numeric strings; a missing, boolean, float or
  non-numeric value is an ``InvalidAggregation`` naming ``properties.<name>``. ``unique_count`` skips
  records lacking its property.
- Ordering is by timestamp, ties broken by ``transaction_id`` (the greater one is the later event), so
  the result does not depend on the order the records are passed in.
- Gauges (``latest`` and ``weighted_sum``) accept ``carry_in``, the value each group held at the period
  start (from the previous period's ``closing_values``); ``latest`` falls back to it when the group had
  no event. ``weighted_sum`` is computed with fractions and returned to 60 significant digits.
- ``recurring`` marks a gauge whose value the caller carries from period to period; it is allowed for
  gauges only.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from fractions import Fraction
from types import MappingProxyType
from typing import cast

from turnus.engine.errors import InvalidAggregation, InvalidAmount
from turnus.engine.money import EXACT, to_decimal
from turnus.engine.periods import Period

_ZERO = Decimal(0)
_MICROSECOND = timedelta(microseconds=1)

GroupKey = str | None


class Aggregation(StrEnum):
    COUNT = "count"
    SUM = "sum"
    MAX = "max"
    UNIQUE_COUNT = "unique_count"
    LATEST = "latest"
    WEIGHTED_SUM = "weighted_sum"


GAUGES = frozenset({Aggregation.LATEST, Aggregation.WEIGHTED_SUM})


def _name(value: object, field: str) -> str:
    if not isinstance(value, str) or not value:
        raise InvalidAggregation(f"{field} must be a non-empty string, got {value!r}", field=field)
    return value


@dataclass(frozen=True, slots=True)
class PropertyFilter:
    """Keeps records whose ``property`` is one of ``values`` (one value: equals; several: in)."""

    property: str
    values: tuple[str, ...]

    def __post_init__(self) -> None:
        _name(self.property, "filters.property")
        if not isinstance(self.values, list | tuple) or not self.values:
            raise InvalidAggregation("a filter needs at least one value", field="filters.values")
        for value in self.values:
            _name(value, "filters.values")
        object.__setattr__(self, "values", tuple(self.values))

    def matches(self, record: UsageRecord) -> bool:
        return _text(record, self.property) in self.values


@dataclass(frozen=True, slots=True)
class Metric:
    """What to measure: ``aggregation`` of ``property`` over filtered records, optionally per group."""

    code: str
    aggregation: Aggregation
    property: str | None = None
    filters: tuple[PropertyFilter, ...] = ()
    group_by: str | None = None
    recurring: bool = False

    def __post_init__(self) -> None:
        _name(self.code, "code")
        try:
            aggregation = Aggregation(self.aggregation)
        except ValueError:
            allowed = ", ".join(Aggregation)
            raise InvalidAggregation(
                f"aggregation must be one of: {allowed}; got {self.aggregation!r}", field="aggregation"
            ) from None
        object.__setattr__(self, "aggregation", aggregation)
        if aggregation is Aggregation.COUNT:
            if self.property is not None:
                raise InvalidAggregation("count reads no property; leave property empty", field="property")
        else:
            _name(self.property, "property")
        if not isinstance(self.filters, list | tuple) or not all(
            isinstance(item, PropertyFilter) for item in self.filters
        ):
            raise InvalidAggregation("filters must be a sequence of PropertyFilter", field="filters")
        object.__setattr__(self, "filters", tuple(self.filters))
        if self.group_by is not None:
            _name(self.group_by, "group_by")
        if not isinstance(self.recurring, bool):
            raise InvalidAggregation("recurring must be a boolean", field="recurring")
        if self.recurring and aggregation not in GAUGES:
            raise InvalidAggregation(
                "only latest and weighted_sum carry a value into the next period", field="recurring"
            )


@dataclass(frozen=True, slots=True)
class UsageRecord:
    """One usage event: when it happened (aware; stored in UTC) and its properties."""

    timestamp: datetime
    properties: Mapping[str, object]
    transaction_id: str = ""

    def __post_init__(self) -> None:
        if not isinstance(self.timestamp, datetime) or self.timestamp.utcoffset() is None:
            raise InvalidAggregation("timestamp must be a timezone-aware datetime", field="timestamp")
        if not isinstance(self.properties, Mapping):
            raise InvalidAggregation("properties must be a mapping", field="properties")
        if not isinstance(self.transaction_id, str):
            raise InvalidAggregation("transaction_id must be a string", field="transaction_id")
        object.__setattr__(self, "timestamp", self.timestamp.astimezone(UTC))
        object.__setattr__(self, "properties", MappingProxyType(dict(self.properties)))


_USAGE_RECORD_ONLY = frozenset({UsageRecord})
_INT_ONLY = frozenset({int})


def _text(record: UsageRecord, name: str) -> str | None:
    value = record.properties.get(name)
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | int | Decimal):
        return str(value)
    raise InvalidAggregation(
        f"property {name!r} of event {record.transaction_id!r} must be a string, integer or decimal, "
        f"not {type(value).__name__}",
        field=f"properties.{name}",
    )


def _number(record: UsageRecord, name: str) -> Decimal:
    value = record.properties.get(name)
    if type(value) is int:
        return Decimal(value)
    field = f"properties.{name}"
    if value is None:
        raise InvalidAggregation(f"event {record.transaction_id!r} lacks property {name!r}", field=field)
    try:
        return to_decimal(value, field=field)
    except InvalidAmount as error:
        raise InvalidAggregation(
            f"property {name!r} of event {record.transaction_id!r}: {error.message}", field=field
        ) from None


def _chronological(record: UsageRecord) -> tuple[datetime, str]:
    return record.timestamp, record.transaction_id


def _groups(
    metric: Metric, records: Iterable[UsageRecord], period: Period
) -> dict[GroupKey, list[UsageRecord]]:
    if not isinstance(period, Period):
        raise InvalidAggregation("period must be a Period", field="period")
    start, end, filters = period.start, period.end, metric.filters
    groups: dict[GroupKey, list[UsageRecord]]
    if metric.group_by is None and not filters and _exact_records(records):
        members = [record for record in records if start <= record.timestamp < end]
        groups = {None: members} if members else {}
    else:
        groups = _filtered_groups(metric, records, start, end)
    if metric.aggregation in GAUGES:
        for members in groups.values():
            members.sort(key=_chronological)
    return groups


def _exact_records(records: Iterable[UsageRecord]) -> bool:
    """Whether ``records`` is a list or tuple of nothing but ``UsageRecord`` instances (no subclasses)."""
    return type(records) in (list, tuple) and _USAGE_RECORD_ONLY.issuperset(map(type, records))


def _filtered_groups(
    metric: Metric, records: Iterable[UsageRecord], start: datetime, end: datetime
) -> dict[GroupKey, list[UsageRecord]]:
    groups: dict[GroupKey, list[UsageRecord]] = {}
    filters = metric.filters
    for record in records:
        if type(record) is not UsageRecord and not isinstance(record, UsageRecord):
            raise InvalidAggregation(
                f"records must be UsageRecords, got {type(record).__name__}", field="records"
            )
        if not start <= record.timestamp < end:
            continue
        if filters and not all(item.matches(record) for item in filters):
            continue
        key = None if metric.group_by is None else _text(record, metric.group_by)
        groups.setdefault(key, []).append(record)
    return groups


def _carried(metric: Metric, carry_in: Mapping[GroupKey, Decimal] | None) -> dict[GroupKey, Decimal]:
    if carry_in is None:
        return {}
    if not isinstance(carry_in, Mapping):
        raise InvalidAggregation("carry_in must be a mapping of group to value", field="carry_in")
    if carry_in and metric.aggregation not in GAUGES:
        raise InvalidAggregation(
            f"{metric.aggregation} carries nothing over; carry_in applies to latest and weighted_sum",
            field="carry_in",
        )
    carried: dict[GroupKey, Decimal] = {}
    for key, value in carry_in.items():
        field = f"carry_in[{key!r}]"
        if key is not None and (metric.group_by is None or not isinstance(key, str)):
            raise InvalidAggregation(
                "carry_in keys are group texts, or None for an ungrouped metric", field=field
            )
        try:
            carried[key] = to_decimal(value, field=field)
        except InvalidAmount as error:
            raise InvalidAggregation(error.message, field=field) from None
    return carried


def _microseconds(span: timedelta) -> int:
    return span // _MICROSECOND


def _as_decimal(value: Fraction) -> Decimal:
    return EXACT.divide(Decimal(value.numerator), Decimal(value.denominator))


def _weighted_sum(name: str, members: list[UsageRecord], period: Period, start_value: Decimal) -> Decimal:
    total = Fraction(0)
    value = Fraction(start_value)
    since = period.start
    for record in members:
        total += value * _microseconds(record.timestamp - since)
        value = Fraction(_number(record, name))
        since = record.timestamp
    total += value * _microseconds(period.end - since)
    return _as_decimal(total / _microseconds(period.duration))


def _sum(name: str, members: list[UsageRecord]) -> Decimal:
    try:
        # Indexing the read-only properties costs half of calling their .get on this hot loop.
        values = [record.properties[name] for record in members]
    except KeyError:
        values = [record.properties.get(name) for record in members]  # _number reports the lacking one
    whole = 0
    fractional = _ZERO
    if _INT_ONLY.issuperset(map(type, values)):
        whole = sum(cast("list[int]", values))
    else:
        for record, value in zip(members, values, strict=True):
            if type(value) is int:
                whole += value
            else:
                fractional = EXACT.add(fractional, _number(record, name))
    return EXACT.add(fractional, Decimal(whole))


def _value(metric: Metric, members: list[UsageRecord], period: Period, carried: Decimal | None) -> Decimal:
    name = metric.property or ""
    match metric.aggregation:
        case Aggregation.COUNT:
            return Decimal(len(members))
        case Aggregation.SUM:
            return _sum(name, members)
        case Aggregation.MAX:
            return max((_number(record, name) for record in members), default=_ZERO)
        case Aggregation.UNIQUE_COUNT:
            distinct = {_text(record, name) for record in members} - {None}
            return Decimal(len(distinct))
        case Aggregation.LATEST:
            if members:
                return _number(members[-1], name)
            return carried if carried is not None else _ZERO
    return _weighted_sum(name, members, period, carried if carried is not None else _ZERO)


def _keys(
    metric: Metric, groups: Mapping[GroupKey, object], carried: Mapping[GroupKey, object]
) -> list[GroupKey]:
    if metric.group_by is None:
        return [None]
    keys = {*groups, *carried}
    return sorted(keys, key=lambda key: (key is not None, key or ""))


def aggregate(
    metric: Metric,
    records: Iterable[UsageRecord],
    period: Period,
    carry_in: Mapping[GroupKey, Decimal] | None = None,
) -> dict[GroupKey, Decimal]:
    """The metric's value per group for ``period``; key ``None`` when the metric is not grouped."""
    carried = _carried(metric, carry_in)
    groups = _groups(metric, records, period)
    return {
        key: _value(metric, groups.get(key, []), period, carried.get(key))
        for key in _keys(metric, groups, carried)
    }


def closing_values(
    metric: Metric,
    records: Iterable[UsageRecord],
    period: Period,
    carry_in: Mapping[GroupKey, Decimal] | None = None,
) -> dict[GroupKey, Decimal]:
    """Each gauge group's value at the end of ``period``: pass it as ``carry_in`` for the next period."""
    if metric.aggregation not in GAUGES:
        raise InvalidAggregation(
            f"{metric.aggregation} has no value to carry over; only latest and weighted_sum do",
            field="aggregation",
        )
    carried = _carried(metric, carry_in)
    groups = _groups(metric, records, period)
    name = metric.property or ""
    closing: dict[GroupKey, Decimal] = {}
    for key in _keys(metric, groups, carried):
        members = groups.get(key, [])
        closing[key] = _number(members[-1], name) if members else carried.get(key, _ZERO)
    return closing
