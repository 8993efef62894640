from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from turnus.engine.aggregation import (
    Aggregation,
    Metric,
    PropertyFilter,
    UsageRecord,
    aggregate,
    closing_values,
)
from turnus.engine.errors import InvalidAggregation
from turnus.engine.periods import Period

D = Decimal
MARCH = Period(datetime(2025, 3, 1, tzinfo=UTC), datetime(2025, 4, 1, tzinfo=UTC))
TEN_DAYS = Period(datetime(2025, 3, 1, tzinfo=UTC), datetime(2025, 3, 11, tzinfo=UTC))


def day(number: int, hour: int = 0) -> datetime:
    return datetime(2025, 3, number, hour, tzinfo=UTC)


def event(when: datetime, transaction_id: str = "", **properties: object) -> UsageRecord:
    return UsageRecord(when, properties, transaction_id)


COUNT = Metric("api_calls", Aggregation.COUNT)
SUM = Metric("gb_sent", Aggregation.SUM, "gb")
MAX = Metric("peak_users", Aggregation.MAX, "users")
UNIQUE = Metric("active_users", Aggregation.UNIQUE_COUNT, "user")
LATEST = Metric("plan_seats", Aggregation.LATEST, "seats", recurring=True)
GAUGE = Metric("storage", Aggregation.WEIGHTED_SUM, "gb", recurring=True)


# --- count, sum, max, unique count -------------------------------------------------------------


def test_count_counts_the_events_in_the_period() -> None:
    records = [event(day(1)), event(day(15)), event(day(31, 23))]
    assert aggregate(COUNT, records, MARCH) == {None: D(3)}


def test_events_outside_the_period_are_ignored_and_the_end_is_exclusive() -> None:
    records = [
        event(datetime(2025, 2, 28, 23, 59, tzinfo=UTC), gb="x"),
        event(MARCH.start, gb=1),
        event(MARCH.end, gb="not even checked"),
    ]
    assert aggregate(COUNT, records, MARCH) == {None: D(1)}
    assert aggregate(SUM, records, MARCH) == {None: D(1)}


def test_a_list_a_tuple_and_a_generator_of_records_aggregate_alike() -> None:
    class TaggedRecord(UsageRecord):
        __slots__ = ()

    records = [
        event(day(1), gb=2),
        event(day(2), gb="0.5"),
        event(day(3), gb=D("1.25")),
        event(MARCH.end, gb=9),
    ]
    tagged = [TaggedRecord(record.timestamp, record.properties) for record in records]
    for metric in (COUNT, SUM, Metric("peak_gb", Aggregation.MAX, "gb")):
        expected = aggregate(metric, iter(records), MARCH)
        assert aggregate(metric, records, MARCH) == expected
        assert aggregate(metric, tuple(records), MARCH) == expected
        assert aggregate(metric, tagged, MARCH) == expected
    assert aggregate(SUM, records, MARCH) == {None: D("3.75")}


def test_records_in_another_timezone_are_placed_by_their_instant() -> None:
    berlin_midnight = datetime(2025, 4, 1, 0, 30, tzinfo=timezone(timedelta(hours=2)))
    assert aggregate(COUNT, [event(berlin_midnight)], MARCH) == {None: D(1)}


@pytest.mark.parametrize("metric", [COUNT, SUM, MAX, UNIQUE, LATEST, GAUGE], ids=lambda m: m.aggregation)
def test_no_events_give_zero_for_an_ungrouped_metric(metric: Metric) -> None:
    assert aggregate(metric, [], MARCH) == {None: D(0)}


@pytest.mark.parametrize("metric", [COUNT, SUM, MAX, UNIQUE, LATEST, GAUGE], ids=lambda m: m.aggregation)
def test_no_events_give_no_groups_for_a_grouped_metric(metric: Metric) -> None:
    grouped = Metric(metric.code, metric.aggregation, metric.property, group_by="region")
    assert aggregate(grouped, [], MARCH) == {}


def test_sum_adds_integers_decimals_and_numeric_strings_exactly() -> None:
    records = [
        event(day(2), gb=1),
        event(day(3), gb=D("0.25")),
        event(day(4), gb=" 1.5 "),
        event(day(5), gb="-0.75"),
    ]
    assert aggregate(SUM, records, MARCH) == {None: D("2.00")}


