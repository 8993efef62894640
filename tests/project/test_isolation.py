"""Tenant isolation across the whole /v1 API, enumerated from the live OpenAPI document.

Every operation whose path names an object by id is called with another tenant's key and with the
owner's key of the other mode; each must answer 404 and change nothing. A new route under an unknown
collection fails here until it is added to ``KINDS`` (and its object seeded).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

import pytest
from django.apps import apps
from django.db import models

from tests.project.support import seed
from tests.support import ApiClient
from turnus.core.clock import FrozenClock, use_clock
from turnus.core.models import AuditEvent

pytestmark = pytest.mark.django_db

START = datetime(2026, 5, 4, 8, 0, tzinfo=UTC)

#: The first path segment of a route and the kind of object its ``{…}`` parameter names.
KINDS = {
    "products": "product",
    "billable_metrics": "metric",
    "plans": "plan",
    "addons": "addon",
    "coupons": "coupon",
    "customers": "customer",
    "subscriptions": "subscription",
    "events": "event",
    "invoices": "invoice",
    "credit_notes": "credit_note",
    "customer_charges": "customer_charge",
    "refunds": "refund",
    "test_clocks": "test_clock",
}
#: Operations that need another seeded object of their kind than the first one (its key in ``seed()``).
OBJECTS = {
    "retrieve_invoice_pdf": "issued_invoice",
    "retrieve_invoice_xml": "issued_invoice",
    "send_invoice": "issued_invoice",
    "list_invoice_deliveries": "issued_invoice",
}
#: Collections that hold no seeded kind of their own but must still show nothing of another scope.
OTHER_COLLECTIONS = {"audit_events"}
#: GETs without an id that show the tenant's settings (one object, no list); ``_representations`` shows them.
SETTINGS = {"billing_settings", "tenant"}

#: Bodies that succeed for the owner; POSTs not named here send ``{}``.
BODIES: dict[str, dict[str, Any]] = {
    "update_product": {"name_en": "Stolen"},
    "update_billable_metric": {"name_en": "Stolen"},
    "update_plan": {"name_en": "Stolen"},
    "update_addon": {"name_en": "Stolen"},
    "update_customer": {"name": "Mallory"},
    "change_subscription": {"quantity": "5", "quantities": {"seats": "3"}, "effective": "now"},
    "change_subscription_addon": {"addon": "support", "quantity": "2", "effective": "now"},
    "preview_subscription_addon_change": {"addon": "support", "quantity": "2", "effective": "now"},
    "preview_subscription_change": {"quantity": "5", "quantities": {"seats": "3"}, "effective": "now"},
    "cancel_subscription": {"mode": "now"},
    "migrate_plan": {"effective": "now"},
    "create_customer_charge": {"description": "Stolen", "amount": "1.00"},
    "create_balance_transaction": {"amount": "1.00", "description": "Stolen"},
    "advance_test_clock": {"frozen_time": "2026-02-01T00:00:00Z"},
}
#: What the owner does first so that the operation applies (for the check that the bodies are valid).
PRECONDITIONS: dict[str, tuple[str, dict[str, Any]]] = {
    "resume_subscription": ("/v1/subscriptions/{subscription}/pause", {}),
    "reactivate_subscription": ("/v1/subscriptions/{subscription}/cancel", {"mode": "period_end"}),
    "mark_invoice_paid": ("/v1/invoices/{invoice}/finalize", {}),
}

_PARAMETER = re.compile(r"\{[^}]+\}")


@pytest.fixture
def clock():
    frozen = FrozenClock(START)
    with use_clock(frozen):
        yield frozen


def _operations(api: ApiClient) -> list[tuple[str, str, str]]:
    """(method, path template, operation id) of every operation in the live OpenAPI document."""
    response = api.get("/v1/openapi.json")
    assert response.status_code == 200
    return [
        (method.upper(), path, operation.get("operationId", f"{method} {path}"))
        for path, item in response.json()["paths"].items()
        for method, operation in item.items()
        if method in {"get", "post", "put", "patch", "delete"}
    ]


def _segments(path: str) -> list[str]:
    assert path.startswith("/v1/"), path
    return path.removeprefix("/v1/").strip("/").split("/")


def _id_operations(api: ApiClient) -> list[tuple[str, str, str]]:
    found = [op for op in _operations(api) if _PARAMETER.search(op[1])]
    assert found, "the OpenAPI document lists no operation on an object id"
    return found


def _collection_operations(api: ApiClient) -> list[tuple[str, str, str]]:
    return [op for op in _operations(api) if op[0] == "GET" and not _PARAMETER.search(op[1])]


def _kind(path: str) -> str:
    segment = _segments(path)[0]
    assert segment in KINDS, (
        f"{path} names an object under /v1/{segment}/, which this test does not know: add {segment!r} to "
        "KINDS, seed one such object in seed() and give its POSTs a valid body in BODIES"
    )
    return KINDS[segment]


def _concrete(path: str, ids: dict[str, str], operation_id: str = "") -> str:
    return _PARAMETER.sub(ids[OBJECTS.get(operation_id, _kind(path))], path, count=1)


def _call(client: ApiClient, method: str, path: str, operation_id: str):
    if method == "GET":
        return client.get(path)
    if method == "DELETE":
        return client.delete(path)
    assert method == "POST", f"{operation_id}: {method} is not covered by this test"
    return client.post(path, BODIES.get(operation_id, {}))


def _rows() -> dict[str, list[dict[str, Any]]]:
    """Every row of every Turnus table, by model; a stranger's request must leave all of them as they were."""
    snapshot: dict[str, list[dict[str, Any]]] = {}
    for model in apps.get_models():
        if not model.__module__.startswith("turnus."):
            continue
        queryset: models.QuerySet[Any] = model._default_manager.order_by("pk")
        snapshot[model._meta.label] = list(queryset.values())
    return snapshot


