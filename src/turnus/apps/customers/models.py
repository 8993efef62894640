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


class EInvoiceFormat(models.TextChoices):
    """Which e-invoice the customer gets besides the PDF; every invoice is a ZUGFeRD / Factur-X PDF."""

    FACTURX = "", _("ZUGFeRD / Factur-X only")
    XRECHNUNG = "xrechnung", _("XRechnung as well")


class TestClock(models.Model):
    """A test-mode clock that customers attach to: their billing sees its frozen time, never the real one."""

    __test__ = False  # not a pytest test class

    public_id = models.CharField(_("id"), max_length=40, unique=True, editable=False)
    tenant = models.ForeignKey("tenants.Tenant", on_delete=models.PROTECT, related_name="test_clocks")
    livemode = models.BooleanField(_("live mode"), default=False)
    name = models.CharField(_("name"), max_length=300, blank=True)
    frozen_time = models.DateTimeField(_("frozen time"))
    created_at = models.DateTimeField(_("created at"))
    deleted_at = models.DateTimeField(_("deleted at"), null=True, blank=True, editable=False)

    objects: ClassVar[TenantScopedQuerySet] = TenantScopedQuerySet.as_manager()  # type: ignore[assignment]

    class Meta:
        verbose_name = _("test clock")
        verbose_name_plural = _("test clocks")
        ordering = ("-public_id",)
        indexes = (models.Index(fields=("tenant", "livemode", "-public_id")),)
        constraints = (models.CheckConstraint(condition=Q(livemode=False), name="test_clock_test_mode_only"),)

    def __str__(self) -> str:
        return self.name or self.public_id


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
    einvoice_format = models.CharField(
        _("e-invoice format"), max_length=20, choices=EInvoiceFormat.choices, default="", blank=True
    )
    buyer_reference = models.CharField(
        _("buyer reference / Leitweg-ID"),
        max_length=100,
        blank=True,
        help_text=_(
            "Printed on e-invoices as the buyer reference (BT-10); public buyers need their Leitweg-ID."
        ),
    )
    electronic_address = models.CharField(
        _("electronic address"),
        max_length=254,
        blank=True,
        help_text=_(
            "Where e-invoices are addressed (BT-49): SCHEME:id such as 0204:991-33333TEST-33, or an e-mail "
            "address; the customer's e-mail address when empty."
        ),
    )
    test_clock = models.ForeignKey(
        TestClock,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        editable=False,
        related_name="customers",
        verbose_name=_("test clock"),
    )
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
            models.CheckConstraint(
                condition=Q(einvoice_format__in=EInvoiceFormat.values), name="customer_einvoice_format_valid"
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
