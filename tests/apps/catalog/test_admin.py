import pytest
from django.contrib.auth import get_user_model

from tests.apps.catalog.conftest import coupon_data, plan_data
from turnus.apps.catalog import services

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("model", ["product", "billablemetric", "plan", "planversion", "addon", "coupon"])
def test_the_back_office_lists_and_shows_catalog_objects(client, scope, product, model):
    plan = services.create_plan(scope, plan_data(product.public_id))
    services.create_coupon(scope, coupon_data())
    client.force_login(get_user_model().objects.create_superuser("admin", "admin@example.com", "pw"))
    assert client.get(f"/admin/catalog/{model}/").status_code == 200
    assert client.get(f"/admin/catalog/plan/{plan.pk}/change/").status_code == 200
    assert client.get(f"/admin/catalog/planversion/{plan.current_version().pk}/change/").status_code == 200


def test_a_coupon_is_view_only_in_the_back_office_once_made(admin_client, scope):
    coupon = services.create_coupon(scope, coupon_data())
    page = admin_client.get(f"/admin/catalog/coupon/{coupon.pk}/change/")
    assert page.status_code == 200
    assert 'name="_save"' not in page.content.decode()
    refused = admin_client.post(f"/admin/catalog/coupon/{coupon.pk}/change/", {"name": "Changed"})
    assert refused.status_code == 403
    coupon.refresh_from_db()
    assert coupon.name != "Changed"
