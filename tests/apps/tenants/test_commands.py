from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import Client

from turnus.apps.tenants.models import ApiKey
from turnus.core.models import AuditEvent

pytestmark = pytest.mark.django_db


def keys(*args: str) -> str:
    out = StringIO()
    call_command("keys", *args, stdout=out)
    return out.getvalue()


def _status_with(key: str) -> int:
    return Client().get("/v1/audit_events", headers={"Authorization": f"Bearer {key}"}).status_code


def test_a_created_key_is_printed_once_and_authenticates_against_the_api(tenant):
    plaintext = keys("create", "--tenant", tenant.slug, "--name", "ci").strip()
    assert plaintext.startswith("sk_test_")
    assert _status_with(plaintext) == 200
    key = ApiKey.objects.get(tenant=tenant)
    assert (key.livemode, key.kind, key.name) == (False, "secret", "ci")
    assert plaintext not in key.key_hash
    created = AuditEvent.objects.get(action="api_key.created", object_id=key.public_id)
    assert created.actor == "cli:turnus keys"


def test_a_live_key_is_created_for_the_tenant_named_by_its_id(tenant):
    plaintext = keys("create", "--tenant", tenant.public_id, "--mode", "live").strip()
    assert plaintext.startswith("sk_live_")
    assert ApiKey.objects.get(tenant=tenant).livemode is True
    assert _status_with(plaintext) == 200


def test_the_list_shows_each_key_with_its_prefix_kind_and_state(tenant, make_tenant):
    keys("create", "--tenant", tenant.slug, "--name", "ci")
    keys("create", "--tenant", make_tenant().slug, "--name", "theirs")
    key = ApiKey.objects.get(tenant=tenant)
    listing = keys("list", "--tenant", tenant.slug)
    assert listing.splitlines() == [f"{key.public_id}  {key.prefix}…  secret  active  ci"]


def test_a_revoked_key_no_longer_authenticates(tenant):
    plaintext = keys("create", "--tenant", tenant.slug).strip()
    key = ApiKey.objects.get(tenant=tenant)
    assert keys("revoke", "--tenant", tenant.slug, key.public_id).strip() == f"revoked {key.public_id}"
    response = Client().get("/v1/audit_events", headers={"Authorization": f"Bearer {plaintext}"})
    assert response.status_code == 401
    assert response.json()["code"] == "unauthenticated"
    assert "revoked" in keys("list", "--tenant", tenant.slug)
    assert AuditEvent.objects.filter(action="api_key.revoked", object_id=key.public_id).count() == 1


@pytest.mark.parametrize("action", [["create"], ["list"], ["revoke", "key_anything"]])
def test_an_unknown_tenant_is_a_command_error(db, action):
    with pytest.raises(CommandError, match="no tenant 'nobody'"):
        keys(action[0], "--tenant", "nobody", *action[1:])
    assert not ApiKey.objects.exists()


def test_another_tenants_key_cannot_be_revoked_through_this_tenant(tenant, make_tenant):
    theirs = make_tenant()
    plaintext = keys("create", "--tenant", theirs.slug).strip()
    key = ApiKey.objects.get(tenant=theirs)
    with pytest.raises(CommandError, match=key.public_id):
        keys("revoke", "--tenant", tenant.slug, key.public_id)
    assert _status_with(plaintext) == 200
