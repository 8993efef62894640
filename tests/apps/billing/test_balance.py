"""The customer's credit balance, its use at finalization, and how credit notes settle (refunds)."""

import threading
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection

from tests.apps.billing.support import APRIL, MARCH, plan, scope_of, subscribe
from tests.support import TEST_ACTOR, ApiClient
from turnus.apps.billing import balance, services
from turnus.apps.billing.models import BalanceTransaction, CustomerBalance, Invoice, Refund
from turnus.apps.subscriptions import services as subscriptions
from turnus.core.clock import FrozenClock, use_clock
from turnus.core.errors import ValidationFailed
from turnus.core.scope import Scope
from turnus.engine.invoice import check_en16931_totals

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


def _credit(api, customer, amount, **body):
    response = api.post(
        f"/v1/customers/{customer}/balance_transactions",
        {"amount": amount, "description": "Goodwill", **body},
    )
    assert response.status_code == 201, response.content
    return response.json()


def _draft(scope, subscription):
    return services.create_draft(scope, subscription).invoice.public_id


def _balances(api, customer):
    return {
        item["currency"]: item["amount"]
        for item in api.get(f"/v1/customers/{customer}/balance").json()["balances"]
    }


# --- the balance --------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_adjustments_credit_and_debit_the_balance_per_currency(api, billed):
    first = _credit(api, billed.customer, "50.00")
    assert first["id"].startswith("cbtxn_")
    assert (first["object"], first["kind"], first["amount"], first["ending_balance"]) == (
        "customer_balance_transaction",
        "adjustment",
        "50.00",
        "50.00",
    )
    _credit(api, billed.customer, "-20.00")
    _credit(api, billed.customer, "7", currency="USD")
    assert _balances(api, billed.customer) == {"EUR": "30.00", "USD": "7.00"}
    listed = api.get(f"/v1/customers/{billed.customer}/balance_transactions", {"currency": "eur"}).json()
    assert [item["amount"] for item in listed["data"]] == ["-20.00", "50.00"]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"amount": "0"}, "amount"),
        ({"amount": "1.001"}, "amount"),
        ({"amount": 1.5}, "amount"),
        ({"amount": "-0.01"}, "amount"),
        ({"amount": "1e20"}, "amount"),
        ({"currency": "XYZ"}, "currency"),
        ({"description": "   "}, "description"),
        ({"description": None}, "description"),
    ],
)
def test_invalid_adjustments_name_the_field_and_write_nothing(api, billed, body, field):
    response = api.post(
        f"/v1/customers/{billed.customer}/balance_transactions",
        {"amount": "5", "description": "Goodwill", **body},
    )
    assert response.status_code == 422, response.content
    assert response.json()["errors"][0]["field"] == field
    assert not BalanceTransaction.objects.exists()


@pytest.mark.django_db
def test_the_balance_of_an_unknown_another_tenants_or_modes_customer_is_a_404(api, billed, make_tenant):
    _credit(api, billed.customer, "5")
    for client, customer in (
        (api, "cus_0000000000000000000000000"),
        (ApiClient(make_tenant()), billed.customer),
        (ApiClient(api.tenant, livemode=True), billed.customer),
    ):
        assert client.get(f"/v1/customers/{customer}/balance").status_code == 404
        assert client.get(f"/v1/customers/{customer}/balance_transactions").status_code == 404
        made = client.post(
            f"/v1/customers/{customer}/balance_transactions", {"amount": "1", "description": "x"}
        )
        assert made.status_code == 404
    assert BalanceTransaction.objects.count() == 1


@pytest.mark.django_db
def test_an_adjustment_replays_for_the_same_idempotency_key(api, billed):
    body = {"amount": "5", "description": "Goodwill"}
    headers = {"Idempotency-Key": "credit-1"}
    first = api.post(f"/v1/customers/{billed.customer}/balance_transactions", body, headers=headers)
    again = api.post(f"/v1/customers/{billed.customer}/balance_transactions", body, headers=headers)
    assert (first.status_code, again.status_code, again["Idempotent-Replayed"]) == (201, 201, "true")
    assert _balances(api, billed.customer) == {"EUR": "5.00"}


# --- finalization uses the credit ------------------------------------------------------------------------


@pytest.mark.django_db
def test_finalizing_applies_the_credit_as_prepaid_and_reduces_the_amount_due(api, scope, billed):
    _credit(api, billed.customer, "50.00")
    invoice = api.post(f"/v1/invoices/{_draft(scope, billed.subscription)}/finalize").json()
    assert invoice["status"] == "finalized"
    assert {name: invoice["totals"][name] for name in ("grand_total", "prepaid", "amount_due")} == {
        "grand_total": "119.00",
        "prepaid": "50.00",
        "amount_due": "69.00",
    }
    assert invoice["amount_remaining"] == "69.00"
    stored = Invoice.objects.get(public_id=invoice["id"])
    assert check_en16931_totals(services._composed_from(stored)) == []
    assert _balances(api, billed.customer) == {"EUR": "0.00"}
    [applied, _] = api.get(f"/v1/customers/{billed.customer}/balance_transactions").json()["data"]
    assert (applied["kind"], applied["amount"], applied["invoice"]) == (
        "applied_to_invoice",
        "-50.00",
        invoice["id"],
    )


