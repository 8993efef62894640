"""Request and response bodies of the metering routes."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any, Literal

from ninja import Schema
from pydantic import Field

from turnus.apps.metering.models import TRANSACTION_ID_MAX_LENGTH
from turnus.apps.metering.services import MAX_PROPERTIES
from turnus.core.api import DecimalString, InputSchema

PropertyValue = str | int | Decimal | bool | None


class EventIn(InputSchema):
    """One usage event. Name the customer (its id or your external id) or the subscription."""

    transaction_id: str = Field(
        min_length=1,
        max_length=TRANSACTION_ID_MAX_LENGTH,
        description="Your unique id of the event; a repeat with the same content is accepted once.",
    )
    customer: str | None = Field(default=None, max_length=120, description="cus_… or your external id")
    subscription: str | None = Field(default=None, max_length=40, description="sub_…")
    metric: str = Field(min_length=1, max_length=64, description="The billable metric's code")
    timestamp: datetime | None = Field(
        default=None, description="RFC 3339 with offset; at most 5 minutes ahead. Default: now."
    )
    properties: dict[str, PropertyValue] = Field(
        default_factory=dict, max_length=MAX_PROPERTIES, description="A flat object, at most 4 KB"
    )
    corrects: str | None = Field(
        default=None,
        max_length=TRANSACTION_ID_MAX_LENGTH,
        description="The transaction id of an event this one replaces; that event is voided.",
    )


class EventOut(Schema):
    object: Literal["usage_event"] = "usage_event"
    transaction_id: str
    livemode: bool
    subscription: str
    customer: str
    metric: str
    timestamp: datetime
    properties: dict[str, Any]
    created_at: datetime
    duplicate: bool = Field(description="True when this transaction id was accepted before: nothing changed.")
    voided: bool


class EventErrorOut(Schema):
    status: int
    code: str
    field: str | None
    message: str


class EventResultOut(Schema):
    index: int
    transaction_id: str | None
    status: Literal["created", "duplicate", "rejected"]
    error: EventErrorOut | None


class EventBatchOut(Schema):
    object: Literal["usage_event_batch"] = "usage_event_batch"
    created: int
    duplicates: int
    rejected: int
    data: list[EventResultOut]


class UsageLineOut(Schema):
    charge: str
    name: str
    metric: str
    group: str | None
    quantity: DecimalString
    amount: DecimalString = Field(description="Rounded to the currency's minor unit, as an invoice line.")


class UsageOut(Schema):
    object: Literal["usage"] = "usage"
    subscription: str
    livemode: bool
    currency: str
    period_start: datetime | None
    period_end: datetime | None
    lines: list[UsageLineOut]
    total: DecimalString
