"""Tables every app shares: the audit log, the domain-event outbox and stored idempotent responses.

They carry the tenant as a plain id, not a foreign key: they sit below the tenants app, and an audit
trail must outlive anything it speaks of.
"""

from __future__ import annotations

from typing import Any, ClassVar

from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from turnus.core.errors import Conflict


class TenantScopedQuerySet(models.QuerySet):  # type: ignore[type-arg]
    def in_scope(self, tenant_id: int, livemode: bool) -> TenantScopedQuerySet:
        return self.filter(tenant_id=tenant_id, livemode=livemode)


class AppendOnly(models.Model):
    """A row that is written once and never changed or deleted through the ORM."""

    class Meta:
        abstract = True

    def save(self, *args: Any, **kwargs: Any) -> None:
        if self.pk is not None and not self._state.adding:
            raise Conflict(f"{type(self).__name__} rows are append-only")
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> tuple[int, dict[str, int]]:
        raise Conflict(f"{type(self).__name__} rows are append-only")


class AuditEvent(AppendOnly):
    # The indexes are what the trail's reads need and no more: every change writes a row (several per
    # invoice in a billing run), and each index costs that insert. Unique constraints instead of
    # ``unique=True`` fields spare PostgreSQL's extra pattern index, which no query here uses.
    public_id = models.CharField(max_length=40)
    tenant_id = models.BigIntegerField()
    livemode = models.BooleanField()
    actor = models.CharField(_("actor"), max_length=80)
    action = models.CharField(_("action"), max_length=80)
    object_type = models.CharField(_("object type"), max_length=40)
    object_id = models.CharField(_("object id"), max_length=40)
    before = models.JSONField(_("before"), null=True, blank=True)
    after = models.JSONField(_("after"), null=True, blank=True)
    request_id = models.CharField(_("request id"), max_length=40)
    created_at = models.DateTimeField(_("created at"))
    #: When the change happened in the time of the object it concerns: a test clock's frozen time for that
    #: clock's customers, else the same instant as ``created_at`` (which is always the real time).
    occurred_at = models.DateTimeField(_("occurred at"), null=True, blank=True)

    objects: ClassVar[TenantScopedQuerySet] = TenantScopedQuerySet.as_manager()  # type: ignore[assignment]

    class Meta:
        verbose_name = _("audit event")
        verbose_name_plural = _("audit events")
        ordering = ("-public_id",)
        indexes = (
            models.Index(fields=("tenant_id", "livemode", "-public_id")),
            models.Index(fields=("object_id",), name="core_audit_object_id"),
        )
        constraints = (models.UniqueConstraint(fields=("public_id",), name="core_audit_public_id_unique"),)

    def __str__(self) -> str:
        return f"{self.action} {self.object_id}"


class OutboxEvent(AppendOnly):
    """A domain event written in the same transaction as the change it reports; published later."""

    public_id = models.CharField(max_length=40)
    tenant_id = models.BigIntegerField()
    livemode = models.BooleanField()
    type = models.CharField(_("type"), max_length=80)
    object_id = models.CharField(_("object id"), max_length=40)
    payload = models.JSONField(_("payload"))
    created_at = models.DateTimeField(_("created at"))

    objects: ClassVar[TenantScopedQuerySet] = TenantScopedQuerySet.as_manager()  # type: ignore[assignment]

    class Meta:
        verbose_name = _("domain event")
        verbose_name_plural = _("domain events")
        ordering = ("public_id",)
        indexes = (models.Index(fields=("tenant_id", "livemode", "public_id")),)
        constraints = (models.UniqueConstraint(fields=("public_id",), name="core_outbox_public_id_unique"),)

    def __str__(self) -> str:
        return f"{self.type} {self.object_id}"


class IdempotencyRecord(models.Model):
    """The first response to a POST with an ``Idempotency-Key``, replayed for repeats."""

    tenant_id = models.BigIntegerField()
    livemode = models.BooleanField()
    key = models.CharField(max_length=255)
    request_hash = models.CharField(max_length=64)
    status_code = models.PositiveSmallIntegerField(default=0)
    response_body = models.BinaryField(default=b"")
    content_type = models.CharField(max_length=80, default="application/json")
    created_at = models.DateTimeField(db_index=True)

    class Meta:
        constraints = (
            models.UniqueConstraint(fields=("tenant_id", "livemode", "key"), name="idempotency_key_unique"),
            models.CheckConstraint(condition=~Q(key=""), name="idempotency_key_not_empty"),
        )

    def __str__(self) -> str:
        return self.key
