"""One-off charges: billed exactly once by the customer's next invoice, or at once on their own invoice."""

from datetime import timedelta
from decimal import Decimal

import pytest

from tests.apps.billing.support import APRIL, MARCH, plan, subscribe
from tests.apps.customers.support import customer_data
from tests.support import TEST_ACTOR, ApiClient
from turnus.apps.billing import charges, services, sweep
from turnus.apps.billing.models import CustomerCharge, Invoice
from turnus.apps.customers import services as customers
from turnus.apps.subscriptions import services as subscriptions
from turnus.core.clock import FrozenClock, use_clock
from turnus.core.scope import Scope

pytestmark = pytest.mark.django_db

START = MARCH + timedelta(hours=9)


@pytest.fixture
def clock():
    frozen = FrozenClock(START)
    with use_clock(frozen):
        yield frozen


@pytest.fixture
def scope(api):
    return Scope(api.tenant.pk, False, TEST_ACTOR)


@pytest.fixture
def billed(scope, clock):
    return subscribe(scope)


def _charge(api, customer, **body):
    response = api.post(
        f"/v1/customers/{customer}/charges", {"description": "Setup work", "amount": "40.00", **body}
    )
    assert response.status_code == 201, response.content
    return response.json()


def _one_off_lines(invoice_id):
    invoice = Invoice.objects.get(public_id=invoice_id)
    return [
        (line.description, line.quantity, line.net_amount, line.vat_rate, line.metadata)
        for line in invoice.lines.filter(kind="one_off")
    ]


def test_a_charge_is_created_pending_and_listed(api, billed):
    charge = _charge(api, billed.customer, quantity=2)
    assert charge["id"].startswith("chg_")
    assert (charge["object"], charge["status"], charge["invoice"]) == ("customer_charge", "pending", None)
    assert (charge["amount"], charge["quantity"], charge["currency"], charge["tax_category"]) == (
        "40",
        2,
        "EUR",
        "standard",
    )
    listed = api.get(f"/v1/customers/{billed.customer}/charges").json()
    assert [item["id"] for item in listed["data"]] == [charge["id"]]
    assert api.get(f"/v1/customer_charges/{charge['id']}").json()["id"] == charge["id"]


def test_the_next_subscription_invoice_bills_a_charge_exactly_once(api, scope, billed, clock):
    charge = _charge(api, billed.customer, quantity=2)
    first = services.create_draft(scope, billed.subscription).invoice
    assert _one_off_lines(first.public_id) == [
        ("Setup work", Decimal(2), Decimal(80), Decimal(19), {"customer_charge": charge["id"]})
    ]
    assert (first.tax_exclusive, first.grand_total) == (Decimal(180), Decimal("214.20"))
    shown = api.get(f"/v1/customer_charges/{charge['id']}").json()
    assert (shown["status"], shown["invoice"]) == ("invoiced", first.public_id)
    clock.advance(APRIL - MARCH)
    second = services.create_draft(scope, billed.subscription).invoice
    assert second.pk != first.pk
    assert _one_off_lines(second.public_id) == []


def test_the_billing_run_bills_a_pending_charge_once(api, scope, billed, clock):
    charge = _charge(api, billed.customer)
    summary = sweep.run_sweep(START)
    assert summary.invoices_created == 1
    invoice = Invoice.objects.get(subscription__public_id=billed.subscription)
    assert [line[4]["customer_charge"] for line in _one_off_lines(invoice.public_id)] == [charge["id"]]
    assert sweep.run_sweep(START + timedelta(minutes=1)).invoices_created == 0
    assert CustomerCharge.objects.get(public_id=charge["id"]).invoice_id == invoice.pk


def test_the_upcoming_invoice_shows_pending_charges_without_taking_them(api, billed):
    charge = _charge(api, billed.customer)
    upcoming = api.get(f"/v1/subscriptions/{billed.subscription}/upcoming_invoice").json()
    assert [line["metadata"] for line in upcoming["lines"] if line["kind"] == "one_off"] == [
        {"customer_charge": charge["id"]}
    ]
    assert api.get(f"/v1/customer_charges/{charge['id']}").json()["status"] == "pending"


def test_a_charge_naming_a_subscription_waits_for_that_subscriptions_invoice(api, scope, billed):
    second = subscriptions.create_subscription(
        scope, customer=billed.customer, plan=plan(scope, code="other")
    ).public_id
    mine = _charge(api, billed.customer, subscription=billed.subscription)
    anyone = _charge(api, billed.customer, description="Any invoice")
    other_invoice = services.create_draft(scope, second).invoice
    assert [line[4]["customer_charge"] for line in _one_off_lines(other_invoice.public_id)] == [anyone["id"]]
    invoice = services.create_draft(scope, billed.subscription).invoice
    assert [line[4]["customer_charge"] for line in _one_off_lines(invoice.public_id)] == [mine["id"]]