def test_sum_keeps_all_digits_of_large_values() -> None:
    records = [event(day(2), gb="123456789012345678901234567890.000000000001"), event(day(3), gb=1)]
    assert aggregate(SUM, records, MARCH) == {None: D("123456789012345678901234567891.000000000001")}


def test_max_takes_the_largest_value() -> None:
    records = [event(day(2), users=3), event(day(3), users="12"), event(day(4), users=D(7))]
    assert aggregate(MAX, records, MARCH) == {None: D(12)}


def test_unique_count_counts_distinct_values_as_text() -> None:
    records = [
        event(day(2), user="ann"),
        event(day(3), user="bob"),
        event(day(4), user="ann"),
        event(day(5), user=7),
        event(day(6), user="7"),
        event(day(7)),
    ]
    assert aggregate(UNIQUE, records, MARCH) == {None: D(3)}


# --- latest ------------------------------------------------------------------------------------


def test_latest_takes_the_value_of_the_last_event_by_timestamp() -> None:
    records = [event(day(20), "b", seats=9), event(day(25), "a", seats=4), event(day(3), "c", seats=1)]
    assert aggregate(LATEST, records, MARCH) == {None: D(4)}


def test_latest_breaks_a_timestamp_tie_by_the_greater_transaction_id() -> None:
    records = [event(day(20), "tx-2", seats=9), event(day(20), "tx-1", seats=4)]
    assert aggregate(LATEST, records, MARCH) == {None: D(9)}
    assert aggregate(LATEST, list(reversed(records)), MARCH) == {None: D(9)}


def test_latest_without_events_keeps_the_carried_in_value() -> None:
    assert aggregate(LATEST, [], MARCH, {None: D(5)}) == {None: D(5)}


# --- weighted sum ------------------------------------------------------------------------------


def test_weighted_sum_weights_each_value_by_the_time_it_was_held() -> None:
    records = [event(day(6), gb=10)]
    # 2 GB carried in for 5 of 10 days, then 10 GB for 5 days
    assert aggregate(GAUGE, records, TEN_DAYS, {None: D(2)}) == {None: D(6)}


def test_weighted_sum_starts_from_zero_without_a_carried_in_value() -> None:
    assert aggregate(GAUGE, [event(day(6), gb=10)], TEN_DAYS) == {None: D(5)}


def test_weighted_sum_with_several_changes() -> None:
    records = [event(day(3), gb=4), event(day(8), gb=0), event(day(2), gb=1)]
    # 0 for 1 day, 1 for 1 day, 4 for 5 days, 0 for 3 days
    assert aggregate(GAUGE, records, TEN_DAYS) == {None: D("2.1")}


def test_weighted_sum_of_events_at_the_same_instant_keeps_the_last_by_transaction_id() -> None:
    records = [event(day(6), "b", gb=10), event(day(6), "a", gb=100)]
    assert aggregate(GAUGE, records, TEN_DAYS) == {None: D(5)}


def test_an_event_at_the_period_start_replaces_the_carried_in_value() -> None:
    assert aggregate(GAUGE, [event(TEN_DAYS.start, gb=3)], TEN_DAYS, {None: D(100)}) == {None: D(3)}


def test_weighted_sum_is_exact_to_sixty_digits_for_a_third() -> None:
    three_days = Period(day(1), day(4))
    result = aggregate(GAUGE, [event(day(3), gb=1)], three_days)[None]
    assert result == D("0." + "3" * 60)


def test_weighted_sum_counts_seconds_so_an_hour_of_a_day_is_a_twenty_fourth() -> None:
    one_day = Period(day(1), day(2))
    result = aggregate(GAUGE, [event(day(1, 23), gb=24)], one_day)[None]
    assert result == D(1)


# --- filters and groups ------------------------------------------------------------------------


def test_an_equals_filter_keeps_matching_events_comparing_as_text() -> None:
    metric = Metric("calls", Aggregation.COUNT, filters=(PropertyFilter("status", ("200",)),))
    records = [
        event(day(2), status=200),
        event(day(3), status="200"),
        event(day(4), status=500),
        event(day(5)),
    ]
    assert aggregate(metric, records, MARCH) == {None: D(2)}


def test_an_in_filter_keeps_any_listed_value() -> None:
    metric = Metric("gb", Aggregation.SUM, "gb", filters=(PropertyFilter("region", ("eu", "us")),))
    records = [
        event(day(2), gb=1, region="eu"),
        event(day(3), gb=2, region="us"),
        event(day(4), gb=4, region="ap"),
    ]
    assert aggregate(metric, records, MARCH) == {None: D(3)}


