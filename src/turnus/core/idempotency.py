"""Idempotent POSTs (Stripe's semantics).

The first successful response to a POST carrying ``Idempotency-Key`` is stored in the same transaction
as the change it made, and replayed for a repeat with the same key and body. The same key with another
body is refused (422 ``idempotency_key_reused``). A request that fails (validation, conflict, crash)
stores nothing and changes nothing, so it may simply be retried. Keys are kept at least 24 hours.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.http import HttpRequest, HttpResponse
from django.utils.module_loading import import_string

from turnus.core import clock
from turnus.core.errors import TurnusError, ValidationFailed
from turnus.core.http import error_response
from turnus.core.models import IdempotencyRecord
from turnus.core.scope import Scope

HEADER = "Idempotency-Key"
MAX_KEY_LENGTH = 255
RETENTION = timedelta(hours=24)


class IdempotencyKeyReused(TurnusError):
    """This Idempotency-Key was used before with a different request. Use a new key for a new request."""

    code = "idempotency_key_reused"


class _Discard(Exception):
    def __init__(self, response: HttpResponse) -> None:
        self.response = response


class _Replay(Exception):
    pass


def request_fingerprint(request: HttpRequest) -> str:
    digest = hashlib.sha256()
    digest.update(request.method.encode() if request.method else b"")
    digest.update(b"\0")
    digest.update(request.path.encode())
    digest.update(b"\0")
    digest.update(request.body)
    return digest.hexdigest()


def _resolver() -> Callable[[HttpRequest], Scope | None]:
    resolver: Callable[[HttpRequest], Scope | None] = import_string(settings.TURNUS_SCOPE_RESOLVER)
    return resolver


def _replay(record: IdempotencyRecord) -> HttpResponse:
    response = HttpResponse(
        bytes(record.response_body), status=record.status_code, content_type=record.content_type
    )
    response["Idempotent-Replayed"] = "true"
    return response


class IdempotencyMiddleware:
    """Applies to POSTs under ``/v1/`` that carry the ``Idempotency-Key`` header."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        key = request.headers.get(HEADER)
        if request.method != "POST" or key is None or not request.path.startswith("/v1/"):
            return self.get_response(request)
        if not key or len(key) > MAX_KEY_LENGTH or not key.isprintable():
            error = ValidationFailed(
                f"{HEADER} must be 1 to {MAX_KEY_LENGTH} printable characters", field=HEADER
            )
            return error_response(error, status=400)
        scope = _resolver()(request)
        if scope is None:
            return self.get_response(request)
        fingerprint = request_fingerprint(request)
        try:
            with transaction.atomic():
                try:
                    with transaction.atomic():
                        record = IdempotencyRecord.objects.create(
                            tenant_id=scope.tenant_id,
                            livemode=scope.livemode,
                            key=key,
                            request_hash=fingerprint,
                            created_at=clock.now(),
                        )
                except IntegrityError:
                    raise _Replay from None
                response = self.get_response(request)
                if not 200 <= response.status_code < 300 or response.streaming:
                    raise _Discard(response)
                record.status_code = response.status_code
                record.response_body = response.content
                record.content_type = response.get("Content-Type", "application/json")
                record.save(update_fields=("status_code", "response_body", "content_type"))
                return response
        except _Discard as discarded:
            return discarded.response
        except _Replay:
            stored = IdempotencyRecord.objects.get(
                tenant_id=scope.tenant_id, livemode=scope.livemode, key=key
            )
            if stored.request_hash != fingerprint:
                reused = IdempotencyKeyReused(
                    "this Idempotency-Key was already used with a different request", field=HEADER
                )
                return error_response(reused, status=422)
            return _replay(stored)


def purge_expired(*, older_than: timedelta = RETENTION) -> int:
    """Delete stored responses older than the retention window; returns how many went."""
    deleted, _ = IdempotencyRecord.objects.filter(created_at__lt=clock.now() - older_than).delete()
    return deleted
