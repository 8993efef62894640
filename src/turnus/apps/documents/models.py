"""Rendered documents of issued invoices and credit notes: one file per invoice and format, stored once
with its SHA-256 and never replaced."""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _

from turnus.apps.documents.storage import document_storage


class DocumentFormat(models.TextChoices):
    PDF = "pdf", _("PDF")
    FACTURX_PDF = "facturx_pdf", _("ZUGFeRD / Factur-X PDF")
    XRECHNUNG_XML = "xrechnung_xml", _("XRechnung XML")
    CII_XML = "cii_xml", _("CII XML")


#: Media type and file extension of each format.
MEDIA_TYPES = {
    DocumentFormat.PDF: ("application/pdf", "pdf"),
    DocumentFormat.FACTURX_PDF: ("application/pdf", "pdf"),
    DocumentFormat.XRECHNUNG_XML: ("application/xml", "xml"),
    DocumentFormat.CII_XML: ("application/xml", "xml"),
}


class Document(models.Model):
    public_id = models.CharField(_("id"), max_length=40, unique=True, editable=False)
    tenant = models.ForeignKey("tenants.Tenant", on_delete=models.PROTECT, related_name="+")
    livemode = models.BooleanField(_("live mode"))
    created_at = models.DateTimeField(_("created at"))
    invoice = models.ForeignKey(
        "billing.Invoice", on_delete=models.PROTECT, related_name="documents", verbose_name=_("invoice")
    )
    format = models.CharField(_("format"), max_length=20, choices=DocumentFormat.choices)
    file = models.FileField(_("file"), storage=document_storage, max_length=300)
    sha256 = models.CharField(_("SHA-256"), max_length=64)
    size = models.PositiveIntegerField(_("size in bytes"))

    class Meta:
        verbose_name = _("document")
        verbose_name_plural = _("documents")
        ordering = ("-public_id",)
        indexes = (models.Index(fields=("tenant", "livemode", "-public_id")),)
        constraints = (
            models.UniqueConstraint(
                fields=("invoice", "format"), name="documents_once_per_invoice_and_format"
            ),
        )

    def __str__(self) -> str:
        return f"{self.invoice} ({self.get_format_display()})"

    @property
    def media_type(self) -> str:
        return MEDIA_TYPES[DocumentFormat(self.format)][0]

    @property
    def extension(self) -> str:
        return MEDIA_TYPES[DocumentFormat(self.format)][1]


class DeliveryKind(models.TextChoices):
    AUTO = "auto", _("automatic")
    MANUAL = "manual", _("resent")


class DeliveryStatus(models.TextChoices):
    PENDING = "pending", _("pending")
    SENT = "sent", _("sent")
    FAILED = "failed", _("failed")
    SKIPPED = "skipped", _("skipped")


class Delivery(models.Model):
    """One e-mail of an issued invoice or credit note to its customer and the attempts to send it: the
    automatic one made once per invoice when its documents are rendered, and one per resend."""

    public_id = models.CharField(_("id"), max_length=40, unique=True, editable=False)
    tenant = models.ForeignKey("tenants.Tenant", on_delete=models.PROTECT, related_name="+")
    livemode = models.BooleanField(_("live mode"))
    created_at = models.DateTimeField(_("created at"))
    invoice = models.ForeignKey(
        "billing.Invoice", on_delete=models.PROTECT, related_name="deliveries", verbose_name=_("invoice")
    )
    kind = models.CharField(_("kind"), max_length=10, choices=DeliveryKind.choices)
    status = models.CharField(_("status"), max_length=10, choices=DeliveryStatus.choices)
    recipient = models.CharField(_("recipient"), max_length=254, blank=True)
    attempts = models.PositiveSmallIntegerField(_("attempts"), default=0)
    last_error = models.TextField(_("last error"), blank=True)
    last_attempt_at = models.DateTimeField(_("last attempt at"), null=True, blank=True)
    next_attempt_at = models.DateTimeField(_("next attempt at"), null=True, blank=True)
    sent_at = models.DateTimeField(_("sent at"), null=True, blank=True)
    message_id = models.CharField(_("message id"), max_length=255, blank=True)

    class Meta:
        verbose_name = _("e-mail delivery")
        verbose_name_plural = _("e-mail deliveries")
        ordering = ("-public_id",)
        indexes = (
            models.Index(fields=("tenant", "livemode", "-public_id")),
            models.Index(fields=("status", "next_attempt_at")),
        )
        constraints = (
            models.UniqueConstraint(
                fields=("invoice",),
                condition=models.Q(kind="auto"),
                name="documents_one_automatic_delivery_per_invoice",
            ),
        )

    def __str__(self) -> str:
        return f"{self.invoice} → {self.recipient or '-'} ({self.get_status_display()})"
