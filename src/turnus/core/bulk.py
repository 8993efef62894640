"""Many rows in few statements: multi-row INSERTs and UPDATEs from a list of values or model instances.

For the paths that write thousands of rows (the billing run, the audit trail). Each value is prepared as
the ORM would save it (JSON, instants on SQLite), but no ORM query is compiled per row and the values a
database driver takes as they are (text, numbers, booleans, decimals; instants on PostgreSQL) are passed
through without a call per value. Both run on SQLite and PostgreSQL.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC
from decimal import Decimal
from typing import Any, cast

import msgspec
from django.db import connection, models

#: Rows per statement on SQLite, well below its limit on bound parameters.
ROWS_PER_STATEMENT = 50
#: Rows per statement on PostgreSQL, whose statements take an array per column.
ARRAY_ROWS = 1000

#: A model field (typed loosely: Django's stubs type relation attributes per field class).
Field = Any
Prepare = Callable[[Any], Any] | None

#: Field types whose Python values the drivers take unchanged.
_AS_IS = frozenset(
    {
        "AutoField",
        "BigAutoField",
        "BigIntegerField",
        "BooleanField",
        "CharField",
        "IntegerField",
        "PositiveBigIntegerField",
        "PositiveIntegerField",
        "PositiveSmallIntegerField",
        "SmallIntegerField",
        "TextField",
    }
)
_PREPARE: dict[tuple[str, Field], Prepare] = {}


class JsonText(str):
    """A JSON column's value serialised already (one text serves several rows, e.g. an audit row's
    ``after`` and its domain event's payload)."""

    __slots__ = ()


_ENCODER = msgspec.json.Encoder()


def json_text(value: Any) -> JsonText:
    """``value`` (JSON types only) serialised as ``json.dumps`` would read it back, several times faster
    (the audit trail serialises a few snapshots for every invoice of a billing run)."""
    return JsonText(_ENCODER.encode(value).decode())


def _preparer(field: Field) -> Prepare:
    """How a value of ``field`` is prepared for the current database (``None``: as it is)."""
    key = (connection.vendor, field)
    if key in _PREPARE:
        return _PREPARE[key]
    target = field.target_field if field.is_relation else field
    kind = target.get_internal_type()
    prepare: Prepare
    if kind in _AS_IS or (connection.vendor == "postgresql" and kind in ("DateTimeField", "DateField")):
        prepare = None
    elif kind == "DateTimeField" and connection.vendor == "sqlite" and connection.timezone_name == "UTC":
        prepare = _sqlite_instant
    elif kind == "JSONField":

        def prepare(value: Any, encoder: Any = field.encoder) -> Any:
            if value is None or isinstance(value, JsonText):
                return value
            return json_text(value) if encoder is None else JsonText(json.dumps(value, cls=encoder))

    elif kind == "DecimalField":

        def prepare(value: Any, field: Field = field) -> Any:
            if value is None or type(value) is Decimal:
                return value
            return field.get_db_prep_save(value, connection)

    else:

        def prepare(value: Any, field: Field = field) -> Any:
            return field.get_db_prep_save(value, connection)

    _PREPARE[key] = prepare
    return prepare


def _sqlite_instant(value: Any) -> Any:
    """An instant as Django's SQLite backend stores it (naive UTC text)."""
    if value is None:
        return None
    if value.tzinfo is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    return str(value)


def _fields(model: type[models.Model], columns: Sequence[str]) -> list[Field]:
    return [model._meta.get_field(name) for name in columns]


def _prepared(fields: Sequence[Field], rows: Sequence[Sequence[Any]]) -> list[Any]:
    preparers = [_preparer(field) for field in fields]
    if not any(preparers):
        return [value for row in rows for value in row]
    return [
        value if prepare is None else prepare(value)
        for row in rows
        for prepare, value in zip(preparers, row, strict=True)
    ]


def _columns(fields: Sequence[Field], rows: Sequence[Sequence[Any]]) -> list[list[Any]]:
    """The prepared values of ``rows`` as one list per column (PostgreSQL's ``UNNEST`` of arrays)."""
    columns: list[list[Any]] = [[] for _ in fields]
    for prepare, column, index in zip(
        [_preparer(field) for field in fields], columns, range(len(fields)), strict=True
    ):
        values = [row[index] for row in rows]
        column += values if prepare is None else [prepare(value) for value in values]
    return columns


def _unnest(fields: Sequence[Field]) -> str:
    return ", ".join(f"%b::{field.db_type(connection)}[]" for field in fields)


@contextmanager
def _cursor() -> Iterator[Any]:
    """A cursor on the connection; on PostgreSQL one that binds its parameters on the server, in binary
    (Django's cursors quote every value into the statement's text, which costs more than the insert)."""
    if connection.vendor != "postgresql":
        with connection.cursor() as cursor:
            yield cursor
        return
    import psycopg

    connection.ensure_connection()
    with psycopg.Cursor(connection.connection) as cursor:
        yield cursor


