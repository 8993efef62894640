from datetime import timedelta

import pytest

from tests.apps.billing.support import APRIL, MARCH, subscribe
from tests.support import TEST_ACTOR, ApiClient
from turnus.apps.billing import sweep
from turnus.apps.billing.models import BilledPeriod, BillingSchedule, Invoice
from turnus.core.clock import FrozenClock, use_clock
from turnus.core.models import AuditEvent
from turnus.core.scope import Scope

pytestmark = pytest.mark.django_db


@pytest.fixture
def clock():
    frozen = FrozenClock(MARCH + timedelta(hours=9))
    with use_clock(frozen):
        yield frozen


@pytest.fixture
def billed(api, clock):
    return subscribe(Scope(api.tenant.pk, False, TEST_ACTOR))


def test_invoicing_a_subscription_now_creates_its_draft_once(api, billed):
    first = api.post(f"/v1/subscriptions/{billed.subscription}/invoices")
    again = api.post(f"/v1/subscriptions/{billed.subscription}/invoices")
    assert (first.status_code, again.status_code) == (201, 200)
    body = first.json()
    assert again.json()["id"] == body["id"]
    assert (body["object"], body["status"], body["currency"]) == ("invoice", "draft", "EUR")
    assert body["totals"]["grand_total"] == "119.00"
    assert body["lines"][0]["net_amount"] == "100.00"
    assert body["vat_breakdown"][0]["rate"] == "19"


def test_the_upcoming_invoice_previews_the_draft_without_storing_it(api, billed):
    response = api.get(f"/v1/subscriptions/{billed.subscription}/upcoming_invoice")
    assert response.status_code == 200, response.content
    assert response.json()["totals"]["amount_due"] == "119.00"
    assert not Invoice.objects.exists()


def test_the_upcoming_invoice_of_a_subscription_cancelled_now_is_its_closing_invoice(api, clock):
    cancelled = subscribe(Scope(api.tenant.pk, False, TEST_ACTOR), credit_unused_on_cancel=True)
    sweep.run_sweep(clock.now())
    eleventh = MARCH + timedelta(days=10, hours=10)
    clock.set(eleventh)
    assert api.post(f"/v1/subscriptions/{cancelled.subscription}/cancel", {"mode": "now"}).status_code == 200
    clock.set(eleventh + timedelta(seconds=30))
    written = (Invoice.objects.count(), BilledPeriod.objects.count(), AuditEvent.objects.count())
    schedule = BillingSchedule.objects.values_list("next_billing_at", "checked_at").get(
        subscription__public_id=cancelled.subscription
    )

    response = api.get(f"/v1/subscriptions/{cancelled.subscription}/upcoming_invoice")

    assert response.status_code == 200, response.content
    body = response.json()
    # The credit of the 21 unused days of March's 31 (100.00 * 21 / 31), plus 19 % VAT.
    assert [(line["kind"], line["net_amount"]) for line in body["lines"]] == [("proration_credit", "-67.74")]
    assert body["totals"]["amount_due"] == "-80.61"
    assert (body["period_start"], body["period_end"]) == ("2026-02-28T23:00:00Z", "2026-03-31T22:00:00Z")
    assert (body["usage_start"], body["usage_end"]) == ("2026-02-28T23:00:00Z", "2026-03-11T09:00:00Z")
    assert (Invoice.objects.count(), BilledPeriod.objects.count(), AuditEvent.objects.count()) == written
    assert (
        BillingSchedule.objects.values_list("next_billing_at", "checked_at").get(
            subscription__public_id=cancelled.subscription
        )
        == schedule
    )

    sweep.run_sweep(eleventh + timedelta(minutes=1))

    closing = Invoice.objects.filter(subscription__public_id=cancelled.subscription).latest("pk")
    shown = api.get(f"/v1/invoices/{closing.public_id}").json()
    assert shown["totals"]["amount_due"] == body["totals"]["amount_due"]
    assert (shown["period_start"], shown["period_end"]) == (body["period_start"], body["period_end"])
    after = api.get(f"/v1/subscriptions/{cancelled.subscription}/upcoming_invoice")
    assert (after.status_code, after.json()["code"]) == (409, "nothing_to_invoice")


