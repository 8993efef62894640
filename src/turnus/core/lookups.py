"""``field__any=[...]``: membership in a list bound as one array on PostgreSQL.

``field__in=[...]`` prepares and binds every value on its own and spells out a placeholder per value,
which the billing run pays for with each batch (hundreds of keys per query, a dozen queries per batch).
``__any`` binds the list as a single array (``field = ANY(%s)``) on PostgreSQL and is ``__in`` elsewhere.
The values must be of the field's type already (keys as ints): they are passed to the driver as they are
(None, which matches nothing, is left out as ``__in`` does).
"""

from __future__ import annotations

from typing import Any

from django.db.models import Field, ForeignObject, Lookup
from django.db.models.lookups import In


class AnyOf(Lookup):
    lookup_name = "any"
    prepare_rhs = False

    def get_prep_lookup(self) -> Any:
        # As ``__in``: None matches nothing (and must not turn an ``exclude`` into NULL for every row).
        return [value for value in self.rhs if value is not None]

    def as_sql(self, compiler: Any, connection: Any) -> Any:
        if connection.vendor != "postgresql":
            return In(self.lhs, self.rhs).as_sql(compiler, connection)
        lhs, lhs_params = self.process_lhs(compiler, connection)
        return f"{lhs} = ANY(%s)", (*lhs_params, self.rhs)


def register() -> None:
    Field.register_lookup(AnyOf)
    ForeignObject.register_lookup(AnyOf)  # relations keep lookups of their own
