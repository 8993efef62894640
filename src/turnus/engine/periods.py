"""Billing periods: intervals, local-midnight boundaries and billing cycles.

A period is ``[start, end)`` between two aware UTC instants. Cycle boundaries fall at local
midnight in the customer's IANA timezone, so a day is a calendar day (23 or 25 hours on DST days).
"""

from __future__ import annotations

from calendar import isleap
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum
from typing import TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from dateutil.relativedelta import relativedelta

from turnus.engine.errors import InvalidPeriod

_EPOCH = date(1970, 1, 1)
_EPOCH_MONDAY = date(1970, 1, 5)

_E = TypeVar("_E", bound=StrEnum)


def _member(enum: type[_E], value: object, name: str) -> _E:
    if isinstance(value, str) and value in enum.__members__.values():
        return enum(value)
    allowed = ", ".join(member.value for member in enum)
    raise InvalidPeriod(f"{name} must be one of: {allowed}; got {value!r}", field=name)


def _check_date(value: object, name: str) -> date:
    if isinstance(value, datetime) or not isinstance(value, date):
        raise InvalidPeriod(f"{name} must be a date (without time), got {type(value).__name__}", field=name)
    return value


class IntervalUnit(StrEnum):
    DAY = "day"
    WEEK = "week"
    MONTH = "month"
    YEAR = "year"


@dataclass(frozen=True, slots=True)
class Interval:
    """``count`` units of ``unit``, e.g. ``Interval(IntervalUnit.MONTH, 3)`` for quarterly billing."""

    unit: IntervalUnit
    count: int = 1

    def __post_init__(self) -> None:
        object.__setattr__(self, "unit", _member(IntervalUnit, self.unit, "unit"))
        if isinstance(self.count, bool) or not isinstance(self.count, int) or self.count < 1:
            raise InvalidPeriod(f"interval count must be a positive integer: {self.count!r}", field="count")

    def delta(self, n: int = 1) -> relativedelta:
        """``n`` intervals as a relativedelta."""
        total = self.count * n
        if self.unit is IntervalUnit.DAY:
            return relativedelta(days=total)
        if self.unit is IntervalUnit.WEEK:
            return relativedelta(weeks=total)
        if self.unit is IntervalUnit.MONTH:
            return relativedelta(months=total)
        return relativedelta(years=total)

    def shift(self, day: date, n: int = 1) -> date:
        """``day`` moved by ``n`` intervals, as ``day + self.delta(n)`` (a month-end clipped: 31 January
        plus a month is 28 or 29 February), computed directly: the billing run does this for every
        subscription. ``ValueError`` or ``OverflowError`` past the calendar's range."""
        total = self.count * n
        if self.unit is IntervalUnit.DAY:
            return day + timedelta(days=total)
        if self.unit is IntervalUnit.WEEK:
            return day + timedelta(weeks=total)
        months = total if self.unit is IntervalUnit.MONTH else 12 * total
        year, month = divmod(day.year * 12 + day.month - 1 + months, 12)
        month += 1
        last = _MONTH_DAYS[month] + (month == 2 and isleap(year))
        return date(year, month, min(day.day, last))


#: Days per month in a common year (index 1-12).
_MONTH_DAYS = (0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)


class Anchoring(StrEnum):
    ANNIVERSARY = "anniversary"
    CALENDAR = "calendar"


def check_timezone(name: str) -> ZoneInfo:
    """The zone for an IANA name; ``InvalidPeriod(field="timezone")`` if unknown."""
    if not isinstance(name, str) or not name:
        raise InvalidPeriod(f"timezone must be an IANA name, got {name!r}", field="timezone")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidPeriod(f"unknown timezone {name!r}", field="timezone") from None


def check_aware(instant: datetime, field: str) -> datetime:
    """``instant`` converted to UTC; ``InvalidPeriod(field=field)`` if it is naive or not a datetime."""
    if not isinstance(instant, datetime):
        raise InvalidPeriod(f"{field} must be a datetime, got {type(instant).__name__}", field=field)
    if instant.utcoffset() is None:
        raise InvalidPeriod(f"{field} must be timezone-aware", field=field)
    return instant.astimezone(UTC)


def local_midnight(day: date, timezone: str) -> datetime:
    """The UTC instant at which ``day`` begins in ``timezone`` (its first instant if 00:00 is skipped)."""
    zone = check_timezone(timezone)
    day = _check_date(day, "day")
    try:
        return datetime(day.year, day.month, day.day, tzinfo=zone).astimezone(UTC)
    except OverflowError:
        raise InvalidPeriod(f"{day} in {timezone} is outside the supported range", field="day") from None


def local_date(instant: datetime, timezone: str) -> date:
    """The calendar date of ``instant`` in ``timezone``."""
    zone = check_timezone(timezone)
    return check_aware(instant, "instant").astimezone(zone).date()


