"""Public ids: a type prefix and a sortable, opaque body (``cus_01JD8Z6W0M4Q7RX3V5T9K2H8BN``).

The body is 26 characters of Crockford base32: 48 bits of milliseconds since the epoch, then 80 random
bits, so ids sort by creation time and cannot be guessed. Within one millisecond a process counts the
random part up, so ids it makes one after another always sort in that order.
"""

from __future__ import annotations

import re
import secrets
import threading
from datetime import datetime

from turnus.core.clock import SystemClock
from turnus.core.errors import ValidationFailed

_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_PREFIX = re.compile(r"^[a-z]{2,8}$")
_BODY = re.compile(r"^[0-7][0-9A-HJKMNP-TV-Z]{25}$")


#: Every pair of characters: ten bits at a time.
_PAIRS = [first + second for first in _ALPHABET for second in _ALPHABET]


def _encode(value: int, length: int) -> str:
    """The ``length`` (even) lowest base32 digits of ``value``, most significant first."""
    return "".join([_PAIRS[(value >> shift) & 1023] for shift in range(5 * (length - 2), -1, -10)])


#: Ids order objects as they were really made, so they follow the wall clock, never a test clock.
_wall_clock = SystemClock()
_lock = threading.Lock()
_last = (-1, 0)
_RANDOM_LIMIT = 1 << 80


def _next_bodies(millis: int, count: int) -> list[tuple[int, int]]:
    """``count`` bodies (milliseconds, random part) in ascending order, each after the last one made."""
    global _last
    bodies = []
    with _lock:
        last_millis, last_random = _last
        for _ in range(count):
            if millis > last_millis:
                last_millis, last_random = millis, secrets.randbits(79)
            elif last_random + 1 < _RANDOM_LIMIT:
                last_random += 1
            else:
                last_millis, last_random = last_millis + 1, secrets.randbits(79)
            bodies.append((last_millis, last_random))
        _last = (last_millis, last_random)
    return bodies


def new_ids(prefix: str, count: int, *, at: datetime | None = None) -> list[str]:
    """``count`` fresh public ids of the kind ``prefix`` (``"cus"``, ``"sub"``, ``"inv"`` …), in ascending
    order, with one look at the clock.

    ``at`` dates the ids (default: now); a moment later than the wall clock (a test clock's frozen time)
    is taken as now, so an id never runs ahead of the ids made after it in real time."""
    if not _PREFIX.match(prefix):
        raise ValueError(f"id prefix must be 2-8 lowercase letters, got {prefix!r}")
    wall = _wall_clock.now()
    instant = wall if at is None or at > wall else at
    encoded: dict[int, str] = {}
    ids = []
    for millis, random_part in _next_bodies(int(instant.timestamp() * 1000), count):
        head = encoded.get(millis)
        if head is None:
            head = encoded[millis] = f"{prefix}_{_encode(millis, 10)}"
        ids.append(head + _encode(random_part, 16))
    return ids


def new_id(prefix: str, *, at: datetime | None = None) -> str:
    """A fresh public id for an object of the kind ``prefix`` (``new_ids`` for one)."""
    return new_ids(prefix, 1, at=at)[0]


def check_id(value: object, prefix: str, *, field: str = "id") -> str:
    """Return ``value`` if it is a well-formed id of kind ``prefix``; otherwise a validation error."""
    if isinstance(value, str):
        head, sep, body = value.partition("_")
        if sep and head == prefix and _BODY.match(body):
            return value
    raise ValidationFailed(f"{field} is not a valid {prefix}_ id", field=field)
