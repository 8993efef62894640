"""Helpers for tests that talk to the database and the API."""

from __future__ import annotations

import itertools
from typing import Any

from django.test import Client

from turnus.apps.tenants import services
from turnus.apps.tenants.models import Tenant
from turnus.core.scope import Actor, ActorKind

TEST_ACTOR = Actor(ActorKind.SYSTEM, "tests")
_counter = itertools.count(1)


def tenant_data(**overrides: Any) -> dict[str, Any]:
    number = next(_counter)
    data: dict[str, Any] = {
        "slug": f"shop-{number}",
        "legal_name": f"Beispiel Shop {number} GmbH",
        "address_line1": "Hauptstraße 1",
        "postal_code": "10115",
        "city": "Berlin",
        "country": "DE",
        "vat_id": "DE136695976",
        "default_currency": "EUR",
        "timezone": "Europe/Berlin",
        "locale": "de",
        "iban": "DE89370400440532013000",
        "bic": "COBADEFFXXX",
        "sepa_creditor_id": "DE98ZZZ09999999999",
    }
    data.update(overrides)
    return data


class ApiClient:
    """A test client that speaks to /v1 with a secret key."""

    def __init__(self, tenant: Tenant, *, livemode: bool = False) -> None:
        self.tenant = tenant
        self.livemode = livemode
        self.key = services.create_api_key(tenant, livemode=livemode, actor=TEST_ACTOR).plaintext
        self.client = Client()

    def _headers(self, extra: dict[str, str] | None) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}", **(extra or {})}

    def get(self, path: str, params: dict[str, Any] | None = None, headers: dict[str, str] | None = None):
        return self.client.get(path, params or {}, headers=self._headers(headers))

    def post(
        self, path: str, body: Any = None, headers: dict[str, str] | None = None, raw: str | None = None
    ):
        import json

        payload = raw if raw is not None else json.dumps(body if body is not None else {})
        return self.client.post(
            path, payload, content_type="application/json", headers=self._headers(headers)
        )

    def delete(self, path: str, headers: dict[str, str] | None = None):
        return self.client.delete(path, headers=self._headers(headers))
