"""Writes on the ingestion hot path, in bulk and per database: monthly partitions on PostgreSQL, the
transaction-id ledger (``INSERT … ON CONFLICT DO NOTHING RETURNING``) and multi-row event inserts.

SQLite gets two aggregate functions, ``turnus_decimal_sum`` and ``turnus_decimal_max``, that add and
compare the exact decimal text it stores, so sums never pass through floating point.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from django.db import DatabaseError, connection, transaction
from django.db.backends.signals import connection_created

from turnus.engine.money import EXACT

EVENTS_TABLE = "metering_usageevent"
LEDGER_TABLE = "metering_eventtransaction"
EVENT_COLUMNS = (
    "tenant_id",
    "livemode",
    "transaction_id",
    "subscription_id",
    "metric_id",
    "timestamp",
    "value",
    "group_key",
    "distinct_key",
    "properties",
    "created_at",
)
LEDGER_COLUMNS = (
    "tenant_id",
    "livemode",
    "transaction_id",
    "content_hash",
    "subscription_id",
    "metric_id",
    "timestamp",
    "created_at",
)
#: One typed array per ledger column: PostgreSQL inserts the whole batch from them in one statement.
_LEDGER_ARRAYS = ", ".join(
    f"%s::{kind}[]"
    for kind in ("bigint", "boolean", "varchar", "varchar", "bigint", "bigint", "timestamptz", "timestamptz")
)
_INSTANT_COLUMNS = frozenset({"timestamp", "created_at"})
_DECIMAL_COLUMNS = frozenset({"value"})
#: Rows per INSERT statement, well below SQLite's and PostgreSQL's limits on bound parameters.
ROWS_PER_STATEMENT = 1000

_known_months: set[tuple[int, int]] = set()
_months_lock = threading.Lock()


def partition_name(year: int, month: int) -> str:
    return f"{EVENTS_TABLE}_y{year:04d}m{month:02d}"


def _month_bounds(year: int, month: int) -> tuple[datetime, datetime]:
    start = datetime(year, month, 1, tzinfo=UTC)
    end = datetime(year + (month == 12), month % 12 + 1, 1, tzinfo=UTC)
    return start, end


def ensure_partitions(timestamps: Iterable[datetime]) -> None:
    """Create the monthly partitions these instants fall into (PostgreSQL; remembered per process)."""
    if connection.vendor != "postgresql":
        return
    missing = {(instant.year, instant.month) for instant in timestamps} - _known_months
    for year, month in sorted(missing):
        start, end = _month_bounds(year, month)
        try:
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.execute(
                    f"CREATE TABLE IF NOT EXISTS {partition_name(year, month)} "
                    f"PARTITION OF {EVENTS_TABLE} "
                    f"FOR VALUES FROM ('{start.isoformat()}') TO ('{end.isoformat()}')"
                )
        except DatabaseError:
            # Another process created it first, or its month already lies in the DEFAULT partition;
            # either way rows for the month have a home.
            pass
        with _months_lock:
            _known_months.add((year, month))


def forget_partitions() -> None:
    """Forget which partitions exist (tests that recreate the database)."""
    with _months_lock:
        _known_months.clear()


def _placeholders(width: int, rows: int, *, json_column: int | None = None) -> str:
    cells = ["%s"] * width
    if json_column is not None and connection.vendor == "postgresql":
        cells[json_column] = "%s::jsonb"
    row = "(" + ", ".join(cells) + ")"
    return ", ".join([row] * rows)


def _chunks(rows: Sequence[tuple[Any, ...]]) -> Iterable[Sequence[tuple[Any, ...]]]:
    for start in range(0, len(rows), ROWS_PER_STATEMENT):
        yield rows[start : start + ROWS_PER_STATEMENT]


def claim_transaction_ids(rows: Sequence[tuple[Any, ...]]) -> set[str]:
    """Insert ledger rows (``LEDGER_COLUMNS``); returns the transaction ids that were new.

    The unique constraint decides: a row whose id exists already is skipped, on either database, and
    under concurrency the second writer waits for the first and then skips.
    """
    claimed: set[str] = set()
    columns = ", ".join(LEDGER_COLUMNS)
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql" and rows:
            cursor.execute(
                f"INSERT INTO {LEDGER_TABLE} ({columns}) SELECT * FROM unnest({_LEDGER_ARRAYS}) "  # noqa: S608
                "ON CONFLICT (tenant_id, livemode, transaction_id) DO NOTHING RETURNING transaction_id",
                [list(column) for column in zip(*rows, strict=True)],
            )
            return {row[0] for row in cursor.fetchall()}
        for chunk in _chunks(rows):
            cursor.execute(
                f"INSERT INTO {LEDGER_TABLE} ({columns}) "  # noqa: S608
                f"VALUES {_placeholders(len(LEDGER_COLUMNS), len(chunk))} "
                "ON CONFLICT (tenant_id, livemode, transaction_id) DO NOTHING RETURNING transaction_id",
                _cells(chunk, LEDGER_COLUMNS),
            )
            claimed.update(row[0] for row in cursor.fetchall())
    return claimed


def existing_hashes(tenant_id: int, livemode: bool, transaction_ids: Sequence[str]) -> dict[str, str]:
    found: dict[str, str] = {}
    with connection.cursor() as cursor:
        for start in range(0, len(transaction_ids), ROWS_PER_STATEMENT):
            chunk = transaction_ids[start : start + ROWS_PER_STATEMENT]
            cursor.execute(
                f"SELECT transaction_id, content_hash FROM {LEDGER_TABLE} "  # noqa: S608
                "WHERE tenant_id = %s AND livemode = %s "
                f"AND transaction_id IN ({', '.join(['%s'] * len(chunk))})",
                [tenant_id, livemode, *chunk],
            )
            found.update(cursor.fetchall())
    return found


def insert_events(rows: Sequence[tuple[Any, ...]]) -> None:
    """Insert event rows (``EVENT_COLUMNS``; ``value`` a Decimal or None, ``properties`` JSON text)."""
    if not rows:
        return
    if connection.vendor == "postgresql":
        _copy_events(rows)
        return
    columns = ", ".join(EVENT_COLUMNS)
    with connection.cursor() as cursor:
        for chunk in _chunks(rows):
            cursor.execute(
                f"INSERT INTO {EVENTS_TABLE} ({columns}) "  # noqa: S608
                f"VALUES {_placeholders(len(EVENT_COLUMNS), len(chunk))}",
                _cells(chunk, EVENT_COLUMNS),
            )


def _cells(rows: Sequence[tuple[Any, ...]], columns: tuple[str, ...]) -> list[Any]:
    if connection.vendor == "postgresql":
        return [value for row in rows for value in row]
    adapt = connection.ops.adapt_datetimefield_value
    adapted: dict[datetime, Any] = {}
    instants = [index for index, name in enumerate(columns) if name in _INSTANT_COLUMNS]
    decimals = [index for index, name in enumerate(columns) if name in _DECIMAL_COLUMNS]
    cells: list[Any] = []
    for row in rows:
        values = list(row)
        for index in instants:
            instant = values[index]
            if instant not in adapted:
                adapted[instant] = adapt(instant)
            values[index] = adapted[instant]
        for index in decimals:
            if values[index] is not None:
                values[index] = format(values[index], "f")
        cells.extend(values)
    return cells


def _copy_events(rows: Sequence[tuple[Any, ...]]) -> None:
    columns = ", ".join(EVENT_COLUMNS)
    with connection.cursor() as cursor:
        raw = cursor.cursor
        with raw.copy(f"COPY {EVENTS_TABLE} ({columns}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)


class _DecimalSum:
    def __init__(self) -> None:
        self.total: Decimal | None = None

    def step(self, value: Any) -> None:
        if value is not None:
            number = Decimal(value) if isinstance(value, str) else Decimal(str(value))
            self.total = number if self.total is None else EXACT.add(self.total, number)

    def finalize(self) -> str | None:
        return None if self.total is None else format(self.total, "f")


class _DecimalMax:
    def __init__(self) -> None:
        self.best: Decimal | None = None

    def step(self, value: Any) -> None:
        if value is not None:
            number = Decimal(value) if isinstance(value, str) else Decimal(str(value))
            if self.best is None or number > self.best:
                self.best = number

    def finalize(self) -> str | None:
        return None if self.best is None else format(self.best, "f")


def _register(sender: Any, connection: Any, **kwargs: Any) -> None:
    if connection.vendor == "sqlite":
        raw = connection.connection
        raw.create_aggregate("turnus_decimal_sum", 1, _DecimalSum)
        raw.create_aggregate("turnus_decimal_max", 1, _DecimalMax)


def install_sqlite_functions() -> None:
    connection_created.connect(_register, dispatch_uid="turnus.metering.sqlite_functions")
