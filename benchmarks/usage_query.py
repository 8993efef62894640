"""Live usage latency: GET /v1/subscriptions/{id}/usage over 10 million events on PostgreSQL.

Creates a dedicated database, serves Turnus with granian, makes a plan with two metered charges (a sum
grouped by model, and a count) and one subscription through the API, backdates it 20 days, clones it
into 10,000 subscriptions and generates 10 million events across them in SQL (``generate_series``, all
in the current period, so each subscription holds about 1,000 events). Then asks the live usage of one
subscription over and over and prints p50/p99. Target: p99 < 20 ms.

    .venv/bin/python benchmarks/usage_query.py [--events 10000000] [--subscriptions 10000]
        [--requests 1000] [--database URL]
"""

from __future__ import annotations

import argparse
import http.client
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg

from _serving import Result, request_json, server_env, serving, turnus

DEFAULT_DATABASE = "postgresql://postgres@127.0.0.1:5432/turnus_bench_usage"
BACKDATE_DAYS = 20
SHIFTED = (
    "started_at",
    "as_of",
    "current_period_start",
    "current_period_end",
    "proration_basis_start",
    "proration_basis_end",
    "segment_start",
    "next_event_at",
)


def fresh_postgres(url: str) -> None:
    base, _, name = url.rpartition("/")
    with psycopg.connect(f"{base}/postgres", autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        connection.execute(f'CREATE DATABASE "{name}"')


def _post(connection: http.client.HTTPConnection, headers: dict[str, str], path: str, body: dict) -> str:
    status, created = request_json(connection, "POST", path, body, headers)
    assert status == 201, (path, created)
    assert isinstance(created, dict)
    return str(created["id"])


def create_subscription(port: int, key: str) -> str:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    headers = {"Authorization": f"Bearer {key}"}
    tokens = _post(
        connection,
        headers,
        "/v1/billable_metrics",
        {
            "code": "tokens",
            "name_en": "Tokens",
            "aggregation": "sum",
            "property": "tokens",
            "group_by": "model",
        },
    )
    calls = _post(
        connection,
        headers,
        "/v1/billable_metrics",
        {"code": "calls", "name_en": "Calls", "aggregation": "count"},
    )
    product = _post(connection, headers, "/v1/products", {"name_en": "LLM API"})
    plan = _post(
        connection,
        headers,
        "/v1/plans",
        {
            "code": "llm",
            "product": product,
            "name_en": "LLM",
            "currency": "EUR",
            "interval": {"unit": "month"},
            "charges": [
                {
                    "code": "base",
                    "name_en": "Base",
                    "kind": "recurring",
                    "price": {"model": "flat", "amount": "10"},
                },
                {
                    "code": "tokens",
                    "name_en": "Tokens",
                    "kind": "metered",
                    "metric": tokens,
                    "price": {
                        "model": "graduated",
                        "tiers": [
                            {"up_to": "100000", "unit_price": "0.00002"},
                            {"up_to": None, "unit_price": "0.00001"},
                        ],
                    },
                },
                {
                    "code": "calls",
                    "name_en": "Calls",
                    "kind": "metered",
                    "metric": calls,
                    "price": {"model": "per_unit", "unit_price": "0.001"},
                },
            ],
        },
    )
    customer = _post(
        connection,
        headers,
        "/v1/customers",
        {"name": "Bench", "email": "bench@example.com", "address_line1": "Weg 1", "postal_code": "10115",
         "city": "Berlin", "country": "DE"},
    )  # fmt: skip
    return _post(connection, headers, "/v1/subscriptions", {"customer": customer, "plan": plan})


def generate(database: str, subscription: str, subscriptions: int, events: int) -> None:
    shift = ", ".join(f"{name} = {name} - interval '{BACKDATE_DAYS} days'" for name in SHIFTED)
    with psycopg.connect(database, autocommit=True) as connection:
        connection.execute(
            f"UPDATE subscriptions_subscription SET {shift}, "  # noqa: S608
            f"billing_anchor = billing_anchor - {BACKDATE_DAYS} WHERE public_id = %s",
            [subscription],
        )
        columns = [
            row[0]
            for row in connection.execute(
                "SELECT column_name FROM information_schema.columns "
                "WHERE table_name = 'subscriptions_subscription' AND column_name NOT IN ('id', 'public_id')"
            )
        ]
        listed = ", ".join(columns)
        connection.execute(
            f"INSERT INTO subscriptions_subscription (public_id, {listed}) "  # noqa: S608
            f"SELECT 'sub_bench' || lpad(g::text, 17, '0'), {listed} FROM subscriptions_subscription, "
            "generate_series(1, %s) AS g WHERE public_id = %s",
            [subscriptions - 1, subscription],
        )
        row = connection.execute(
            "SELECT s.tenant_id, array_agg(s.id ORDER BY s.id) FROM subscriptions_subscription s "
            "WHERE s.plan_id = (SELECT plan_id FROM subscriptions_subscription WHERE public_id = %s) "
            "GROUP BY s.tenant_id",
            [subscription],
        ).fetchone()
        assert row is not None
        tenant_id, ids = row
        metrics = dict(
            connection.execute(
                "SELECT code, id FROM catalog_billablemetric WHERE tenant_id = %s", [tenant_id]
            )
        )
        now = datetime.now(UTC)
        month = datetime(now.year, now.month, 1, tzinfo=UTC) - timedelta(days=40)
        for _ in range(4):
            start = datetime(month.year, month.month, 1, tzinfo=UTC)
            end = (start + timedelta(days=32)).replace(day=1)
            connection.execute(
                f"CREATE TABLE IF NOT EXISTS metering_usageevent_y{start.year:04d}m{start.month:02d} "
                "PARTITION OF metering_usageevent "
                f"FOR VALUES FROM ('{start.isoformat()}') TO ('{end.isoformat()}')"
            )
            month = end
        connection.execute("SET synchronous_commit = off")
        chunk = 1_000_000
        started = time.monotonic()
        for first in range(0, events, chunk):
            last = min(events, first + chunk)
            connection.execute(
                """
                INSERT INTO metering_usageevent (tenant_id, livemode, transaction_id, subscription_id,
                    metric_id, "timestamp", value, group_key, distinct_key, properties, created_at)
                SELECT %(tenant)s, false, 'tx-' || g, (%(ids)s::bigint[])[1 + g %% %(count)s],
                    CASE WHEN (g / %(count)s) %% 2 = 0 THEN %(tokens)s ELSE %(calls)s END,
                    %(now)s - make_interval(secs => (g * 7919) %% %(span)s),
                    CASE WHEN (g / %(count)s) %% 2 = 0 THEN ((g / %(count)s) %% 1000) + 1 END,
                    CASE WHEN (g / %(count)s) %% 2 = 0 THEN 'model-' || ((g / %(count)s) %% 3) END,
                    NULL,
                    CASE WHEN (g / %(count)s) %% 2 = 0
                        THEN jsonb_build_object('tokens', ((g / %(count)s) %% 1000) + 1,
                            'model', 'model-' || ((g / %(count)s) %% 3))
                        ELSE '{}'::jsonb END,
                    %(now)s
                FROM generate_series(%(first)s::bigint, %(last)s::bigint) AS g
                """,
                {
                    "tenant": tenant_id,
                    "ids": ids,
                    "count": len(ids),
                    "tokens": metrics["tokens"],
                    "calls": metrics["calls"],
                    "now": now - timedelta(minutes=1),
                    "span": (BACKDATE_DAYS - 1) * 86400,
                    "first": first + 1,
                    "last": last,
                },
            )
            print(f"  {last:,} events generated ({time.monotonic() - started:.0f} s)", flush=True)
        connection.execute("VACUUM ANALYZE metering_usageevent")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--subscriptions", type=int, default=10_000)
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument(
        "--database", default=DEFAULT_DATABASE, help="PostgreSQL URL of a database to recreate"
    )
    args = parser.parse_args()
    fresh_postgres(args.database)
    with tempfile.TemporaryDirectory() as var:
        env = server_env(args.database, Path(var))
        turnus("migrate", "--no-input", "-v", "0", env=env)
        printed = turnus("demo", "load", env=env)
        key = next(word for word in printed.split() if word.startswith("sk_test_"))
        with serving(env, workers=1) as port:
            subscription = create_subscription(port, key)
        print(f"generating {args.events:,} events across {args.subscriptions:,} subscriptions")
        generate(args.database, subscription, args.subscriptions, args.events)
        with serving(env, workers=1) as port:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            headers = {"Authorization": f"Bearer {key}"}
            path = f"/v1/subscriptions/{subscription}/usage"
            status, body = request_json(connection, "GET", path, None, headers)
            assert status == 200, body
            print(f"usage of {subscription}: {body}")
            for _ in range(50):
                request_json(connection, "GET", path, None, headers)
            latencies = []
            statuses: dict[int, int] = {}
            started = time.monotonic()
            for _ in range(args.requests):
                began = time.perf_counter()
                status, _ = request_json(connection, "GET", path, None, headers)
                latencies.append(time.perf_counter() - began)
                statuses[status] = statuses.get(status, 0) + 1
            result = Result(latencies, statuses, time.monotonic() - started)
    print(f"database: PostgreSQL; {args.events:,} events, {args.subscriptions:,} subscriptions")
    print(result.report(f"GET {path} (one connection, sequential)"))
    print("target: p99 < 20 ms")


if __name__ == "__main__":
    main()
