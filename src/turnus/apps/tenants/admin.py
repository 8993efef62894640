"""Back-office: tenants, API keys, staff and the audit log; staff see only their own tenant."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import GroupAdmin, UserAdmin
from django.contrib.auth.models import Group
from django.db.models import Model, QuerySet
from django.http import HttpRequest
from django.template.defaultfilters import filesizeformat
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from turnus.apps.tenants import logos, services
from turnus.apps.tenants.models import ApiKey, StaffMembership, Tenant
from turnus.core.audit import record
from turnus.core.errors import TurnusError
from turnus.core.models import AuditEvent
from turnus.core.scope import Actor, ActorKind


def actor_of(request: HttpRequest) -> Actor:
    return Actor(ActorKind.USER, f"{request.user.pk}:{request.user.get_username()}")


def tenant_of(request: HttpRequest) -> Tenant | None:
    """The tenant a staff user works for; ``None`` for superusers, who see every tenant."""
    if request.user.is_superuser:
        return None
    if request.user.pk is None:
        return Tenant(pk=-1)
    membership = StaffMembership.objects.select_related("tenant").filter(user_id=request.user.pk).first()
    return membership.tenant if membership else Tenant(pk=-1)


class TenantScopedAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    """Lists and edits only the rows of the user's tenant."""

    tenant_lookup = "tenant_id"

    def get_queryset(self, request: HttpRequest) -> QuerySet[Any]:
        queryset = super().get_queryset(request)
        tenant = tenant_of(request)
        return queryset if tenant is None else queryset.filter(**{self.tenant_lookup: tenant.pk})


class ReadOnlyAdmin(TenantScopedAdmin):
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False


class TenantForm(forms.ModelForm):  # type: ignore[type-arg]
    logo_upload = forms.FileField(
        label=_("new logo"),
        required=False,
        help_text=_("PNG, JPEG or SVG, at most 512 KB; printed at the top of invoices rendered from now on."),
    )
    remove_logo = forms.BooleanField(label=_("remove the logo"), required=False)

    class Meta:
        model = Tenant
        fields = services.TENANT_FIELDS

    def clean_logo_upload(self) -> bytes | None:
        upload = self.cleaned_data.get("logo_upload")
        if not upload:
            return None
        if upload.size is not None and upload.size > logos.MAX_BYTES:
            raise forms.ValidationError(_("The logo may have at most 512 KB."))
        content = bytes(upload.read())
        try:
            logos.check(content)
        except TurnusError as error:
            raise forms.ValidationError(error.message) from None
        return content

    def clean(self) -> dict[str, Any]:
        cleaned: dict[str, Any] = super().clean() or {}
        if cleaned.get("logo_upload") and cleaned.get("remove_logo"):
            raise forms.ValidationError(_("Upload a new logo or remove the logo, not both."))
        return cleaned


@admin.register(Tenant)
class TenantAdmin(TenantScopedAdmin):
    tenant_lookup = "pk"
    form = TenantForm
    list_display = ("legal_name", "public_id", "country", "default_currency", "timezone", "created_at")
    search_fields = ("legal_name", "slug", "public_id", "vat_id")
    list_filter = ("country", "default_currency")
    readonly_fields = ("current_logo",)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return bool(request.user.is_superuser)

    @admin.display(description=_("logo"))
    def current_logo(self, obj: Tenant) -> str:
        logo = logos.logo_of(obj.pk) if obj.pk else None
        if logo is None:
            return "–"
        return format_html(
            '<img src="{}" alt="" style="max-height: 60px; max-width: 240px"><br>{} · {}',
            logos.as_data_uri(logo),
            logo.get_content_type_display(),
            filesizeformat(logo.size),
        )

    def has_delete_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False

    def save_model(self, request: HttpRequest, obj: Tenant, form: forms.ModelForm, change: bool) -> None:  # type: ignore[type-arg]
        data = {name: form.cleaned_data[name] for name in services.TENANT_FIELDS if name in form.cleaned_data}
        try:
            if change:
                fresh = Tenant.objects.get(pk=obj.pk)
                saved = services.update_tenant(fresh, data, actor=actor_of(request))
            else:
                saved = services.create_tenant(data, actor=actor_of(request))
            if form.cleaned_data.get("logo_upload"):
                logos.set_logo(saved, form.cleaned_data["logo_upload"], actor=actor_of(request))
            elif form.cleaned_data.get("remove_logo") and logos.logo_of(saved.pk) is not None:
                logos.remove_logo(saved, actor=actor_of(request))
        except TurnusError as error:
            self.message_user(request, error.message, level=messages.ERROR)
            raise
        obj.pk, obj.public_id = saved.pk, saved.public_id


