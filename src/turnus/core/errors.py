"""Errors outside the engine, and their RFC 9457 problem+json form."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from turnus.engine.errors import EngineError, InvalidTransition, TurnusError

__all__ = [
    "Conflict",
    "NotFound",
    "Problem",
    "TurnusError",
    "ValidationFailed",
    "problem_for",
]

PROBLEM_CONTENT_TYPE = "application/problem+json"


class ValidationFailed(TurnusError):
    """The request's input is invalid. Fix the field named in ``field`` and send it again."""

    code = "validation_failed"


class NotFound(TurnusError):
    """No such object for this tenant and mode. Check the id, the key's tenant and live/test mode."""

    code = "not_found"


class Conflict(TurnusError):
    """The object's current state forbids the request. Read the message, reload the object, then decide."""

    code = "conflict"


@dataclass(frozen=True)
class FieldError:
    field: str
    message: str
    code: str


@dataclass(frozen=True)
class Problem:
    status: int
    code: str
    title: str
    detail: str
    errors: tuple[FieldError, ...] = field(default=())
    instance: str | None = None

    def as_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "type": f"https://turnus.dev/problems/{self.code}",
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
            "code": self.code,
            "errors": [{"field": e.field, "message": e.message, "code": e.code} for e in self.errors],
        }
        if self.instance is not None:
            body["instance"] = self.instance
        return body


_STATUS_BY_CLASS: tuple[tuple[type[TurnusError], int, str], ...] = (
    (NotFound, 404, "Not found"),
    (Conflict, 409, "Conflict"),
    (InvalidTransition, 409, "Invalid state transition"),
    (ValidationFailed, 422, "Validation failed"),
    (EngineError, 422, "Validation failed"),
)


def problem_for(error: TurnusError, *, instance: str | None = None) -> Problem:
    """The problem+json answer for ``error``: status by its class, code and field from the error."""
    status, title = 400, "Bad request"
    for cls, cls_status, cls_title in _STATUS_BY_CLASS:
        if isinstance(error, cls):
            status, title = cls_status, cls_title
            break
    errors = (FieldError(error.field, error.message, error.code),) if error.field else ()
    return Problem(status, error.code, title, error.message, errors, instance)
