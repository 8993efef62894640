"""Invoices and credit notes as issued: lines, VAT breakdown, allowances and totals exactly as the engine
composed them, with snapshots of supplier and recipient. Finalized documents never change."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from turnus.core.errors import Conflict


def _money_field(verbose_name: Any, **kwargs: Any) -> models.DecimalField:  # type: ignore[type-arg]
    return models.DecimalField(verbose_name, max_digits=30, decimal_places=12, **kwargs)


class DocumentKind(models.TextChoices):
    INVOICE = "invoice", _("invoice")
    CREDIT_NOTE = "credit_note", _("credit note")


class InvoiceStatus(models.TextChoices):
    DRAFT = "draft", _("draft")
    FINALIZED = "finalized", _("finalized")
    PAID = "paid", _("paid")
    VOID = "void", _("void")


#: The moves a finalized document may still make, and the one field each move sets besides ``status``.
ALLOWED_MOVES: dict[tuple[str, str], str] = {
    (InvoiceStatus.FINALIZED, InvoiceStatus.PAID): "paid_at",
    (InvoiceStatus.FINALIZED, InvoiceStatus.VOID): "voided_at",
}

#: Translations of the engine's VAT note keys, as invoices print them.
VAT_NOTES = {
    "reverse_charge": _("Reverse charge: the recipient is liable for the VAT."),
    "intra_community_supply": _("Tax-exempt intra-community supply."),
    "small_business_exemption": _("No VAT is charged under the small business rule (§19 UStG)."),
    "not_taxable_in_eu": _("Not taxable in the EU: the place of supply is outside the EU."),
    "export_outside_eu": _("Tax-exempt export outside the EU."),
    "tax_exempt": _("Exempt from VAT."),
}


class ImmutableInvoice(Conflict):
    """The invoice is finalized and can no longer change. Correct it with a credit note."""

    code = "invoice_immutable"


class Invoice(models.Model):
    """An invoice or credit note.

    Its indexes are the ones its queries use, no more: the billing run writes and finalizes thousands of
    invoices per second, and every index is written with each of them (the tenant's composite index
    serves the tenant alone; drafts, the only status looked up across a tenant, have a partial index).
    """

    public_id = models.CharField(_("id"), max_length=40, editable=False)
    tenant = models.ForeignKey("tenants.Tenant", on_delete=models.PROTECT, related_name="+", db_index=False)
    livemode = models.BooleanField(_("live mode"))
    created_at = models.DateTimeField(_("created at"))
    customer = models.ForeignKey(
        "customers.Customer", on_delete=models.PROTECT, related_name="+", verbose_name=_("customer")
    )
    subscription = models.ForeignKey(
        "subscriptions.Subscription",
        on_delete=models.PROTECT,
        related_name="+",
        null=True,
        blank=True,
        verbose_name=_("subscription"),
    )
    kind = models.CharField(_("kind"), max_length=12, choices=DocumentKind.choices)
    status = models.CharField(_("status"), max_length=10, choices=InvoiceStatus.choices)
    number = models.CharField(_("number"), max_length=60, null=True, blank=True)
    currency = models.CharField(_("currency"), max_length=3)
    locale = models.CharField(_("language"), max_length=5)
    period_start = models.DateTimeField(_("period start"), null=True, blank=True)
    period_end = models.DateTimeField(_("period end"), null=True, blank=True)
    usage_start = models.DateTimeField(_("usage from"), null=True, blank=True)
    usage_end = models.DateTimeField(_("usage until"), null=True, blank=True)
    issue_date = models.DateField(_("issue date"), null=True, blank=True)
    due_date = models.DateField(_("due date"), null=True, blank=True)
    supplier = models.JSONField(_("supplier"))
    recipient = models.JSONField(_("recipient"))
    prices_include_tax = models.BooleanField(_("prices include VAT"), default=False)
    line_total = _money_field(_("sum of line net amounts"))
    allowance_total = _money_field(_("sum of allowances"))
    tax_exclusive = _money_field(_("total without VAT"))
    tax_total = _money_field(_("total VAT"))
    grand_total = _money_field(_("total with VAT"))
    rounding_amount = _money_field(_("rounding amount"))
    prepaid = _money_field(_("paid in advance"))
    amount_due = _money_field(_("amount due"))
    credit_note_for = models.ForeignKey(
        "self",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="credit_notes",
        verbose_name=_("corrected invoice"),
        db_index=False,
    )
    reason = models.CharField(_("reason"), max_length=500, blank=True)
    finalized_at = models.DateTimeField(_("finalized at"), null=True, blank=True)
    paid_at = models.DateTimeField(_("paid at"), null=True, blank=True)
    voided_at = models.DateTimeField(_("voided at"), null=True, blank=True)

    _loaded_status: str | None = None

    class Meta:
        verbose_name = _("invoice")
        verbose_name_plural = _("invoices")
        ordering = ("-public_id",)
        indexes = (
            models.Index(fields=("tenant", "livemode", "kind", "-public_id")),
            models.Index(
                fields=("tenant", "created_at"),
                condition=Q(status="draft"),
                name="billing_invoice_drafts",
            ),
            models.Index(
                fields=("credit_note_for",),
                condition=Q(credit_note_for__isnull=False),
                name="billing_invoice_corrected",
            ),
        )
        constraints = (
            models.UniqueConstraint(fields=("public_id",), name="billing_invoice_public_id_unique"),
            models.UniqueConstraint(
                fields=("tenant", "livemode", "kind", "number"),
                condition=Q(number__isnull=False),
                name="billing_invoice_number_unique",
            ),
            models.CheckConstraint(
                condition=Q(status__in=("draft", "void")) | Q(number__isnull=False),
                name="billing_invoice_numbered_once_issued",
            ),
        )

    def __str__(self) -> str:
        return self.number or self.public_id

    @classmethod
    def from_db(cls, *args: Any, **kwargs: Any) -> Invoice:
        instance = super().from_db(*args, **kwargs)
        instance._loaded_status = instance.__dict__.get("status")
        return instance

    def save(self, *args: Any, **kwargs: Any) -> None:
        loaded = self._loaded_status
        if loaded is not None and loaded != InvoiceStatus.DRAFT and not self._state.adding:
            self._check_allowed_move(loaded, kwargs.get("update_fields"))
        super().save(*args, **kwargs)
        self._loaded_status = self.status

    def _check_allowed_move(self, loaded: str, update_fields: Any) -> None:
        moved_field = ALLOWED_MOVES.get((loaded, self.status))
        if moved_field is None or update_fields is None or not set(update_fields) <= {"status", moved_field}:
            raise ImmutableInvoice(f"invoice {self} is {loaded} and can no longer change", field="status")

    def delete(self, *args: Any, **kwargs: Any) -> tuple[int, dict[str, int]]:
        if self._loaded_status not in (None, InvoiceStatus.DRAFT):
            raise ImmutableInvoice(f"invoice {self} is {self._loaded_status} and cannot be deleted")
        return super().delete(*args, **kwargs)

    @property
    def is_credit_note(self) -> bool:
        return self.kind == DocumentKind.CREDIT_NOTE


class BilledPeriod(models.Model):
    """One subscription period an invoice bills: the key that makes each period billed exactly once.

    Written in the transaction that stores the invoice; an invoice has one (the invoice of one
    subscription, whose ``Invoice.subscription`` is set) or several (a consolidated invoice of a
    customer's subscriptions, whose ``Invoice.subscription`` is empty). A voided invoice keeps its rows,
    as before: its period stays billed. ``usage_start``/``usage_end`` say which usage of the
    subscription the invoice billed; finalizing closes metering up to ``usage_end``."""

    invoice = models.ForeignKey(
        Invoice, on_delete=models.CASCADE, related_name="billed_periods", verbose_name=_("invoice")
    )
    subscription = models.ForeignKey(
        "subscriptions.Subscription",
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("subscription"),
        db_index=False,  # the unique constraint's index starts with it
    )
    kind = models.CharField(
        _("kind"), max_length=12, choices=DocumentKind.choices, default=DocumentKind.INVOICE
    )
    period_start = models.DateTimeField(_("period start"))
    period_end = models.DateTimeField(_("period end"))
    usage_start = models.DateTimeField(_("usage from"), null=True, blank=True)
    usage_end = models.DateTimeField(_("usage until"), null=True, blank=True)

    class Meta:
        verbose_name = _("billed period")
        verbose_name_plural = _("billed periods")
        ordering = ("invoice", "period_start", "id")
        constraints = (
            models.UniqueConstraint(
                fields=("subscription", "period_start", "period_end", "kind"),
                name="billing_period_billed_once",
            ),
        )

    def __str__(self) -> str:
        return f"{self.subscription_id} [{self.period_start}, {self.period_end})"


class InvoicePart(models.Model):
    """A part of an invoice; it changes only while the invoice is a draft."""

    invoice = models.ForeignKey(Invoice, on_delete=models.CASCADE, related_name="+")

    class Meta:
        abstract = True

    def _refuse_unless_draft(self) -> None:
        if Invoice.objects.filter(pk=self.invoice_id).exclude(status=InvoiceStatus.DRAFT).exists():
            raise ImmutableInvoice(f"invoice {self.invoice_id} is finalized and can no longer change")

    def save(self, *args: Any, **kwargs: Any) -> None:
        self._refuse_unless_draft()
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> tuple[int, dict[str, int]]:
        self._refuse_unless_draft()
        return super().delete(*args, **kwargs)


class InvoiceLine(InvoicePart):
    invoice = models.ForeignKey(
        Invoice,
        on_delete=models.CASCADE,
        related_name="lines",
        verbose_name=_("invoice"),
        db_index=False,  # the unique constraint's index starts with it
    )
    position = models.PositiveIntegerField(_("position"))
    description = models.CharField(_("description"), max_length=300)
    quantity = _money_field(_("quantity"))
    unit_price = _money_field(_("unit price"))
    net_amount = _money_field(_("net amount"))
    gross_amount = _money_field(_("gross amount"), null=True, blank=True)
    vat_category = models.CharField(_("VAT category"), max_length=2)
    vat_rate = models.DecimalField(_("VAT rate"), max_digits=7, decimal_places=4)
    vat_country = models.CharField(_("VAT country"), max_length=2, blank=True)
    vat_reason = models.CharField(_("VAT exemption reason"), max_length=40, blank=True)
    vat_note = models.CharField(_("VAT note"), max_length=40, blank=True)
    kind = models.CharField(_("kind"), max_length=20)
    period_start = models.DateTimeField(_("from"), null=True, blank=True)
    period_end = models.DateTimeField(_("until"), null=True, blank=True)
    metadata = models.JSONField(_("metadata"), default=dict, blank=True)

    class Meta:
        verbose_name = _("invoice line")
        verbose_name_plural = _("invoice lines")
        ordering = ("invoice", "position")
        constraints = (
            models.UniqueConstraint(fields=("invoice", "position"), name="billing_line_position_unique"),
        )

    def __str__(self) -> str:
        return self.description


class InvoiceVatBreakdown(InvoicePart):
    invoice = models.ForeignKey(
        Invoice, on_delete=models.CASCADE, related_name="vat_breakdown", verbose_name=_("invoice")
    )
    category = models.CharField(_("VAT category"), max_length=2)
    rate = models.DecimalField(_("VAT rate"), max_digits=7, decimal_places=4)
    taxable_amount = _money_field(_("taxable amount"))
    tax_amount = _money_field(_("VAT amount"))
    reason_code = models.CharField(_("VAT exemption reason"), max_length=40, blank=True)
    note = models.CharField(_("VAT note"), max_length=40, blank=True)

    class Meta:
        verbose_name = _("VAT breakdown")
        verbose_name_plural = _("VAT breakdown")
        ordering = ("invoice", "id")

    def __str__(self) -> str:
        return f"{self.category} {self.rate}%"


class InvoiceAllowance(InvoicePart):
    invoice = models.ForeignKey(
        Invoice, on_delete=models.CASCADE, related_name="allowances", verbose_name=_("invoice")
    )
    discount_code = models.CharField(_("discount"), max_length=64)
    category = models.CharField(_("VAT category"), max_length=2)
    rate = models.DecimalField(_("VAT rate"), max_digits=7, decimal_places=4)
    amount = _money_field(_("amount"))

    class Meta:
        verbose_name = _("allowance")
        verbose_name_plural = _("allowances")
        ordering = ("invoice", "id")

    def __str__(self) -> str:
        return f"{self.discount_code} {self.amount}"


class InvoicedCharge(models.Model):
    """A subscription's pending charge and the invoice that billed it; each charge is billed once."""

    charge = models.OneToOneField(
        "subscriptions.SubscriptionCharge",
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("charge"),
    )
    invoice = models.ForeignKey(
        Invoice, on_delete=models.PROTECT, related_name="invoiced_charges", verbose_name=_("invoice")
    )

    class Meta:
        verbose_name = _("invoiced charge")
        verbose_name_plural = _("invoiced charges")

    def __str__(self) -> str:
        return f"{self.charge_id} → {self.invoice_id}"


class NumberSeries(models.Model):
    """The last number a tenant gave to one kind of document in one mode (and year, if numbered by year)."""

    tenant = models.ForeignKey("tenants.Tenant", on_delete=models.PROTECT, related_name="+")
    livemode = models.BooleanField(_("live mode"))
    kind = models.CharField(_("kind"), max_length=12, choices=DocumentKind.choices)
    year = models.PositiveIntegerField(_("year"), help_text=_("0 when the format has no year."))
    counter = models.PositiveIntegerField(_("last number"), default=0)

    class Meta:
        verbose_name = _("number series")
        verbose_name_plural = _("number series")
        constraints = (
            models.UniqueConstraint(
                fields=("tenant", "livemode", "kind", "year"), name="billing_number_series_unique"
            ),
        )

    def __str__(self) -> str:
        return f"{self.kind} {self.year or ''} #{self.counter}"


class BillingSettings(models.Model):
    """A tenant's billing settings; a tenant without a row uses the defaults."""

    tenant = models.OneToOneField(
        "tenants.Tenant", on_delete=models.CASCADE, related_name="+", verbose_name=_("tenant")
    )
    draft_grace_period = models.DurationField(
        _("draft grace period"),
        default=timedelta(0),
        help_text=_(
            "How long an invoice made by the billing run stays a draft so late usage can still arrive; "
            "0 finalizes it at once."
        ),
    )
    consolidate_invoices = models.BooleanField(
        _("consolidate invoices"),
        default=False,
        help_text=_(
            "The billing run puts a customer's subscriptions that fall due in the same run and bill in "
            "the same currency on one invoice."
        ),
    )

    class Meta:
        verbose_name = _("billing settings")
        verbose_name_plural = _("billing settings")

    def __str__(self) -> str:
        return f"{self.tenant_id}: {self.draft_grace_period}"


class BillingSchedule(models.Model):
    """When the billing run next looks at a subscription (``next_billing_at``, ``None``: never again
    unless the subscription's lifecycle falls due). Billing owns it, so subscriptions know nothing of
    billing; the run keeps it up to date."""

    subscription = models.OneToOneField(
        "subscriptions.Subscription",
        on_delete=models.CASCADE,
        related_name="billing_schedule",
        verbose_name=_("subscription"),
    )
    tenant = models.ForeignKey("tenants.Tenant", on_delete=models.PROTECT, related_name="+")
    livemode = models.BooleanField(_("live mode"))
    next_billing_at = models.DateTimeField(_("next billing run"), null=True, blank=True, db_index=True)
    checked_at = models.DateTimeField(_("last billing run"))

    class Meta:
        verbose_name = _("billing schedule")
        verbose_name_plural = _("billing schedules")

    def __str__(self) -> str:
        return f"{self.subscription_id} @ {self.next_billing_at}"


class BillingError(models.Model):
    """A subscription the billing run could not invoice, and why; the run tries it again later."""

    public_id = models.CharField(_("id"), max_length=40, unique=True, editable=False)
    tenant = models.ForeignKey("tenants.Tenant", on_delete=models.PROTECT, related_name="+")
    livemode = models.BooleanField(_("live mode"))
    created_at = models.DateTimeField(_("at"))
    subscription = models.ForeignKey(
        "subscriptions.Subscription",
        on_delete=models.CASCADE,
        related_name="+",
        verbose_name=_("subscription"),
    )
    code = models.CharField(_("error code"), max_length=60)
    reason = models.TextField(_("reason"))

    class Meta:
        verbose_name = _("billing error")
        verbose_name_plural = _("billing errors")
        ordering = ("-public_id",)
        indexes = (models.Index(fields=("tenant", "livemode", "-public_id")),)

    def __str__(self) -> str:
        return f"{self.subscription_id}: {self.code}"


# --- one-off charges, customer credit balance, refunds ------------------------------------------------


class ChargeStatus(models.TextChoices):
    PENDING = "pending", _("pending")
    INVOICED = "invoiced", _("invoiced")
    VOID = "void", _("void")


class CustomerCharge(models.Model):
    """A one-off charge of a customer, billed once by the next invoice of that customer in its currency
    (the named subscription's, or a standalone invoice made at once)."""

    public_id = models.CharField(_("id"), max_length=40, unique=True, editable=False)
    tenant = models.ForeignKey("tenants.Tenant", on_delete=models.PROTECT, related_name="+")
    livemode = models.BooleanField(_("live mode"))
    created_at = models.DateTimeField(_("created at"))
    customer = models.ForeignKey(
        "customers.Customer", on_delete=models.PROTECT, related_name="+", verbose_name=_("customer")
    )
    subscription = models.ForeignKey(
        "subscriptions.Subscription",
        on_delete=models.PROTECT,
        related_name="+",
        null=True,
        blank=True,
        verbose_name=_("subscription"),
    )
    description = models.CharField(_("description"), max_length=300)
    unit_amount = _money_field(_("unit amount"))
    quantity = models.PositiveIntegerField(_("quantity"))
    currency = models.CharField(_("currency"), max_length=3)
    prices_include_tax = models.BooleanField(_("prices include VAT"), default=False)
    tax_category = models.CharField(_("tax category"), max_length=12)
    status = models.CharField(_("status"), max_length=10, choices=ChargeStatus.choices)
    invoice = models.ForeignKey(
        Invoice,
        on_delete=models.PROTECT,
        related_name="customer_charges",
        null=True,
        blank=True,
        verbose_name=_("invoice"),
    )
    voided_at = models.DateTimeField(_("voided at"), null=True, blank=True)

    class Meta:
        verbose_name = _("one-off charge")
        verbose_name_plural = _("one-off charges")
        ordering = ("-public_id",)
        indexes = (
            models.Index(fields=("tenant", "livemode", "-public_id")),
            models.Index(fields=("customer", "currency", "status")),
        )
        constraints = (
            models.CheckConstraint(
                condition=Q(status="invoiced", invoice__isnull=False)
                | (~Q(status="invoiced") & Q(invoice__isnull=True)),
                name="billing_charge_invoiced_has_invoice",
            ),
        )

    def __str__(self) -> str:
        return f"{self.description} ({self.public_id})"


class CustomerBalance(models.Model):
    """What a tenant owes a customer in one currency (positive: credit the customer's next invoices use).

    The sum of the customer's balance transactions in that currency, kept in the same transaction as
    each of them; its row is what concurrent users of the balance lock."""

    tenant = models.ForeignKey("tenants.Tenant", on_delete=models.PROTECT, related_name="+")
    livemode = models.BooleanField(_("live mode"))
    customer = models.ForeignKey(
        "customers.Customer", on_delete=models.PROTECT, related_name="+", verbose_name=_("customer")
    )
    currency = models.CharField(_("currency"), max_length=3)
    amount = _money_field(_("balance"), default=0)
    updated_at = models.DateTimeField(_("updated at"))

    class Meta:
        verbose_name = _("customer balance")
        verbose_name_plural = _("customer balances")
        ordering = ("customer", "currency")
        constraints = (
            models.UniqueConstraint(fields=("customer", "currency"), name="billing_balance_per_currency"),
        )

    def __str__(self) -> str:
        return f"{self.customer_id}: {self.amount} {self.currency}"


class BalanceTransactionKind(models.TextChoices):
    ADJUSTMENT = "adjustment", _("adjustment")
    CREDIT_NOTE = "credit_note", _("credit note")
    APPLIED_TO_INVOICE = "applied_to_invoice", _("applied to invoice")
    INVOICE_VOIDED = "invoice_voided", _("invoice voided")


class BalanceTransaction(models.Model):
    """One change of a customer's balance: positive credits the customer, negative uses or debits it."""

    public_id = models.CharField(_("id"), max_length=40, unique=True, editable=False)
    tenant = models.ForeignKey("tenants.Tenant", on_delete=models.PROTECT, related_name="+")
    livemode = models.BooleanField(_("live mode"))
    created_at = models.DateTimeField(_("created at"))
    customer = models.ForeignKey(
        "customers.Customer", on_delete=models.PROTECT, related_name="+", verbose_name=_("customer")
    )
    amount = _money_field(_("amount"))
    currency = models.CharField(_("currency"), max_length=3)
    ending_balance = _money_field(_("balance afterwards"))
    kind = models.CharField(_("kind"), max_length=20, choices=BalanceTransactionKind.choices)
    invoice = models.ForeignKey(
        Invoice,
        on_delete=models.PROTECT,
        related_name="+",
        null=True,
        blank=True,
        verbose_name=_("invoice"),
    )
    credit_note = models.ForeignKey(
        Invoice,
        on_delete=models.PROTECT,
        related_name="+",
        null=True,
        blank=True,
        verbose_name=_("credit note"),
    )
    description = models.CharField(_("description"), max_length=500)

    class Meta:
        verbose_name = _("balance transaction")
        verbose_name_plural = _("balance transactions")
        ordering = ("-public_id",)
        indexes = (
            models.Index(fields=("tenant", "livemode", "-public_id")),
            models.Index(fields=("customer", "-public_id")),
        )

    def __str__(self) -> str:
        return f"{self.kind} {self.amount} {self.currency}"


class RefundStatus(models.TextChoices):
    DUE = "due", _("due")
    REFUNDED = "refunded", _("refunded")


class Refund(models.Model):
    """Money a credit note says the tenant owes back to the customer, until the tenant marks it paid out."""

    public_id = models.CharField(_("id"), max_length=40, unique=True, editable=False)
    tenant = models.ForeignKey("tenants.Tenant", on_delete=models.PROTECT, related_name="+")
    livemode = models.BooleanField(_("live mode"))
    created_at = models.DateTimeField(_("created at"))
    customer = models.ForeignKey(
        "customers.Customer", on_delete=models.PROTECT, related_name="+", verbose_name=_("customer")
    )
    credit_note = models.ForeignKey(
        Invoice, on_delete=models.PROTECT, related_name="refunds", verbose_name=_("credit note")
    )
    amount = _money_field(_("amount"))
    currency = models.CharField(_("currency"), max_length=3)
    status = models.CharField(_("status"), max_length=10, choices=RefundStatus.choices)
    refunded_at = models.DateTimeField(_("refunded at"), null=True, blank=True)

    class Meta:
        verbose_name = _("refund")
        verbose_name_plural = _("refunds")
        ordering = ("-public_id",)
        indexes = (models.Index(fields=("tenant", "livemode", "-public_id")),)
        constraints = (models.CheckConstraint(condition=Q(amount__gt=0), name="billing_refund_positive"),)

    def __str__(self) -> str:
        return f"{self.amount} {self.currency} ({self.public_id})"
