"""Cursor pagination over public ids, newest first (``limit`` and ``starting_after``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.db.models import Model, QuerySet

from turnus.core.errors import ValidationFailed

DEFAULT_LIMIT = 10
MAX_LIMIT = 100


@dataclass(frozen=True)
class Page:
    items: list[Any]
    has_more: bool


def paginate(
    queryset: QuerySet[Model], *, limit: int = DEFAULT_LIMIT, starting_after: str | None = None
) -> Page:
    if not 1 <= limit <= MAX_LIMIT:
        raise ValidationFailed(f"limit must be between 1 and {MAX_LIMIT}", field="limit")
    if starting_after is not None:
        if not starting_after:
            raise ValidationFailed("starting_after must be an id", field="starting_after")
        queryset = queryset.filter(public_id__lt=starting_after)
    rows = list(queryset.order_by("-public_id")[: limit + 1])
    return Page(items=rows[:limit], has_more=len(rows) > limit)