@pytest.mark.django_db
def test_an_invoice_the_credit_covers_in_full_is_paid_at_once_and_the_rest_stays(api, scope, billed):
    _credit(api, billed.customer, "200.00")
    invoice = api.post(f"/v1/invoices/{_draft(scope, billed.subscription)}/finalize").json()
    assert (invoice["status"], invoice["totals"]["prepaid"], invoice["totals"]["amount_due"]) == (
        "paid",
        "119.00",
        "0.00",
    )
    assert invoice["paid_at"] is not None
    assert invoice["amount_remaining"] == "0.00"
    assert _balances(api, billed.customer) == {"EUR": "81.00"}


@pytest.mark.django_db
def test_credit_in_another_currency_is_not_used(api, scope, billed):
    _credit(api, billed.customer, "50", currency="USD")
    invoice = services.finalize(scope, _draft(scope, billed.subscription))
    assert (invoice.prepaid, invoice.amount_due) == (Decimal(0), Decimal(119))


@pytest.mark.django_db
def test_voiding_a_finalized_invoice_gives_the_credit_it_used_back(api, scope, billed):
    _credit(api, billed.customer, "50.00")
    invoice = services.finalize(scope, _draft(scope, billed.subscription))
    assert api.post(f"/v1/invoices/{invoice.public_id}/void").json()["status"] == "void"
    assert _balances(api, billed.customer) == {"EUR": "50.00"}
    kinds = [
        item["kind"]
        for item in api.get(f"/v1/customers/{billed.customer}/balance_transactions").json()["data"]
    ]
    assert kinds == ["invoice_voided", "applied_to_invoice", "adjustment"]


# --- credit notes settle ------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_credit_note_on_a_paid_invoice_makes_a_refund_due(api, scope, billed):
    invoice = services.finalize(scope, _draft(scope, billed.subscription)).public_id
    api.post(f"/v1/invoices/{invoice}/mark_paid")
    note = api.post(
        "/v1/credit_notes", {"invoice": invoice, "lines": [{"line": 1, "amount": "10.00"}]}
    ).json()
    assert note["settlement"]["refund"] == "11.90"
    assert (note["settlement"]["invoice"], note["settlement"]["balance"]) == ("0.00", "0.00")
    refund = api.get(f"/v1/refunds/{note['settlement']['refund_id']}").json()
    assert refund["id"].startswith("re_")
    assert (
        refund["object"],
        refund["status"],
        refund["amount"],
        refund["credit_note"],
        refund["invoice"],
    ) == (
        "refund",
        "due",
        "11.90",
        note["id"],
        invoice,
    )
    assert [item["id"] for item in api.get("/v1/refunds", {"status": "due"}).json()["data"]] == [refund["id"]]
    paid_out = api.post(f"/v1/refunds/{refund['id']}/mark_refunded").json()
    assert (paid_out["status"], paid_out["refunded_at"] is not None) == ("refunded", True)
    again = api.post(f"/v1/refunds/{refund['id']}/mark_refunded")
    assert (again.status_code, again.json()["code"]) == (409, "refund_state")


@pytest.mark.django_db
def test_a_credit_note_on_an_unpaid_invoice_reduces_what_is_still_owed(api, scope, billed):
    invoice = services.finalize(scope, _draft(scope, billed.subscription)).public_id
    note = api.post(
        "/v1/credit_notes", {"invoice": invoice, "lines": [{"line": 1, "amount": "10.00"}]}
    ).json()
    assert note["settlement"] == {"invoice": "11.90", "balance": "0.00", "refund": "0.00", "refund_id": None}
    shown = api.get(f"/v1/invoices/{invoice}").json()
    assert (shown["status"], shown["totals"]["amount_due"], shown["amount_remaining"]) == (
        "finalized",
        "119.00",
        "107.10",
    )
    assert not Refund.objects.exists()
    assert not CustomerBalance.objects.exists()
    rest = api.post("/v1/credit_notes", {"invoice": invoice, "lines": [{"line": 1, "amount": "90.00"}]})
    assert rest.status_code == 201, rest.content
    settled = api.get(f"/v1/invoices/{invoice}").json()
    assert (settled["status"], settled["amount_remaining"]) == ("paid", "0.00")


@pytest.mark.django_db
def test_what_a_credit_note_credits_beyond_what_is_owed_goes_to_the_balance(api, scope, billed):
    _credit(api, billed.customer, "50.00")
    invoice = services.finalize(scope, _draft(scope, billed.subscription)).public_id
    note = api.post("/v1/credit_notes", {"invoice": invoice}).json()
    assert note["settlement"] == {"invoice": "69.00", "balance": "50.00", "refund": "0.00", "refund_id": None}
    assert _balances(api, billed.customer) == {"EUR": "50.00"}
    assert api.get(f"/v1/invoices/{invoice}").json()["status"] == "paid"