class ApiKeyForm(forms.ModelForm):  # type: ignore[type-arg]
    class Meta:
        model = ApiKey
        fields = ("tenant", "livemode", "kind", "name")


@admin.register(ApiKey)
class ApiKeyAdmin(TenantScopedAdmin):
    form = ApiKeyForm
    list_display = ("prefix", "name", "tenant", "livemode", "kind", "created_at", "revoked_at")
    list_filter = ("livemode", "kind")
    search_fields = ("public_id", "name", "prefix")
    actions = ("revoke",)

    def get_readonly_fields(self, request: HttpRequest, obj: Model | None = None) -> tuple[str, ...]:
        return ("tenant", "livemode", "kind", "prefix", "created_at", "revoked_at") if obj else ()

    def formfield_for_foreignkey(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        tenant = tenant_of(request)
        if db_field.name == "tenant" and tenant is not None:
            kwargs["queryset"] = Tenant.objects.filter(pk=tenant.pk)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def save_model(self, request: HttpRequest, obj: ApiKey, form: forms.ModelForm, change: bool) -> None:  # type: ignore[type-arg]
        if change:
            services.rename_api_key(obj.tenant, obj.public_id, obj.name, actor=actor_of(request))
            return
        issued = services.create_api_key(
            obj.tenant, livemode=obj.livemode, kind=obj.kind, name=obj.name, actor=actor_of(request)
        )
        obj.pk, obj.public_id = issued.key.pk, issued.key.public_id
        self.message_user(
            request,
            _("Copy the new key now; it is not shown again: %(key)s") % {"key": issued.plaintext},
            level=messages.WARNING,
        )

    @admin.action(description=_("Revoke the selected keys"))
    def revoke(self, request: HttpRequest, queryset: QuerySet[ApiKey]) -> None:
        for key in queryset:
            services.revoke_api_key(key.tenant, key.public_id, actor=actor_of(request))
        self.message_user(request, _("Keys revoked."))


@admin.register(StaffMembership)
class StaffMembershipAdmin(TenantScopedAdmin):
    """Only superusers manage memberships: staff could otherwise move themselves to another tenant."""

    list_display = ("user", "tenant")

    def has_module_permission(self, request: HttpRequest) -> bool:
        return bool(request.user.is_superuser)

    def save_model(self, request: HttpRequest, obj: StaffMembership, form: Any, change: bool) -> None:
        before = None
        if change:
            previous = StaffMembership.objects.select_related("tenant").get(pk=obj.pk)
            before = {"user": previous.user.get_username(), "tenant": previous.tenant.public_id}
        obj.save()
        scope = services.system_scope(obj.tenant, actor=actor_of(request))
        after = {"user": obj.user.get_username(), "tenant": obj.tenant.public_id}
        record(
            scope,
            "staff_membership.updated" if change else "staff_membership.created",
            "staff_membership",
            str(obj.pk),
            before=before,
            after=after,
        )

    def delete_model(self, request: HttpRequest, obj: StaffMembership) -> None:
        scope = services.system_scope(obj.tenant, actor=actor_of(request))
        before = {"user": obj.user.get_username(), "tenant": obj.tenant.public_id}
        membership_id = str(obj.pk)
        obj.delete()
        record(scope, "staff_membership.deleted", "staff_membership", membership_id, before=before)

    def has_view_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return bool(request.user.is_superuser)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return bool(request.user.is_superuser)

    def has_change_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return bool(request.user.is_superuser)

    def has_delete_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return bool(request.user.is_superuser)


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "action", "object_type", "object_id", "actor", "livemode", "request_id")
    list_filter = ("livemode", "object_type", "action")
    search_fields = ("object_id", "actor", "request_id", "public_id")
    date_hierarchy = "created_at"


class SuperuserOnlyAdmin:
    """Users and groups span every tenant, so only superusers may see or change them."""

    def has_module_permission(self, request: HttpRequest) -> bool:
        return bool(request.user.is_active and request.user.is_superuser)

    def has_view_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return self.has_module_permission(request)

    def has_add_permission(self, request: HttpRequest, *args: Any) -> bool:
        return self.has_module_permission(request)

    def has_change_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return self.has_module_permission(request)

    def has_delete_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return self.has_module_permission(request)


class TenantUserAdmin(SuperuserOnlyAdmin, UserAdmin):  # type: ignore[type-arg]
    pass


class TenantGroupAdmin(SuperuserOnlyAdmin, GroupAdmin):
    pass


User = get_user_model()
for model, model_admin in ((User, TenantUserAdmin), (Group, TenantGroupAdmin)):
    if admin.site.is_registered(model):
        admin.site.unregister(model)
    admin.site.register(model, model_admin)
