"""Seeding for the project-wide tests: one object of every kind, through the API."""

from __future__ import annotations

from datetime import timedelta

from tests.support import TEST_ACTOR, ApiClient
from turnus.apps.billing import services as billing
from turnus.apps.billing.models import BillingError
from turnus.apps.documents import delivery
from turnus.apps.documents import services as documents
from turnus.apps.subscriptions.models import Subscription
from turnus.core import clock
from turnus.core.ids import new_id
from turnus.core.scope import Scope


def _created(response) -> str:
    assert response.status_code == 201, response.content
    return str(response.json()["id"])


def seed(api: ApiClient, tag: str = "") -> dict[str, str]:
    """One object of every kind, made through the API with ``api``'s key; their ids by kind.

    ``tag`` goes into every code and name, so that pages can be searched for another tenant's objects.
    """
    ids = {
        "product": _created(api.post("/v1/products", {"name_en": f"Cloud{tag}", "name_de": f"Cloud{tag}"}))
    }
    ids["metric"] = _created(
        api.post("/v1/billable_metrics", {"code": f"calls{tag}", "name_en": "Calls", "aggregation": "count"})
    )
    ids["plan"] = _created(
        api.post(
            "/v1/plans",
            {
                "code": f"basic{tag}",
                "product": ids["product"],
                "name_en": "Basic",
                "name_de": "Basis",
                "currency": "EUR",
                "interval": {"unit": "month", "count": 1},
                "charges": [
                    {
                        "code": "base",
                        "name_en": "Base fee",
                        "name_de": "Grundgebühr",
                        "kind": "recurring",
                        "price": {"model": "per_unit", "unit_price": "10.00"},
                    },
                    {
                        "code": "seats",
                        "name_en": "Seats",
                        "name_de": "Plätze",
                        "kind": "quantity",
                        "price": {
                            "model": "graduated",
                            "tiers": [
                                {"up_to": "5", "unit_price": "8.00"},
                                {"up_to": None, "unit_price": "6.00"},
                            ],
                        },
                    },
                    {
                        "code": "calls",
                        "name_en": "Calls",
                        "name_de": "Aufrufe",
                        "kind": "metered",
                        "price": {"model": "per_unit", "unit_price": "0.01"},
                        "metric": ids["metric"],
                    },
                ],
            },
        )
    )
    ids["addon"] = _created(
        api.post(
            "/v1/addons",
            {
                "code": f"support{tag}",
                "name_en": "Support",
                "name_de": "Support",
                "currency": "EUR",
                "price": {"model": "flat", "amount": "5.00"},
                "interval": {"unit": "month"},
            },
        )
    )
    ids["coupon"] = _created(
        api.post(
            "/v1/coupons", {"code": f"WELCOME{tag}", "name": "Welcome", "kind": "percentage", "value": "10"}
        )
    )
    ids["test_clock"] = _created(
        api.post("/v1/test_clocks", {"frozen_time": "2026-01-01T00:00:00Z", "name": f"Clock{tag}"})
    )
    ids["customer"] = _created(
        api.post(
            "/v1/customers",
            {
                "name": f"Erika Mustermann{tag}",
                "email": "erika@example.com",
                "address_line1": "Heidestraße 17",
                "postal_code": "51147",
                "city": "Köln",
                "country": "DE",
            },
        )
    )
    ids["subscription"] = _created(
        api.post(
            "/v1/subscriptions",
            {
                "customer": ids["customer"],
                "plan": ids["plan"],
                "coupon": f"WELCOME{tag}",
                "quantities": {"seats": "2"},
            },
        )
    )
    event = api.post(
        "/v1/events",
        {"transaction_id": f"call_1{tag}", "subscription": ids["subscription"], "metric": f"calls{tag}"},
    )
    assert event.status_code == 201, event.content
    ids["event"] = str(event.json()["transaction_id"])
    mistake = {"transaction_id": f"call_2{tag}", "subscription": ids["subscription"], "metric": f"calls{tag}"}
    assert api.post("/v1/events", mistake).status_code == 201
    assert api.post(f"/v1/events/call_2{tag}/void").status_code == 200
    credited = _created(api.post(f"/v1/subscriptions/{ids['subscription']}/invoices"))
    assert api.post(f"/v1/invoices/{credited}/finalize").status_code == 200
    assert api.post(f"/v1/invoices/{credited}/mark_paid").status_code == 200  # so its credit note refunds
    ids["credit_note"] = _created(api.post("/v1/credit_notes", {"invoice": credited}))
    ids["refund"] = api.get("/v1/refunds", {"credit_note": ids["credit_note"]}).json()["data"][0]["id"]
    ids["issued_invoice"] = credited
    for issued in (credited, ids["credit_note"]):  # the job that renders them runs after commit
        documents.render_documents(issued)
        delivery.deliver_invoice(issued)  # and then e-mails them
    second = _created(api.post("/v1/subscriptions", {"customer": ids["customer"], "plan": ids["plan"]}))
    ids["invoice"] = _created(api.post(f"/v1/subscriptions/{second}/invoices"))
    _billing_run_traces(api, second, tag)
    later = (clock.now() + timedelta(days=400)).isoformat()
    scheduled = {"effective": "period_end", "effective_at": later}
    migration = api.post(f"/v1/plans/{ids['plan']}/migrate", scheduled)
    assert migration.status_code == 200, migration.content
    customer_path = f"/v1/customers/{ids['customer']}"
    credit = {"amount": "5.00", "description": f"Goodwill{tag}"}
    ids["balance_transaction"] = _created(api.post(f"{customer_path}/balance_transactions", credit))
    charge = {"description": f"Installation{tag}", "amount": "20.00"}
    ids["customer_charge"] = _created(api.post(f"{customer_path}/charges", charge))
    return ids


def _billing_run_traces(api: ApiClient, subscription: str, tag: str) -> None:
    """What the billing run leaves besides invoices (no API for these): settings and an error."""
    billing.set_draft_grace_period(Scope(api.tenant.pk, False, TEST_ACTOR), timedelta(days=1))
    now = clock.now()
    BillingError.objects.create(
        public_id=new_id("berr", at=now),
        tenant_id=api.tenant.pk,
        livemode=False,
        created_at=now,
        subscription=Subscription.objects.get(public_id=subscription),
        code="invoice_totals_broken",
        reason=f"the composed invoice breaks BR-CO-10{tag}",
    )
