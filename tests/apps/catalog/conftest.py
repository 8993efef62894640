import pytest

from tests.support import TEST_ACTOR
from turnus.core.scope import Scope


def product_data(**overrides):
    return {"name_en": "Coffee club", "name_de": "Kaffeeklub", "tax_category": "reduced", **overrides}


def metric_data(**overrides):
    return {"code": "api_calls", "name_en": "API calls", "aggregation": "count", **overrides}


def plan_data(product_id, **overrides):
    data = {
        "code": "pro-monthly",
        "product": product_id,
        "name_en": "Pro",
        "name_de": "Profi",
        "currency": "EUR",
        "interval": {"unit": "month", "count": 1},
        "setup_fee": "49.00",
        "contract": {"initial_term": {"unit": "month", "count": 12}, "initial_notice": {"unit": "month"}},
        "charges": [
            {
                "code": "seat",
                "name_en": "Seats",
                "kind": "recurring",
                "price": {"model": "per_unit", "unit_price": "20"},
            },
        ],
    }
    data.update(overrides)
    return data


def coupon_data(**overrides):
    return {"code": "WELCOME10", "name": "Welcome", "kind": "percentage", "value": "10", **overrides}


@pytest.fixture
def scope(tenant):
    return Scope(tenant.pk, False, TEST_ACTOR)


@pytest.fixture
def product(scope):
    from turnus.apps.catalog import services

    return services.create_product(scope, product_data())


@pytest.fixture
def metric(scope):
    from turnus.apps.catalog import services

    return services.create_billable_metric(scope, metric_data())
