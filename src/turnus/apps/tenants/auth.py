"""Bearer authentication with secret API keys; resolves a request to its tenant, mode and actor."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from ninja.security import HttpBearer

from turnus.apps.tenants.models import ApiKey
from turnus.apps.tenants.services import find_active_key
from turnus.core.scope import Actor, ActorKind, Scope, new_request_id

_CACHE_ATTR = "_turnus_scope"


def scope_from_request(request: HttpRequest) -> Scope | None:
    """The scope of a request made with a valid, unrevoked secret key; ``None`` otherwise."""
    if hasattr(request, _CACHE_ATTR):
        cached: Scope | None = getattr(request, _CACHE_ATTR)
        return cached
    scope = None
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() == "bearer" and token:
        key = find_active_key(token.strip())
        if key is not None and key.kind == ApiKey.Kind.SECRET:
            request_id = request.headers.get("X-Request-Id", "")[:40] or new_request_id()
            scope = Scope(key.tenant_id, key.livemode, Actor(ActorKind.API_KEY, key.public_id), request_id)
    setattr(request, _CACHE_ATTR, scope)
    return scope


class SecretKeyAuth(HttpBearer):
    openapi_description = "A secret API key: `Authorization: Bearer sk_test_…` or `sk_live_…`."

    def authenticate(self, request: HttpRequest, token: str) -> Any:
        return scope_from_request(request)