def _insert(
    model: type[models.Model], fields: Sequence[Field], rows: Sequence[Sequence[Any]], *, returning: bool
) -> list[Any]:
    """On PostgreSQL one ``INSERT … SELECT * FROM UNNEST(…)`` per ``ARRAY_ROWS`` rows (a short statement
    with an array per column); on SQLite multi-row ``VALUES``."""
    quote = connection.ops.quote_name
    names = ", ".join(quote(cast(str, field.column)) for field in fields)
    head = f"INSERT INTO {quote(model._meta.db_table)} ({names}) "
    tail = f" RETURNING {quote(cast(str, model._meta.pk.column))}" if returning else ""
    postgres = connection.vendor == "postgresql"
    step = ARRAY_ROWS if postgres else ROWS_PER_STATEMENT
    cells = "(" + ", ".join(["%s"] * len(fields)) + ")"
    keys: list[Any] = []
    with _cursor() as cursor:
        for start in range(0, len(rows), step):
            chunk = rows[start : start + step]
            if postgres:
                cursor.execute(
                    f"{head}SELECT * FROM UNNEST({_unnest(fields)}){tail}",  # noqa: S608 (model metadata)
                    _columns(fields, chunk),
                )
            else:
                cursor.execute(
                    f"{head}VALUES {', '.join([cells] * len(chunk))}{tail}", _prepared(fields, chunk)
                )
            if returning:
                keys += [row[0] for row in cursor.fetchall()]
    return keys


def insert_rows(model: type[models.Model], columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    """Append ``rows`` (values in the order of ``columns``, field names) to ``model``'s table: on
    PostgreSQL by ``COPY … FROM STDIN`` (the fastest way in; row triggers and constraints apply as to
    an ``INSERT``), on SQLite by multi-row ``INSERT``."""
    fields = _fields(model, columns)
    if connection.vendor != "postgresql" or not rows:
        _insert(model, fields, rows, returning=False)
        return
    quote = connection.ops.quote_name
    names = ", ".join(quote(cast(str, field.column)) for field in fields)
    preparers = [_preparer(field) for field in fields]
    with _cursor() as cursor, cursor.copy(f"COPY {quote(model._meta.db_table)} ({names}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row(
                [
                    value if prepare is None else prepare(value)
                    for prepare, value in zip(preparers, row, strict=True)
                ]
            )


def insert_objects(objects: Sequence[models.Model]) -> None:
    """Save the new instances ``objects`` of one model (``bulk_create`` without its per-row query
    building) and set their primary keys. A foreign key whose object was saved after it was assigned
    takes that object's key. No ``save()`` runs, so no model-level checks either: for new rows only."""
    if not objects:
        return
    model = type(objects[0])
    pk = model._meta.pk
    fields: list[Field] = [field for field in model._meta.concrete_fields if field is not pk]
    rows = []
    for instance in objects:
        row = []
        for field in fields:
            value = getattr(instance, field.attname)
            if value is None and field.is_relation:
                related = field.get_cached_value(instance, None)
                if related is not None:
                    value = related.pk
                    setattr(instance, field.attname, value)
            row.append(value)
        rows.append(row)
    keys = _insert(model, fields, rows, returning=True)
    for instance, key in zip(objects, keys, strict=True):
        instance.pk = key
        instance._state.adding = False
        instance._state.db = connection.alias


def update_rows(model: type[models.Model], columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    """Set ``columns`` of the rows whose primary key is each row's first value to the values after it:
    ``UPDATE … FROM`` the rows (on PostgreSQL ``UNNEST`` of an array per column, on SQLite ``VALUES``)."""
    fields = [model._meta.pk, *_fields(model, columns)]
    quote = connection.ops.quote_name
    table = quote(model._meta.db_table)
    names = [quote(cast(str, field.column)) for field in fields]
    assignments = ", ".join(f"{name} = v.{name}" for name in names[1:])
    update = f"UPDATE {table} SET {assignments} FROM v WHERE {table}.{names[0]} = v.{names[0]}"  # noqa: S608
    postgres = connection.vendor == "postgresql"
    step = ARRAY_ROWS if postgres else ROWS_PER_STATEMENT
    cells = "(" + ", ".join(["%s"] * len(fields)) + ")"
    with _cursor() as cursor:
        for start in range(0, len(rows), step):
            chunk = rows[start : start + step]
            if postgres:
                source = f"SELECT * FROM UNNEST({_unnest(fields)})"  # noqa: S608 (model metadata)
                cursor.execute(f"WITH v ({', '.join(names)}) AS ({source}) {update}", _columns(fields, chunk))
            else:
                source = f"VALUES {', '.join([cells] * len(chunk))}"
                cursor.execute(
                    f"WITH v ({', '.join(names)}) AS ({source}) {update}", _prepared(fields, chunk)
                )