@pytest.mark.django_db
def test_a_credit_note_on_an_invoice_paid_partly_by_credit_refunds_only_the_money(api, scope, billed):
    _credit(api, billed.customer, "19.00")
    invoice = services.finalize(scope, _draft(scope, billed.subscription)).public_id
    services.mark_paid(scope, invoice)
    note = api.post("/v1/credit_notes", {"invoice": invoice}).json()
    assert note["settlement"] == {
        "invoice": "0.00",
        "balance": "19.00",
        "refund": "100.00",
        "refund_id": note["settlement"]["refund_id"],
    }
    assert _balances(api, billed.customer) == {"EUR": "19.00"}


@pytest.mark.django_db
def test_settlement_to_the_balance_or_as_a_refund_on_request(api, scope, billed):
    invoice = services.finalize(scope, _draft(scope, billed.subscription)).public_id
    to_balance = api.post(
        "/v1/credit_notes",
        {"invoice": invoice, "lines": [{"line": 1, "amount": "10.00"}], "settlement": "balance"},
    ).json()
    assert to_balance["settlement"]["balance"] == "11.90"
    assert api.get(f"/v1/invoices/{invoice}").json()["amount_remaining"] == "119.00"
    refused = api.post(
        "/v1/credit_notes",
        {"invoice": invoice, "lines": [{"line": 1, "amount": "10.00"}], "settlement": "refund"},
    )
    assert (refused.status_code, refused.json()["errors"][0]["field"]) == (422, "settlement")
    services.mark_paid(scope, invoice)
    refunded = api.post(
        "/v1/credit_notes",
        {"invoice": invoice, "lines": [{"line": 1, "amount": "10.00"}], "settlement": "refund"},
    ).json()
    assert refunded["settlement"]["refund"] == "11.90"
    unknown = api.post("/v1/credit_notes", {"invoice": invoice, "settlement": "cash"})
    assert (unknown.status_code, unknown.json()["errors"][0]["field"]) == (422, "settlement")
    assert Invoice.objects.filter(kind="credit_note").count() == 2


@pytest.mark.django_db
def test_refunds_of_another_tenant_or_mode_and_unknown_refunds_are_404(api, scope, billed, make_tenant):
    invoice = services.finalize(scope, _draft(scope, billed.subscription)).public_id
    services.mark_paid(scope, invoice)
    refund = api.post("/v1/credit_notes", {"invoice": invoice}).json()["settlement"]["refund_id"]
    assert api.get("/v1/refunds/re_0000000000000000000000000").status_code == 404
    for stranger in (ApiClient(make_tenant()), ApiClient(api.tenant, livemode=True)):
        assert stranger.get(f"/v1/refunds/{refund}").status_code == 404
        assert stranger.post(f"/v1/refunds/{refund}/mark_refunded").status_code == 404
        assert stranger.get("/v1/refunds").json()["data"] == []
    assert Refund.objects.get().status == "due"


@pytest.mark.django_db
def test_a_debit_cannot_take_back_more_credit_than_the_customer_has(scope, billed):
    balance.adjust(scope, billed.customer, amount=Decimal(5), currency="EUR", description="Goodwill")
    with pytest.raises(ValidationFailed) as refused:
        balance.adjust(scope, billed.customer, amount=Decimal(-6), currency="EUR", description="Oops")
    assert refused.value.field == "amount"


# --- concurrency ------------------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_concurrent_finalization_never_spends_the_same_credit_twice(tenant):
    if connection.vendor != "postgresql":
        pytest.skip("SQLite serialises writers; concurrent finalization is a PostgreSQL concern")
    scope = scope_of(tenant)
    with use_clock(FrozenClock(START)):
        billed = subscribe(scope)
        drafts = [_draft(scope, billed.subscription)]
        for index in range(5):
            other = subscriptions.create_subscription(
                scope, customer=billed.customer, plan=plan(scope, code=f"plan{index}")
            )
            drafts.append(_draft(scope, other.public_id))
        balance.adjust(scope, billed.customer, amount=Decimal(150), currency="EUR", description="Goodwill")
    barrier = threading.Barrier(len(drafts))
    errors: list[BaseException] = []

    def finalize(public_id: str) -> None:
        try:
            with use_clock(FrozenClock(APRIL)):
                barrier.wait()
                services.finalize(scope, public_id)
        except BaseException as error:
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=finalize, args=(public_id,)) for public_id in drafts]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    prepaid = sorted(Invoice.objects.values_list("prepaid", flat=True))
    assert sum(prepaid) == Decimal(150)
    assert prepaid[-2:] == [Decimal(31), Decimal(119)]
    assert CustomerBalance.objects.get().amount == 0
    applied = BalanceTransaction.objects.filter(kind="applied_to_invoice")
    assert sum(entry.amount for entry in applied) == Decimal(-150)
