import threading
from datetime import UTC, datetime, timedelta, timezone

import pytest

from turnus.core import clock
from turnus.core.clock import FrozenClock, SystemClock, use_clock
from turnus.engine.errors import InvalidPeriod

INSTANT = datetime(2026, 1, 31, 12, 0, tzinfo=UTC)


def test_system_clock_gives_an_aware_utc_instant():
    now = SystemClock().now()
    assert now.tzinfo is UTC


def test_use_clock_replaces_the_time_inside_the_block_only():
    with use_clock(FrozenClock(INSTANT)):
        assert clock.now() == INSTANT
    assert clock.now() != INSTANT


def test_a_frozen_clock_converts_other_zones_to_utc():
    berlin_noon = datetime(2026, 7, 1, 12, 0, tzinfo=timezone(timedelta(hours=2)))
    assert FrozenClock(berlin_noon).now() == datetime(2026, 7, 1, 10, 0, tzinfo=UTC)


def test_a_frozen_clock_advances_and_never_goes_back():
    frozen = FrozenClock(INSTANT)
    assert frozen.advance(timedelta(days=1)) == INSTANT + timedelta(days=1)
    with pytest.raises(InvalidPeriod, match="backwards"):
        frozen.set(INSTANT)


def test_a_naive_instant_is_refused():
    with pytest.raises(InvalidPeriod):
        FrozenClock(datetime(2026, 1, 1))  # noqa: DTZ001


def test_clocks_are_per_thread():
    seen: list[datetime] = []
    with use_clock(FrozenClock(INSTANT)):
        worker = threading.Thread(target=lambda: seen.append(clock.now()))
        worker.start()
        worker.join()
    assert seen[0] != INSTANT
