"""Tenants (merchants), their API keys and which back-office users belong to them."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _


class Tenant(models.Model):
    public_id = models.CharField(_("id"), max_length=40, unique=True, editable=False)
    slug = models.SlugField(_("slug"), max_length=60, unique=True)
    legal_name = models.CharField(_("legal name"), max_length=200)
    address_line1 = models.CharField(_("street and number"), max_length=200)
    address_line2 = models.CharField(_("address line 2"), max_length=200, blank=True)
    postal_code = models.CharField(_("postal code"), max_length=20)
    city = models.CharField(_("city"), max_length=100)
    country = models.CharField(_("country"), max_length=2, help_text=_("ISO 3166 alpha-2, e.g. DE"))
    vat_id = models.CharField(_("VAT id"), max_length=20, blank=True)
    tax_number = models.CharField(_("tax number"), max_length=30, blank=True)
    small_business = models.BooleanField(
        _("small business (§19 UStG)"), default=False, help_text=_("Invoices carry no VAT.")
    )
    default_currency = models.CharField(_("default currency"), max_length=3, default="EUR")
    timezone = models.CharField(_("timezone"), max_length=64, default="Europe/Berlin")
    locale = models.CharField(_("language"), max_length=5, default="de", choices=settings.LANGUAGES)
    invoice_number_format = models.CharField(
        _("invoice number format"), max_length=60, default="RE-{year}-{seq:06}"
    )
    credit_note_number_format = models.CharField(
        _("credit note number format"), max_length=60, default="GS-{year}-{seq:06}"
    )
    iban = models.CharField(_("IBAN"), max_length=34, blank=True)
    bic = models.CharField(_("BIC"), max_length=11, blank=True)
    sepa_creditor_id = models.CharField(_("SEPA creditor id"), max_length=35, blank=True)
    email = models.EmailField(_("e-mail"), blank=True)
    phone = models.CharField(
        _("telephone"), max_length=30, blank=True, help_text=_("Printed on invoices; XRechnung requires it.")
    )
    contact_name = models.CharField(
        _("contact person"),
        max_length=200,
        blank=True,
        help_text=_("Named as the seller contact in e-invoices; the legal name when empty."),
    )
    created_at = models.DateTimeField(_("created at"))

    class Meta:
        verbose_name = _("tenant")
        verbose_name_plural = _("tenants")
        ordering = ("legal_name",)
        constraints = (
            models.CheckConstraint(
                condition=~Q(vat_id="") | ~Q(tax_number="") | Q(small_business=True),
                name="tenant_has_vat_id_or_tax_number",
            ),
        )

    def __str__(self) -> str:
        return self.legal_name


class TenantLogo(models.Model):
    """The logo printed at the top of the tenant's invoices: a PNG, JPEG or SVG image, checked when set.

    It lives in its own row so that loading a tenant (as most requests do) never loads the image.
    """

    class ContentType(models.TextChoices):
        PNG = "image/png", "PNG"
        JPEG = "image/jpeg", "JPEG"
        SVG = "image/svg+xml", "SVG"

    tenant = models.OneToOneField(
        Tenant, on_delete=models.CASCADE, primary_key=True, related_name="logo", verbose_name=_("tenant")
    )
    content_type = models.CharField(_("image type"), max_length=20, choices=ContentType.choices)
    content = models.BinaryField(_("image"))
    sha256 = models.CharField(max_length=64)
    updated_at = models.DateTimeField(_("updated at"))

    class Meta:
        verbose_name = _("logo")
        verbose_name_plural = _("logos")
        constraints = (
            models.CheckConstraint(
                condition=Q(content_type__in=("image/png", "image/jpeg", "image/svg+xml")),
                name="tenant_logo_content_type_valid",
            ),
        )

    def __str__(self) -> str:
        return f"{self.tenant_id}: {self.content_type}"

    @property
    def size(self) -> int:
        return len(self.content)


class ApiKey(models.Model):
    class Kind(models.TextChoices):
        SECRET = "secret", _("secret")
        PUBLISHABLE = "publishable", _("publishable")

    public_id = models.CharField(_("id"), max_length=40, unique=True, editable=False)
    tenant = models.ForeignKey(Tenant, on_delete=models.PROTECT, related_name="api_keys")
    livemode = models.BooleanField(_("live mode"))
    kind = models.CharField(_("kind"), max_length=12, choices=Kind.choices)
    name = models.CharField(_("name"), max_length=100, blank=True)
    prefix = models.CharField(_("key begins with"), max_length=20, editable=False)
    key_hash = models.CharField(max_length=64, unique=True, editable=False)
    created_at = models.DateTimeField(_("created at"))
    revoked_at = models.DateTimeField(_("revoked at"), null=True, blank=True)

    class Meta:
        verbose_name = _("API key")
        verbose_name_plural = _("API keys")
        ordering = ("-created_at",)

    def __str__(self) -> str:
        return f"{self.prefix}…"

    @property
    def active(self) -> bool:
        return self.revoked_at is None


class StaffMembership(models.Model):
    """A back-office user who works for one tenant and sees only its data."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="membership")
    tenant = models.ForeignKey(Tenant, on_delete=models.PROTECT, related_name="staff")

    class Meta:
        verbose_name = _("staff membership")
        verbose_name_plural = _("staff memberships")

    def __str__(self) -> str:
        return f"{self.user} @ {self.tenant}"
