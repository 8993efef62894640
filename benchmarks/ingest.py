"""Usage ingestion throughput: POST /v1/events/batch against a production server, nothing lost.

Serves Turnus with granian on a fresh database, creates a metered plan and subscriptions through the API,
then sends batches of 500 events from a second process for 60 s over keep-alive connections. Afterwards it
counts the stored events and checks that they equal the events the server accepted. Prints events per
second and the p50/p99 batch latency, for SQLite and for PostgreSQL. Target: >= 25,000 events/s.

    .venv/bin/python benchmarks/ingest.py [--seconds 60] [--batch 500] [--connections 4]
        [--database sqlite|postgres|both] [--postgres URL]
"""

from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing
import sqlite3
import tempfile
import threading
import time
from pathlib import Path

import psycopg

from _serving import Result, request_json, server_env, serving, turnus

DEFAULT_POSTGRES = "postgresql://postgres@127.0.0.1:5432/turnus_bench_ingest"
SUBSCRIPTIONS = 50


def fresh_postgres(url: str) -> None:
    base, _, name = url.rpartition("/")
    with psycopg.connect(f"{base}/postgres", autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        connection.execute(f'CREATE DATABASE "{name}"')


def _created(status: int, body: object) -> str:
    assert status == 201, (status, body)
    assert isinstance(body, dict)
    return str(body["id"])


def setup_catalogue(port: int, key: str) -> list[str]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    headers = {"Authorization": f"Bearer {key}"}

    def post(path: str, body: dict[str, object]) -> str:
        return _created(*request_json(connection, "POST", path, body, headers))

    metric = post(
        "/v1/billable_metrics",
        {
            "code": "tokens",
            "name_en": "Tokens",
            "aggregation": "sum",
            "property": "tokens",
            "group_by": "model",
        },
    )
    product = post("/v1/products", {"name_en": "LLM API", "name_de": "LLM-API"})
    plan = post(
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
                    "metric": metric,
                    "price": {"model": "per_unit", "unit_price": "0.00002"},
                },
            ],
        },
    )
    subscriptions = []
    for number in range(SUBSCRIPTIONS):
        customer = post(
            "/v1/customers",
            {
                "name": f"Bench {number}",
                "email": f"bench{number}@example.com",
                "address_line1": "Weg 1",
                "postal_code": "10115",
                "city": "Berlin",
                "country": "DE",
            },
        )
        subscriptions.append(post("/v1/subscriptions", {"customer": customer, "plan": plan}))
    return subscriptions


def _batch_body(prefix: str, number: int, size: int, subscriptions: list[str]) -> bytes:
    events = ",".join(
        f'{{"transaction_id":"{prefix}-{number}-{index}",'
        f'"subscription":"{subscriptions[(number + index) % len(subscriptions)]}","metric":"tokens",'
        f'"properties":{{"tokens":{index + 1},"model":"m{index % 4}"}}}}'
        for index in range(size)
    )
    return ('{"events":[' + events + "]}").encode()


def drive(
    port: int,
    key: str,
    subscriptions: list[str],
    seconds: float,
    batch: int,
    worker: int,
    threads: int,
    out: multiprocessing.Queue,
) -> None:
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    accepted = [0]
    lock = threading.Lock()
    deadline = time.monotonic() + seconds

    def loop(thread: int) -> None:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
        mine: list[float] = []
        counts: dict[int, int] = {}
        created = 0
        number = 0
        while time.monotonic() < deadline:
            body = _batch_body(f"w{worker}t{thread}", number, batch, subscriptions)
            started = time.perf_counter()
            connection.request("POST", "/v1/events/batch", body=body, headers=headers)
            response = connection.getresponse()
            data = response.read()
            mine.append(time.perf_counter() - started)
            counts[response.status] = counts.get(response.status, 0) + 1
            if response.status == 200:
                created += int(json.loads(data)["created"])
            number += 1
        with lock:
            latencies.extend(mine)
            accepted[0] += created
            for status, count in counts.items():
                statuses[status] = statuses.get(status, 0) + count

    runners = [threading.Thread(target=loop, args=(index,)) for index in range(threads)]
    for runner in runners:
        runner.start()
    for runner in runners:
        runner.join()
    out.put((latencies, statuses, accepted[0]))


def stored_events(database: str) -> int:
    if database.startswith("postgres"):
        with psycopg.connect(database) as connection:
            row = connection.execute("SELECT count(*) FROM metering_usageevent").fetchone()
    else:
        with sqlite3.connect(database.removeprefix("sqlite:///")) as connection:
            row = connection.execute("SELECT count(*) FROM metering_usageevent").fetchone()
    assert row is not None
    return int(row[0])


def run(database: str, args: argparse.Namespace, var: Path) -> None:
    if database.startswith("postgres"):
        fresh_postgres(database)
    env = server_env(database, var)
    turnus("migrate", "--no-input", "-v", "0", env=env)
    printed = turnus("demo", "load", env=env)
    key = next(word for word in printed.split() if word.startswith("sk_test_"))
    with serving(env, workers=args.workers, threads=args.threads) as port:
        subscriptions = setup_catalogue(port, key)
        warm = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
        for number in range(4):
            warm.request(
                "POST",
                "/v1/events/batch",
                body=_batch_body("warm", number, 50, subscriptions),
                headers=headers,
            )
            warm.getresponse().read()
        processes = 2 if args.connections > 1 else 1
        shares = [
            args.connections // processes + (i < args.connections % processes) for i in range(processes)
        ]
        queue: multiprocessing.Queue = multiprocessing.Queue()
        workers = [
            multiprocessing.Process(
                target=drive, args=(port, key, subscriptions, args.seconds, args.batch, index, share, queue)
            )
            for index, share in enumerate(shares)
        ]
        started = time.monotonic()
        for process in workers:
            process.start()
        results = [queue.get() for _ in workers]
        for process in workers:
            process.join()
        elapsed = time.monotonic() - started
    latencies = [value for part, _, _ in results for value in part]
    statuses: dict[int, int] = {}
    for _, part, _ in results:
        for status, count in part.items():
            statuses[status] = statuses.get(status, 0) + count
    accepted = sum(count for _, _, count in results) + 4 * 50
    stored = stored_events(database)
    result = Result(latencies, statuses, elapsed)
    kind = "PostgreSQL" if database.startswith("postgres") else "SQLite"
    print(f"database: {kind}; server: granian, {args.workers} workers x {args.threads} threads; "
          f"{args.connections} connections; batches of {args.batch}")  # fmt: skip
    sent = accepted - 200
    print(f"  {sent:,} events accepted in {elapsed:.1f} s = {sent / elapsed:,.0f} events/s")
    print(
        f"  batch latency p50 {result.percentile(0.5):.0f} ms, p99 {result.percentile(0.99):.0f} ms; "
        f"statuses {statuses}"
    )
    verdict = "nothing lost" if stored == accepted else f"MISMATCH: {stored:,} stored"
    print(f"  stored events: {stored:,}, accepted: {accepted:,}: {verdict}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--connections", type=int, default=4, help="keep-alive connections in all")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--database", choices=("sqlite", "postgres", "both"), default="both")
    parser.add_argument(
        "--postgres", default=DEFAULT_POSTGRES, help="PostgreSQL URL of a database to recreate"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as var:
        if args.database in ("sqlite", "both"):
            run(f"sqlite:///{Path(var) / 'ingest.sqlite3'}", args, Path(var))
        if args.database in ("postgres", "both"):
            run(args.postgres, args, Path(var))
    print("target: >= 25,000 events/s sustained, nothing lost")


if __name__ == "__main__":
    main()
