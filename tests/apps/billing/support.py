"""A tenant's plan, customer and subscription for billing tests, made through the services."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from tests.apps.customers.support import customer_data
from tests.support import TEST_ACTOR
from turnus.apps.catalog import services as catalog
from turnus.apps.customers import services as customers
from turnus.apps.metering import services as metering
from turnus.apps.subscriptions import services as subscriptions
from turnus.core.scope import Scope

#: Midnight of 1 March 2026 in Berlin: monthly periods begin on the 1st.
MARCH = datetime(2026, 2, 28, 23, 0, tzinfo=UTC)
APRIL = datetime(2026, 3, 31, 22, 0, tzinfo=UTC)
MAY = datetime(2026, 4, 30, 22, 0, tzinfo=UTC)

GRADUATED = {
    "model": "graduated",
    "tiers": [
        {"up_to": "100", "unit_price": "0"},
        {"up_to": None, "unit_price": "0.10"},
    ],
}


@dataclass
class Billed:
    scope: Scope
    customer: str
    plan: str
    subscription: str


def metric(scope: Scope) -> str:
    from turnus.apps.catalog.models import BillableMetric

    found = BillableMetric.objects.filter(tenant_id=scope.tenant_id, livemode=scope.livemode, code="calls")
    if found.exists():
        return found.get().public_id
    data = {"code": "calls", "name_en": "Calls", "aggregation": "count"}
    return catalog.create_billable_metric(scope, data).public_id


def plan(scope: Scope, *, code: str = "pro", fee: str = "100.00", **overrides: Any) -> str:
    product = catalog.create_product(scope, {"name_en": "Cloud", "name_de": "Cloud"})
    data: dict[str, Any] = {
        "code": code,
        "product": product.public_id,
        "name_en": code.title(),
        "name_de": code.title(),
        "currency": "EUR",
        "interval": {"unit": "month", "count": 1},
        "anchoring": "calendar",
        "charges": [
            {
                "code": "base",
                "name_en": "Base fee",
                "name_de": "Grundgebühr",
                "kind": "recurring",
                "price": {"model": "flat", "amount": fee},
            },
            {
                "code": "calls",
                "name_en": "API calls",
                "name_de": "API-Aufrufe",
                "kind": "metered",
                "price": GRADUATED,
                "metric": metric(scope),
            },
        ],
    }
    data.update(overrides)
    return catalog.create_plan(scope, data).public_id


def subscribe(
    scope: Scope,
    *,
    customer: dict[str, Any] | None = None,
    coupon: dict[str, Any] | None = None,
    **plan_overrides: Any,
) -> Billed:
    plan_id = plan(scope, **plan_overrides)
    owner = customers.create_customer(scope, customer_data(timezone="Europe/Berlin", **(customer or {})))
    coupon_code = None
    if coupon is not None:
        coupon_code = catalog.create_coupon(scope, coupon).code
    subscription = subscriptions.create_subscription(
        scope, customer=owner.public_id, plan=plan_id, coupon=coupon_code
    )
    return Billed(scope, owner.public_id, plan_id, subscription.public_id)


def scope_of(tenant: Any) -> Scope:
    return Scope(tenant.pk, False, TEST_ACTOR)


def calls(billed: Billed, count: int, at: datetime, *, prefix: str = "call") -> None:
    events = [
        {
            "transaction_id": f"{prefix}-{index}",
            "subscription": billed.subscription,
            "metric": "calls",
            "timestamp": at.isoformat(),
        }
        for index in range(count)
    ]
    results = metering.ingest(billed.scope, events)
    refused = [result.error for result in results if result.error is not None]
    assert not refused, refused[:1]


def base_charge(amount: str) -> dict[str, Any]:
    """A plan's recurring base fee of ``amount`` a period."""
    return {
        "code": "base",
        "name_en": "Base fee",
        "name_de": "Grundgebühr",
        "kind": "recurring",
        "price": {"model": "flat", "amount": amount},
    }


def make_addon(scope: Scope, code: str, amount: str, unit: str = "month", **overrides: Any) -> str:
    """An add-on of ``amount`` per unit and ``unit`` (month, year …), in EUR."""
    data = {
        "code": code,
        "name_en": code.title(),
        "name_de": code.title(),
        "currency": "EUR",
        "price": {"model": "per_unit", "unit_price": amount},
        "interval": {"unit": unit, "count": 1},
        **overrides,
    }
    return catalog.create_addon(scope, data).public_id
