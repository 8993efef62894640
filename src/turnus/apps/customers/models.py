"""Customers: who a tenant bills, where, in which language and with which tax treatment."""

from __future__ import annotations

from typing import ClassVar

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from turnus.core.models import TenantScopedQuerySet


class TaxExempt(models.TextChoices):
    NONE = "none", _("taxable")
    EXEMPT = "exempt", _("exempt")
    REVERSE = "reverse", _("reverse charge")


class Customer(models.Model):
    public_id = models.CharField(_("id"), max_length=40, unique=True, editable=False)
    tenant = models.ForeignKey("tenants.Tenant", on_delete=models.PROTECT, related_name="customers")
    livemode = models.BooleanField(_("live mode"))
    name = models.CharField(_("name"), max_length=200)
    company = models.CharField(_("company"), max_length=200, blank=True)
    email = models.EmailField(_("e-mail"), max_length=254)
    address_line1 = models.CharField(_("street and number"), max_length=200)
    address_line2 = models.CharField(_("address line 2"), max_length=200, blank=True)
    postal_code = models.CharField(_("postal code"), max_length=20)
    city = models.CharField(_("city"), max_length=100)
    state = models.CharField(_("state or region"), max_length=100, blank=True)
    country = models.CharField(_("country"), max_length=2, help_text=_("ISO 3166 alpha-2, e.g. DE"))
    locale = models.CharField(_("language"), max_length=5, choices=settings.LANGUAGES)
    timezone = models.CharField(_("timezone"), max_length=64)
    vat_id = models.CharField(_("VAT id"), max_length=20, blank=True)
    tax_exempt = models.CharField(
        _("tax exemption"), max_length=10, choices=TaxExempt.choices, default=TaxExempt.NONE
    )
    external_id = models.CharField(
        _("external id"), max_length=120, blank=True, help_text=_("The customer's id in your own system.")
    )
    metadata = models.JSONField(_("metadata"), default=dict, blank=True)
    created_at = models.DateTimeField(_("created at"))
    deleted_at = models.DateTimeField(_("deleted at"), null=True, blank=True, editable=False)

    objects: ClassVar[TenantScopedQuerySet] = TenantScopedQuerySet.as_manager()  # type: ignore[assignment]

    class Meta:
        verbose_name = _("customer")
        verbose_name_plural = _("customers")
        ordering = ("-public_id",)
        indexes = (
            models.Index(fields=("tenant", "livemode", "-public_id")),
            models.Index(fields=("tenant", "livemode", "email")),
        )
        constraints = (
            models.UniqueConstraint(
                fields=("tenant", "livemode", "external_id"),
                condition=~Q(external_id="") & Q(deleted_at__isnull=True),
                name="customer_external_id_unique",
            ),
            models.CheckConstraint(
                condition=Q(tax_exempt__in=TaxExempt.values), name="customer_tax_exempt_valid"
            ),
        )

    def __str__(self) -> str:
        return f"{self.company} ({self.name})" if self.company else self.name

    @property
    def is_business(self) -> bool:
        return bool(self.company or self.vat_id)

    @property
    def deleted(self) -> bool:
        return self.deleted_at is not None
