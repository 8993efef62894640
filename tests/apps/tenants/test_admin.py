import pytest
from django.contrib.auth.models import User

from tests.support import TEST_ACTOR
from turnus.apps.tenants import services
from turnus.apps.tenants.models import StaffMembership
from turnus.core.models import AuditEvent

pytestmark = pytest.mark.django_db


def test_renaming_a_key_in_the_back_office_is_audited(admin_client, tenant):
    issued = services.create_api_key(tenant, livemode=False, name="old", actor=TEST_ACTOR)
    response = admin_client.post(
        f"/admin/tenants/apikey/{issued.key.pk}/change/", {"name": "checkout server"}
    )
    assert response.status_code == 302
    event = AuditEvent.objects.get(action="api_key.updated", object_id=issued.key.public_id)
    assert (event.before["name"], event.after["name"]) == ("old", "checkout server")
    assert event.actor.startswith("user:")


def test_memberships_made_and_removed_in_the_back_office_are_audited(admin_client, tenant):
    clerk = User.objects.create_user("clerk", password="long-enough-pw-1")
    response = admin_client.post(
        "/admin/tenants/staffmembership/add/", {"user": clerk.pk, "tenant": tenant.pk}
    )
    assert response.status_code == 302
    membership = StaffMembership.objects.get(user=clerk)
    created = AuditEvent.objects.get(action="staff_membership.created")
    assert created.after == {"user": "clerk", "tenant": tenant.public_id}
    admin_client.post(f"/admin/tenants/staffmembership/{membership.pk}/delete/", {"post": "yes"})
    assert not StaffMembership.objects.exists()
    assert AuditEvent.objects.get(action="staff_membership.deleted").object_id == str(membership.pk)


def test_a_key_name_longer_than_the_limit_is_refused(tenant):
    issued = services.create_api_key(tenant, livemode=False, actor=TEST_ACTOR)
    with pytest.raises(services.ValidationFailed):
        services.rename_api_key(tenant, issued.key.public_id, "x" * 101, actor=TEST_ACTOR)
