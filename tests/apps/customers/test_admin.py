import pytest
from django.contrib.auth import get_user_model

from tests.apps.customers.support import customer_data
from tests.support import TEST_ACTOR
from turnus.apps.customers import services
from turnus.apps.customers.models import Customer
from turnus.apps.tenants.models import StaffMembership
from turnus.core.models import AuditEvent
from turnus.core.scope import Scope

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff_client(client, tenant):
    user = get_user_model().objects.create_user("clerk", password="pw", is_staff=True)
    user.user_permissions.add(*_customer_permissions())
    StaffMembership.objects.create(user=user, tenant=tenant)
    client.force_login(user)
    return client


def _customer_permissions():
    from django.contrib.auth.models import Permission

    return Permission.objects.filter(content_type__app_label="customers")


def test_staff_see_and_search_their_tenants_customers_only(staff_client, tenant, make_tenant):
    mine = services.create_customer(Scope(tenant.pk, False, TEST_ACTOR), customer_data(name="Erika"))
    other = make_tenant()
    services.create_customer(Scope(other.pk, False, TEST_ACTOR), customer_data(name="Mallory"))
    page = staff_client.get("/admin/customers/customer/", {"q": "erika@example.com"}).content.decode()
    assert mine.public_id in page
    assert "Mallory" not in page


def test_staff_add_a_customer_through_the_use_case(staff_client, tenant):
    form = {**customer_data(), "tenant": tenant.pk, "livemode": "", "locale": "de"}
    form.update({"timezone": "Europe/Berlin", "tax_exempt": "none", "metadata": "{}"})
    response = staff_client.post("/admin/customers/customer/add/", form)
    assert response.status_code == 302
    customer = Customer.objects.get()
    assert customer.public_id.startswith("cus_")
    assert AuditEvent.objects.get(object_id=customer.public_id).actor.startswith("user:")


def test_an_invalid_vat_id_in_the_back_office_is_a_form_error(staff_client, tenant):
    form = {**customer_data(vat_id="DE136695977"), "tenant": tenant.pk, "locale": "de"}
    form.update({"timezone": "Europe/Berlin", "tax_exempt": "none", "metadata": "{}"})
    response = staff_client.post("/admin/customers/customer/add/", form)
    assert response.status_code == 200
    assert not Customer.objects.exists()


def test_deleting_in_the_back_office_is_a_soft_delete(staff_client, tenant):
    customer = services.create_customer(Scope(tenant.pk, False, TEST_ACTOR), customer_data())
    response = staff_client.post(
        "/admin/customers/customer/",
        {"action": "delete_softly", "_selected_action": [customer.pk]},
    )
    assert response.status_code == 302
    customer.refresh_from_db()
    assert customer.deleted_at is not None


def test_staff_change_a_customer_through_the_use_case(staff_client, tenant):
    customer = services.create_customer(Scope(tenant.pk, False, TEST_ACTOR), customer_data())
    url = f"/admin/customers/customer/{customer.pk}/change/"
    assert staff_client.get(url).status_code == 200
    form = {**customer_data(city="Bonn"), "locale": "de", "timezone": "Europe/Berlin"}
    form.update({"tax_exempt": "none", "metadata": "{}"})
    assert staff_client.post(url, form).status_code == 302
    customer.refresh_from_db()
    assert customer.city == "Bonn"
    assert AuditEvent.objects.filter(action="customer.updated", object_id=customer.public_id).exists()


def test_the_back_office_speaks_german():
    from django.utils import translation

    with translation.override("de"):
        assert str(Customer._meta.verbose_name_plural) == "Kunden"
        assert str(Customer._meta.get_field("vat_id").verbose_name) == "USt-IdNr."
        assert str(dict(Customer._meta.get_field("tax_exempt").choices)["reverse"]).startswith("Steuer")
