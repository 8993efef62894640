"""API latency under load: GET /v1/subscriptions/{id} and POST /v1/customers against a production server.

Serves Turnus with granian (2 workers) on PostgreSQL, loads the demo merchant, then drives a mix of three
subscription reads to one customer creation from a second process for 30 s over keep-alive connections.
Prints requests per second and p50/p99 latency. Target: >= 1,000 req/s and p99 < 50 ms.

    .venv/bin/python benchmarks/api_latency.py [--seconds 30] [--connections 8] [--threads 2] [--database URL]
"""

from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing
import tempfile
import threading
import time
from pathlib import Path

import psycopg

from _serving import RawConnection, Result, raw_request, request_json, server_env, serving, turnus

DEFAULT_DATABASE = "postgresql://postgres@127.0.0.1:5432/turnus_bench"


def fresh_postgres(url: str) -> None:
    base, _, name = url.rpartition("/")
    with psycopg.connect(f"{base}/postgres", autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        connection.execute(f'CREATE DATABASE "{name}"')


def drive(
    port: int,
    key: str,
    subscription_ids: list[str],
    seconds: float,
    worker: int,
    threads: int,
    out: multiprocessing.Queue,
) -> None:
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    lock = threading.Lock()
    deadline = time.monotonic() + seconds

    def loop(thread: int) -> None:
        connection = RawConnection(port)
        headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
        reads = [raw_request("GET", f"/v1/subscriptions/{sub}", headers) for sub in subscription_ids]
        mine: list[float] = []
        counts: dict[int, int] = {}
        n = 0
        while time.monotonic() < deadline:
            started = time.perf_counter()
            if n % 4 == 3:
                body = {
                    "name": f"Load {worker}-{thread}-{n}",
                    "email": f"load{worker}.{thread}.{n}@example.com",
                    "address_line1": "Weg 1",
                    "postal_code": "10115",
                    "city": "Berlin",
                    "country": "DE",
                }
                raw = raw_request("POST", "/v1/customers", headers, json.dumps(body).encode())
            else:
                raw = reads[n % len(reads)]
            status, _ = connection.request(raw)
            mine.append(time.perf_counter() - started)
            counts[status] = counts.get(status, 0) + 1
            n += 1
        connection.close()
        with lock:
            latencies.extend(mine)
            for status, count in counts.items():
                statuses[status] = statuses.get(status, 0) + count

    runners = [threading.Thread(target=loop, args=(index,)) for index in range(threads)]
    for runner in runners:
        runner.start()
    for runner in runners:
        runner.join()
    out.put((latencies, statuses))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--connections", type=int, default=8, help="keep-alive connections in all")
    parser.add_argument("--database", default=DEFAULT_DATABASE, help="PostgreSQL URL or sqlite:///path")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2, help="granian blocking threads per worker")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as var:
        database = args.database
        if database.startswith("postgres"):
            fresh_postgres(database)
        env = server_env(database, Path(var))
        turnus("migrate", "--no-input", "-v", "0", env=env)
        printed = turnus("demo", "load", env=env)
        key = next(word for word in printed.split() if word.startswith("sk_test_"))
        with serving(env, workers=args.workers, threads=args.threads) as port:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            _, listing = request_json(
                connection, "GET", "/v1/subscriptions", None, {"Authorization": f"Bearer {key}"}
            )
            assert isinstance(listing, dict)
            ids = [item["id"] for item in listing["data"]]
            for _ in range(200):
                request_json(
                    connection, "GET", f"/v1/subscriptions/{ids[0]}", None, {"Authorization": f"Bearer {key}"}
                )
            processes = 2
            queue: multiprocessing.Queue = multiprocessing.Queue()
            shares = [
                args.connections // processes + (index < args.connections % processes)
                for index in range(processes)
            ]
            workers = [
                multiprocessing.Process(
                    target=drive, args=(port, key, ids, args.seconds, index, share, queue)
                )
                for index, share in enumerate(shares)
            ]
            started = time.monotonic()
            for process in workers:
                process.start()
            time.sleep(0.5)
            results = [queue.get() for _ in workers]
            for process in workers:
                process.join()
            elapsed = time.monotonic() - started
        latencies = [value for part, _ in results for value in part]
        statuses: dict[int, int] = {}
        for _, part in results:
            for status, count in part.items():
                statuses[status] = statuses.get(status, 0) + count
        result = Result(
            latencies, statuses, min(elapsed, args.seconds) if elapsed > args.seconds else elapsed
        )
        kind = "PostgreSQL" if database.startswith("postgres") else "SQLite"
        print(
            f"database: {kind}; server: granian, {args.workers} workers x {args.threads} threads; "
            f"{args.connections} connections"
        )
        print(result.report("GET /v1/subscriptions/{id} x3 + POST /v1/customers x1"))
        print("target: >= 1,000 req/s and p99 < 50 ms")


if __name__ == "__main__":
    main()
