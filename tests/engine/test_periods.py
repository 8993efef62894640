"""Billing periods: intervals, local midnights, anniversary and calendar cycles, DST."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from dateutil.relativedelta import relativedelta
from hypothesis import given, settings
from hypothesis import strategies as st

from turnus.engine.errors import InvalidPeriod
from turnus.engine.periods import (
    Anchoring,
    BillingCycle,
    Interval,
    IntervalUnit,
    Period,
    calendar_days,
    check_aware,
    check_timezone,
    local_date,
    local_midnight,
)

DAY, WEEK, MONTH, YEAR = IntervalUnit.DAY, IntervalUnit.WEEK, IntervalUnit.MONTH, IntervalUnit.YEAR
MICROSECOND = timedelta(microseconds=1)
ZONES = (
    "UTC",
    "Europe/Berlin",
    "America/New_York",
    "Pacific/Auckland",
    "Asia/Kolkata",
    "Australia/Lord_Howe",
    "Pacific/Chatham",
    "America/Sao_Paulo",
)


def utc(year: int, month: int, day: int, hour: int = 0) -> datetime:
    return datetime(year, month, day, hour, tzinfo=UTC)


def local(timezone: str, year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=ZoneInfo(timezone))


def monthly(anchor: date, timezone: str = "UTC", **options: object) -> BillingCycle:
    return BillingCycle(Interval(MONTH), anchor, timezone, **options)  # type: ignore[arg-type]


def boundary_dates(cycle: BillingCycle, count: int) -> list[date]:
    return [local_date(cycle.boundary(n), cycle.timezone) for n in range(count)]


@contextmanager
def raises_invalid_period(field: str) -> Iterator[None]:
    with pytest.raises(InvalidPeriod) as caught:
        yield
    assert caught.value.field == field
    assert caught.value.code == "invalid_period"


# Interval


@pytest.mark.parametrize(
    ("unit", "count", "n", "expected"),
    [
        (DAY, 3, 2, relativedelta(days=6)),
        (WEEK, 2, 1, relativedelta(weeks=2)),
        (MONTH, 3, 2, relativedelta(months=6)),
        (YEAR, 1, -1, relativedelta(years=-1)),
    ],
)
def test_interval_delta_is_n_times_count_units(
    unit: IntervalUnit, count: int, n: int, expected: relativedelta
) -> None:
    assert Interval(unit, count).delta(n) == expected


def test_interval_delta_defaults_to_one_interval() -> None:
    assert Interval(MONTH, 3).delta() == relativedelta(months=3)


@given(
    st.sampled_from(list(IntervalUnit)),
    st.integers(1, 24),
    st.integers(-400, 400),
    st.dates(date(1900, 1, 1), date(2400, 12, 31)),
)
def test_interval_shift_moves_a_day_as_its_delta_does(
    unit: IntervalUnit, count: int, n: int, day: date
) -> None:
    interval = Interval(unit, count)
    try:
        expected = day + interval.delta(n)
    except (ValueError, OverflowError):
        with pytest.raises((ValueError, OverflowError)):
            interval.shift(day, n)
    else:
        assert interval.shift(day, n) == expected


@pytest.mark.parametrize(
    ("day", "unit", "n", "expected"),
    [
        (date(2024, 1, 31), MONTH, 1, date(2024, 2, 29)),
        (date(2023, 1, 31), MONTH, 1, date(2023, 2, 28)),
        (date(2024, 2, 29), YEAR, 1, date(2025, 2, 28)),
        (date(2024, 2, 29), YEAR, 4, date(2028, 2, 29)),
        (date(2024, 3, 31), MONTH, -1, date(2024, 2, 29)),
        (date(2024, 12, 15), MONTH, 1, date(2025, 1, 15)),
    ],
)
def test_interval_shift_clips_to_the_month_end(day: date, unit: IntervalUnit, n: int, expected: date) -> None:
    assert Interval(unit).shift(day, n) == expected


def test_interval_shift_past_the_calendar_is_an_error() -> None:
    with pytest.raises(ValueError):
        Interval(YEAR).shift(date(9999, 6, 1), 1)
    with pytest.raises(OverflowError):
        Interval(DAY).shift(date(9999, 12, 31), 1)


def test_interval_accepts_its_unit_as_a_plain_string() -> None:
    assert Interval("week").unit is WEEK  # type: ignore[arg-type]


@pytest.mark.parametrize("count", [0, -1, True, "2", 1.5])
def test_interval_rejects_a_count_that_is_not_a_positive_integer(count: object) -> None:
    with raises_invalid_period("count"):
        Interval(MONTH, count)  # type: ignore[arg-type]


@pytest.mark.parametrize("unit", ["fortnight", 7, None])
def test_interval_rejects_an_unknown_unit(unit: object) -> None:
    with raises_invalid_period("unit"):
        Interval(unit)  # type: ignore[arg-type]


# Period


def test_period_stores_its_bounds_as_utc_instants() -> None:
    period = Period(local("Europe/Berlin", 2024, 1, 1), local("Europe/Berlin", 2024, 2, 1))
    assert period.start == utc(2023, 12, 31, 23)
    assert period.start.tzinfo is UTC
    assert period.end.tzinfo is UTC


def test_period_contains_its_start_but_not_its_end() -> None:
    period = Period(utc(2024, 1, 1), utc(2024, 2, 1))
    assert period.contains(utc(2024, 1, 1))
    assert period.contains(utc(2024, 2, 1) - MICROSECOND)
    assert not period.contains(utc(2024, 2, 1))
    assert not period.contains(utc(2024, 1, 1) - MICROSECOND)


def test_period_duration_is_end_minus_start() -> None:
    assert Period(utc(2024, 2, 1), utc(2024, 3, 1)).duration == timedelta(days=29)


def test_period_with_naive_start_is_refused() -> None:
    with raises_invalid_period("start"):
        Period(utc(2024, 1, 1).replace(tzinfo=None), utc(2024, 2, 1))


def test_period_with_naive_end_is_refused() -> None:
    with raises_invalid_period("end"):
        Period(utc(2024, 1, 1), utc(2024, 2, 1).replace(tzinfo=None))


def test_period_given_a_date_instead_of_a_datetime_is_refused() -> None:
    with raises_invalid_period("start"):
        Period(date(2024, 1, 1), utc(2024, 2, 1))  # type: ignore[arg-type]


@pytest.mark.parametrize("end", [utc(2024, 1, 1), utc(2023, 12, 1)])
def test_period_whose_end_is_not_after_its_start_is_refused(end: datetime) -> None:
    with raises_invalid_period("end"):
        Period(utc(2024, 1, 1), end)


def test_period_contains_refuses_a_naive_instant() -> None:
    with raises_invalid_period("instant"):
        Period(utc(2024, 1, 1), utc(2024, 2, 1)).contains(utc(2024, 1, 5).replace(tzinfo=None))


# Timezones and local days


def test_check_timezone_returns_the_zone_for_an_iana_name() -> None:
    assert check_timezone("Pacific/Auckland") == ZoneInfo("Pacific/Auckland")


@pytest.mark.parametrize("name", ["Mars/Olympus_Mons", "", "../etc/passwd", "/abs", 5, None])
def test_check_timezone_refuses_unknown_names(name: object) -> None:
    with raises_invalid_period("timezone"):
        check_timezone(name)  # type: ignore[arg-type]


def test_check_aware_returns_the_instant_in_utc() -> None:
    result = check_aware(local("America/New_York", 2024, 7, 1, 12), "due")
    assert result == utc(2024, 7, 1, 16)
    assert result.tzinfo is UTC


def test_check_aware_refuses_a_naive_datetime_naming_the_field() -> None:
    with raises_invalid_period("due"):
        check_aware(utc(2024, 7, 1).replace(tzinfo=None), "due")


def test_local_midnight_in_berlin_is_23_00_utc_in_winter_and_22_00_utc_in_summer() -> None:
    assert local_midnight(date(2024, 1, 15), "Europe/Berlin") == utc(2024, 1, 14, 23)
    assert local_midnight(date(2024, 7, 15), "Europe/Berlin") == utc(2024, 7, 14, 22)


def test_local_midnight_skipped_by_dst_is_the_first_instant_of_that_day() -> None:
    first_instant = local_midnight(date(2018, 11, 4), "America/Sao_Paulo")
    assert first_instant == utc(2018, 11, 4, 3)
    assert local_date(first_instant, "America/Sao_Paulo") == date(2018, 11, 4)
    assert local_date(first_instant - MICROSECOND, "America/Sao_Paulo") == date(2018, 11, 3)


def test_local_midnight_refuses_a_datetime_as_day() -> None:
    with raises_invalid_period("day"):
        local_midnight(utc(2024, 1, 1), "UTC")


def test_local_midnight_refuses_a_day_whose_utc_instant_is_out_of_range() -> None:
    with raises_invalid_period("day"):
        local_midnight(date.min, "Pacific/Auckland")


def test_local_date_in_auckland_is_already_the_next_day() -> None:
    assert local_date(utc(2024, 1, 31, 12), "Pacific/Auckland") == date(2024, 2, 1)


def test_local_date_refuses_a_naive_instant() -> None:
    with raises_invalid_period("instant"):
        local_date(utc(2024, 1, 31).replace(tzinfo=None), "UTC")


def test_calendar_days_counts_local_days_not_24_hour_spans() -> None:
    march = Period(
        local_midnight(date(2024, 3, 1), "Europe/Berlin"), local_midnight(date(2024, 4, 1), "Europe/Berlin")
    )
    assert calendar_days(march, "Europe/Berlin") == 31
    assert march.duration == timedelta(days=31, hours=-1)


def test_calendar_days_counts_the_day_cut_by_the_start_but_not_the_day_cut_by_the_end() -> None:
    tz = "Europe/Berlin"
    assert calendar_days(Period(local(tz, 2024, 4, 10, 15), local(tz, 2024, 5, 1)), tz) == 21
    assert calendar_days(Period(local(tz, 2024, 4, 1), local(tz, 2024, 4, 10, 15)), tz) == 9


# Anniversary billing


def test_anchor_on_31_january_bills_28_february_then_31_march() -> None:
    cycle = monthly(date(2023, 1, 31))
    assert boundary_dates(cycle, 4) == [
        date(2023, 1, 31),
        date(2023, 2, 28),
        date(2023, 3, 31),
        date(2023, 4, 30),
    ]


def test_anchor_on_31_january_bills_29_february_in_a_leap_year() -> None:
    cycle = monthly(date(2024, 1, 31))
    assert boundary_dates(cycle, 3) == [date(2024, 1, 31), date(2024, 2, 29), date(2024, 3, 31)]


def test_anchor_on_31st_returns_to_31_may_after_30_april() -> None:
    cycle = monthly(date(2024, 1, 31))
    assert [local_date(cycle.boundary(n), "UTC") for n in (3, 4)] == [date(2024, 4, 30), date(2024, 5, 31)]


def test_yearly_anchor_on_29_february_renews_on_28_february_until_the_next_leap_year() -> None:
    cycle = BillingCycle(Interval(YEAR), date(2024, 2, 29), "UTC")
    assert boundary_dates(cycle, 5) == [
        date(2024, 2, 29),
        date(2025, 2, 28),
        date(2026, 2, 28),
        date(2027, 2, 28),
        date(2028, 2, 29),
    ]


def test_quarterly_anniversary_from_30_november_clips_to_28_february() -> None:
    cycle = BillingCycle(Interval(MONTH, 3), date(2022, 11, 30), "UTC")
    assert boundary_dates(cycle, 3) == [date(2022, 11, 30), date(2023, 2, 28), date(2023, 5, 30)]


def test_weekly_cycle_renews_on_the_anchor_weekday() -> None:
    cycle = BillingCycle(Interval(WEEK), date(2024, 5, 15), "UTC")
    assert boundary_dates(cycle, 3) == [date(2024, 5, 15), date(2024, 5, 22), date(2024, 5, 29)]


def test_daily_cycle_every_three_days() -> None:
    cycle = BillingCycle(Interval(DAY, 3), date(2024, 2, 27), "UTC")
    assert boundary_dates(cycle, 3) == [date(2024, 2, 27), date(2024, 3, 1), date(2024, 3, 4)]


def test_boundary_with_a_negative_index_lies_before_the_anchor() -> None:
    assert monthly(date(2024, 3, 31)).boundary(-1) == utc(2024, 2, 29)


def test_boundary_beyond_the_calendar_range_is_refused() -> None:
    with raises_invalid_period("n"):
        BillingCycle(Interval(YEAR), date(2024, 1, 1), "UTC").boundary(10_000)


def test_first_anniversary_period_runs_from_the_anchor_to_the_first_renewal() -> None:
    cycle = monthly(date(2024, 1, 31), "Europe/Berlin")
    first = cycle.first_period()
    assert first == Period(local("Europe/Berlin", 2024, 1, 31), local("Europe/Berlin", 2024, 2, 29))
    assert not cycle.is_partial(first)
    assert cycle.full_period_containing(first) == first


def test_anniversary_start_after_the_anchor_gives_a_partial_first_period() -> None:
    cycle = monthly(date(2024, 1, 15), start=date(2024, 2, 1))
    first = cycle.first_period()
    assert first == Period(utc(2024, 2, 1), utc(2024, 2, 15))
    assert cycle.is_partial(first)
    assert cycle.full_period_containing(first) == Period(utc(2024, 1, 15), utc(2024, 2, 15))


def test_anniversary_start_before_the_anchor_runs_up_to_the_anchor() -> None:
    cycle = monthly(date(2024, 3, 15), start=date(2024, 3, 1))
    assert cycle.first_period() == Period(utc(2024, 3, 1), utc(2024, 3, 15))
    assert cycle.next_period(cycle.first_period()) == Period(utc(2024, 3, 15), utc(2024, 4, 15))


def test_period_at_a_renewal_instant_is_the_new_period() -> None:
    cycle = monthly(date(2023, 1, 31))
    assert cycle.period_at(utc(2023, 2, 28)) == Period(utc(2023, 2, 28), utc(2023, 3, 31))
    assert cycle.period_at(utc(2023, 2, 28) - MICROSECOND) == Period(utc(2023, 1, 31), utc(2023, 2, 28))


def test_period_at_on_the_day_before_a_clipped_renewal_is_still_the_old_period() -> None:
    cycle = monthly(date(2023, 1, 31))
    assert cycle.period_at(utc(2023, 3, 30, 12)) == Period(utc(2023, 2, 28), utc(2023, 3, 31))


def test_period_at_far_in_the_future_matches_the_boundaries() -> None:
    cycle = BillingCycle(Interval(DAY), date(2000, 1, 1), "Europe/Berlin")
    n = (date(2250, 6, 15) - date(2000, 1, 1)).days
    assert cycle.period_at(local("Europe/Berlin", 2250, 6, 15, 13)) == Period(
        cycle.boundary(n), cycle.boundary(n + 1)
    )


def test_period_at_computes_its_index_without_walking_the_periods(monkeypatch: pytest.MonkeyPatch) -> None:
    cycle = BillingCycle(Interval(WEEK), date(2000, 1, 3), "UTC")
    original = Interval.shift
    calls: list[int] = []

    def counting_shift(self: Interval, day: date, n: int = 1) -> date:
        calls.append(n)
        return original(self, day, n)

    monkeypatch.setattr(Interval, "shift", counting_shift)
    period = cycle.period_at(utc(2199, 7, 1))
    assert period.contains(utc(2199, 7, 1))
    assert len(calls) <= 4


def test_period_at_before_the_first_day_is_refused() -> None:
    with raises_invalid_period("instant"):
        monthly(date(2024, 1, 31)).period_at(utc(2024, 1, 30, 23))


def test_period_at_a_naive_instant_is_refused() -> None:
    with raises_invalid_period("instant"):
        monthly(date(2024, 1, 31)).period_at(utc(2024, 2, 10).replace(tzinfo=None))


def test_next_period_follows_on_without_a_gap() -> None:
    cycle = monthly(date(2024, 1, 31))
    second = cycle.next_period(cycle.first_period())
    assert second == Period(utc(2024, 2, 29), utc(2024, 3, 31))


def test_next_period_refuses_a_period_of_another_cycle() -> None:
    cycle = monthly(date(2024, 1, 31))
    with raises_invalid_period("period"):
        cycle.next_period(Period(utc(2024, 2, 1), utc(2024, 3, 1)))


def test_full_period_containing_refuses_a_span_across_a_renewal() -> None:
    cycle = monthly(date(2024, 1, 1))
    with raises_invalid_period("period"):
        cycle.full_period_containing(Period(utc(2024, 1, 20), utc(2024, 2, 10)))


def test_a_part_in_the_middle_of_a_period_is_partial() -> None:
    cycle = monthly(date(2024, 1, 1))
    assert cycle.is_partial(Period(utc(2024, 1, 10), utc(2024, 2, 1)))


# Calendar billing


def test_calendar_monthly_billing_starts_with_a_partial_period_to_the_1st() -> None:
    cycle = monthly(date(2024, 3, 10), "Europe/Berlin", anchoring=Anchoring.CALENDAR)
    first = cycle.first_period()
    assert first == Period(local("Europe/Berlin", 2024, 3, 10), local("Europe/Berlin", 2024, 4, 1))
    assert cycle.is_partial(first)
    assert cycle.full_period_containing(first) == Period(
        local("Europe/Berlin", 2024, 3, 1), local("Europe/Berlin", 2024, 4, 1)
    )
    second = cycle.next_period(first)
    assert second == Period(local("Europe/Berlin", 2024, 4, 1), local("Europe/Berlin", 2024, 5, 1))
    assert not cycle.is_partial(second)


def test_calendar_billing_started_on_the_1st_has_no_partial_period() -> None:
    cycle = monthly(date(2024, 3, 1), anchoring=Anchoring.CALENDAR)
    assert not cycle.is_partial(cycle.first_period())


def test_calendar_weekly_billing_renews_on_mondays() -> None:
    cycle = BillingCycle(Interval(WEEK), date(2024, 5, 15), "UTC", Anchoring.CALENDAR)
    first = cycle.first_period()
    assert first == Period(utc(2024, 5, 15), utc(2024, 5, 20))
    assert cycle.full_period_containing(first) == Period(utc(2024, 5, 13), utc(2024, 5, 20))
    assert cycle.next_period(first) == Period(utc(2024, 5, 20), utc(2024, 5, 27))


def test_calendar_fortnightly_billing_renews_on_mondays_counted_from_the_epoch() -> None:
    cycle = BillingCycle(Interval(WEEK, 2), date(2024, 5, 15), "UTC", Anchoring.CALENDAR)
    renewal = local_date(cycle.first_period().end, "UTC")
    assert renewal.weekday() == 0
    assert (renewal - date(1970, 1, 5)).days % 14 == 0


def test_calendar_yearly_billing_renews_on_1_january() -> None:
    cycle = BillingCycle(Interval(YEAR), date(2024, 7, 1), "UTC", Anchoring.CALENDAR)
    first = cycle.first_period()
    assert first == Period(utc(2024, 7, 1), utc(2025, 1, 1))
    assert cycle.full_period_containing(first) == Period(utc(2024, 1, 1), utc(2025, 1, 1))


def test_calendar_two_yearly_billing_is_aligned_to_even_years() -> None:
    cycle = BillingCycle(Interval(YEAR, 2), date(2025, 3, 1), "UTC", Anchoring.CALENDAR)
    assert cycle.full_period_containing(cycle.first_period()) == Period(utc(2024, 1, 1), utc(2026, 1, 1))


def test_calendar_quarterly_billing_renews_in_january_april_july_and_october() -> None:
    cycle = BillingCycle(Interval(MONTH, 3), date(2024, 5, 20), "UTC", Anchoring.CALENDAR)
    first = cycle.first_period()
    assert first == Period(utc(2024, 5, 20), utc(2024, 7, 1))
    assert cycle.full_period_containing(first) == Period(utc(2024, 4, 1), utc(2024, 7, 1))
    assert boundary_dates(cycle, 4) == [
        date(2024, 4, 1),
        date(2024, 7, 1),
        date(2024, 10, 1),
        date(2025, 1, 1),
    ]


def test_calendar_daily_billing_bills_each_local_day() -> None:
    cycle = BillingCycle(Interval(DAY), date(2024, 5, 20), "Asia/Kolkata", Anchoring.CALENDAR)
    first = cycle.first_period()
    assert first == Period(local("Asia/Kolkata", 2024, 5, 20), local("Asia/Kolkata", 2024, 5, 21))
    assert not cycle.is_partial(first)


def test_calendar_alignment_ignores_the_anchor_when_a_start_is_given() -> None:
    one = monthly(date(2020, 1, 17), anchoring=Anchoring.CALENDAR, start=date(2024, 3, 10))
    other = monthly(date(2023, 8, 3), anchoring=Anchoring.CALENDAR, start=date(2024, 3, 10))
    assert one.first_period() == other.first_period() == Period(utc(2024, 3, 10), utc(2024, 4, 1))


def test_cycle_accepts_anchoring_as_a_plain_string() -> None:
    assert monthly(date(2024, 1, 1), anchoring="calendar").anchoring is Anchoring.CALENDAR


# DST and timezones


@pytest.mark.parametrize(
    ("timezone", "day", "hours"),
    [
        ("Europe/Berlin", date(2024, 3, 31), 23),
        ("Europe/Berlin", date(2024, 10, 27), 25),
        ("America/New_York", date(2024, 3, 10), 23),
        ("America/New_York", date(2024, 11, 3), 25),
        ("Pacific/Auckland", date(2024, 4, 7), 25),
        ("Pacific/Auckland", date(2024, 9, 29), 23),
    ],
)
def test_a_dst_day_lasts_23_or_25_hours_from_local_midnight_to_local_midnight(
    timezone: str, day: date, hours: int
) -> None:
    cycle = BillingCycle(Interval(DAY), date(2024, 1, 1), timezone)
    period = cycle.period_at(local(timezone, day.year, day.month, day.day, 12))
    assert period.duration == timedelta(hours=hours)
    start, end = (bound.astimezone(ZoneInfo(timezone)) for bound in (period.start, period.end))
    assert (start.date(), start.time()) == (day, time(0))
    assert (end.date(), end.time()) == (day + timedelta(days=1), time(0))


def test_berlin_spring_forward_day_runs_from_23_00_to_22_00_utc() -> None:
    cycle = BillingCycle(Interval(DAY), date(2024, 3, 1), "Europe/Berlin")
    assert cycle.period_at(utc(2024, 3, 31, 12)) == Period(utc(2024, 3, 30, 23), utc(2024, 3, 31, 22))


def test_new_york_fall_back_day_runs_from_04_00_to_05_00_utc_next_day() -> None:
    cycle = BillingCycle(Interval(DAY), date(2024, 11, 1), "America/New_York")
    assert cycle.period_at(utc(2024, 11, 3, 12)) == Period(utc(2024, 11, 3, 4), utc(2024, 11, 4, 5))


def test_berlin_march_is_one_hour_short_of_31_days() -> None:
    cycle = monthly(date(2024, 1, 1), "Europe/Berlin", anchoring=Anchoring.CALENDAR)
    march = cycle.period_at(utc(2024, 3, 15))
    assert march.duration == timedelta(days=31) - timedelta(hours=1)
    assert calendar_days(march, "Europe/Berlin") == 31


def test_auckland_monthly_boundaries_move_from_11_00_to_12_00_utc_when_dst_ends() -> None:
    cycle = monthly(date(2024, 3, 15), "Pacific/Auckland")
    first = cycle.first_period()
    assert first == Period(utc(2024, 3, 14, 11), utc(2024, 4, 14, 12))
    assert first.duration == timedelta(days=31, hours=1)


def test_sao_paulo_day_without_midnight_starts_at_one_in_the_morning() -> None:
    cycle = BillingCycle(Interval(DAY), date(2018, 11, 1), "America/Sao_Paulo")
    period = cycle.period_at(utc(2018, 11, 4, 12))
    assert period == Period(utc(2018, 11, 4, 3), utc(2018, 11, 5, 2))
    assert period.duration == timedelta(hours=23)


# Invalid cycles


def test_cycle_refuses_an_interval_that_is_not_an_interval() -> None:
    with raises_invalid_period("interval"):
        BillingCycle("month", date(2024, 1, 1), "UTC")  # type: ignore[arg-type]


@pytest.mark.parametrize("anchor", [datetime(2024, 1, 1, tzinfo=UTC), "2024-01-01", None])
def test_cycle_refuses_an_anchor_that_is_not_a_date(anchor: object) -> None:
    with raises_invalid_period("anchor"):
        BillingCycle(Interval(MONTH), anchor, "UTC")  # type: ignore[arg-type]


def test_cycle_refuses_a_start_that_is_not_a_date() -> None:
    with raises_invalid_period("start"):
        monthly(date(2024, 1, 1), start=datetime(2024, 1, 5, tzinfo=UTC))


def test_cycle_refuses_an_unknown_timezone() -> None:
    with raises_invalid_period("timezone"):
        monthly(date(2024, 1, 1), "Europe/Atlantis")


def test_cycle_refuses_an_unknown_anchoring() -> None:
    with raises_invalid_period("anchoring"):
        monthly(date(2024, 1, 1), anchoring="fiscal")


# Properties

cycles = st.builds(
    lambda unit, count, anchor, timezone, anchoring, offset: BillingCycle(
        Interval(unit, count),
        anchor,
        timezone,
        anchoring,
        None if offset is None else anchor + timedelta(days=offset),
    ),
    st.sampled_from(list(IntervalUnit)),
    st.integers(1, 4),
    st.dates(date(1990, 1, 1), date(2060, 12, 31)),
    st.sampled_from(ZONES),
    st.sampled_from(list(Anchoring)),
    st.none() | st.integers(-60, 400),
)


def is_first_instant_of_its_local_day(instant: datetime, timezone: str) -> bool:
    day = local_date(instant, timezone)
    return local_midnight(day, timezone) == instant and local_date(instant - MICROSECOND, timezone) < day


@settings(deadline=None)
@given(cycles)
def test_consecutive_periods_tile_time_without_gaps_or_overlaps(cycle: BillingCycle) -> None:
    period = cycle.first_period()
    for _ in range(12):
        assert cycle.period_at(period.start) == period
        assert cycle.period_at(period.end - MICROSECOND) == period
        following = cycle.next_period(period)
        assert following.start == period.end
        period = following


@settings(deadline=None)
@given(cycles, st.integers(-5, 40))
def test_every_boundary_is_local_midnight(cycle: BillingCycle, n: int) -> None:
    assert is_first_instant_of_its_local_day(cycle.boundary(n), cycle.timezone)


@settings(deadline=None)
@given(cycles, st.integers(0, 4 * 366 * 86_400))
def test_period_at_returns_a_period_between_local_midnights_containing_the_instant(
    cycle: BillingCycle, seconds: int
) -> None:
    instant = cycle.first_period().start + timedelta(seconds=seconds)
    period = cycle.period_at(instant)
    assert period.contains(instant)
    assert is_first_instant_of_its_local_day(period.start, cycle.timezone)
    assert is_first_instant_of_its_local_day(period.end, cycle.timezone)
    full = cycle.full_period_containing(period)
    assert full.start <= period.start
    assert period.end == full.end
    assert cycle.is_partial(period) == (period != full)
    if period != cycle.first_period():
        assert not cycle.is_partial(period)


@settings(deadline=None)
@given(st.dates(date(1990, 1, 1), date(2060, 12, 31)), st.integers(-30, 60), st.sampled_from(ZONES))
def test_monthly_anniversary_keeps_the_anchor_day_or_the_last_day_of_shorter_months(
    anchor: date, n: int, timezone: str
) -> None:
    renewal = local_date(monthly(anchor, timezone).boundary(n), timezone)
    month_end = (renewal.replace(day=1) + relativedelta(months=1)) - timedelta(days=1)
    assert renewal.day == min(anchor.day, month_end.day)
    assert renewal == anchor + relativedelta(months=n)
