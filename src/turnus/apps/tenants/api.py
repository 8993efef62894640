"""/v1 routes of the tenants app: the audit log and the tenant's logo."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.core.exceptions import SuspiciousOperation
from django.http import HttpRequest, HttpResponse
from django.http.multipartparser import MultiPartParserError
from ninja import Query, Router, Schema

from turnus.apps.tenants import logos
from turnus.apps.tenants.models import Tenant, TenantLogo
from turnus.core.api import ListResponse, scope_of
from turnus.core.errors import PROBLEM_CONTENT_TYPE, NotFound, ValidationFailed
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


# --- the tenant's logo -------------------------------------------------------------------------------

_IMAGE_TYPES = tuple(TenantLogo.ContentType.values)
_BINARY = {"schema": {"type": "string", "format": "binary"}}
#: A multipart body carries the image and a little framing around it.
_MULTIPART_OVERHEAD = 16 * 1024
_LOGO_REQUEST: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            **dict.fromkeys(_IMAGE_TYPES, _BINARY),
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "properties": {"logo": {"type": "string", "format": "binary"}},
                    "required": ["logo"],
                }
            },
        },
    }
}
_PROBLEM = {PROBLEM_CONTENT_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}}
_LOGO_RESPONSE: dict[str, Any] = {
    "responses": {
        200: {"description": "The logo as it was set", "content": dict.fromkeys(_IMAGE_TYPES, _BINARY)},
        404: {"description": "The tenant has no logo", "content": _PROBLEM},
    }
}


class TenantLogoOut(Schema):
    object: str = "tenant_logo"
    tenant: str
    content_type: str
    size: int
    sha256: str
    updated_at: datetime


class TenantLogoDeletedOut(Schema):
    object: str = "tenant_logo"
    tenant: str
    deleted: bool = True


def _logo_out(tenant: Tenant, logo: TenantLogo) -> TenantLogoOut:
    return TenantLogoOut(
        tenant=tenant.public_id,
        content_type=logo.content_type,
        size=logo.size,
        sha256=logo.sha256,
        updated_at=logo.updated_at,
    )


def _uploaded(request: HttpRequest) -> bytes:
    """The image sent: the body (an image type), or the ``logo`` part of a multipart/form-data body."""
    too_large = ValidationFailed(
        f"the logo may have at most {logos.MAX_BYTES:,} bytes (512 KB)", field=logos.FIELD
    )
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    if length > logos.MAX_BYTES + _MULTIPART_OVERHEAD:
        raise too_large
    if request.content_type == "multipart/form-data":
        try:
            upload = request.FILES.get(logos.FIELD)
        except (MultiPartParserError, SuspiciousOperation):
            raise ValidationFailed("the multipart/form-data body is unreadable", field=logos.FIELD) from None
        if upload is None:
            raise ValidationFailed("send the image as the multipart field 'logo'", field=logos.FIELD)
        if upload.size is not None and upload.size > logos.MAX_BYTES:
            raise too_large
        return bytes(upload.read())
    if request.content_type in (*_IMAGE_TYPES, "application/octet-stream") or not request.body:
        return bytes(request.body)
    raise ValidationFailed(
        "send the image as the body (Content-Type image/png, image/jpeg or image/svg+xml) "
        "or as the multipart/form-data field 'logo'",
        field=logos.FIELD,
    )


@router.post(
    "/tenant/logo",
    response=TenantLogoOut,
    operation_id="set_tenant_logo",
    tags=["tenant"],
    summary="Set or replace the logo printed on invoices",
    description="The image is the body (Content-Type `image/png`, `image/jpeg` or `image/svg+xml`) or the "
    "`logo` field of a multipart/form-data body: a PNG or JPEG (8-bit RGB or greyscale, at most "
    f"{logos.MAX_PIXELS} pixels on a side) or an SVG that refers to nothing outside itself, at most "
    "512 KB. The type is told from the image itself. Invoices rendered from now on carry it; documents "
    "already rendered keep the logo they were rendered with. The logo is the same in live and test mode.",
    openapi_extra=_LOGO_REQUEST,
)
def set_tenant_logo(request: HttpRequest) -> TenantLogoOut:
    scope = scope_of(request)
    content = _uploaded(request)
    tenant = Tenant.objects.get(pk=scope.tenant_id)
    logo = logos.set_logo(tenant, content, actor=scope.actor, request_id=scope.request_id)
    return _logo_out(tenant, logo)


@router.get(
    "/tenant/logo",
    operation_id="retrieve_tenant_logo",
    tags=["tenant"],
    summary="Download the logo printed on invoices",
    openapi_extra=_LOGO_RESPONSE,
)
def retrieve_tenant_logo(request: HttpRequest) -> HttpResponse:
    logo = logos.logo_of(scope_of(request).tenant_id)
    if logo is None:
        raise NotFound("the tenant has no logo", field=logos.FIELD)
    response = HttpResponse(bytes(logo.content), content_type=logo.content_type)
    response["ETag"] = f'"{logo.sha256}"'
    response["X-Content-Type-Options"] = "nosniff"
    response["Content-Security-Policy"] = "default-src 'none'; style-src 'unsafe-inline'; sandbox"
    return response


@router.delete(
    "/tenant/logo",
    response=TenantLogoDeletedOut,
    operation_id="delete_tenant_logo",
    tags=["tenant"],
    summary="Remove the logo: invoices rendered from now on carry none",
)
def delete_tenant_logo(request: HttpRequest) -> TenantLogoDeletedOut:
    scope = scope_of(request)
    tenant = Tenant.objects.get(pk=scope.tenant_id)
    logos.remove_logo(tenant, actor=scope.actor, request_id=scope.request_id)
    return TenantLogoDeletedOut(tenant=tenant.public_id)
