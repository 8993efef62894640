from decimal import Decimal

import pytest

from tests.apps.catalog.conftest import plan_data
from turnus.apps.catalog import services
from turnus.apps.catalog.models import PlanCharge, PlanVersion

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


def _metered_version(scope, product, metric) -> PlanVersion:
    charges = [
        *plan_data(product.public_id)["charges"],
        {
            "code": "calls",
            "name_en": "Calls",
            "kind": "metered",
            "metric": metric.public_id,
            "price": {"model": "per_unit", "unit_price": "0.01"},
        },
    ]
    plan = services.create_plan(scope, plan_data(product.public_id, charges=charges))
    return PlanVersion.objects.get(plan=plan)


def test_a_locked_versions_charges_with_their_metrics_are_read_once_and_then_need_no_query(
    scope, product, metric, django_assert_num_queries
):
    version = _metered_version(scope, product, metric)
    services.lock_version(version)
    fresh = PlanVersion.objects.get(pk=version.pk)
    with django_assert_num_queries(1):
        first = fresh.charges_with_metrics()
    assert [(charge.code, charge.metric_id) for charge in first] == [("seat", None), ("calls", metric.pk)]
    again = PlanVersion.objects.get(pk=version.pk)
    with django_assert_num_queries(0):
        assert again.charges_with_metrics() is first
        assert first[1].metric.code == "api_calls"


def test_an_unlocked_versions_charges_are_read_afresh_so_edits_show(scope, product, metric):
    version = _metered_version(scope, product, metric)
    assert version.charges_with_metrics()[1].engine_price().unit_price == Decimal("0.01")
    charge = PlanCharge.objects.get(version=version, code="calls")
    charge.price = {**charge.price, "unit_price": "0.02"}
    charge.save()
    after = PlanVersion.objects.get(pk=version.pk).charges_with_metrics()
    assert after[1].engine_price().unit_price == Decimal("0.02")
