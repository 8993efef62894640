"""Subscriptions: the stored form of the engine's lifecycle state, and the charges its moves cause."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import NamedTuple

from django.db import models
from django.utils.translation import gettext_lazy as _

from turnus.engine.lifecycle import ItemKind, SubscriptionStatus

STATUS_CHOICES = [
    (SubscriptionStatus.PENDING.value, _("pending")),
    (SubscriptionStatus.TRIALING.value, _("trialing")),
    (SubscriptionStatus.ACTIVE.value, _("active")),
    (SubscriptionStatus.PAUSED.value, _("paused")),
    (SubscriptionStatus.CANCELLED.value, _("cancelled")),
    (SubscriptionStatus.ENDED.value, _("ended")),
]
ITEM_KIND_CHOICES = [
    (ItemKind.RECURRING.value, _("recurring fee")),
    (ItemKind.PRORATION_CREDIT.value, _("proration credit")),
    (ItemKind.PRORATION_CHARGE.value, _("proration charge")),
    (ItemKind.USED.value, _("used part of the period")),
]


class Subscription(models.Model):
    public_id = models.CharField(_("id"), max_length=40, unique=True, editable=False)
    tenant = models.ForeignKey("tenants.Tenant", on_delete=models.PROTECT, related_name="+")
    livemode = models.BooleanField(_("live mode"))
    created_at = models.DateTimeField(_("created at"))
    customer = models.ForeignKey(
        "customers.Customer",
        on_delete=models.PROTECT,
        related_name="subscriptions",
        verbose_name=_("customer"),
    )
    plan = models.ForeignKey(
        "catalog.Plan", on_delete=models.PROTECT, related_name="subscriptions", verbose_name=_("plan")
    )
    plan_version = models.ForeignKey(
        "catalog.PlanVersion",
        on_delete=models.PROTECT,
        related_name="subscriptions",
        verbose_name=_("plan version"),
    )
    quantity = models.DecimalField(_("quantity"), max_digits=20, decimal_places=6)
    status = models.CharField(_("status"), max_length=12, choices=STATUS_CHOICES, db_index=True)
    timezone = models.CharField(_("timezone"), max_length=64)
    started_at = models.DateTimeField(_("starts at"))
    as_of = models.DateTimeField(_("state as of"))
    billing_anchor = models.DateField(_("billing anchor"))
    current_period_start = models.DateTimeField(_("current period start"), null=True, blank=True)
    current_period_end = models.DateTimeField(_("current period end"), null=True, blank=True)
    proration_basis_start = models.DateTimeField(null=True, blank=True)
    proration_basis_end = models.DateTimeField(null=True, blank=True)
    segment_start = models.DateTimeField(null=True, blank=True)
    trial_end = models.DateTimeField(_("trial ends"), null=True, blank=True)
    contract_start = models.DateTimeField(_("contract start"), null=True, blank=True)
    contract_end = models.DateTimeField(_("contract term ends"), null=True, blank=True)
    contract_renewals = models.PositiveIntegerField(_("contract renewals"), default=0)
    cancel_at = models.DateTimeField(_("ends at"), null=True, blank=True)
    cancelled_at = models.DateTimeField(_("cancelled at"), null=True, blank=True)
    ended_at = models.DateTimeField(_("ended at"), null=True, blank=True)
    pause = models.JSONField(_("pause"), null=True, blank=True)
    scheduled_plan_version = models.ForeignKey(
        "catalog.PlanVersion",
        on_delete=models.PROTECT,
        related_name="+",
        null=True,
        blank=True,
        verbose_name=_("scheduled plan version"),
    )
    scheduled_quantity = models.DecimalField(
        _("scheduled quantity"), max_digits=20, decimal_places=6, null=True, blank=True
    )
    scheduled_requested_at = models.DateTimeField(_("change requested at"), null=True, blank=True)
    component_quantities = models.JSONField(
        _("component quantities"),
        default=dict,
        blank=True,
        help_text=_("Quantity of each of the plan's quantity charges, by charge code."),
    )
    scheduled_component_quantities = models.JSONField(
        _("scheduled component quantities"), null=True, blank=True
    )
    scheduled_components_at = models.DateTimeField(_("component quantities change at"), null=True, blank=True)
    next_event_at = models.DateTimeField(_("next lifecycle event"), null=True, blank=True, db_index=True)
    coupon = models.ForeignKey(
        "catalog.Coupon",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("coupon"),
    )
    metadata = models.JSONField(_("metadata"), default=dict, blank=True)

    class Meta:
        verbose_name = _("subscription")
        verbose_name_plural = _("subscriptions")
        ordering = ("-public_id",)
        indexes = (
            models.Index(fields=("tenant", "livemode", "-public_id")),
            models.Index(fields=("tenant", "livemode", "customer")),
        )

    def __str__(self) -> str:
        return self.public_id


class SubscriptionAddOn(models.Model):
    subscription = models.ForeignKey(Subscription, on_delete=models.CASCADE, related_name="addons")
    addon = models.ForeignKey(
        "catalog.AddOn", on_delete=models.PROTECT, related_name="+", verbose_name=_("add-on")
    )
    quantity = models.DecimalField(_("quantity"), max_digits=20, decimal_places=6, default=1)
    added_at = models.DateTimeField(_("added at"))
    changes = models.JSONField(
        _("quantity changes"),
        default=list,
        blank=True,
        editable=False,
        help_text=_("Every quantity the add-on had or is to have, from when on; empty if it never changed."),
    )
    scheduled_quantity = models.DecimalField(
        _("scheduled quantity"), max_digits=20, decimal_places=6, null=True, blank=True, editable=False
    )
    scheduled_at = models.DateTimeField(_("quantity changes at"), null=True, blank=True, editable=False)

    class Meta:
        verbose_name = _("subscription add-on")
        verbose_name_plural = _("subscription add-ons")
        constraints = (
            models.UniqueConstraint(fields=("subscription", "addon"), name="subscription_addon_unique"),
        )

    def __str__(self) -> str:
        return f"{self.subscription_id}: {self.addon_id}"

    def timeline(self) -> list[AddOnQuantity]:
        """The add-on's quantities over time, oldest first (one for all time if it never changed)."""
        if not self.changes:
            return [AddOnQuantity(None, Decimal(self.quantity), False)]
        return [
            AddOnQuantity(
                None if entry["at"] is None else datetime.fromisoformat(entry["at"]),
                Decimal(entry["quantity"]),
                entry.get("timing") == PERIOD_END,
            )
            for entry in self.changes
        ]

    def quantity_at(self, instant: datetime) -> Decimal:
        """The quantity a period (or the part of one) beginning at ``instant`` bills.

        A change for a period end counts from its instant on; a change made now counts only after its
        instant, as its proration pays for the rest of the period it was made in."""
        quantity = Decimal(0)
        for change in self.timeline():
            if change.at is None or change.at < instant or (change.at == instant and change.at_period_end):
                quantity = change.quantity
        return quantity

    def quantity_as_of(self, instant: datetime) -> Decimal:
        """The quantity once every change made or due by ``instant`` took effect."""
        quantity = Decimal(0)
        for change in self.timeline():
            if change.at is None or change.at <= instant:
                quantity = change.quantity
        return quantity

    def pending(self, instant: datetime) -> AddOnQuantity | None:
        """The change that takes effect after ``instant``, if one is scheduled."""
        later = [change for change in self.timeline() if change.at is not None and change.at > instant]
        return later[-1] if later else None