@dataclass(frozen=True, slots=True)
class Period:
    """The half-open span ``[start, end)`` between two aware instants, stored in UTC."""

    start: datetime
    end: datetime

    def __post_init__(self) -> None:
        start = check_aware(self.start, "start")
        end = check_aware(self.end, "end")
        if start >= end:
            raise InvalidPeriod(f"period start {start} must be before its end {end}", field="end")
        object.__setattr__(self, "start", start)
        object.__setattr__(self, "end", end)

    def contains(self, instant: datetime) -> bool:
        return self.start <= check_aware(instant, "instant") < self.end

    @property
    def duration(self) -> timedelta:
        return self.end - self.start


def calendar_days(period: Period, timezone: str) -> int:
    """Local calendar days in ``period``; a day cut by the start counts, a day cut by the end does not."""
    return (local_date(period.end, timezone) - local_date(period.start, timezone)).days


@dataclass(frozen=True, slots=True)
class BillingCycle:
    """The sequence of billing periods of a subscription.

    Boundary ``n`` is local midnight of ``origin + n * interval``, computed from the origin each time
    (so an anchor on 31 January gives 28/29 February, then 31 March). The origin is the anchor for
    anniversary billing and, for calendar billing, the aligned date on or before ``start``. The first
    period runs from ``start`` to the first boundary after it and is partial when ``start`` is not one.
    """

    interval: Interval
    anchor: date
    timezone: str
    anchoring: Anchoring = Anchoring.ANNIVERSARY
    start: date | None = None
    _origin: date = field(init=False, repr=False, compare=False)
    _first_day: date = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not isinstance(self.interval, Interval):
            raise InvalidPeriod("interval must be an Interval", field="interval")
        anchor = _check_date(self.anchor, "anchor")
        check_timezone(self.timezone)
        anchoring = _member(Anchoring, self.anchoring, "anchoring")
        first_day = anchor if self.start is None else _check_date(self.start, "start")
        object.__setattr__(self, "anchoring", anchoring)
        object.__setattr__(self, "start", first_day)
        object.__setattr__(self, "_first_day", first_day)
        if anchoring is Anchoring.ANNIVERSARY:
            object.__setattr__(self, "_origin", anchor)
        else:
            epoch = _EPOCH_MONDAY if self.interval.unit is IntervalUnit.WEEK else _EPOCH
            index = _estimate_index(self.interval, epoch, first_day)
            object.__setattr__(self, "_origin", _shift(epoch, self.interval, index))

    def _index(self, day: date) -> int:
        n = _estimate_index(self.interval, self._origin, day)
        if _shift(self._origin, self.interval, n) > day:
            n -= 1
        return n

    def boundary(self, n: int) -> datetime:
        """Local midnight of ``origin + n * interval`` as an aware UTC instant."""
        return local_midnight(_shift(self._origin, self.interval, n), self.timezone)

    def period_at(self, instant: datetime) -> Period:
        """The period containing ``instant``; ``InvalidPeriod`` if it lies before the first day."""
        day = local_date(instant, self.timezone)
        if day < self._first_day:
            raise InvalidPeriod(f"{instant} is before the cycle starts on {self._first_day}", field="instant")
        n = self._index(day)
        begin = max(_shift(self._origin, self.interval, n), self._first_day)
        return Period(local_midnight(begin, self.timezone), self.boundary(n + 1))

    def first_period(self) -> Period:
        return self.period_at(local_midnight(self._first_day, self.timezone))

    def next_period(self, period: Period) -> Period:
        """The period following ``period``, which must be a period of this cycle."""
        if self.period_at(period.start) != period:
            raise InvalidPeriod(f"{period} is not a period of this billing cycle", field="period")
        return self.period_at(period.end)

    def full_period_containing(self, period: Period) -> Period:
        """The full aligned period around ``period`` (itself if it is full); the proration denominator."""
        n = self._index(local_date(period.start, self.timezone))
        full = Period(self.boundary(n), self.boundary(n + 1))
        if period.end > full.end:
            raise InvalidPeriod(f"{period} spans more than one billing period", field="period")
        return full

    def is_partial(self, period: Period) -> bool:
        """Whether ``period`` is shorter than the aligned period around it (a first calendar period)."""
        return self.full_period_containing(period) != period


def _shift(origin: date, interval: Interval, n: int) -> date:
    try:
        return interval.shift(origin, n)
    except (OverflowError, ValueError):
        raise InvalidPeriod(f"billing period {n} from {origin} is out of range", field="n") from None


def _estimate_index(interval: Interval, origin: date, day: date) -> int:
    """The index ``n`` of the period containing ``day``, or ``n + 1`` when a clipped month-end lies ahead."""
    if interval.unit is IntervalUnit.DAY:
        span = (day - origin).days
    elif interval.unit is IntervalUnit.WEEK:
        span = (day - origin).days // 7
    elif interval.unit is IntervalUnit.MONTH:
        span = (day.year - origin.year) * 12 + day.month - origin.month
    else:
        span = day.year - origin.year
    return span // interval.count
