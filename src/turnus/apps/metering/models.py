"""Usage events (append-only), their transaction-id ledger, voids and the usage watermark per subscription.

On PostgreSQL the events table is partitioned by month on ``timestamp`` (see migration 0001), so no
unique index can cover ``transaction_id`` alone; exactly-once lives in ``EventTransaction`` instead,
an unpartitioned table written in the same transaction as the events. An event's identity in the API is
its ``transaction_id`` (unique per tenant and mode), so events carry no ``public_id`` of their own.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django.db import models
from django.db.backends.base.base import BaseDatabaseWrapper
from django.utils.translation import gettext_lazy as _

from turnus.core.models import AppendOnly

TRANSACTION_ID_MAX_LENGTH = 100
GROUP_KEY_MAX_LENGTH = 500


class ExactDecimalField(models.Field):  # type: ignore[type-arg]
    """An exact decimal: ``numeric(30, 12)`` on PostgreSQL, its decimal text on SQLite (never a float)."""

    description = "exact decimal"

    def db_type(self, connection: BaseDatabaseWrapper) -> str:
        return "numeric(30, 12)" if connection.vendor == "postgresql" else "text"

    def from_db_value(self, value: Any, expression: Any, connection: BaseDatabaseWrapper) -> Decimal | None:
        return None if value is None else Decimal(value)

    def to_python(self, value: Any) -> Decimal | None:
        return None if value is None else Decimal(value)

    def get_prep_value(self, value: Any) -> Any:
        return None if value is None else Decimal(value)

    def get_db_prep_value(self, value: Any, connection: BaseDatabaseWrapper, prepared: bool = False) -> Any:
        value = self.get_prep_value(value)
        if value is None or connection.vendor == "postgresql":
            return value
        return format(value, "f")


class UsageEvent(AppendOnly):
    """One usage event as accepted. ``value``, ``group_key`` and ``distinct_key`` are read from the
    properties at ingestion by the metric's definition, which cannot change once a subscription uses it."""

    id = models.BigAutoField(primary_key=True)
    tenant = models.ForeignKey(
        "tenants.Tenant", on_delete=models.DO_NOTHING, db_constraint=False, db_index=False, related_name="+"
    )
    livemode = models.BooleanField(_("live mode"))
    transaction_id = models.CharField(_("transaction id"), max_length=TRANSACTION_ID_MAX_LENGTH)
    subscription = models.ForeignKey(
        "subscriptions.Subscription",
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        db_index=False,
        related_name="+",
        verbose_name=_("subscription"),
    )
    metric = models.ForeignKey(
        "catalog.BillableMetric",
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        db_index=False,
        related_name="+",
        verbose_name=_("billable metric"),
    )
    timestamp = models.DateTimeField(_("timestamp"))
    value = ExactDecimalField(_("value"), null=True, blank=True)
    group_key = models.CharField(_("group"), max_length=GROUP_KEY_MAX_LENGTH, null=True, blank=True)
    distinct_key = models.CharField(
        _("distinct value"), max_length=GROUP_KEY_MAX_LENGTH, null=True, blank=True
    )
    properties = models.JSONField(_("properties"), default=dict)
    created_at = models.DateTimeField(_("received at"))

    class Meta:
        verbose_name = _("usage event")
        verbose_name_plural = _("usage events")
        ordering = ("-timestamp",)
        indexes = (
            models.Index(
                fields=("tenant", "livemode", "subscription", "metric", "timestamp"),
                name="metering_event_usage_idx",
            ),
        )

    def __str__(self) -> str:
        return self.transaction_id


class EventTransaction(models.Model):
    """Every transaction id ever accepted, with a hash of what it carried: the exactly-once ledger."""

    tenant_id = models.BigIntegerField()
    livemode = models.BooleanField()
    transaction_id = models.CharField(max_length=TRANSACTION_ID_MAX_LENGTH)
    content_hash = models.CharField(max_length=32)
    subscription_id = models.BigIntegerField()
    metric_id = models.BigIntegerField()
    timestamp = models.DateTimeField()
    created_at = models.DateTimeField()

    class Meta:
        constraints = (
            models.UniqueConstraint(
                fields=("tenant_id", "livemode", "transaction_id"), name="metering_transaction_id_unique"
            ),
        )

    def __str__(self) -> str:
        return self.transaction_id


class VoidReason(models.TextChoices):
    VOIDED = "voided", _("voided")
    CORRECTED = "corrected", _("corrected")


class EventVoid(AppendOnly):
    """An event cancelled before its period was invoiced: voided outright or replaced by a correction."""

    tenant = models.ForeignKey("tenants.Tenant", on_delete=models.PROTECT, related_name="+")
    livemode = models.BooleanField(_("live mode"))
    transaction_id = models.CharField(_("transaction id"), max_length=TRANSACTION_ID_MAX_LENGTH)
    subscription_id = models.BigIntegerField()
    metric_id = models.BigIntegerField()
    timestamp = models.DateTimeField(_("event timestamp"))
    reason = models.CharField(_("reason"), max_length=12, choices=VoidReason.choices)
    corrected_by = models.CharField(_("corrected by"), max_length=TRANSACTION_ID_MAX_LENGTH, blank=True)
    created_at = models.DateTimeField(_("voided at"))

    class Meta:
        verbose_name = _("voided usage event")
        verbose_name_plural = _("voided usage events")
        ordering = ("-created_at",)
        indexes = (
            models.Index(
                fields=("tenant", "livemode", "subscription_id", "metric_id", "timestamp"),
                name="metering_void_usage_idx",
            ),
        )
        constraints = (
            models.UniqueConstraint(
                fields=("tenant", "livemode", "transaction_id"), name="metering_void_once"
            ),
        )

    def __str__(self) -> str:
        return self.transaction_id


class UsageWatermark(models.Model):
    """Usage of ``subscription`` before ``closed_until`` is invoiced: billing advances it at finalisation."""

    tenant = models.ForeignKey("tenants.Tenant", on_delete=models.PROTECT, related_name="+")
    livemode = models.BooleanField(_("live mode"))
    subscription = models.OneToOneField(
        "subscriptions.Subscription",
        on_delete=models.CASCADE,
        related_name="usage_watermark",
        verbose_name=_("subscription"),
    )
    closed_until = models.DateTimeField(
        _("usage closed until"),
        help_text=_("Events before this instant are refused: their invoice is final."),
    )
    updated_at = models.DateTimeField(_("updated at"))

    class Meta:
        verbose_name = _("usage watermark")
        verbose_name_plural = _("usage watermarks")
        ordering = ("subscription",)

    def __str__(self) -> str:
        return f"{self.subscription_id}: {self.closed_until.isoformat()}"


class UsageSettings(models.Model):
    """A tenant's metering settings: how long after a period ends its invoice stays a draft for late usage."""

    tenant = models.OneToOneField(
        "tenants.Tenant", on_delete=models.CASCADE, related_name="+", verbose_name=_("tenant")
    )
    late_event_grace = models.DurationField(
        _("grace window for late events"),
        help_text=_(
            "How long after a period ends late usage events are still accepted before the invoice is final."
        ),
    )

    class Meta:
        verbose_name = _("usage settings")
        verbose_name_plural = _("usage settings")

    def __str__(self) -> str:
        return str(self.late_event_grace)
