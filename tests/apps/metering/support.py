"""A tenant's catalog, customer and subscription with metered charges, made through the API."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from tests.support import ApiClient

START = datetime(2026, 5, 4, 8, 0, tzinfo=UTC)


def created(response) -> dict[str, Any]:
    assert response.status_code == 201, response.content
    body: dict[str, Any] = response.json()
    return body


@dataclass
class Metered:
    api: ApiClient
    customer: str
    subscription: str
    metrics: dict[str, str]


def metric(api: ApiClient, code: str, aggregation: str, **fields: Any) -> str:
    body = {
        "code": code,
        "name_en": code.title(),
        "name_de": code.title(),
        "aggregation": aggregation,
        **fields,
    }
    return str(created(api.post("/v1/billable_metrics", body))["id"])


def metered_subscription(
    api: ApiClient,
    metrics: dict[str, dict[str, Any]] | None = None,
    *,
    prices: dict[str, dict[str, Any]] | None = None,
    external_id: str = "",
    tag: str = "",
) -> Metered:
    """A monthly plan charging per unit for each metric (``{"calls": {"aggregation": "count"}}``)."""
    metrics = metrics or {"calls": {"aggregation": "count"}}
    ids = {code: metric(api, code + tag, **definition) for code, definition in metrics.items()}
    product = created(api.post("/v1/products", {"name_en": "Cloud", "name_de": "Cloud"}))["id"]
    charges = [
        {
            "code": "base",
            "name_en": "Base fee",
            "name_de": "Grundgebühr",
            "kind": "recurring",
            "price": {"model": "flat", "amount": "10.00"},
        }
    ] + [
        {
            "code": code,
            "name_en": code.title(),
            "name_de": code.title(),
            "kind": "metered",
            "price": (prices or {}).get(code, {"model": "per_unit", "unit_price": "0.01"}),
            "metric": ids[code],
        }
        for code in metrics
    ]
    plan = created(
        api.post(
            "/v1/plans",
            {
                "code": f"metered{tag}",
                "product": product,
                "name_en": "Metered",
                "currency": "EUR",
                "interval": {"unit": "month"},
                "charges": charges,
            },
        )
    )["id"]
    customer = created(
        api.post(
            "/v1/customers",
            {
                "name": "Erika Mustermann",
                "email": "erika@example.com",
                "address_line1": "Heidestraße 17",
                "postal_code": "51147",
                "city": "Köln",
                "country": "DE",
                "external_id": external_id,
            },
        )
    )["id"]
    subscription = created(api.post("/v1/subscriptions", {"customer": customer, "plan": plan}))["id"]
    return Metered(api, customer, subscription, {code + tag: value for code, value in ids.items()})
