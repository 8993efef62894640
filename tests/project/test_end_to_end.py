"""A merchant's first months through the API only: catalogue, customers, one subscription's whole life."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from tests.support import ApiClient
from turnus.core.clock import FrozenClock, use_clock
from turnus.engine.money import Money
from turnus.engine.periods import Period
from turnus.engine.proration import ProrationMode, change_proration

pytestmark = pytest.mark.django_db

START = datetime(2026, 1, 12, 10, 15, tzinfo=UTC)


def ok(response, status: int = 200) -> dict[str, Any]:
    assert response.status_code == status, response.content
    assert response["Content-Type"].startswith("application/json"), response["Content-Type"]
    body: dict[str, Any] = response.json()
    return body


def at(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _charges(base_price: str, metric: str) -> list[dict[str, Any]]:
    return [
        {
            "code": "base",
            "name_en": "Base fee",
            "name_de": "Grundgebühr",
            "kind": "recurring",
            "price": {"model": "per_unit", "unit_price": base_price},
        },
        {
            "code": "storage",
            "name_en": "Storage",
            "name_de": "Speicher",
            "kind": "quantity",
            "price": {"model": "per_unit", "unit_price": "2.50"},
        },
        {
            "code": "calls",
            "name_en": "API calls",
            "name_de": "API-Aufrufe",
            "kind": "metered",
            "price": {"model": "per_unit", "unit_price": "0.002"},
            "metric": metric,
        },
    ]


@pytest.fixture
def clock():
    frozen = FrozenClock(START)
    with use_clock(frozen):
        yield frozen


@pytest.fixture
def catalogue(api: ApiClient, clock) -> dict[str, str]:
    product = ok(
        api.post(
            "/v1/products", {"name_en": "Team cloud", "name_de": "Team-Cloud", "tax_category": "standard"}
        ),
        201,
    )
    metric = ok(
        api.post(
            "/v1/billable_metrics", {"code": "api_calls", "name_en": "API calls", "aggregation": "count"}
        ),
        201,
    )
    plans = {}
    for code, price in (("basic", "10.00"), ("pro", "30.00")):
        plan = ok(
            api.post(
                "/v1/plans",
                {
                    "code": code,
                    "product": product["id"],
                    "name_en": code.title(),
                    "name_de": code.title(),
                    "currency": "EUR",
                    "interval": {"unit": "month", "count": 1},
                    "trial_days": 14,
                    "charges": _charges(price, metric["id"]),
                },
            ),
            201,
        )
        assert [c["kind"] for c in plan["charges"]] == ["recurring", "quantity", "metered"]
        assert plan["charges"][2]["metric"] == metric["id"]
        assert (plan["version"], plan["trial_days"], plan["locked_at"]) == (1, 14, None)
        plans[code] = plan["id"]
    coupon = ok(
        api.post(
            "/v1/coupons",
            {"code": "LAUNCH20", "name": "Launch", "kind": "percentage", "value": "20", "duration": "once"},
        ),
        201,
    )
    addon = ok(
        api.post(
            "/v1/addons",
            {
                "code": "priority_support",
                "name_en": "Priority support",
                "name_de": "Bevorzugter Support",
                "currency": "EUR",
                "price": {"model": "flat", "amount": "15.00"},
                "interval": {"unit": "month"},
            },
        ),
        201,
    )
    return {
        "product": product["id"],
        "metric": metric["id"],
        "coupon": coupon["id"],
        "addon": addon["id"],
        **plans,
    }


@pytest.fixture
def customers(api: ApiClient, clock) -> dict[str, dict[str, Any]]:
    erika = ok(
        api.post(
            "/v1/customers",
            {
                "name": "Erika Mustermann",
                "email": "erika@example.com",
                "address_line1": "Heidestraße 17",
                "postal_code": "51147",
                "city": "Köln",
                "country": "DE",
            },
        ),
        201,
    )
    firma = ok(
        api.post(
            "/v1/customers",
            {
                "name": "Max Huber",
                "company": "Huber Software GmbH",
                "email": "buchhaltung@huber.example",
                "address_line1": "Mariahilfer Straße 1",
                "postal_code": "1060",
                "city": "Wien",
                "country": "AT",
                "timezone": "Europe/Vienna",
                "locale": "de",
                "vat_id": "ATU13585627",
                "tax_exempt": "reverse",
            },
        ),
        201,
    )
    return {"b2c": erika, "business": firma}


def test_the_customers_carry_their_country_language_and_tax_treatment(api, customers):
    erika, firma = customers["b2c"], customers["business"]
    assert (erika["country"], erika["timezone"], erika["is_business"], erika["vat_id"]) == (
        "DE",
        "Europe/Berlin",
        False,
        None,
    )
    assert (firma["country"], firma["timezone"], firma["is_business"], firma["vat_id"]) == (
        "AT",
        "Europe/Vienna",
        True,
        "ATU13585627",
    )
    assert firma["tax_exempt"] == "reverse"
    listed = ok(api.get("/v1/customers"))["data"]
    assert [c["id"] for c in listed] == [firma["id"], erika["id"]]


def _actions(api: ApiClient, object_id: str) -> list[str]:
    events = ok(api.get("/v1/audit_events", {"object_id": object_id, "limit": 100}))["data"]
    return [event["action"] for event in reversed(events)]


def _pending(api: ApiClient, sub_id: str) -> list[tuple[str, str]]:
    return [(c["kind"], c["amount"]) for c in ok(api.get(f"/v1/subscriptions/{sub_id}/pending_charges"))]


def test_a_subscription_walks_through_every_transition(api, catalogue, customers, clock):
    created = ok(
        api.post(
            "/v1/subscriptions",
            {
                "customer": customers["b2c"]["id"],
                "plan": catalogue["basic"],
                "quantity": "2",
                "trial_days": 14,
            },
        ),
        201,
    )
    sub = created["id"]
    assert (created["status"], created["quantity"], created["recurring_price"]) == ("trialing", "2", "10.00")
    assert created["trial_end"] == "2026-01-25T23:00:00Z"
    assert _pending(api, sub) == []
    assert _actions(api, sub) == [
        "subscription.created",
        "subscription.started",
        "subscription.trial_started",
    ]
    assert ok(api.get(f"/v1/plans/{catalogue['basic']}"))["locked_at"] is not None

    # the trial ends at local midnight; the first paid period starts there
    clock.set(datetime(2026, 1, 26, 12, tzinfo=UTC))
    active = ok(api.get(f"/v1/subscriptions/{sub}"))
    assert (active["status"], active["current_period_start"], active["current_period_end"]) == (
        "active",
        "2026-01-25T23:00:00Z",
        "2026-02-25T23:00:00Z",
    )

    # upgrade now: the preview quotes exactly what the change does and what the engine computes
    clock.advance(timedelta(days=10))
    preview = ok(api.post(f"/v1/subscriptions/{sub}/preview_change", {"plan": catalogue["pro"]}))
    assert _pending(api, sub) == [], "a preview writes nothing"
    changed = ok(api.post(f"/v1/subscriptions/{sub}/change", {"plan": catalogue["pro"]}))
    assert changed["items"] == preview["items"]
    assert changed["total"] == preview["total"]
    assert (changed["direction"], changed["subscription"]["plan"]) == ("upgrade", catalogue["pro"])
    period = Period(at(active["current_period_start"]), at(active["current_period_end"]))
    quote = change_proration(
        Money("20.00", "EUR"), Money("60.00", "EUR"), period, clock.now(), ProrationMode.DAY, "Europe/Berlin"
    )
    prorated = {
        i["kind"]: Decimal(i["amount"]) for i in changed["items"] if i["kind"].startswith("proration")
    }
    assert prorated == {
        "proration_credit": -quote.credit.rounded().amount,
        "proration_charge": quote.charge.rounded().amount,
    }
    assert _pending(api, sub) == [(i["kind"], i["amount"]) for i in changed["items"]]
    assert _pending(api, sub)[0] == ("recurring", "20.00")
    assert _actions(api, sub)[3:] == [
        "subscription.trial_ended",
        "subscription.changed",
        "subscription.updated",
    ]

    # a quantity change now is an upgrade too
    clock.advance(timedelta(days=2))
    more = ok(api.post(f"/v1/subscriptions/{sub}/change", {"quantity": "3", "effective": "now"}))
    assert (more["direction"], more["subscription"]["quantity"]) == ("upgrade", "3")
    assert [i["kind"] for i in more["items"]] == ["proration_credit", "proration_charge"]
    assert Decimal(more["total"]["amount"]) > 0

    # a downgrade waits for the period end, then applies
    down = ok(api.post(f"/v1/subscriptions/{sub}/change", {"plan": catalogue["basic"]}))
    assert (down["direction"], down["effective_at"], down["items"]) == (
        "downgrade",
        "2026-02-25T23:00:00Z",
        [],
    )
    scheduled = ok(api.get(f"/v1/subscriptions/{sub}/scheduled_changes"))
    assert [(s["type"], s["effective_at"]) for s in scheduled] == [("plan_change", "2026-02-25T23:00:00Z")]
    assert ok(api.get(f"/v1/subscriptions/{sub}"))["plan"] == catalogue["pro"]
    clock.set(datetime(2026, 2, 27, 9, tzinfo=UTC))
    renewed = ok(api.get(f"/v1/subscriptions/{sub}"))
    assert (renewed["plan"], renewed["quantity"], renewed["current_period_start"]) == (
        catalogue["basic"],
        "3",
        "2026-02-25T23:00:00Z",
    )
    assert renewed["scheduled_changes"] == []

    # pause and resume
    paused = ok(api.post(f"/v1/subscriptions/{sub}/pause", {}))
    assert (paused["status"], paused["paused_at"]) == ("paused", "2026-02-27T09:00:00Z")
    clock.advance(timedelta(days=7))
    resumed = ok(api.post(f"/v1/subscriptions/{sub}/resume", {}))
    assert (resumed["status"], resumed["paused_at"]) == ("active", None)
    assert resumed["current_period_end"] > renewed["current_period_end"]

    # cancel at the period end, change of mind, then cancel now
    cancelling = ok(api.post(f"/v1/subscriptions/{sub}/cancel", {"mode": "period_end"}))
    assert (cancelling["status"], cancelling["cancel_at"]) == ("active", resumed["current_period_end"])
    assert [s["type"] for s in cancelling["scheduled_changes"]] == ["cancellation"]
    reactivated = ok(api.post(f"/v1/subscriptions/{sub}/reactivate", {}))
    assert (reactivated["cancel_at"], reactivated["scheduled_changes"]) == (None, [])
    clock.advance(timedelta(days=1))
    cancelled = ok(api.post(f"/v1/subscriptions/{sub}/cancel", {"mode": "now"}))
    assert cancelled["status"] == "cancelled"
    assert cancelled["ended_at"] == clock.now().isoformat().replace("+00:00", "Z")
    refused = api.post(f"/v1/subscriptions/{sub}/resume", {})
    assert (refused.status_code, refused.json()["code"]) == (409, "invalid_transition")

    assert _actions(api, sub)[3:] == [
        "subscription.trial_ended",
        "subscription.changed",
        "subscription.updated",
        "subscription.changed",
        "subscription.updated",
        "subscription.change_scheduled",
        "subscription.updated",
        "subscription.changed",
        "subscription.period_renewed",
        "subscription.paused",
        "subscription.updated",
        "subscription.resumed",
        "subscription.updated",
        "subscription.cancellation_scheduled",
        "subscription.updated",
        "subscription.reactivated",
        "subscription.updated",
        "subscription.cancelled",
        "subscription.updated",
    ]
    assert _pending(api, sub) == [
        ("recurring", "20.00"),
        ("proration_credit", "-13.55"),
        ("proration_charge", "40.65"),
        ("proration_credit", "-36.77"),
        ("proration_charge", "55.16"),
        ("recurring", "30.00"),
    ]
    every_event = ok(api.get("/v1/audit_events", {"limit": 100}))["data"]
    assert {e["actor"] for e in every_event if e["object_id"] == sub} == {f"api_key:{_key_id(api)}"}


def _key_id(api: ApiClient) -> str:
    from turnus.apps.tenants.models import ApiKey

    return ApiKey.objects.get(tenant=api.tenant, livemode=False).public_id


def test_a_business_subscribes_with_a_coupon_and_an_add_on_from_vienna(api, catalogue, customers, clock):
    firma = customers["business"]
    created = ok(
        api.post(
            "/v1/subscriptions",
            {
                "customer": firma["id"],
                "plan": catalogue["pro"],
                "trial_days": 0,
                "coupon": "LAUNCH20",
                "addons": [{"addon": catalogue["addon"], "quantity": "1"}],
            },
        ),
        201,
    )
    assert (created["status"], created["timezone"], created["coupon"]) == (
        "active",
        "Europe/Vienna",
        "LAUNCH20",
    )
    assert created["current_period_start"] == "2026-01-11T23:00:00Z"
    assert created["addons"] == [{"addon": catalogue["addon"], "quantity": "1"}]
    assert _pending(api, created["id"]) == [("recurring", "30.00")]
    assert ok(api.get(f"/v1/coupons/{catalogue['coupon']}"))["times_redeemed"] == 1
    removed = api.delete(f"/v1/addons/{catalogue['addon']}")
    assert (removed.status_code, removed.json()["code"]) == (409, "addon_in_use")
    mine = ok(api.get("/v1/subscriptions", {"customer": firma["id"]}))["data"]
    assert [s["id"] for s in mine] == [created["id"]]
