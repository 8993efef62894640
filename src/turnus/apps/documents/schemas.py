"""Requests and answers of the documents routes: e-mail deliveries of invoices and credit notes."""

from __future__ import annotations

from datetime import datetime

from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from ninja import Field, Schema
from pydantic import field_validator

from turnus.apps.documents.models import Delivery
from turnus.core.api import InputSchema


class SendIn(InputSchema):
    to: str | None = Field(
        default=None,
        max_length=254,
        description="Send to this address instead of the customer's (the address on the invoice).",
    )

    @field_validator("to")
    @classmethod
    def _address(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            validate_email(value)
        except ValidationError:
            raise ValueError("not a valid e-mail address") from None
        return value


class DeliveryOut(Schema):
    id: str
    object: str
    livemode: bool
    created_at: datetime
    invoice: str = Field(description="The invoice or credit note sent.")
    kind: str = Field(description="`auto` (sent once when it was issued) or `manual` (a resend).")
    status: str = Field(
        description="`pending`, `sent`, `failed` (after the last retry, or at once when the mail server "
        "refuses the recipient or the message permanently) or `skipped`."
    )
    recipient: str
    attempts: int
    last_error: str | None = Field(description="Why the last attempt failed, or why it was skipped.")
    next_attempt_at: datetime | None = Field(description="When a pending delivery is (re)tried.")
    sent_at: datetime | None
    message_id: str = Field(description="The Message-ID header of the e-mail.")


def delivery_out(delivery: Delivery) -> DeliveryOut:
    return DeliveryOut(
        id=delivery.public_id,
        object="delivery",
        livemode=delivery.livemode,
        created_at=delivery.created_at,
        invoice=delivery.invoice.public_id,
        kind=delivery.kind,
        status=delivery.status,
        recipient=delivery.recipient,
        attempts=delivery.attempts,
        last_error=delivery.last_error or None,
        next_attempt_at=delivery.next_attempt_at,
        sent_at=delivery.sent_at,
        message_id=delivery.message_id,
    )