def _representations(api: ApiClient, ids: dict[str, str]) -> dict[str, Any]:
    """What the owner sees: every GET on a seeded object and every collection, as JSON."""
    shown: dict[str, Any] = {}
    for method, template, operation_id in _id_operations(api):
        if method == "GET":
            path = _concrete(template, ids, operation_id)
            response = api.get(path)
            assert response.status_code == 200, (path, response.content)
            json = response["Content-Type"].startswith("application/json")
            shown[path] = response.json() if json else response.content
    for _, path, _ in _collection_operations(api):
        shown[path] = api.get(path, {"limit": 100}).json()
    return shown


def _audit_trail(tenant_id: int) -> list[dict[str, Any]]:
    return list(AuditEvent.objects.filter(tenant_id=tenant_id).order_by("pk").values())


@pytest.fixture
def owner(api, clock):
    return api


@pytest.fixture
def strangers(owner, make_tenant):
    return {
        "another tenant's test key": ApiClient(make_tenant()),
        "the owner's live key": ApiClient(owner.tenant, livemode=True),
    }


def test_every_operation_on_an_id_is_a_404_for_another_tenant_and_the_other_mode_and_changes_nothing(
    owner, strangers
):
    ids = seed(owner)
    rows, trail = _rows(), _audit_trail(owner.tenant.pk)
    shown = _representations(owner, ids)
    called = []
    for method, template, operation_id in _id_operations(owner):
        path = _concrete(template, ids, operation_id)
        for who, stranger in strangers.items():
            response = _call(stranger, method, path, operation_id)
            assert response.status_code == 404, f"{who}: {method} {path} answered {response.status_code}"
            assert response["Content-Type"] == "application/problem+json", (who, method, path)
            assert response.json()["code"] == "not_found", (who, method, path, response.json())
        called.append(operation_id)
    assert _rows() == rows
    assert _audit_trail(owner.tenant.pk) == trail
    assert _representations(owner, ids) == shown
    assert {"retrieve_subscription", "cancel_subscription", "delete_customer"} <= set(called)


