"""Back-office: usage events and voids (read-only), usage watermarks, and the late-event grace window."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.db.models import Model
from django.http import HttpRequest

from turnus.apps.metering import services
from turnus.apps.metering.models import EventVoid, UsageEvent, UsageSettings, UsageWatermark
from turnus.apps.tenants.admin import ReadOnlyAdmin, TenantScopedAdmin, actor_of, tenant_of
from turnus.core.scope import Scope


@admin.register(UsageEvent)
class UsageEventAdmin(ReadOnlyAdmin):
    list_display = ("transaction_id", "subscription", "metric", "timestamp", "value", "group_key", "livemode")
    list_filter = ("livemode",)
    search_fields = ("transaction_id",)
    list_select_related = ("subscription", "metric")
    show_full_result_count = False
    fields = (
        "transaction_id",
        "livemode",
        "subscription",
        "metric",
        "timestamp",
        "value",
        "group_key",
        "distinct_key",
        "properties",
        "created_at",
    )
    readonly_fields = fields


@admin.register(EventVoid)
class EventVoidAdmin(ReadOnlyAdmin):
    list_display = ("transaction_id", "reason", "corrected_by", "timestamp", "created_at", "livemode")
    list_filter = ("reason", "livemode")
    search_fields = ("transaction_id", "corrected_by")


@admin.register(UsageWatermark)
class UsageWatermarkAdmin(ReadOnlyAdmin):
    list_display = ("subscription", "closed_until", "updated_at", "livemode")
    list_filter = ("livemode",)
    search_fields = ("subscription__public_id",)
    list_select_related = ("subscription",)


class UsageSettingsForm(forms.ModelForm):  # type: ignore[type-arg]
    class Meta:
        model = UsageSettings
        fields = ("late_event_grace",)


@admin.register(UsageSettings)
class UsageSettingsAdmin(TenantScopedAdmin):
    form = UsageSettingsForm
    list_display = ("tenant", "late_event_grace")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return super().has_add_permission(request) and tenant_of(request) is not None

    def has_delete_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False

    def save_model(self, request: HttpRequest, obj: UsageSettings, form: Any, change: bool) -> None:
        tenant = tenant_of(request)
        tenant_id = obj.tenant_id if change or tenant is None else tenant.pk
        scope = Scope(tenant_id, True, actor_of(request))
        saved = services.set_late_event_grace(scope, form.cleaned_data["late_event_grace"])
        obj.pk, obj.tenant_id = saved.pk, saved.tenant_id
