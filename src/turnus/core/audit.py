"""Record every change: who, what, which object, before and after. Call inside the change's transaction."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from turnus.core import clock
from turnus.core.bulk import JsonText, insert_rows, json_text
from turnus.core.ids import new_id, new_ids
from turnus.core.models import AuditEvent, OutboxEvent
from turnus.core.scope import Scope

_AUDIT_COLUMNS = (
    "public_id",
    "tenant_id",
    "livemode",
    "actor",
    "action",
    "object_type",
    "object_id",
    "before",
    "after",
    "request_id",
    "created_at",
    "occurred_at",
)
_OUTBOX_COLUMNS = ("public_id", "tenant_id", "livemode", "type", "object_id", "payload", "created_at")


def record_change(
    scope: Scope,
    action: str,
    object_type: str,
    object_id: str,
    *,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
) -> AuditEvent:
    now = clock.system_now()
    return AuditEvent.objects.create(
        occurred_at=clock.now(),
        public_id=new_id("aud", at=now),
        tenant_id=scope.tenant_id,
        livemode=scope.livemode,
        actor=str(scope.actor),
        action=action,
        object_type=object_type,
        object_id=object_id,
        before=before,
        after=after,
        request_id=scope.request_id,
        created_at=now,
    )


def emit(scope: Scope, event_type: str, object_id: str, payload: dict[str, Any]) -> OutboxEvent:
    """Write the domain event ``event_type`` (``customer.created`` …) to the outbox."""
    now = clock.system_now()
    return OutboxEvent.objects.create(
        public_id=new_id("evt", at=now),
        tenant_id=scope.tenant_id,
        livemode=scope.livemode,
        type=event_type,
        object_id=object_id,
        payload=payload,
        created_at=now,
    )


@dataclass(frozen=True, slots=True)
class Change:
    """One change for ``record_many``: the event type (also the audit action), the object, before/after."""

    event_type: str
    object_type: str
    object_id: str
    before: dict[str, Any] | None = None
    after: dict[str, Any] | None = None


def record_many(scope: Scope, changes: Sequence[Change]) -> None:
    """``record`` for several changes of one use case: their audit rows and domain events in order, in two
    statements (one per table) instead of two per change."""
    if not changes:
        return
    now, occurred = clock.system_now(), clock.now()
    actor = str(scope.actor)
    texts: dict[int, JsonText] = {}  # a snapshot shared by several changes is serialised once

    def text(value: dict[str, Any] | None) -> JsonText | None:
        if value is None:
            return None
        found = texts.get(id(value))
        if found is None:
            found = texts[id(value)] = json_text(value)
        return found

    audit = [
        (
            public_id,
            scope.tenant_id,
            scope.livemode,
            actor,
            change.event_type,
            change.object_type,
            change.object_id,
            text(change.before),
            text(change.after),
            scope.request_id,
            now,
            occurred,
        )
        for public_id, change in zip(new_ids("aud", len(changes), at=now), changes, strict=True)
    ]
    outbox = [
        (
            public_id,
            scope.tenant_id,
            scope.livemode,
            change.event_type,
            change.object_id,
            text(change.after if change.after is not None else (change.before or {})),
            now,
        )
        for public_id, change in zip(new_ids("evt", len(changes), at=now), changes, strict=True)
    ]
    insert_rows(AuditEvent, _AUDIT_COLUMNS, audit)
    insert_rows(OutboxEvent, _OUTBOX_COLUMNS, outbox)


def record(
    scope: Scope,
    event_type: str,
    object_type: str,
    object_id: str,
    *,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
) -> None:
    """Audit a change and emit its domain event in one call (the usual case for a use case)."""
    record_many(scope, (Change(event_type, object_type, object_id, before, after),))