def test_no_collection_lists_the_owners_objects_to_another_tenant_or_the_other_mode(owner, strangers):
    ids = seed(owner)
    trail = AuditEvent.objects.in_scope(owner.tenant.pk, livemode=False)
    owned = set(ids.values()) | set(trail.values_list("public_id", flat=True))
    collections = _collection_operations(owner)
    for _, path, _ in collections:
        segment = _segments(path)[0]
        if segment in SETTINGS:
            continue
        assert segment in KINDS or segment in OTHER_COLLECTIONS, (
            f"{path} is a collection this test does not know: add {segment!r} to KINDS (and seed one "
            "such object) or to OTHER_COLLECTIONS"
        )
        mine = {item["id"] for item in owner.get(path, {"limit": 100}).json()["data"]}
        assert mine & owned, f"the owner sees none of its objects in {path}"
        for who, stranger in strangers.items():
            for params in ({"limit": 100}, *_filters_naming(ids)):
                response = stranger.get(path, params)
                assert response.status_code == 200, (who, path, params, response.content)
                listed = {item["id"] for item in response.json()["data"]}
                assert not listed & owned, f"{who} sees {listed & owned} in {path}?{params}"


def _filters_naming(ids: dict[str, str]) -> list[dict[str, str]]:
    """Query filters that name the owner's objects; unknown filters are ignored by the lists."""
    return [
        {"customer": ids["customer"]},
        {"plan": ids["plan"]},
        {"product": ids["product"]},
        {"object_id": ids["subscription"]},
        {"code": "WELCOME"},
        {"email": "erika@example.com"},
    ]


def _plan_referring_to(product: str, metric: str) -> dict[str, Any]:
    return {
        "code": "copy",
        "product": product,
        "name_en": "Copy",
        "name_de": "Kopie",
        "currency": "EUR",
        "interval": {"unit": "month"},
        "charges": [
            {
                "code": "calls",
                "name_en": "Calls",
                "name_de": "Aufrufe",
                "kind": "metered",
                "price": {"model": "per_unit", "unit_price": "0.01"},
                "metric": metric,
            }
        ],
    }


def _reference_problem(response) -> tuple[int, str, str]:
    assert response["Content-Type"] == "application/problem+json", response.content
    problem = response.json()
    return problem["status"], problem["code"], problem["errors"][0]["field"]


def test_creating_with_the_owners_ids_is_refused_as_if_they_did_not_exist(owner, strangers):
    ids = seed(owner)
    unknown = {
        kind: f"{public_id[: public_id.index('_')]}_0000000000000000000000000"
        for kind, public_id in ids.items()
    }
    rows = _rows()
    for who, stranger in strangers.items():
        for references in (
            {"customer": ids["customer"], "plan": ids["plan"]},
            {"customer": unknown["customer"], "plan": ids["plan"]},
            {"customer": ids["customer"], "plan": unknown["plan"], "coupon": "WELCOME"},
        ):
            foreign = stranger.post("/v1/subscriptions", references)
            nowhere = stranger.post(
                "/v1/subscriptions", {name: unknown.get(name, value) for name, value in references.items()}
            )
            assert _reference_problem(foreign) == _reference_problem(nowhere), (who, references)
            assert foreign.status_code == 404, (who, references, foreign.content)
        for product, metric in ((ids["product"], unknown["metric"]), (unknown["product"], ids["metric"])):
            foreign = stranger.post("/v1/plans", _plan_referring_to(product, metric))
            nowhere = stranger.post("/v1/plans", _plan_referring_to(unknown["product"], unknown["metric"]))
            assert foreign.status_code in (404, 422), (who, foreign.content)
            assert _reference_problem(foreign)[:2] == _reference_problem(nowhere)[:2], who
    assert _rows() == rows


def test_the_bodies_sent_to_strangers_succeed_for_the_owner(make_tenant, clock):
    """So that each 404 above comes from the id lookup, not from a body the route would refuse anyway."""
    operations = _id_operations(ApiClient(make_tenant()))
    for method, template, operation_id in operations:
        owner = ApiClient(make_tenant())
        ids = seed(owner)
        if operation_id in PRECONDITIONS:
            before_path, before_body = PRECONDITIONS[operation_id]
            first = owner.post(before_path.format(**ids), before_body)
            assert first.status_code == 200, (operation_id, first.content)
        response = _call(owner, method, _concrete(template, ids, operation_id), operation_id)
        assert 200 <= response.status_code < 300, (operation_id, response.status_code, response.content)