def test_all_filters_must_match() -> None:
    filters = (PropertyFilter("region", ("eu",)), PropertyFilter("cached", ("false",)))
    metric = Metric("calls", Aggregation.COUNT, filters=filters)
    records = [
        event(day(2), region="eu", cached=False),
        event(day(3), region="eu", cached=True),
        event(day(4), region="us", cached=False),
    ]
    assert aggregate(metric, records, MARCH) == {None: D(1)}


def test_events_failing_a_filter_are_not_checked() -> None:
    metric = Metric("gb", Aggregation.SUM, "gb", filters=(PropertyFilter("region", ("eu",)),))
    assert aggregate(metric, [event(day(2), region="us", gb=1.5)], MARCH) == {None: D(0)}


def test_grouping_keys_by_the_text_of_the_property_and_puts_events_without_it_under_none() -> None:
    metric = Metric("gb", Aggregation.SUM, "gb", group_by="region")
    records = [
        event(day(2), gb=1, region="eu"),
        event(day(3), gb=2, region="us"),
        event(day(4), gb=4, region="eu"),
        event(day(5), gb=8),
        event(day(6), gb=16, region=None),
        event(day(7), gb=32, region=3),
    ]
    result = aggregate(metric, records, MARCH)
    assert result == {None: D(24), "3": D(32), "eu": D(5), "us": D(2)}
    assert list(result) == [None, "3", "eu", "us"]


def test_a_grouped_gauge_carries_in_groups_without_events() -> None:
    metric = Metric("storage", Aggregation.WEIGHTED_SUM, "gb", group_by="bucket", recurring=True)
    records = [event(day(6), gb=10, bucket="a")]
    result = aggregate(metric, records, TEN_DAYS, {"a": D(2), "b": D(7)})
    assert result == {"a": D(6), "b": D(7)}


def test_a_grouped_latest_uses_the_carried_in_value_per_group() -> None:
    metric = Metric("seats", Aggregation.LATEST, "seats", group_by="team", recurring=True)
    result = aggregate(metric, [event(day(6), seats=3, team="x")], MARCH, {"x": D(1), "y": D(2), None: D(4)})
    assert result == {None: D(4), "x": D(3), "y": D(2)}


# --- closing values ----------------------------------------------------------------------------


def test_closing_values_hold_the_last_value_of_each_gauge_group() -> None:
    metric = Metric("storage", Aggregation.WEIGHTED_SUM, "gb", group_by="bucket", recurring=True)
    records = [event(day(6), gb=10, bucket="a"), event(day(9), gb=3, bucket="a"), event(day(7), gb=1)]
    closing = closing_values(metric, records, TEN_DAYS, {"a": D(2), "b": D(7)})
    assert closing == {None: D(1), "a": D(3), "b": D(7)}


def test_closing_values_of_an_ungrouped_gauge_without_events_keep_the_carried_value() -> None:
    assert closing_values(GAUGE, [], TEN_DAYS, {None: D(5)}) == {None: D(5)}
    assert closing_values(LATEST, [], TEN_DAYS) == {None: D(0)}


def test_a_gauge_carried_through_two_periods_is_billed_consistently() -> None:
    first = Period(day(1), day(11))
    second = Period(day(11), day(21))
    records = [event(day(6), gb=10), event(day(16), gb=0)]
    carried = closing_values(GAUGE, records, first)
    assert aggregate(GAUGE, records, first) == {None: D(5)}
    assert aggregate(GAUGE, records, second, carried) == {None: D(5)}


def test_closing_values_are_refused_for_aggregations_that_carry_nothing() -> None:
    with pytest.raises(InvalidAggregation) as caught:
        closing_values(SUM, [], MARCH)
    assert caught.value.field == "aggregation"


# --- refused input -----------------------------------------------------------------------------


@pytest.mark.parametrize("value", [1.5, True, "twelve", "NaN", [1], None])
@pytest.mark.parametrize("metric", [SUM, MAX, LATEST, GAUGE], ids=lambda m: m.aggregation)
def test_a_non_numeric_or_missing_property_is_refused_naming_it(metric: Metric, value: object) -> None:
    with pytest.raises(InvalidAggregation) as caught:
        aggregate(metric, [event(day(2), "tx-1", **{metric.property or "": value})], MARCH)
    assert caught.value.field == f"properties.{metric.property}"


