"""Every aggregation in SQL agrees with the engine's pure ``aggregate`` on the same random events."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.apps.metering.support import START, metered_subscription
from turnus.apps.catalog.models import BillableMetric
from turnus.apps.metering import queries, services
from turnus.apps.metering.models import EventVoid
from turnus.apps.subscriptions.models import Subscription
from turnus.core.clock import FrozenClock, use_clock
from turnus.core.scope import Actor, ActorKind, Scope
from turnus.engine.aggregation import UsageRecord, aggregate, closing_values
from turnus.engine.periods import Period

pytestmark = pytest.mark.django_db

REGION_FILTER = [{"property": "region", "values": ["eu", "true"]}]
METRICS = {
    "calls": {"aggregation": "count"},
    "calls_eu": {"aggregation": "count", "filters": REGION_FILTER, "group_by": "model"},
    "tokens": {"aggregation": "sum", "property": "tokens"},
    "tokens_by_model": {
        "aggregation": "sum",
        "property": "tokens",
        "group_by": "model",
        "filters": REGION_FILTER,
    },
    "peak": {"aggregation": "max", "property": "tokens", "group_by": "model"},
    "users": {"aggregation": "unique_count", "property": "user"},
    "users_by_model": {"aggregation": "unique_count", "property": "user", "group_by": "model"},
    "seats": {"aggregation": "latest", "property": "tokens"},
    "seats_by_model": {"aggregation": "latest", "property": "tokens", "group_by": "model", "recurring": True},
    "storage": {"aggregation": "weighted_sum", "property": "tokens"},
    "storage_by_model": {
        "aggregation": "weighted_sum",
        "property": "tokens",
        "group_by": "model",
        "recurring": True,
    },
}
HOURS = 24 * 40

amounts = st.one_of(
    st.integers(min_value=0, max_value=10**6),
    st.decimals(min_value=0, max_value=10**6, places=3, allow_nan=False, allow_infinity=False),
    st.integers(min_value=0, max_value=999).map(str),
)
optional = st.none()
event_properties = st.fixed_dictionaries(
    {"tokens": amounts},
    optional={
        "model": st.sampled_from(["a", "b", "ß", 7, True]),
        "region": st.sampled_from(["eu", "us", True, False, 3]),
        "user": st.sampled_from(["u1", "u2", "u3", 1, 2, False]),
    },
)
events = st.lists(
    st.tuples(
        st.sampled_from(sorted(METRICS)),
        st.integers(min_value=0, max_value=HOURS),
        st.integers(min_value=0, max_value=2).map(lambda seconds: seconds * 1800),
        event_properties,
        st.booleans(),
    ),
    max_size=40,
)
periods = st.tuples(st.integers(min_value=0, max_value=HOURS), st.integers(min_value=1, max_value=HOURS))


@pytest.fixture
def metered(api):
    with use_clock(FrozenClock(START)) as clock:
        found = metered_subscription(api, METRICS)
        clock.set(START + timedelta(hours=HOURS + 1))
        yield found, clock


def _engine_value(metric: BillableMetric, records: list[UsageRecord], period: Period):
    engine_metric = metric.engine_metric()
    carry_in = None
    earliest = min((record.timestamp for record in records), default=period.start)
    if metric.recurring and earliest < period.start:
        carry_in = closing_values(engine_metric, records, Period(earliest, period.start))
    return aggregate(engine_metric, records, period, carry_in)


@settings(max_examples=25, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(batch=events, bounds=periods)
def test_every_aggregation_in_sql_equals_the_engines_on_the_same_events(metered, batch, bounds):
    found, clock = metered
    scope = Scope(found.api.tenant.pk, False, Actor(ActorKind.SYSTEM, "tests"))
    subscription = Subscription.objects.get(public_id=found.subscription)
    start = START + timedelta(hours=bounds[0])
    period = Period(start, start + timedelta(hours=bounds[1]))
    with use_clock(clock), transaction.atomic():
        raw = [
            {
                "transaction_id": f"tx-{index:03d}",
                "subscription": found.subscription,
                "metric": code,
                "timestamp": (START + timedelta(hours=hour, seconds=seconds)).isoformat(),
                "properties": properties,
            }
            for index, (code, hour, seconds, properties, _) in enumerate(batch)
        ]
        results = services.ingest(scope, raw) if raw else []
        assert all(result.status == "created" for result in results), [r.error for r in results if r.error]
        for index, (_, _, _, _, void) in enumerate(batch):
            if void:
                services.void_event(scope, f"tx-{index:03d}")
        voided = set(EventVoid.objects.values_list("transaction_id", flat=True))
        for metric in BillableMetric.objects.filter(tenant=found.api.tenant):
            records = [
                UsageRecord(START + timedelta(hours=hour, seconds=seconds), properties, f"tx-{index:03d}")
                for index, (code, hour, seconds, properties, _) in enumerate(batch)
                if code == metric.code and f"tx-{index:03d}" not in voided
            ]
            in_sql = queries.aggregate_usage(
                scope,
                subscription.pk,
                metric,
                period,
                voided=queries.voided_transactions(scope, subscription.pk, period.end).get(metric.pk, ()),
            )
            assert in_sql == _engine_value(metric, records, period), metric.code
        transaction.set_rollback(True)


def test_a_sum_of_many_decimals_stays_exact(metered):
    found, clock = metered
    scope = Scope(found.api.tenant.pk, False, Actor(ActorKind.SYSTEM, "tests"))
    subscription = Subscription.objects.get(public_id=found.subscription)
    with use_clock(clock):
        services.ingest(
            scope,
            [
                {
                    "transaction_id": f"tx-{n}",
                    "subscription": found.subscription,
                    "metric": "tokens",
                    "timestamp": (START + timedelta(hours=1)).isoformat(),
                    "properties": {
                        "tokens": Decimal("0.000000000001") if n % 2 else Decimal("123456789012.1")
                    },
                }
                for n in range(100)
            ],
        )
    metric = BillableMetric.objects.get(tenant=found.api.tenant, code="tokens")
    period = Period(START, START + timedelta(days=30))
    assert queries.aggregate_usage(scope, subscription.pk, metric, period) == {
        None: Decimal("6172839450605.000000000050")
    }
