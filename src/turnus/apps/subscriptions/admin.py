"""Back-office: subscriptions with their lifecycle actions, and pending charges."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.contrib import admin, messages
from django.db.models import Model, QuerySet
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _

from turnus.apps.subscriptions import services
from turnus.apps.subscriptions.models import (
    PlanMigration,
    Subscription,
    SubscriptionAddOn,
    SubscriptionCharge,
)
from turnus.apps.tenants.admin import TenantScopedAdmin, actor_of
from turnus.core.audit import record
from turnus.core.errors import TurnusError
from turnus.core.scope import Scope


class AddOnInline(admin.TabularInline):  # type: ignore[type-arg]
    model = SubscriptionAddOn
    extra = 0
    readonly_fields = ("addon", "quantity", "added_at")
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False


class ChargeInline(admin.TabularInline):  # type: ignore[type-arg]
    model = SubscriptionCharge
    extra = 0
    fields = ("kind", "description", "period_start", "period_end", "amount", "currency")
    readonly_fields = fields
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False


def _run(
    admin_view: admin.ModelAdmin,  # type: ignore[type-arg]
    request: HttpRequest,
    queryset: QuerySet[Subscription],
    action: Callable[[Scope, str], object],
    done: str,
) -> None:
    succeeded = 0
    for subscription in queryset:
        scope = Scope(subscription.tenant_id, subscription.livemode, actor_of(request))
        try:
            action(scope, subscription.public_id)
            succeeded += 1
        except TurnusError as error:
            admin_view.message_user(
                request, f"{subscription.public_id}: {error.message}", level=messages.ERROR
            )
    if succeeded:
        admin_view.message_user(request, f"{done}: {succeeded}")


@admin.register(Subscription)
class SubscriptionAdmin(TenantScopedAdmin):
    list_display = (
        "public_id",
        "customer",
        "plan",
        "status",
        "quantity",
        "current_period_end",
        "cancel_at",
        "livemode",
    )
    list_filter = ("status", "livemode", ("plan", admin.RelatedOnlyFieldListFilter))
    search_fields = ("public_id", "customer__name", "customer__email", "customer__public_id", "plan__code")
    list_select_related = ("customer", "plan")
    inlines = (AddOnInline, ChargeInline)
    actions = ("cancel_at_period_end", "cancel_now", "reactivate", "pause_now", "resume")

    def get_readonly_fields(self, request: HttpRequest, obj: Model | None = None) -> list[str]:
        return [field.name for field in Subscription._meta.fields if field.name != "metadata"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False

    @admin.action(description=_("Cancel at the end of the period"))
    def cancel_at_period_end(self, request: HttpRequest, queryset: QuerySet[Subscription]) -> None:
        _run(
            self,
            request,
            queryset,
            lambda s, i: services.cancel_subscription(s, i, mode="period_end"),
            str(_("Cancellations scheduled")),
        )

    @admin.action(description=_("Cancel now"))
    def cancel_now(self, request: HttpRequest, queryset: QuerySet[Subscription]) -> None:
        _run(
            self,
            request,
            queryset,
            lambda s, i: services.cancel_subscription(s, i, mode="now"),
            str(_("Subscriptions cancelled")),
        )

    @admin.action(description=_("Withdraw the scheduled cancellation"))
    def reactivate(self, request: HttpRequest, queryset: QuerySet[Subscription]) -> None:
        _run(self, request, queryset, services.reactivate_subscription, str(_("Subscriptions reactivated")))

    @admin.action(description=_("Pause now"))
    def pause_now(self, request: HttpRequest, queryset: QuerySet[Subscription]) -> None:
        _run(
            self,
            request,
            queryset,
            lambda s, i: services.pause_subscription(s, i),
            str(_("Subscriptions paused")),
        )

    @admin.action(description=_("Resume"))
    def resume(self, request: HttpRequest, queryset: QuerySet[Subscription]) -> None:
        _run(self, request, queryset, services.resume_subscription, str(_("Subscriptions resumed")))

    def save_model(self, request: HttpRequest, obj: Subscription, form: Any, change: bool) -> None:
        before = Subscription.objects.only("metadata").get(pk=obj.pk).metadata
        obj.save(update_fields=("metadata",))
        scope = Scope(obj.tenant_id, obj.livemode, actor_of(request))
        record(
            scope,
            "subscription.updated",
            "subscription",
            obj.public_id,
            before={"metadata": before},
            after={"metadata": obj.metadata},
        )


@admin.register(SubscriptionCharge)
class SubscriptionChargeAdmin(TenantScopedAdmin):
    list_display = ("public_id", "subscription", "kind", "amount", "currency", "period_start", "period_end")
    list_filter = ("kind", "livemode", "currency")
    search_fields = ("public_id", "subscription__public_id", "description")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False


@admin.register(PlanMigration)
class PlanMigrationAdmin(TenantScopedAdmin):
    list_display = (
        "public_id",
        "plan",
        "target_version",
        "effective",
        "effective_at",
        "applied_at",
        "livemode",
    )
    list_filter = ("effective", "livemode")
    search_fields = ("public_id", "plan__code")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False
