"""PostgreSQL sessions in UTC load instants with psycopg's compiled loader and the same values as Django."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from django.db import connection
from django.db.backends.postgresql.psycopg_any import BaseTzLoader

INSTANTS = (
    datetime(1969, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
    datetime(2026, 3, 1, 9, 30, 15, 123456, tzinfo=UTC),
    datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC),
)


def _loaded(cursor_factory) -> list[datetime]:
    with cursor_factory() as cursor:
        cursor.execute(
            "SELECT v FROM unnest(%s::timestamptz[]) WITH ORDINALITY AS t(v, n) ORDER BY n", [list(INSTANTS)]
        )
        return [row[0] for row in cursor.fetchall()]


@pytest.mark.django_db
def test_instants_load_as_django_loads_them():
    if connection.vendor != "postgresql":
        pytest.skip("a PostgreSQL driver setting")
    from psycopg.postgres import types
    from psycopg.pq import Format

    connection.ensure_connection()
    adapters = connection.connection.adapters
    ours = adapters.get_loader(types["timestamptz"].oid, Format.TEXT)
    assert not issubclass(ours, BaseTzLoader)
    assert ours.timezone is UTC
    fast = _loaded(connection.cursor)
    assert fast == list(INSTANTS)
    assert all(value.tzinfo is UTC for value in fast)
    # Django's own loader, for comparison.
    from django.db.backends.postgresql.psycopg_any import register_tzloader

    with connection.cursor() as cursor:
        register_tzloader(UTC, cursor.cursor)
        cursor.execute(
            "SELECT v FROM unnest(%s::timestamptz[]) WITH ORDINALITY AS t(v, n) ORDER BY n", [list(INSTANTS)]
        )
        slow = [row[0] for row in cursor.fetchall()]
    assert [(value, value.tzinfo) for value in fast] == [(value, value.tzinfo) for value in slow]
