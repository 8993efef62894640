"""Back-office: customers of the staff user's tenant; every change goes through the use cases."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import Model, QuerySet
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _

from turnus.apps.customers import services
from turnus.apps.customers.models import Customer, TestClock
from turnus.apps.tenants.admin import ReadOnlyAdmin, TenantScopedAdmin, actor_of, tenant_of
from turnus.apps.tenants.models import Tenant
from turnus.core.errors import TurnusError, ValidationFailed
from turnus.core.scope import Scope


class CustomerForm(forms.ModelForm):  # type: ignore[type-arg]
    class Meta:
        model = Customer
        fields = ("tenant", "livemode", *services.CUSTOMER_FIELDS)

    def clean(self) -> dict[str, Any]:
        cleaned: dict[str, Any] = super().clean() or {}
        tenant = cleaned.get("tenant") or getattr(self.instance, "tenant", None)
        if tenant is None or self.errors:
            return cleaned
        data = {name: cleaned.get(name) for name in services.CUSTOMER_FIELDS}
        try:
            clean = services.clean_customer(
                data, default_locale=tenant.locale, default_timezone=tenant.timezone
            )
            if clean["einvoice_format"] and clean["einvoice_format"] != self.initial.get("einvoice_format"):
                services.check_xrechnung_seller(tenant)
        except ValidationFailed as error:
            field = error.field.split(".")[0] if error.field else None
            self.add_error(field if field in self.fields else None, error.message)
        return cleaned


@admin.register(Customer)
class CustomerAdmin(TenantScopedAdmin):
    form = CustomerForm
    list_display = ("name", "company", "email", "public_id", "country", "locale", "livemode", "created_at")
    list_filter = ("country", "locale", "livemode", "einvoice_format")
    search_fields = ("name", "email", "company", "external_id", "public_id", "buyer_reference")
    date_hierarchy = "created_at"
    actions = ("delete_softly",)

    def get_queryset(self, request: HttpRequest) -> QuerySet[Any]:
        return super().get_queryset(request).filter(deleted_at__isnull=True)

    def get_readonly_fields(self, request: HttpRequest, obj: Model | None = None) -> tuple[str, ...]:
        return ("public_id", "tenant", "livemode", "created_at") if obj else ()

    def get_fields(self, request: HttpRequest, obj: Model | None = None) -> list[Any]:
        head = ["public_id", "tenant", "livemode", "created_at"] if obj else ["tenant", "livemode"]
        return [*head, *services.CUSTOMER_FIELDS]

    def has_delete_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False

    def formfield_for_foreignkey(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        tenant = tenant_of(request)
        if db_field.name == "tenant" and tenant is not None:
            kwargs["queryset"] = Tenant.objects.filter(pk=tenant.pk)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def save_model(self, request: HttpRequest, obj: Customer, form: forms.ModelForm, change: bool) -> None:  # type: ignore[type-arg]
        scope = Scope(obj.tenant_id, obj.livemode, actor_of(request))
        data = {
            name: form.cleaned_data[name] for name in services.CUSTOMER_FIELDS if name in form.cleaned_data
        }
        try:
            if change:
                saved = services.update_customer(scope, obj.public_id, data)
            else:
                saved = services.create_customer(scope, data)
        except TurnusError as error:
            self.message_user(request, error.message, level=messages.ERROR)
            raise
        obj.pk, obj.public_id, obj.created_at = saved.pk, saved.public_id, saved.created_at

    @admin.action(description=_("Delete the selected customers"), permissions=["change"])
    def delete_softly(self, request: HttpRequest, queryset: QuerySet[Customer]) -> None:
        for customer in queryset:
            scope = Scope(customer.tenant_id, customer.livemode, actor_of(request))
            services.delete_customer(scope, customer.public_id)
        self.message_user(request, _("Customers deleted; their invoices keep them."))


@admin.register(TestClock)
class TestClockAdmin(ReadOnlyAdmin):
    """Test clocks are made and advanced through the API; the back-office only lists them."""

    list_display = ("public_id", "name", "frozen_time", "created_at", "deleted_at")
    search_fields = ("public_id", "name")
    date_hierarchy = "created_at"