def test_the_upcoming_invoice_in_arrears_after_a_period_with_nothing_to_bill_says_nothing_is_due(api, clock):
    seats = {
        "code": "seats",
        "name_en": "Seats",
        "name_de": "Plätze",
        "kind": "quantity",
        "price": {"model": "per_unit", "unit_price": "10.00"},
    }
    free = {"code": "base", "name_en": "Base", "kind": "recurring", "price": {"model": "flat", "amount": "0"}}
    # No base fee and no seats: each period has nothing to bill.
    seatless = subscribe(
        Scope(api.tenant.pk, False, TEST_ACTOR), billing_timing="in_arrears", charges=[free, seats]
    )
    path = f"/v1/subscriptions/{seatless.subscription}/upcoming_invoice"
    first = api.get(path)
    assert (first.status_code, first.json()["code"]) == (409, "nothing_to_invoice")
    assert first.json()["detail"] == (
        f"subscription {seatless.subscription} is billed in arrears; its first period has not ended"
    )
    sweep.run_sweep(APRIL + timedelta(hours=1))
    assert not Invoice.objects.exists()
    clock.set(APRIL + timedelta(days=3))

    response = api.get(path)

    assert response.status_code == 409
    assert response["Content-Type"] == "application/problem+json"
    body = response.json()
    assert (body["code"], [error["field"] for error in body["errors"]]) == ("nothing_to_invoice", ["id"])
    assert body["detail"] == (
        f"subscription {seatless.subscription} is billed in arrears and has nothing to invoice now: "
        "nothing is left to bill for the periods that have ended, and the current period is invoiced "
        "when it ends at 2026-04-30T22:00:00+00:00"
    )
    assert not Invoice.objects.exists()


def test_an_invoice_is_finalized_paid_and_listed_by_status(api, billed):
    invoice = api.post(f"/v1/subscriptions/{billed.subscription}/invoices").json()["id"]
    finalized = api.post(f"/v1/invoices/{invoice}/finalize").json()
    assert (finalized["status"], finalized["number"]) == ("finalized", "RE-2026-000001")
    assert api.post(f"/v1/invoices/{invoice}/mark_paid").json()["status"] == "paid"
    listed = api.get("/v1/invoices", {"status": "paid", "subscription": billed.subscription}).json()
    assert [item["id"] for item in listed["data"]] == [invoice]
    assert api.get("/v1/invoices", {"status": "draft"}).json()["data"] == []


def test_a_state_conflict_is_a_409_problem(api, billed):
    invoice = api.post(f"/v1/subscriptions/{billed.subscription}/invoices").json()["id"]
    response = api.post(f"/v1/invoices/{invoice}/mark_paid")
    assert response.status_code == 409
    assert response["Content-Type"] == "application/problem+json"
    assert response.json()["code"] == "invoice_state"


def test_a_credit_note_is_created_listed_and_retrieved(api, billed):
    invoice = api.post(f"/v1/subscriptions/{billed.subscription}/invoices").json()["id"]
    api.post(f"/v1/invoices/{invoice}/finalize")
    created = api.post("/v1/credit_notes", {"invoice": invoice, "lines": [{"line": 1, "amount": "10.00"}]})
    assert created.status_code == 201, created.content
    note = created.json()
    assert (note["object"], note["number"], note["credit_note_for"]) == (
        "credit_note",
        "GS-2026-000001",
        invoice,
    )
    assert note["totals"]["grand_total"] == "-11.90"
    assert api.get(f"/v1/credit_notes/{note['id']}").json()["id"] == note["id"]
    assert [item["id"] for item in api.get("/v1/credit_notes", {"invoice": invoice}).json()["data"]] == [
        note["id"]
    ]
    assert api.get(f"/v1/invoices/{note['id']}").status_code == 404


def test_credit_note_validation_names_the_field(api, billed):
    invoice = api.post(f"/v1/subscriptions/{billed.subscription}/invoices").json()["id"]
    api.post(f"/v1/invoices/{invoice}/finalize")
    response = api.post("/v1/credit_notes", {"invoice": invoice, "lines": [{"line": 1, "amount": 5.5}]})
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "lines[0].amount"
    too_much = api.post("/v1/credit_notes", {"invoice": invoice, "lines": [{"line": 1, "amount": "100.01"}]})
    assert (too_much.status_code, too_much.json()["errors"][0]["field"]) == (422, "lines[0].amount")


def test_unknown_invoice_ids_are_404(api, clock):
    assert api.get("/v1/invoices/inv_0000000000000000000000000").status_code == 404
    assert api.post("/v1/invoices/inv_0000000000000000000000000/finalize").status_code == 404
    assert api.post("/v1/credit_notes", {"invoice": "inv_0000000000000000000000000"}).status_code == 404


def test_finalizing_replays_for_the_same_idempotency_key(api, billed):
    invoice = api.post(f"/v1/subscriptions/{billed.subscription}/invoices").json()["id"]
    headers = {"Idempotency-Key": "finalize-1"}
    first = api.post(f"/v1/invoices/{invoice}/finalize", headers=headers)
    again = api.post(f"/v1/invoices/{invoice}/finalize", headers=headers)
    assert (first.status_code, again.status_code) == (200, 200)
    assert again["Idempotent-Replayed"] == "true"
    assert again.json()["number"] == first.json()["number"]


def test_another_tenants_invoice_is_a_404_and_stays_a_draft(api, billed, make_tenant):
    invoice = api.post(f"/v1/subscriptions/{billed.subscription}/invoices").json()["id"]
    stranger = ApiClient(make_tenant())
    assert stranger.post(f"/v1/invoices/{invoice}/finalize").status_code == 404
    assert ApiClient(api.tenant, livemode=True).post(f"/v1/invoices/{invoice}/void").status_code == 404
    assert Invoice.objects.get(public_id=invoice).status == "draft"
