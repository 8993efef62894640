"""Back-office: invoices and credit notes with their lines (read-only; changes go through the services)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.contrib import admin, messages
from django.db.models import Model, QuerySet
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _

from turnus.apps.billing import services
from turnus.apps.billing.models import (
    BalanceTransaction,
    BilledPeriod,
    BillingError,
    BillingSettings,
    CustomerBalance,
    CustomerCharge,
    Invoice,
    InvoiceAllowance,
    InvoiceLine,
    InvoiceVatBreakdown,
    Refund,
)
from turnus.apps.tenants.admin import ReadOnlyAdmin, TenantScopedAdmin, actor_of
from turnus.core.errors import TurnusError
from turnus.core.scope import Scope


class ReadOnlyInline(admin.TabularInline):  # type: ignore[type-arg]
    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False


class InvoiceLineInline(ReadOnlyInline):
    model = InvoiceLine
    fields = ("position", "description", "quantity", "unit_price", "net_amount", "vat_category", "vat_rate")
    readonly_fields = fields


class VatBreakdownInline(ReadOnlyInline):
    model = InvoiceVatBreakdown
    fields = ("category", "rate", "taxable_amount", "tax_amount", "reason_code", "note")
    readonly_fields = fields


class BilledPeriodInline(ReadOnlyInline):
    model = BilledPeriod
    fields = ("subscription", "period_start", "period_end", "usage_start", "usage_end")
    readonly_fields = fields


class AllowanceInline(ReadOnlyInline):
    model = InvoiceAllowance
    fields = ("discount_code", "category", "rate", "amount")
    readonly_fields = fields


def _run(
    request: HttpRequest, queryset: QuerySet[Invoice], step: Callable[[Scope, str], Any], done: str
) -> None:
    succeeded = 0
    for invoice in queryset:
        scope = Scope(invoice.tenant_id, invoice.livemode, actor_of(request))
        try:
            step(scope, invoice.public_id)
        except TurnusError as error:
            messages.error(request, f"{invoice}: {error.message}")
        else:
            succeeded += 1
    if succeeded:
        messages.success(request, _("%(count)d invoices %(done)s.") % {"count": succeeded, "done": done})


@admin.register(Invoice)
class InvoiceAdmin(ReadOnlyAdmin):
    list_display = (
        "public_id",
        "number",
        "kind",
        "status",
        "customer",
        "period_start",
        "grand_total",
        "currency",
        "livemode",
    )
    list_filter = ("kind", "status", "livemode")
    search_fields = ("public_id", "number", "customer__public_id", "customer__name")
    list_select_related = ("customer",)
    inlines = (BilledPeriodInline, InvoiceLineInline, VatBreakdownInline, AllowanceInline)
    actions = ("finalize", "void", "mark_paid")
    exclude = ("tenant",)

    def has_view_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return bool(request.user.is_active and request.user.is_staff)

    @admin.action(description=_("Finalize the selected draft invoices"))
    def finalize(self, request: HttpRequest, queryset: QuerySet[Invoice]) -> None:
        _run(request, queryset, services.finalize, str(_("finalized")))

    @admin.action(description=_("Void the selected invoices"))
    def void(self, request: HttpRequest, queryset: QuerySet[Invoice]) -> None:
        _run(request, queryset, services.void, str(_("voided")))

    @admin.action(description=_("Mark the selected invoices as paid"))
    def mark_paid(self, request: HttpRequest, queryset: QuerySet[Invoice]) -> None:
        _run(request, queryset, services.mark_paid, str(_("marked as paid")))


@admin.register(BillingError)
class BillingErrorAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "subscription", "code", "reason", "livemode")
    list_filter = ("code", "livemode")
    search_fields = ("public_id", "subscription__public_id", "reason")
    list_select_related = ("subscription",)
    exclude = ("tenant",)

    def has_view_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return bool(request.user.is_active and request.user.is_staff)


@admin.register(BillingSettings)
class BillingSettingsAdmin(TenantScopedAdmin):
    list_display = ("tenant", "draft_grace_period", "consolidate_invoices")

    def get_readonly_fields(self, request: HttpRequest, obj: Model | None = None) -> tuple[str, ...]:
        return ("tenant",) if obj is not None else ()

    def has_add_permission(self, request: HttpRequest) -> bool:
        return bool(request.user.is_active and request.user.is_superuser)

    def save_model(self, request: HttpRequest, obj: BillingSettings, form: Any, change: bool) -> None:
        scope = Scope(obj.tenant_id, True, actor_of(request))
        saved = services.update_billing_settings(
            scope,
            draft_grace_period=obj.draft_grace_period,
            consolidate_invoices=obj.consolidate_invoices,
        )
        obj.pk = saved.pk


@admin.register(CustomerCharge)
class CustomerChargeAdmin(ReadOnlyAdmin):
    list_display = ("public_id", "customer", "description", "unit_amount", "quantity", "currency", "status")
    list_filter = ("status", "currency", "livemode")
    search_fields = ("public_id", "description", "customer__public_id", "customer__name")
    list_select_related = ("customer",)
    exclude = ("tenant",)

    def has_view_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return bool(request.user.is_active and request.user.is_staff)


@admin.register(CustomerBalance)
class CustomerBalanceAdmin(ReadOnlyAdmin):
    list_display = ("customer", "currency", "amount", "updated_at", "livemode")
    list_filter = ("currency", "livemode")
    search_fields = ("customer__public_id", "customer__name")
    list_select_related = ("customer",)
    exclude = ("tenant",)

    def has_view_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return bool(request.user.is_active and request.user.is_staff)


@admin.register(BalanceTransaction)
class BalanceTransactionAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "customer", "kind", "amount", "currency", "ending_balance", "livemode")
    list_filter = ("kind", "currency", "livemode")
    search_fields = ("public_id", "customer__public_id", "customer__name", "description")
    list_select_related = ("customer",)
    exclude = ("tenant",)

    def has_view_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return bool(request.user.is_active and request.user.is_staff)


@admin.register(Refund)
class RefundAdmin(ReadOnlyAdmin):
    list_display = ("public_id", "customer", "amount", "currency", "status", "created_at", "refunded_at")
    list_filter = ("status", "currency", "livemode")
    search_fields = ("public_id", "customer__public_id", "customer__name", "credit_note__number")
    list_select_related = ("customer",)
    exclude = ("tenant",)

    def has_view_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return bool(request.user.is_active and request.user.is_staff)
