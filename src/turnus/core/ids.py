"""Public ids: a type prefix and a sortable, opaque body (``cus_01JD8Z6W0M4Q7RX3V5T9K2H8BN``).

The body is 26 characters of Crockford base32: 48 bits of milliseconds since the epoch, then 80 random
bits, so ids sort by creation time and cannot be guessed.
"""

from __future__ import annotations

import re
import secrets
from datetime import datetime

from turnus.core import clock
from turnus.core.errors import ValidationFailed

_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_PREFIX = re.compile(r"^[a-z]{2,8}$")
_BODY = re.compile(r"^[0-7][0-9A-HJKMNP-TV-Z]{25}$")


def _encode(value: int, length: int) -> str:
    chars = []
    for _ in range(length):
        value, index = divmod(value, 32)
        chars.append(_ALPHABET[index])
    return "".join(reversed(chars))


def new_id(prefix: str, *, at: datetime | None = None) -> str:
    """A fresh public id for an object of the kind ``prefix`` (``"cus"``, ``"sub"``, ``"inv"`` …)."""
    if not _PREFIX.match(prefix):
        raise ValueError(f"id prefix must be 2-8 lowercase letters, got {prefix!r}")
    instant = at if at is not None else clock.now()
    millis = int(instant.timestamp() * 1000)
    return f"{prefix}_{_encode(millis, 10)}{_encode(secrets.randbits(80), 16)}"


def check_id(value: object, prefix: str, *, field: str = "id") -> str:
    """Return ``value`` if it is a well-formed id of kind ``prefix``; otherwise a validation error."""
    if isinstance(value, str):
        head, sep, body = value.partition("_")
        if sep and head == prefix and _BODY.match(body):
            return value
    raise ValidationFailed(f"{field} is not a valid {prefix}_ id", field=field)
