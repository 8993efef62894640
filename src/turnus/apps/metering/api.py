"""/v1/events (one and in batches), /v1/events/{transaction_id}/void and /v1/subscriptions/{id}/usage."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from django.http import HttpRequest, HttpResponse
from django.utils import translation
from ninja import Router, Status

from turnus.apps.catalog.schemas import plain_decimal
from turnus.apps.customers.clocks import at as clock_at
from turnus.apps.customers.clocks import frozen_times
from turnus.apps.metering import queries, services
from turnus.apps.metering.schemas import EventBatchOut, EventIn, EventOut, UsageLineOut, UsageOut
from turnus.apps.subscriptions import state as states
from turnus.apps.subscriptions.services import get_subscription
from turnus.core import clock
from turnus.core.api import scope_of
from turnus.core.errors import ValidationFailed, problem_for
from turnus.core.scope import Scope
from turnus.engine import lifecycle
from turnus.engine.money import Money

router = Router(tags=["usage"])


def _request_body(item: dict[str, Any], *, batch: bool) -> dict[str, Any]:
    schema = item
    if batch:
        schema = {
            "type": "object",
            "required": ["events"],
            "additionalProperties": False,
            "properties": {
                "events": {"type": "array", "minItems": 1, "maxItems": services.MAX_BATCH, "items": item}
            },
        }
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": schema}}}}


_EVENT_SCHEMA = EventIn.model_json_schema()


def _utc(instant: datetime) -> str:
    return instant.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _event_out(scope: Scope, event: services.AcceptedEvent, *, duplicate: bool) -> EventOut:
    return EventOut(
        transaction_id=event.transaction_id,
        livemode=scope.livemode,
        subscription=event.subscription,
        customer=event.customer,
        metric=event.metric,
        timestamp=event.timestamp,
        properties=dict(event.properties),
        created_at=event.created_at,
        duplicate=duplicate,
        voided=event.voided,
    )


@router.post(
    "/events",
    response={200: EventOut, 201: EventOut},
    operation_id="create_usage_event",
    summary="Record one usage event",
    openapi_extra=_request_body(_EVENT_SCHEMA, batch=False),
)
def create_event(request: HttpRequest) -> Status[EventOut]:
    scope = scope_of(request)
    body = services.parse_body(request.body)
    if not isinstance(body, dict):
        raise ValidationFailed("the body must be an event object", field="body")
    (result,) = services.ingest(scope, [body])
    if result.error is not None:
        raise result.error
    if result.event is not None:
        return Status(201, _event_out(scope, result.event, duplicate=False))
    stored = services.stored_event(scope, result.transaction_id or "")
    return Status(200, _event_out(scope, stored, duplicate=True))


def _result_json(result: services.EventResult) -> dict[str, Any]:
    error = None
    if result.error is not None:
        problem = problem_for(result.error)
        error = {
            "status": problem.status,
            "code": result.error.code,
            "field": result.error.field,
            "message": result.error.message,
        }
    return {
        "index": result.index,
        "transaction_id": result.transaction_id,
        "status": result.status,
        "error": error,
    }


@router.post(
    "/events/batch",
    response={200: EventBatchOut},
    operation_id="create_usage_events",
    summary="Record up to 1,000 usage events; each is answered on its own",
    openapi_extra=_request_body(_EVENT_SCHEMA, batch=True),
)
def create_events(request: HttpRequest) -> HttpResponse:
    scope = scope_of(request)
    body = services.parse_body(request.body)
    if not isinstance(body, dict) or set(body) != {"events"}:
        raise ValidationFailed('the body must be {"events": [...]}', field="events")
    results = services.ingest(scope, body["events"])
    counts = dict.fromkeys(services.EventStatus, 0)
    for result in results:
        counts[result.status] += 1
    payload = {
        "object": "usage_event_batch",
        "created": counts[services.EventStatus.CREATED],
        "duplicates": counts[services.EventStatus.DUPLICATE],
        "rejected": counts[services.EventStatus.REJECTED],
        "data": [_result_json(result) for result in results],
    }
    return HttpResponse(json.dumps(payload, separators=(",", ":")), content_type="application/json")


@router.post(
    "/events/{transaction_id}/void",
    response=EventOut,
    operation_id="void_usage_event",
    summary="Void a usage event sent by mistake, before its period is invoiced",
)
def void_event(request: HttpRequest, transaction_id: str) -> EventOut:
    scope = scope_of(request)
    return _event_out(scope, services.void_event(scope, transaction_id), duplicate=False)


def _current_period(subscription: Any, now: datetime) -> Any:
    state = states.load(subscription, states.TermsCache())
    return lifecycle.advance(state, at=max(now, state.as_of)).subscription.current_period


@router.get("/subscriptions/{id}/usage", response=UsageOut, operation_id="retrieve_subscription_usage")
def retrieve_usage(request: HttpRequest, id: str) -> UsageOut:
    scope = scope_of(request)
    subscription = get_subscription(scope, id)
    currency = subscription.plan_version.currency
    with clock_at(frozen_times(scope, [subscription.customer_id]).get(subscription.customer_id)):
        period = _current_period(subscription, clock.now())
    lines = [] if period is None else queries.usage_for_period(scope, subscription, period)
    language = translation.get_language() or "en"
    rounded = [line.amount.rounded() for line in lines]
    total = sum((amount.amount for amount in rounded), Decimal(0))
    return UsageOut(
        subscription=subscription.public_id,
        livemode=scope.livemode,
        currency=currency,
        period_start=period.start if period else None,
        period_end=period.end if period else None,
        lines=[
            UsageLineOut(
                charge=line.charge,
                name=(line.charge_name_de or line.charge_name_en)
                if language.startswith("de")
                else (line.charge_name_en or line.charge_name_de),
                metric=line.metric,
                group=line.group,
                quantity=plain_decimal(line.quantity),
                amount=amount.amount,
            )
            for line, amount in zip(lines, rounded, strict=True)
        ],
        total=Money(total, currency).rounded().amount,
    )
