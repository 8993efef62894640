"""The back-office shows a staff user the rows of their own tenant only, in every registered model admin."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.db.models import Model
from django.test import Client

from tests.project.support import seed
from tests.support import TEST_ACTOR, ApiClient
from turnus.apps.metering import services as metering
from turnus.apps.tenants.admin import TenantScopedAdmin
from turnus.apps.tenants.models import StaffMembership, Tenant
from turnus.core.scope import Scope

pytestmark = pytest.mark.django_db

#: Models whose admin is Django's own and governs back-office users, not tenant data.
NOT_TENANT_DATA = {"auth.User", "auth.Group"}


def _tenant_admins() -> list[tuple[type[Model], TenantScopedAdmin]]:
    found = []
    for model, model_admin in admin.site._registry.items():
        if model._meta.label in NOT_TENANT_DATA:
            continue
        assert isinstance(model_admin, TenantScopedAdmin), (
            f"the admin of {model._meta.label} is not a TenantScopedAdmin, so staff would see every tenant"
        )
        found.append((model, model_admin))
    return found


def _tenant_of(model_admin: TenantScopedAdmin, row: Model) -> int:
    lookup = model_admin.tenant_lookup
    return int(row.pk if lookup == "pk" else getattr(row, lookup))


def _rows_of(model: type[Model], model_admin: TenantScopedAdmin, tenant: Tenant) -> list[Model]:
    return [row for row in model._default_manager.all() if _tenant_of(model_admin, row) == tenant.pk]


def _url(model: type[Model], suffix: str = "") -> str:
    return f"/admin/{model._meta.app_label}/{model._meta.model_name}/{suffix}"


def _turnus_permissions() -> list[Permission]:
    return list(Permission.objects.exclude(content_type__app_label__in=("auth", "admin", "contenttypes")))


def _login(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def tenants(make_tenant):
    mine = make_tenant(legal_name="Eigene Rösterei GmbH")
    theirs = make_tenant(legal_name="Fremde Konkurrenz AG")
    for tenant, tag in ((mine, "mine"), (theirs, "theirs")):
        api = ApiClient(tenant)
        ids = seed(api, tag=f"-{tag}")
        scope = Scope(tenant.pk, False, TEST_ACTOR)
        metering.close_usage(scope, ids["subscription"], datetime(2026, 1, 1, tzinfo=UTC))
        metering.set_late_event_grace(scope, timedelta(hours=12))
        ApiClient(tenant, livemode=True)
    return mine, theirs


def _staff(username: str, tenant: Tenant | None) -> Any:
    user = get_user_model().objects.create_user(username, password="pw", is_staff=True)
    user.user_permissions.add(*_turnus_permissions())
    if tenant is not None:
        StaffMembership.objects.create(user=user, tenant=tenant)
    return user


@pytest.fixture
def staff(tenants):
    return _login(_staff("clerk", tenants[0]))


def _listed(client: Client, model: type[Model]) -> list[Model] | None:
    """The rows a changelist shows; ``None`` when the user may not open it at all."""
    response = client.get(_url(model), {"all": ""})
    if response.status_code == 403:
        return None
    assert response.status_code == 200, (model._meta.label, response.status_code)
    return list(response.context["cl"].queryset)


def test_every_registered_turnus_admin_is_tenant_scoped():
    assert len(_tenant_admins()) >= 10


def test_staff_see_only_their_tenants_rows_in_every_changelist(staff, tenants):
    mine = tenants[0]
    for model, model_admin in _tenant_admins():
        listed = _listed(staff, model)
        if listed is None:
            continue
        owners = {_tenant_of(model_admin, row) for row in listed}
        assert owners == {mine.pk}, f"{model._meta.label} lists rows of tenants {owners}"
        assert len(listed) == len(_rows_of(model, model_admin, mine)), model._meta.label


def test_no_page_a_staff_user_opens_names_another_tenant_or_its_objects(staff, tenants):
    for model, _ in _tenant_admins():
        pages = [_url(model)]
        if model_admin_allows_add(staff, model):
            pages.append(_url(model, "add/"))
        for page in pages:
            response = staff.get(page)
            if response.status_code == 403:
                continue
            content = response.content.decode()
            assert "Fremde Konkurrenz" not in content, page
            assert "-theirs" not in content, f"{page} shows one of the other tenant's objects"


def model_admin_allows_add(client: Client, model: type[Model]) -> bool:
    return client.get(_url(model, "add/")).status_code == 200


def test_staff_cannot_open_another_tenants_rows(staff, tenants):
    theirs = tenants[1]
    for model, model_admin in _tenant_admins():
        for row in _rows_of(model, model_admin, theirs):
            for suffix in ("change/", "history/", "delete/"):
                response = staff.get(_url(model, f"{row.pk}/{suffix}"))
                assert response.status_code in (302, 403, 404), (model._meta.label, suffix)
                if response.status_code == 302:
                    assert response["Location"] == "/admin/", (model._meta.label, suffix)


def test_staff_open_their_own_rows_without_seeing_the_other_tenants_choices(staff, tenants):
    mine, _ = tenants
    opened = 0
    for model, model_admin in _tenant_admins():
        for row in _rows_of(model, model_admin, mine)[:1]:
            response = staff.get(_url(model, f"{row.pk}/change/"))
            assert response.status_code in (200, 403), model._meta.label
            opened += response.status_code == 200
            assert "-theirs" not in response.content.decode(), model._meta.label
            assert "Fremde Konkurrenz" not in response.content.decode(), model._meta.label
    assert opened >= 10


def test_staff_cannot_move_themselves_to_another_tenant(staff, tenants):
    mine, theirs = tenants
    membership = StaffMembership.objects.get(user__username="clerk")
    staff.post(
        _url(StaffMembership, f"{membership.pk}/change/"), {"user": membership.user_id, "tenant": theirs.pk}
    )
    other_user = get_user_model().objects.create_user("accomplice", is_staff=True)
    staff.post(_url(StaffMembership, "add/"), {"user": other_user.pk, "tenant": theirs.pk})
    assert list(StaffMembership.objects.values_list("tenant_id", flat=True)) == [mine.pk]


def test_a_superuser_sees_every_tenants_rows(tenants):
    superuser = _login(get_user_model().objects.create_superuser("root", "root@example.com", "pw"))
    both = {tenant.pk for tenant in tenants}
    for model, model_admin in _tenant_admins():
        if model is StaffMembership:
            continue
        listed = _listed(superuser, model)
        assert listed is not None, model._meta.label
        assert {_tenant_of(model_admin, row) for row in listed} >= both, model._meta.label


def test_staff_without_a_membership_see_nothing(tenants):
    stray = _login(_staff("stray", None))
    for model, _ in _tenant_admins():
        listed = _listed(stray, model)
        assert not listed, f"{model._meta.label} shows {listed} to a user of no tenant"
        for tenant in tenants:
            for row in model._default_manager.filter(pk=tenant.pk)[:1] if model is Tenant else []:
                assert stray.get(_url(model, f"{row.pk}/change/")).status_code in (302, 403, 404)


def test_staff_with_user_and_group_permissions_still_cannot_see_or_edit_users(client, make_tenant):
    from django.contrib.auth.models import Permission, User

    from turnus.apps.tenants.models import StaffMembership

    staff = User.objects.create_user("clerk", password="pw-123456-long", is_staff=True)
    staff.user_permissions.set(Permission.objects.filter(content_type__app_label="auth"))
    StaffMembership.objects.create(user=staff, tenant=make_tenant())
    client.force_login(staff)
    assert client.get("/admin/auth/user/").status_code == 403
    assert client.get(f"/admin/auth/user/{staff.pk}/change/").status_code == 403
    assert client.get("/admin/auth/group/add/").status_code == 403
    assert "auth/user" not in client.get("/admin/").content.decode()
