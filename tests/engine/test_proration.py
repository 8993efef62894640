"""Proration by local calendar day and by second; plan changes mid-period."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from fractions import Fraction
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from turnus.engine.errors import CurrencyMismatch, InvalidAmount, InvalidPeriod
from turnus.engine.money import Money
from turnus.engine.periods import Anchoring, BillingCycle, Interval, IntervalUnit, Period
from turnus.engine.proration import (
    ChangeProration,
    ProrationMode,
    change_proration,
    prorate,
    proration_fraction,
)

BY_DAY, BY_SECOND = ProrationMode.DAY, ProrationMode.SECOND
BERLIN = "Europe/Berlin"


def local(timezone: str, year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=ZoneInfo(timezone))


def utc(year: int, month: int, day: int, hour: int = 0) -> datetime:
    return datetime(year, month, day, hour, tzinfo=UTC)


def money(amount: str, currency: str = "EUR") -> Money:
    return Money(Decimal(amount), currency)


def april_in(timezone: str) -> Period:
    return Period(local(timezone, 2024, 4, 1), local(timezone, 2024, 5, 1))


@contextmanager
def raises_invalid_period(field: str) -> Iterator[None]:
    with pytest.raises(InvalidPeriod) as caught:
        yield
    assert caught.value.field == field


# Worked examples


def test_200_eur_prorated_by_29_of_30_days_is_193_33() -> None:
    april = april_in(BERLIN)
    rest = Period(local(BERLIN, 2024, 4, 2), april.end)
    assert proration_fraction(april, rest, BY_DAY, BERLIN) == Fraction(29, 30)
    assert prorate(money("200.00"), april, rest, BY_DAY, BERLIN) == money("193.33")


def test_upgrade_at_15_00_on_the_10th_gives_the_new_plan_the_whole_10th() -> None:
    result = change_proration(
        money("30.00"), money("60.00"), april_in(BERLIN), local(BERLIN, 2024, 4, 10, 15), BY_DAY, BERLIN
    )
    assert result == ChangeProration(credit=money("21.00"), charge=money("42.00"), fraction=Fraction(21, 30))


def test_upgrade_by_second_splits_the_period_at_the_exact_instant_and_rounds_half_up() -> None:
    result = change_proration(
        money("30.00"), money("60.00"), april_in(BERLIN), local(BERLIN, 2024, 4, 10, 15), BY_SECOND, BERLIN
    )
    remaining = timedelta(days=20, hours=9).total_seconds()
    assert result.fraction == Fraction(int(remaining), 30 * 86_400)
    assert result.credit == money("20.38")
    assert result.charge == money("40.75")


def test_downgrade_mid_period_by_day_credits_more_than_it_charges() -> None:
    result = change_proration(
        money("99.00"), money("49.00"), april_in(BERLIN), local(BERLIN, 2024, 4, 21, 9, 30), BY_DAY, BERLIN
    )
    assert result.fraction == Fraction(10, 30)
    assert result.credit == money("33.00")
    assert result.charge == money("16.33")


def test_downgrade_by_second_in_new_york() -> None:
    tz = "America/New_York"
    result = change_proration(
        money("100.00", "USD"), money("40.00", "USD"), april_in(tz), local(tz, 2024, 4, 16), BY_SECOND, tz
    )
    assert result.fraction == Fraction(15, 30)
    assert (result.credit, result.charge) == (money("50.00", "USD"), money("20.00", "USD"))


def test_change_at_the_period_start_moves_the_whole_period() -> None:
    april = april_in(BERLIN)
    result = change_proration(money("30.00"), money("60.00"), april, april.start, BY_DAY, BERLIN)
    assert result == ChangeProration(money("30.00"), money("60.00"), Fraction(1))


def test_change_late_on_the_last_day_by_day_still_moves_that_day() -> None:
    result = change_proration(
        money("30.00"), money("60.00"), april_in(BERLIN), local(BERLIN, 2024, 4, 30, 23, 59), BY_DAY, BERLIN
    )
    assert result == ChangeProration(money("1.00"), money("2.00"), Fraction(1, 30))


def test_denominator_of_the_15_february_to_15_march_period_is_28_days() -> None:
    cycle = BillingCycle(Interval(IntervalUnit.MONTH), date(2023, 1, 15), BERLIN)
    period = cycle.period_at(local(BERLIN, 2023, 3, 1, 8))
    assert period == Period(local(BERLIN, 2023, 2, 15), local(BERLIN, 2023, 3, 15))
    rest = Period(local(BERLIN, 2023, 3, 1), period.end)
    assert proration_fraction(period, rest, BY_DAY, BERLIN) == Fraction(14, 28)


def test_denominator_of_the_15_february_to_15_march_period_in_a_leap_year_is_29_days() -> None:
    period = Period(local(BERLIN, 2024, 2, 15), local(BERLIN, 2024, 3, 15))
    rest = Period(local(BERLIN, 2024, 3, 1), period.end)
    assert proration_fraction(period, rest, BY_DAY, BERLIN) == Fraction(14, 29)


def test_calendar_first_partial_period_is_prorated_over_the_full_month() -> None:
    cycle = BillingCycle(Interval(IntervalUnit.MONTH), date(2024, 3, 10), BERLIN, Anchoring.CALENDAR)
    partial = cycle.first_period()
    full = cycle.full_period_containing(partial)
    assert prorate(money("31.00"), full, partial, BY_DAY, BERLIN) == money("22.00")


def test_dst_day_counts_as_one_day_by_day_but_only_23_hours_by_second() -> None:
    march = Period(local(BERLIN, 2024, 3, 1), local(BERLIN, 2024, 4, 1))
    last_day = Period(local(BERLIN, 2024, 3, 31), march.end)
    assert proration_fraction(march, last_day, BY_DAY, BERLIN) == Fraction(1, 31)
    assert proration_fraction(march, last_day, BY_SECOND, BERLIN) == Fraction(23, 31 * 24 - 1)


def test_auckland_days_are_counted_in_auckland() -> None:
    tz = "Pacific/Auckland"
    april = april_in(tz)
    change = utc(2024, 4, 9, 12)
    assert change.astimezone(ZoneInfo(tz)).date() == date(2024, 4, 10)
    assert change_proration(money("30.00"), money("30.00"), april, change, BY_DAY, tz).fraction == Fraction(
        21, 30
    )


def test_jpy_has_no_minor_unit() -> None:
    april = april_in("Asia/Tokyo")
    rest = Period(local("Asia/Tokyo", 2024, 4, 2), april.end)
    assert prorate(money("1000", "JPY"), april, rest, BY_DAY, "Asia/Tokyo").amount == Decimal("967")


def test_kwd_rounds_to_three_decimals() -> None:
    april = april_in("Asia/Kuwait")
    rest = Period(local("Asia/Kuwait", 2024, 4, 2), april.end)
    assert prorate(money("10.000", "KWD"), april, rest, BY_DAY, "Asia/Kuwait").amount == Decimal("9.667")


def test_prorating_a_negative_amount_rounds_half_away_from_zero() -> None:
    april = april_in(BERLIN)
    rest = Period(local(BERLIN, 2024, 4, 10, 15), april.end)
    assert prorate(money("-30.00"), april, rest, BY_SECOND, BERLIN) == money("-20.38")


def test_mode_may_be_given_as_a_plain_string() -> None:
    april = april_in(BERLIN)
    assert proration_fraction(april, april, "day", BERLIN) == 1  # type: ignore[arg-type]


# Errors


def test_part_starting_before_the_period_is_refused() -> None:
    april = april_in(BERLIN)
    with raises_invalid_period("part"):
        proration_fraction(april, Period(local(BERLIN, 2024, 3, 31), april.end), BY_DAY, BERLIN)


def test_part_ending_after_the_period_is_refused() -> None:
    april = april_in(BERLIN)
    with raises_invalid_period("part"):
        prorate(money("1.00"), april, Period(april.start, local(BERLIN, 2024, 5, 2)), BY_SECOND, BERLIN)


@pytest.mark.parametrize("mode", ["hour", "", None])
def test_unknown_proration_mode_is_refused(mode: object) -> None:
    april = april_in(BERLIN)
    with raises_invalid_period("mode"):
        proration_fraction(april, april, mode, BERLIN)  # type: ignore[arg-type]


def test_unknown_timezone_is_refused() -> None:
    april = april_in(BERLIN)
    with raises_invalid_period("timezone"):
        proration_fraction(april, april, BY_SECOND, "Moon/Tranquility")


def test_prorating_by_day_a_period_without_a_whole_local_day_is_refused() -> None:
    morning = Period(local(BERLIN, 2024, 4, 10, 8), local(BERLIN, 2024, 4, 10, 12))
    with raises_invalid_period("period"):
        proration_fraction(morning, morning, BY_DAY, BERLIN)


@pytest.mark.parametrize("change_at", [local(BERLIN, 2024, 3, 31, 23), local(BERLIN, 2024, 5, 1)])
def test_change_outside_the_period_is_refused(change_at: datetime) -> None:
    with raises_invalid_period("change_at"):
        change_proration(money("1.00"), money("2.00"), april_in(BERLIN), change_at, BY_DAY, BERLIN)


def test_naive_change_instant_is_refused() -> None:
    with raises_invalid_period("change_at"):
        change_proration(
            money("1.00"),
            money("2.00"),
            april_in(BERLIN),
            utc(2024, 4, 10).replace(tzinfo=None),
            BY_DAY,
            BERLIN,
        )


@pytest.mark.parametrize(
    ("old", "new", "field"), [("-1.00", "2.00", "old_amount"), ("1.00", "-2.00", "new_amount")]
)
def test_negative_plan_amount_is_refused(old: str, new: str, field: str) -> None:
    with pytest.raises(InvalidAmount) as caught:
        change_proration(money(old), money(new), april_in(BERLIN), local(BERLIN, 2024, 4, 10), BY_DAY, BERLIN)
    assert caught.value.field == field


def test_plans_in_different_currencies_are_refused() -> None:
    with pytest.raises(CurrencyMismatch) as caught:
        change_proration(
            money("1.00"), money("2.00", "USD"), april_in(BERLIN), local(BERLIN, 2024, 4, 10), BY_DAY, BERLIN
        )
    assert caught.value.field == "new_amount"


# Properties

ZONES = ("UTC", "Europe/Berlin", "America/New_York", "Pacific/Auckland", "Australia/Lord_Howe")
CURRENCIES = ("EUR", "JPY", "KWD")

amounts = st.builds(Money.from_minor_units, st.integers(0, 10**10), st.sampled_from(CURRENCIES))


@st.composite
def splits(draw: st.DrawFn) -> tuple[str, Period, list[Period]]:
    timezone = draw(st.sampled_from(ZONES))
    period = BillingCycle(
        Interval(draw(st.sampled_from(list(IntervalUnit))), draw(st.integers(1, 3))),
        draw(st.dates(date(2000, 1, 1), date(2050, 12, 31))),
        timezone,
    ).first_period()
    seconds = int(period.duration.total_seconds())
    offsets = draw(st.lists(st.integers(1, seconds - 1), max_size=8, unique=True))
    cuts = [period.start, *sorted(period.start + timedelta(seconds=s) for s in offsets), period.end]
    return timezone, period, [Period(a, b) for a, b in itertools.pairwise(cuts)]


@settings(deadline=None)
@given(splits(), amounts, st.sampled_from(list(ProrationMode)))
def test_splitting_a_period_and_prorating_each_part_sums_to_the_whole_within_one_minor_unit_per_part(
    split: tuple[str, Period, list[Period]], amount: Money, mode: ProrationMode
) -> None:
    timezone, period, parts = split
    assert sum(proration_fraction(period, part, mode, timezone) for part in parts) == 1
    total = sum(prorate(amount, period, part, mode, timezone).to_minor_units() for part in parts)
    assert abs(total - amount.to_minor_units()) <= len(parts)


@settings(deadline=None)
@given(splits(), st.sampled_from(list(ProrationMode)))
def test_proration_fraction_lies_between_zero_and_one(
    split: tuple[str, Period, list[Period]], mode: ProrationMode
) -> None:
    timezone, period, parts = split
    for part in parts:
        assert 0 <= proration_fraction(period, part, mode, timezone) <= 1


@st.composite
def plan_changes(draw: st.DrawFn) -> tuple[str, Period, datetime]:
    timezone, period, _ = draw(splits())
    offset = draw(st.integers(0, period.duration // timedelta(microseconds=1) - 1))
    return timezone, period, period.start + timedelta(microseconds=offset)


@settings(deadline=None)
@given(plan_changes(), amounts, st.sampled_from(list(ProrationMode)))
def test_change_proration_never_credits_or_charges_more_than_the_plans_cost(
    change: tuple[str, Period, datetime], amount: Money, mode: ProrationMode
) -> None:
    timezone, period, change_at = change
    cheaper = Money.from_minor_units(amount.to_minor_units() // 2, amount.currency)
    result = change_proration(amount, cheaper, period, change_at, mode, timezone)
    assert Money.zero(amount.currency) <= result.credit <= amount
    assert Money.zero(amount.currency) <= result.charge <= result.credit
    assert 0 <= result.fraction <= 1
