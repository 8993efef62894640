"""What exactly-once costs on the ingestion hot path: the transaction-id ledger against the event insert.

Ingests batches of 500 events in-process through the metering service on a fresh database and times the
ledger write (``INSERT … ON CONFLICT DO NOTHING RETURNING`` on the unpartitioned ledger) and the event
write (COPY into the partitioned table on PostgreSQL, multi-row INSERT on SQLite) inside each batch.

    .venv/bin/python benchmarks/ledger_cost.py [--database sqlite|postgres] [--batches 100]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

DEFAULT_POSTGRES = "postgresql://postgres@127.0.0.1:5432/turnus_bench_ledger"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--database", choices=("sqlite", "postgres"), default="postgres")
    parser.add_argument("--postgres", default=DEFAULT_POSTGRES)
    parser.add_argument("--batches", type=int, default=100)
    args = parser.parse_args()

    var = Path(tempfile.mkdtemp())
    if args.database == "postgres":
        import psycopg

        base, _, name = args.postgres.rpartition("/")
        with psycopg.connect(f"{base}/postgres", autocommit=True) as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            connection.execute(f'CREATE DATABASE "{name}"')
        os.environ["TURNUS_DATABASE_URL"] = args.postgres
    else:
        os.environ["TURNUS_DATABASE_URL"] = f"sqlite:///{var / 'ledger.sqlite3'}"
    os.environ["TURNUS_VAR_DIR"] = str(var)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "turnus.project.settings")

    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    from turnus.apps.demo.loader import load_demo
    from turnus.apps.metering import services, store
    from turnus.apps.subscriptions.models import Subscription
    from turnus.core.scope import Actor, ActorKind, Scope

    access = load_demo()
    scope = Scope(access.tenant.pk, False, Actor(ActorKind.CLI, "ledger benchmark"))
    subscription = Subscription.objects.get(tenant=access.tenant, plan__code="business").public_id

    spent: dict[str, float] = {"ledger": 0.0, "events": 0.0}

    def timed(name: str, function: Callable[..., Any]) -> Callable[..., Any]:
        def wrapper(*call_args: Any, **call_kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return function(*call_args, **call_kwargs)
            finally:
                spent[name] += time.perf_counter() - started

        return wrapper

    store.claim_transaction_ids = timed("ledger", store.claim_transaction_ids)  # type: ignore[method-assign]
    store.insert_events = timed("events", store.insert_events)  # type: ignore[method-assign]

    def batch(number: int) -> list[dict[str, Any]]:
        return [
            {
                "transaction_id": f"tx-{number}-{index}",
                "subscription": subscription,
                "metric": "api_calls",
                "properties": {"calls": index + 1},
            }
            for index in range(500)
        ]

    services.ingest(scope, batch(-1))
    spent.update(ledger=0.0, events=0.0)
    started = time.perf_counter()
    for number in range(args.batches):
        results = services.ingest(scope, batch(number))
        assert all(result.status == "created" for result in results), results[0]
    total = time.perf_counter() - started

    per_batch = total / args.batches * 1000
    ledger = spent["ledger"] / args.batches * 1000
    events = spent["events"] / args.batches * 1000
    print(f"database: {args.database}; {args.batches} batches of 500 events, in-process, one core")
    print(f"  whole batch: {per_batch:.1f} ms ({500 / per_batch * 1000:,.0f} events/s)")
    print(f"  ledger write: {ledger:.1f} ms per batch ({ledger / per_batch:.0%} of the batch)")
    print(f"  event write:  {events:.1f} ms per batch ({events / per_batch:.0%} of the batch)")


if __name__ == "__main__":
    main()
