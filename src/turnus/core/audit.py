"""Record every change: who, what, which object, before and after. Call inside the change's transaction."""

from __future__ import annotations

from typing import Any

from turnus.core import clock
from turnus.core.ids import new_id
from turnus.core.models import AuditEvent, OutboxEvent
from turnus.core.scope import Scope


def record_change(
    scope: Scope,
    action: str,
    object_type: str,
    object_id: str,
    *,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
) -> AuditEvent:
    now = clock.now()
    return AuditEvent.objects.create(
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
    now = clock.now()
    return OutboxEvent.objects.create(
        public_id=new_id("evt", at=now),
        tenant_id=scope.tenant_id,
        livemode=scope.livemode,
        type=event_type,
        object_id=object_id,
        payload=payload,
        created_at=now,
    )


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
    record_change(scope, event_type, object_type, object_id, before=before, after=after)
    emit(scope, event_type, object_id, after if after is not None else (before or {}))
