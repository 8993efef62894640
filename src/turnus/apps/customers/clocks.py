"""The time a customer lives at: the real time, or the frozen time of the test clock it is attached to.

One mechanism for every app: an API handler (or use case) that works on a customer's objects runs inside
``customer_time(scope, <customer ids>)``. For a customer on a test clock, ``turnus.core.clock.now()``
then answers the clock's ``frozen_time`` for the whole block (a ``SimulatedClock``: the audit log and the
outbox keep the real time). Live mode has no test clocks, so there it costs nothing; in test mode it costs
one indexed query. Apps above customers pass a queryset of customer ids (``.values("customer_id")`` of
their own rows), so this module needs to know none of them.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager, nullcontext
from datetime import datetime
from typing import Any

from django.db import models
from django.db.models import QuerySet

from turnus.apps.customers.models import Customer, TestClock
from turnus.core.clock import SimulatedClock, use_clock
from turnus.core.errors import NotFound
from turnus.core.scope import Scope


def _clocks(scope: Scope) -> QuerySet[TestClock]:
    return TestClock.objects.filter(tenant_id=scope.tenant_id, livemode=False)


def frozen_time_of(scope: Scope, customers: QuerySet[Any]) -> datetime | None:
    """The frozen time of the test clock of the customer(s) ``customers`` selects (a queryset of customer
    primary keys), or ``None`` when it has none (always in live mode)."""
    if scope.livemode:
        return None
    times = _clocks(scope).filter(customers__pk__in=customers).values_list("frozen_time", flat=True)
    return next(iter(times[:1]), None)


def frozen_times(scope: Scope, customer_pks: Iterable[int]) -> dict[int, datetime]:
    """The frozen time of each of ``customer_pks`` that is on a test clock (one query; none in live mode)."""
    pks = set(customer_pks)
    if scope.livemode or not pks:
        return {}
    rows = _clocks(scope).filter(customers__pk__in=pks).values_list("customers__pk", "frozen_time")
    return dict(rows)


def at(frozen_time: datetime | None) -> Any:
    """A context in which ``clock.now()`` is ``frozen_time`` (a test clock's time); no-op for ``None``."""
    return nullcontext() if frozen_time is None else use_clock(SimulatedClock(frozen_time))


@contextmanager
def customer_time(scope: Scope, customers: QuerySet[Any]) -> Iterator[datetime | None]:
    """Run the block at the time of the customer ``customers`` selects (see ``frozen_time_of``)."""
    frozen = frozen_time_of(scope, customers)
    with at(frozen):
        yield frozen


def customer_named(scope: Scope, public_id: str | None) -> QuerySet[Any]:
    """The customer ``public_id`` of this scope, as a queryset of its primary key, for ``customer_time``."""
    return Customer.objects.filter(
        tenant_id=scope.tenant_id, livemode=scope.livemode, public_id=public_id or ""
    ).values("pk")


def owner_of(model: type[models.Model], scope: Scope, public_id: str) -> QuerySet[Any]:
    """The customer owning the ``model`` row ``public_id`` of this scope (any model with ``customer``), as a
    queryset of its key, for ``customer_time``."""
    return model._default_manager.filter(
        tenant_id=scope.tenant_id, livemode=scope.livemode, public_id=public_id
    ).values("customer_id")


def get_test_clock(scope: Scope, public_id: str, *, field: str = "id", lock: bool = False) -> TestClock:
    """The test clock ``public_id`` of this scope unless deleted; else ``NotFound`` (always in live mode)."""
    clocks = _clocks(scope).filter(deleted_at__isnull=True)
    if lock:
        clocks = clocks.select_for_update()
    found: TestClock | None = None if scope.livemode else clocks.filter(public_id=public_id).first()
    if found is None:
        raise NotFound(f"no test clock {public_id}", field=field)
    return found