def test_a_charge_in_another_currency_is_not_taken_by_a_euro_invoice(api, scope, billed):
    charge = _charge(api, billed.customer, currency="USD")
    invoice = services.create_draft(scope, billed.subscription).invoice
    assert _one_off_lines(invoice.public_id) == []
    assert api.get(f"/v1/customer_charges/{charge['id']}").json()["status"] == "pending"


def test_a_reduced_rate_gross_charge_is_converted_onto_a_net_invoice(api, scope, billed):
    _charge(api, billed.customer, amount="10.70", tax_category="reduced", prices_include_tax=True)
    invoice = services.create_draft(scope, billed.subscription).invoice
    [(_, _, net, rate, _)] = _one_off_lines(invoice.public_id)
    assert (net, rate) == (Decimal(10), Decimal(7))
    assert invoice.grand_total == Decimal("129.70")


def test_invoice_now_finalizes_a_standalone_invoice_with_the_customers_pending_charges(api, billed):
    waiting = _charge(api, billed.customer, description="Cable", amount="5.00")
    charge = _charge(api, billed.customer, invoice_now=True)
    assert charge["status"] == "invoiced"
    invoice = api.get(f"/v1/invoices/{charge['invoice']}").json()
    assert (invoice["status"], invoice["subscription"], invoice["number"]) == (
        "finalized",
        None,
        "RE-2026-000001",
    )
    assert sorted(line["metadata"]["customer_charge"] for line in invoice["lines"]) == sorted(
        [waiting["id"], charge["id"]]
    )
    assert (invoice["totals"]["grand_total"], invoice["amount_remaining"]) == ("53.55", "53.55")
    assert api.get(f"/v1/customer_charges/{waiting['id']}").json()["invoice"] == invoice["id"]


def test_invoice_now_makes_a_draft_when_the_tenant_keeps_drafts_and_voiding_it_releases_the_charges(
    api, scope, billed
):
    services.set_draft_grace_period(scope, timedelta(hours=6))
    charge = _charge(api, billed.customer, invoice_now=True)
    invoice = api.get(f"/v1/invoices/{charge['invoice']}").json()
    assert (invoice["status"], invoice["number"]) == ("draft", None)
    assert api.post(f"/v1/invoices/{invoice['id']}/void").json()["status"] == "void"
    released = api.get(f"/v1/customer_charges/{charge['id']}").json()
    assert (released["status"], released["invoice"]) == ("pending", None)
    again = services.create_draft(scope, billed.subscription).invoice
    assert [line[4]["customer_charge"] for line in _one_off_lines(again.public_id)] == [charge["id"]]


def test_a_pending_charge_is_voided_and_an_invoiced_one_is_a_409(api, scope, billed):
    pending = _charge(api, billed.customer)
    voided = api.post(f"/v1/customer_charges/{pending['id']}/void")
    assert (voided.status_code, voided.json()["status"]) == (200, "void")
    invoice = services.create_draft(scope, billed.subscription).invoice
    assert _one_off_lines(invoice.public_id) == []
    billed_now = _charge(api, billed.customer, invoice_now=True)
    refused = api.post(f"/v1/customer_charges/{billed_now['id']}/void")
    assert (refused.status_code, refused.json()["code"]) == (409, "charge_state")
    assert api.post(f"/v1/customer_charges/{pending['id']}/void").status_code == 409


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"amount": "0"}, "amount"),
        ({"amount": "-5"}, "amount"),
        ({"amount": 5.5}, "amount"),
        ({"amount": "0.0000000000001"}, "amount"),
        ({"amount": "1000000000000"}, "amount"),
        ({"quantity": 0}, "quantity"),
        ({"quantity": "1.5"}, "quantity"),
        ({"currency": "XYZ"}, "currency"),
        ({"currency": "USD", "subscription": "{subscription}"}, "currency"),
        ({"tax_category": "luxury"}, "tax_category"),
        ({"description": ""}, "description"),
        ({"description": "   "}, "description"),
        ({"invoice_now": True, "subscription": "{subscription}"}, "invoice_now"),
        ({"colour": "red"}, "colour"),
    ],
)
def test_invalid_charges_are_refused_naming_the_field_and_nothing_is_written(api, billed, body, field):
    body = {
        key: value.format(subscription=billed.subscription) if isinstance(value, str) else value
        for key, value in body.items()
    }
    response = api.post(
        f"/v1/customers/{billed.customer}/charges", {"description": "Work", "amount": "10", **body}
    )
    assert response.status_code == 422, response.content
    assert response.json()["errors"][0]["field"] == field
    assert not CustomerCharge.objects.exists()