def test_a_missing_numeric_property_is_refused() -> None:
    with pytest.raises(InvalidAggregation) as caught:
        aggregate(SUM, [event(day(2), "tx-1", other=1)], MARCH)
    assert caught.value.field == "properties.gb"


@pytest.mark.parametrize("value", [1.5, {"a": 1}])
def test_a_float_or_structured_value_cannot_be_grouped_filtered_or_counted(value: object) -> None:
    grouped = Metric("calls", Aggregation.COUNT, group_by="region")
    filtered = Metric("calls", Aggregation.COUNT, filters=(PropertyFilter("region", ("eu",)),))
    unique = Metric("regions", Aggregation.UNIQUE_COUNT, "region")
    for metric in (grouped, filtered, unique):
        with pytest.raises(InvalidAggregation) as caught:
            aggregate(metric, [event(day(2), region=value)], MARCH)
        assert caught.value.field == "properties.region"


@pytest.mark.parametrize(
    ("build", "field"),
    [
        (lambda: Metric("", Aggregation.COUNT), "code"),
        (lambda: Metric("m", "median"), "aggregation"),
        (lambda: Metric("m", Aggregation.COUNT, "gb"), "property"),
        (lambda: Metric("m", Aggregation.SUM), "property"),
        (lambda: Metric("m", Aggregation.SUM, "gb", filters=("region=eu",)), "filters"),
        (lambda: Metric("m", Aggregation.SUM, "gb", filters=PropertyFilter("a", ("b",))), "filters"),
        (lambda: Metric("m", Aggregation.SUM, "gb", group_by=""), "group_by"),
        (lambda: Metric("m", Aggregation.LATEST, "gb", recurring="yes"), "recurring"),
        (lambda: Metric("m", Aggregation.SUM, "gb", recurring=True), "recurring"),
        (lambda: PropertyFilter("", ("a",)), "filters.property"),
        (lambda: PropertyFilter("region", ()), "filters.values"),
        (lambda: PropertyFilter("region", "eu"), "filters.values"),
        (lambda: PropertyFilter("region", ("eu", 3)), "filters.values"),
        (lambda: UsageRecord(datetime(2025, 3, 1), {}), "timestamp"),  # noqa: DTZ001
        (lambda: UsageRecord("2025-03-01T00:00:00Z", {}), "timestamp"),
        (lambda: UsageRecord(day(1), [("gb", 1)]), "properties"),
        (lambda: UsageRecord(day(1), {}, 42), "transaction_id"),
    ],
)
def test_inconsistent_definitions_are_refused_naming_the_field(build: object, field: str) -> None:
    with pytest.raises(InvalidAggregation) as caught:
        build()  # type: ignore[operator]
    assert caught.value.field == field


def test_an_aggregation_given_as_text_is_accepted() -> None:
    metric = Metric("m", "sum", "gb", filters=[PropertyFilter("a", ["b"])])  # type: ignore[arg-type]
    assert metric.aggregation is Aggregation.SUM
    assert metric.filters == (PropertyFilter("a", ("b",)),)


def test_a_usage_record_is_stored_in_utc_with_its_own_copy_of_the_properties() -> None:
    properties = {"gb": 1}
    record = UsageRecord(datetime(2025, 3, 1, 1, tzinfo=timezone(timedelta(hours=1))), properties)
    properties["gb"] = 2
    assert record.timestamp == datetime(2025, 3, 1, tzinfo=UTC)
    assert record.timestamp.tzinfo is UTC
    assert record.properties["gb"] == 1
    with pytest.raises(TypeError):
        record.properties["gb"] = 3  # type: ignore[index]


@pytest.mark.parametrize(
    ("metric", "carry_in", "field"),
    [
        (SUM, {None: D(1)}, "carry_in"),
        (GAUGE, [(None, D(1))], "carry_in"),
        (GAUGE, {"eu": D(1)}, "carry_in['eu']"),
        (Metric("g", Aggregation.WEIGHTED_SUM, "gb", group_by="region"), {3: D(1)}, "carry_in[3]"),
        (GAUGE, {None: 1.5}, "carry_in[None]"),
    ],
)
def test_a_bad_carry_in_is_refused(metric: Metric, carry_in: object, field: str) -> None:
    with pytest.raises(InvalidAggregation) as caught:
        aggregate(metric, [], MARCH, carry_in)  # type: ignore[arg-type]
    assert caught.value.field == field


