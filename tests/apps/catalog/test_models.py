import pytest

from tests.apps.catalog.conftest import plan_data
from turnus.apps.catalog import services
from turnus.apps.catalog.models import PlanVersion

pytestmark = pytest.mark.django_db


def _version(scope, product) -> PlanVersion:
    plan = services.create_plan(scope, plan_data(product.public_id))
    return PlanVersion.objects.get(plan=plan)


def test_a_locked_versions_terms_are_built_once_and_then_need_no_query(
    scope, product, django_assert_num_queries
):
    version = _version(scope, product)
    services.lock_version(version)
    fresh = PlanVersion.objects.get(pk=version.pk)
    first = fresh.engine_terms()
    again = PlanVersion.objects.get(pk=version.pk)
    with django_assert_num_queries(0):
        assert again.engine_terms() is first


def test_an_unlocked_version_is_read_afresh_so_edits_show(scope, product):
    version = _version(scope, product)
    before = PlanVersion.objects.get(pk=version.pk).engine_terms()
    charge = version.recurring_charge()
    charge.price = {**charge.price, "unit_price": "99"}
    charge.save()
    after = PlanVersion.objects.get(pk=version.pk).engine_terms()
    assert before.recurring_price != after.recurring_price