def test_a_subscription_of_another_customer_is_refused(api, scope, billed):
    other = customers.create_customer(scope, customer_data(name="Max"))
    response = api.post(
        f"/v1/customers/{other.public_id}/charges",
        {"description": "Work", "amount": "10", "subscription": billed.subscription},
    )
    assert (response.status_code, response.json()["errors"][0]["field"]) == (422, "subscription")


def test_unknown_ids_are_404(api, billed):
    unknown_customer = "cus_0000000000000000000000000"
    assert (
        api.post(f"/v1/customers/{unknown_customer}/charges", {"description": "x", "amount": "1"}).status_code
        == 404
    )
    assert api.get(f"/v1/customers/{unknown_customer}/charges").status_code == 404
    assert api.get("/v1/customer_charges/chg_0000000000000000000000000").status_code == 404
    assert api.post("/v1/customer_charges/chg_0000000000000000000000000/void").status_code == 404
    missing = api.post(
        f"/v1/customers/{billed.customer}/charges",
        {"description": "x", "amount": "1", "subscription": "sub_0000000000000000000000000"},
    )
    assert (missing.status_code, missing.json()["errors"][0]["field"]) == (404, "subscription")


def test_another_tenants_or_modes_charge_is_a_404_and_stays_pending(api, billed, make_tenant):
    charge = _charge(api, billed.customer)
    for stranger in (ApiClient(make_tenant()), ApiClient(api.tenant, livemode=True)):
        assert stranger.get(f"/v1/customer_charges/{charge['id']}").status_code == 404
        assert stranger.post(f"/v1/customer_charges/{charge['id']}/void").status_code == 404
        assert stranger.get(f"/v1/customers/{billed.customer}/charges").status_code == 404
        assert (
            stranger.post(
                f"/v1/customers/{billed.customer}/charges", {"description": "x", "amount": "1"}
            ).status_code
            == 404
        )
    assert CustomerCharge.objects.get().status == "pending"


def test_creating_a_charge_replays_for_the_same_idempotency_key(api, billed):
    body = {"description": "Setup work", "amount": "40.00"}
    headers = {"Idempotency-Key": "charge-1"}
    first = api.post(f"/v1/customers/{billed.customer}/charges", body, headers=headers)
    again = api.post(f"/v1/customers/{billed.customer}/charges", body, headers=headers)
    assert (first.status_code, again.status_code) == (201, 201)
    assert again["Idempotent-Replayed"] == "true"
    assert CustomerCharge.objects.count() == 1


def test_charges_are_listed_newest_first_in_pages(api, billed):
    made = [_charge(api, billed.customer, description=f"Item {index}")["id"] for index in range(3)]
    first = api.get(f"/v1/customers/{billed.customer}/charges", {"limit": 2}).json()
    assert ([item["id"] for item in first["data"]], first["has_more"]) == (made[:0:-1], True)
    rest = api.get(
        f"/v1/customers/{billed.customer}/charges", {"limit": 2, "starting_after": first["data"][-1]["id"]}
    ).json()
    assert ([item["id"] for item in rest["data"]], rest["has_more"]) == ([made[0]], False)
    assert api.get(f"/v1/customers/{billed.customer}/charges", {"status": "void"}).json()["data"] == []


def test_invoice_now_refuses_a_charge_that_is_no_longer_pending(scope, billed):
    charge = charges.create_charge(scope, billed.customer, charges.NewCharge("Work", Decimal(10)))
    charges.void_charge(scope, charge.public_id)
    with pytest.raises(services.NothingToInvoice):
        charges.invoice_now(scope, charge.customer, charge)


def test_the_billing_run_finalizes_a_standalone_draft_once_the_grace_period_passed(api, scope, billed):
    services.set_draft_grace_period(scope, timedelta(hours=6))
    charge = _charge(api, billed.customer, invoice_now=True)
    sweep.run_sweep(START + timedelta(hours=1))
    assert Invoice.objects.get(public_id=charge["invoice"]).status == "draft"
    sweep.run_sweep(START + timedelta(hours=7))
    assert Invoice.objects.get(public_id=charge["invoice"]).status == "finalized"
