from datetime import UTC, datetime, timedelta

import pytest

from turnus.core.errors import ValidationFailed
from turnus.core.ids import check_id, new_id

T0 = datetime(2026, 11, 28, 9, 0, tzinfo=UTC)


def test_an_id_carries_its_prefix_and_26_characters():
    value = new_id("cus", at=T0)
    prefix, body = value.split("_")
    assert prefix == "cus"
    assert len(body) == 26


def test_ids_sort_by_creation_time():
    ids = [new_id("sub", at=T0 + timedelta(milliseconds=n)) for n in range(0, 5000, 7)]
    assert ids == sorted(ids)


def test_ids_made_in_the_same_millisecond_differ():
    assert len({new_id("inv", at=T0) for _ in range(1000)}) == 1000


def test_check_id_accepts_its_own_ids_and_refuses_others():
    value = new_id("cus", at=T0)
    assert check_id(value, "cus") == value
    for bad in ["sub" + value[3:], value.lower(), value[:-1], "cus_", 42, None, value + "0"]:
        with pytest.raises(ValidationFailed) as caught:
            check_id(bad, "cus", field="customer")
        assert caught.value.field == "customer"


def test_a_prefix_must_be_lowercase_letters():
    with pytest.raises(ValueError, match="prefix"):
        new_id("Cus1")


def test_ids_made_one_after_another_sort_in_that_order_even_within_a_millisecond():
    ids = [new_id("evt", at=T0) for _ in range(2000)]
    assert ids == sorted(ids)


def test_ids_never_go_back_when_asked_for_an_earlier_instant():
    later = new_id("evt", at=T0 + timedelta(days=1))
    earlier = new_id("evt", at=T0)
    assert earlier > later


def test_ids_follow_the_wall_clock_not_a_test_clock():
    from turnus.core.clock import FrozenClock, use_clock

    year_2040_millis = int(datetime(2040, 1, 1, tzinfo=UTC).timestamp() * 1000)
    with use_clock(FrozenClock(datetime(2040, 1, 1, tzinfo=UTC))):
        value = new_id("cus")
    body_millis = 0
    for char in value[4:14]:
        body_millis = body_millis * 32 + "0123456789ABCDEFGHJKMNPQRSTVWXYZ".index(char)
    assert body_millis < year_2040_millis


def test_an_id_dated_after_the_wall_clock_is_dated_now_so_later_ids_still_sort_after_it():
    future = new_id("inv", at=datetime.now(UTC) + timedelta(days=400))
    made_later = new_id("inv")
    assert future < made_later
    assert future[4:14] <= made_later[4:14]
