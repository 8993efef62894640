"""Back-office for the catalog; changes go through the services, staff see only their tenant.

Plans are created and edited through the API (an edit may make a new version); here they are listed,
inspected with their versions and charges, and archived.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import Model, QuerySet
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _

from turnus.apps.catalog import services
from turnus.apps.catalog.models import (
    AddOn,
    BillableMetric,
    Coupon,
    Plan,
    PlanCharge,
    PlanVersion,
    Product,
    TenantOwned,
)
from turnus.apps.tenants.admin import TenantScopedAdmin, actor_of, tenant_of
from turnus.apps.tenants.models import Tenant
from turnus.core.errors import TurnusError
from turnus.core.scope import Scope

_OWNER_FIELDS = ("public_id", "tenant", "livemode", "created_at")


def _scope(request: HttpRequest, obj: TenantOwned) -> Scope:
    return Scope(obj.tenant_id, obj.livemode, actor_of(request))


class ServiceAdmin(TenantScopedAdmin):
    """Saves through ``create``/``update`` use cases built from the form's ``service_fields``."""

    service_fields: tuple[str, ...] = ()
    immutable_fields: tuple[str, ...] = ()
    create_case: Callable[[Scope, Mapping[str, Any]], TenantOwned]
    #: ``None`` when the objects cannot be edited once made (their change page is then view-only).
    update_case: Callable[[Scope, str, Mapping[str, Any]], TenantOwned] | None = None

    def has_change_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        if obj is not None and self.update_case is None:
            return False
        return super().has_change_permission(request, obj)

    def service_data(self, cleaned: Mapping[str, Any]) -> dict[str, Any]:
        return {name: cleaned[name] for name in self.service_fields if name in cleaned}

    def get_readonly_fields(self, request: HttpRequest, obj: Model | None = None) -> tuple[str, ...]:
        if obj is None:
            return ("public_id", "created_at")
        return (*_OWNER_FIELDS, *self.immutable_fields)

    def formfield_for_foreignkey(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        tenant = tenant_of(request)
        if db_field.name == "tenant" and tenant is not None:
            kwargs["queryset"] = Tenant.objects.filter(pk=tenant.pk)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def save_model(self, request: HttpRequest, obj: Any, form: forms.ModelForm, change: bool) -> None:  # type: ignore[type-arg]
        data = self.service_data(form.cleaned_data)
        try:
            if not change:
                saved = self.create_case(_scope(request, obj), data)
            elif self.update_case is not None:
                saved = self.update_case(_scope(request, obj), obj.public_id, data)
            else:
                raise PermissionDenied
        except TurnusError as error:
            self.message_user(request, error.message, level=messages.ERROR)
            raise
        obj.pk, obj.public_id = saved.pk, saved.public_id

    def has_delete_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False


def _archive_action(
    archive: Callable[[Scope, str], Any], description: Any
) -> Callable[[Any, HttpRequest, QuerySet[Any]], None]:
    def action(modeladmin: Any, request: HttpRequest, queryset: QuerySet[Any]) -> None:
        for obj in queryset:
            archive(_scope(request, obj), obj.public_id)
        modeladmin.message_user(request, _("Archived."))

    action.short_description = description  # type: ignore[attr-defined]
    action.__name__ = "archive"
    return action


@admin.register(Product)
class ProductAdmin(ServiceAdmin):
    service_fields = services.PRODUCT_FIELDS
    list_display = ("__str__", "public_id", "tax_category", "active", "livemode", "created_at")
    list_filter = ("active", "livemode", "tax_category")
    search_fields = ("public_id", "name_en", "name_de")
    actions = (_archive_action(services.archive_product, _("Archive the selected products")),)

    create_case = staticmethod(services.create_product)
    update_case = staticmethod(services.update_product)


@admin.register(BillableMetric)
class BillableMetricAdmin(ServiceAdmin):
    service_fields = services.METRIC_FIELDS
    immutable_fields = ("code",)
    list_display = ("code", "name_en", "public_id", "aggregation", "property", "recurring", "livemode")
    list_filter = ("aggregation", "recurring", "livemode")
    search_fields = ("public_id", "code", "name_en", "name_de")

    create_case = staticmethod(services.create_billable_metric)
    update_case = staticmethod(services.update_billable_metric)


@admin.register(AddOn)
class AddOnAdmin(ServiceAdmin):
    service_fields = (*services.ADDON_FIELDS, "interval_unit", "interval_count")
    immutable_fields = ("code",)
    list_display = ("code", "name_en", "public_id", "currency", "interval_unit", "interval_count", "livemode")
    list_filter = ("currency", "interval_unit", "livemode")
    search_fields = ("public_id", "code", "name_en", "name_de")

    def service_data(self, cleaned: Mapping[str, Any]) -> dict[str, Any]:
        data = super().service_data(cleaned)
        unit, count = data.pop("interval_unit", None), data.pop("interval_count", None)
        if unit is not None:
            data["interval"] = {"unit": unit, "count": count or 1}
        return data

    create_case = staticmethod(services.create_addon)
    update_case = staticmethod(services.update_addon)


@admin.register(Coupon)
class CouponAdmin(ServiceAdmin):
    service_fields = services.COUPON_FIELDS
    list_display = ("code", "name", "public_id", "kind", "value", "duration", "times_redeemed", "active")
    list_filter = ("active", "kind", "duration", "livemode")
    search_fields = ("public_id", "code", "name")
    actions = (_archive_action(services.archive_coupon, _("Archive the selected coupons")),)

    def get_readonly_fields(self, request: HttpRequest, obj: Model | None = None) -> tuple[str, ...]:
        if obj is None:
            return ("public_id", "created_at", "times_redeemed")
        return tuple(field.name for field in Coupon._meta.fields)

    def service_data(self, cleaned: Mapping[str, Any]) -> dict[str, Any]:
        data = super().service_data(cleaned)
        data["currency"] = data.get("currency") or None
        return data

    create_case = staticmethod(services.create_coupon)


class ReadOnlyInline(admin.TabularInline):  # type: ignore[type-arg]
    extra = 0
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False


class PlanVersionInline(ReadOnlyInline):
    model = PlanVersion
    fields = ("number", "public_id", "name_en", "currency", "interval_unit", "interval_count", "locked_at")
    readonly_fields = fields


class PlanChargeInline(ReadOnlyInline):
    model = PlanCharge
    fields = ("position", "public_id", "code", "name_en", "kind", "price", "metric")
    readonly_fields = fields


class ReadOnlyCatalogAdmin(TenantScopedAdmin):
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False


@admin.register(Plan)
class PlanAdmin(ReadOnlyCatalogAdmin):
    inlines = (PlanVersionInline,)
    list_display = ("code", "public_id", "product", "active", "livemode", "created_at")
    list_filter = ("active", "livemode")
    search_fields = ("public_id", "code", "product__name_en", "product__name_de")
    list_select_related = ("product",)
    actions = (_archive_action(services.archive_plan, _("Archive the selected plans")),)

    def has_change_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return obj is None and super(ReadOnlyCatalogAdmin, self).has_change_permission(request, obj)


@admin.register(PlanVersion)
class PlanVersionAdmin(ReadOnlyCatalogAdmin):
    inlines = (PlanChargeInline,)
    list_display = (
        "__str__",
        "public_id",
        "name_en",
        "currency",
        "interval_unit",
        "billing_timing",
        "locked_at",
    )
    list_filter = ("currency", "interval_unit", "billing_timing", "livemode")
    search_fields = ("public_id", "plan__code", "plan__public_id", "name_en", "name_de")
    list_select_related = ("plan",)
