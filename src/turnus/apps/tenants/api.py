"""/v1 routes of the tenants app: the audit log."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.http import HttpRequest
from ninja import Query, Router, Schema

from turnus.core.api import ListResponse, scope_of
from turnus.core.models import AuditEvent
from turnus.core.pagination import DEFAULT_LIMIT, paginate

router = Router(tags=["audit"])


class AuditEventOut(Schema):
    id: str
    object: str = "audit_event"
    actor: str
    action: str
    object_type: str
    object_id: str
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    request_id: str
    livemode: bool
    created_at: datetime

    @staticmethod
    def resolve_id(event: AuditEvent) -> str:
        return event.public_id


class AuditFilters(Schema):
    limit: int = DEFAULT_LIMIT
    starting_after: str | None = None
    object_id: str | None = None
    action: str | None = None


@router.get("/audit_events", response=ListResponse[AuditEventOut], operation_id="list_audit_events")
def list_audit_events(request: HttpRequest, filters: Query[AuditFilters]) -> dict[str, Any]:
    scope = scope_of(request)
    events = AuditEvent.objects.in_scope(scope.tenant_id, scope.livemode)
    if filters.object_id:
        events = events.filter(object_id=filters.object_id)
    if filters.action:
        events = events.filter(action=filters.action)
    page = paginate(events, limit=filters.limit, starting_after=filters.starting_after)
    return {"data": page.items, "has_more": page.has_more}