PERIOD_END = "period_end"


class AddOnQuantity(NamedTuple):
    """An add-on's quantity from ``at`` on (``None``: since it was added); ``at_period_end`` if it took
    effect at the end of a period rather than when it was made."""

    at: datetime | None
    quantity: Decimal
    at_period_end: bool


class SubscriptionCharge(models.Model):
    """A charge or credit a lifecycle move caused, waiting for the next invoice."""

    public_id = models.CharField(_("id"), max_length=40, unique=True, editable=False)
    tenant = models.ForeignKey("tenants.Tenant", on_delete=models.PROTECT, related_name="+")
    livemode = models.BooleanField(_("live mode"))
    subscription = models.ForeignKey(Subscription, on_delete=models.PROTECT, related_name="charges")
    kind = models.CharField(_("kind"), max_length=20, choices=ITEM_KIND_CHOICES)
    plan_version = models.CharField(_("plan version"), max_length=40)
    period_start = models.DateTimeField(_("from"))
    period_end = models.DateTimeField(_("until"))
    amount = models.DecimalField(_("amount"), max_digits=30, decimal_places=12)
    currency = models.CharField(_("currency"), max_length=3)
    quantity = models.DecimalField(_("quantity"), max_digits=20, decimal_places=6)
    description = models.CharField(_("description"), max_length=200)
    created_at = models.DateTimeField(_("created at"))

    class Meta:
        verbose_name = _("pending charge")
        verbose_name_plural = _("pending charges")
        ordering = ("public_id",)
        indexes = (models.Index(fields=("tenant", "livemode", "subscription", "public_id")),)

    def __str__(self) -> str:
        return f"{self.kind} {self.amount} {self.currency}"


class PlanMigration(models.Model):
    """Moving a plan's subscribers to one of its versions, now or from a date on."""

    public_id = models.CharField(_("id"), max_length=40, unique=True, editable=False)
    tenant = models.ForeignKey("tenants.Tenant", on_delete=models.PROTECT, related_name="+")
    livemode = models.BooleanField(_("live mode"))
    plan = models.ForeignKey(
        "catalog.Plan", on_delete=models.PROTECT, related_name="+", verbose_name=_("plan")
    )
    target_version = models.ForeignKey(
        "catalog.PlanVersion", on_delete=models.PROTECT, related_name="+", verbose_name=_("to version")
    )
    effective = models.CharField(_("takes effect"), max_length=12)
    effective_at = models.DateTimeField(_("from"), db_index=True)
    applied_at = models.DateTimeField(_("applied at"), null=True, blank=True)
    migrated = models.JSONField(_("migrated subscriptions"), default=list, blank=True)
    skipped = models.JSONField(_("skipped subscriptions"), default=list, blank=True)
    created_at = models.DateTimeField(_("created at"))

    class Meta:
        verbose_name = _("plan migration")
        verbose_name_plural = _("plan migrations")
        ordering = ("-public_id",)
        indexes = (models.Index(fields=("applied_at", "effective_at")),)

    def __str__(self) -> str:
        return self.public_id
