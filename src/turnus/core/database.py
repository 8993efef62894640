"""PostgreSQL connections load instants with psycopg's compiled loader.

Django loads every ``timestamptz`` through a loader written in Python (it pins the time zone it hands
out). When Django runs in UTC and the session's time zone is UTC, psycopg's compiled loader returns the
same values (aware, ``datetime.timezone.utc``) several times faster, which the billing run notices: it
reads a dozen instants per subscription. The wrapper below gives Django the ``timezone`` it checks for
and delegates the loading to the compiled loader.
"""

from __future__ import annotations

from datetime import UTC
from typing import Any

from django.db.backends.signals import connection_created


def _compiled_loader() -> Any:
    import psycopg
    from psycopg.postgres import types
    from psycopg.pq import Format

    return psycopg.adapters.get_loader(types["timestamptz"].oid, Format.TEXT)


def _utc_loader() -> type:
    from psycopg.adapt import Loader

    compiled = _compiled_loader()

    class UtcTimestamptzLoader(Loader):
        """``timestamptz`` in a UTC session: psycopg's own loader, with Django's ``timezone``."""

        timezone = UTC

        def __init__(self, oid: int, context: Any = None) -> None:
            super().__init__(oid, context)
            self._compiled = compiled(oid, context).load
            # The compiled loader's own method, called directly by the rows' loading.
            self.load = self._compiled  # type: ignore[method-assign]

        def load(self, data: Any) -> Any:
            return self._compiled(data)

    return UtcTimestamptzLoader


_LOADER: list[type] = []


def _on_connection(sender: Any, connection: Any, **kwargs: Any) -> None:
    if connection.vendor != "postgresql" or connection.timezone_name != "UTC":
        return
    raw = connection.connection
    if raw.info.parameter_status("TimeZone") != "UTC":
        return
    if not _LOADER:
        _LOADER.append(_utc_loader())
    raw.adapters.register_loader("timestamptz", _LOADER[0])


def register() -> None:
    connection_created.connect(_on_connection, dispatch_uid="turnus.core.database.utc_loader")
