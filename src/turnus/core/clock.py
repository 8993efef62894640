"""The one place Turnus reads the time. Code asks ``clock.now()``; tests and test clocks swap the source."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Protocol

from turnus.engine.errors import InvalidPeriod


class Clock(Protocol):
    def now(self) -> datetime:
        """The current instant, timezone-aware, in UTC."""
        ...


class SystemClock:
    """Wall-clock time of this machine."""

    def now(self) -> datetime:
        return datetime.now(UTC)


class FrozenClock:
    """A clock that stands still until moved; for tests and simulations."""

    def __init__(self, instant: datetime) -> None:
        self._instant = _aware_utc(instant)

    def now(self) -> datetime:
        return self._instant

    def set(self, instant: datetime) -> None:
        instant = _aware_utc(instant)
        if instant < self._instant:
            raise InvalidPeriod("a clock never moves backwards", field="instant")
        self._instant = instant

    def advance(self, delta: timedelta) -> datetime:
        self.set(self._instant + delta)
        return self._instant


class SimulatedClock(FrozenClock):
    """A test clock's frozen time: the business time of its customers' objects.

    Records about the system itself (audit log, outbox, stored idempotent responses) keep the real time
    under it; see ``system_now``."""


def _aware_utc(instant: datetime) -> datetime:
    if instant.tzinfo is None or instant.utcoffset() is None:
        raise InvalidPeriod("instants must be timezone-aware", field="instant")
    return instant.astimezone(UTC)


_state = threading.local()
_default: Clock = SystemClock()


def current() -> Clock:
    """The clock in force for this thread."""
    clock: Clock | None = getattr(_state, "clock", None)
    return clock if clock is not None else _default


def now() -> datetime:
    """The current instant by the clock in force."""
    return current().now()


def system_now() -> datetime:
    """The time for records about the system itself (audit log, outbox): the clock in force, except that a
    ``SimulatedClock`` (a test clock's time) gives way to the real time."""
    clock = current()
    return _default.now() if isinstance(clock, SimulatedClock) else clock.now()


@contextmanager
def use_clock(clock: Clock) -> Iterator[Clock]:
    """Make ``clock`` the clock of this thread inside the block."""
    previous: Clock | None = getattr(_state, "clock", None)
    _state.clock = clock
    try:
        yield clock
    finally:
        _state.clock = previous