def test_an_empty_carry_in_is_fine_for_any_aggregation() -> None:
    assert aggregate(SUM, [], MARCH, {}) == {None: D(0)}


def test_records_must_be_usage_records_and_the_period_a_period() -> None:
    with pytest.raises(InvalidAggregation) as caught:
        aggregate(COUNT, [{"timestamp": day(1)}], MARCH)  # type: ignore[list-item]
    assert caught.value.field == "records"
    with pytest.raises(InvalidAggregation) as caught:
        aggregate(COUNT, [], (day(1), day(2)))  # type: ignore[arg-type]
    assert caught.value.field == "period"


def test_records_may_come_from_any_iterable_once() -> None:
    assert aggregate(COUNT, (event(day(n)) for n in range(1, 4)), MARCH) == {None: D(3)}


# --- properties --------------------------------------------------------------------------------

offsets = st.integers(min_value=-86_400, max_value=31 * 86_400)
values = st.integers(-1000, 1000).map(D) | st.decimals(-1000, 1000, places=3)


@st.composite
def record_lists(draw: st.DrawFn) -> list[UsageRecord]:
    size = draw(st.integers(0, 12))
    return [
        UsageRecord(
            MARCH.start + timedelta(seconds=draw(offsets)),
            {"value": draw(values), "region": draw(st.sampled_from(["eu", "us", None]))},
            f"tx-{index}",
        )
        for index in range(size)
    ]


@given(
    record_lists(),
    st.sampled_from(list(Aggregation)),
    st.booleans(),
    st.randoms(use_true_random=False),
)
def test_aggregation_does_not_depend_on_the_order_of_events(
    records: list[UsageRecord], aggregation: Aggregation, grouped: bool, random: object
) -> None:
    metric = Metric(
        "m",
        aggregation,
        None if aggregation is Aggregation.COUNT else "value",
        group_by="region" if grouped else None,
    )
    shuffled = list(records)
    random.shuffle(shuffled)  # type: ignore[attr-defined]
    assert aggregate(metric, shuffled, MARCH) == aggregate(metric, records, MARCH)


@given(
    st.lists(st.integers(0, 31 * 86_400 - 1), max_size=10),
    values,
    st.integers(1, 40 * 86_400),
)
def test_the_weighted_sum_of_a_constant_gauge_is_that_constant(
    seconds: list[int], value: Decimal, length: int
) -> None:
    period = Period(MARCH.start, MARCH.start + timedelta(seconds=length))
    records = [event(MARCH.start + timedelta(seconds=s), f"tx-{s}", gb=value) for s in seconds]
    assert aggregate(GAUGE, records, period, {None: value}) == {None: value}


@given(record_lists(), values)
def test_the_weighted_sum_lies_between_the_smallest_and_largest_value_held(
    records: list[UsageRecord], carried: Decimal
) -> None:
    metric = Metric("g", Aggregation.WEIGHTED_SUM, "value")
    inside = [record.properties["value"] for record in records if MARCH.contains(record.timestamp)]
    held = [carried, *inside]
    result = aggregate(metric, records, MARCH, {None: carried})[None]
    assert min(held) <= result <= max(held)  # type: ignore[type-var]


@given(record_lists(), values)
def test_the_weighted_sum_equals_the_value_integrated_second_by_second(
    records: list[UsageRecord], carried: Decimal
) -> None:
    metric = Metric("g", Aggregation.WEIGHTED_SUM, "value")
    inside = sorted(
        (record for record in records if MARCH.contains(record.timestamp)),
        key=lambda record: (record.timestamp, record.transaction_id),
    )
    total = Fraction(0)
    level = Fraction(carried)
    since = MARCH.start
    for record in inside:
        total += level * int((record.timestamp - since).total_seconds())
        level = Fraction(record.properties["value"])  # type: ignore[arg-type]
        since = record.timestamp
    total += level * int((MARCH.end - since).total_seconds())
    expected = total / int(MARCH.duration.total_seconds())
    result = aggregate(metric, records, MARCH, {None: carried})[None]
    assert abs(Fraction(result) - expected) < Fraction(1, 10**40)
