"""Test clocks: customers on one live at its frozen time; advancing it bills them at every due moment."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from tests.apps.billing.support import APRIL, MARCH, MAY, Billed, calls, metric, plan, scope_of
from tests.apps.customers.support import customer_data
from tests.support import ApiClient
from turnus.apps.billing import services, sweep
from turnus.apps.billing.models import BillingSchedule, Invoice
from turnus.apps.customers.models import TestClock as ClockRow
from turnus.apps.metering.models import UsageEvent
from turnus.core.models import AuditEvent

pytestmark = pytest.mark.django_db

JUNE = datetime(2026, 5, 31, 22, 0, tzinfo=UTC)


def _iso(instant: datetime) -> str:
    return instant.isoformat().replace("+00:00", "Z")


def _at(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _clock(api: ApiClient, frozen_time: datetime = MARCH, **extra) -> dict:
    response = api.post("/v1/test_clocks", {"frozen_time": _iso(frozen_time), **extra})
    assert response.status_code == 201, response.content
    return response.json()


def _customer(api: ApiClient, test_clock: str | None = None) -> str:
    body = customer_data(timezone="Europe/Berlin")
    if test_clock is not None:
        body["test_clock"] = test_clock
    response = api.post("/v1/customers", body)
    assert response.status_code == 201, response.content
    return str(response.json()["id"])


def _subscribe(api: ApiClient, customer: str, plan_id: str) -> dict:
    response = api.post("/v1/subscriptions", {"customer": customer, "plan": plan_id})
    assert response.status_code == 201, response.content
    return response.json()


def _advance(api: ApiClient, clock_id: str, to: datetime, **headers):
    return api.post(f"/v1/test_clocks/{clock_id}/advance", {"frozen_time": _iso(to)}, headers=headers or None)


def _period_starts(subscription: str) -> list[datetime]:
    invoices = Invoice.objects.filter(subscription__public_id=subscription, kind="invoice")
    return list(invoices.order_by("period_start").values_list("period_start", flat=True))


def _problem(response, status: int) -> tuple[str, str | None]:
    assert response.status_code == status, response.content
    assert response["Content-Type"] == "application/problem+json"
    body = response.json()
    return body["code"], body["errors"][0]["field"] if body["errors"] else None


@pytest.fixture
def plan_id(api):
    return plan(scope_of(api.tenant))


@pytest.fixture
def on_clock(api, plan_id):
    """A test clock at 1 March 2026 (Berlin), a customer on it and a monthly subscription made at its time."""
    clock = _clock(api, name="March")
    customer = _customer(api, clock["id"])
    subscription = _subscribe(api, customer, plan_id)
    return clock["id"], customer, subscription


def test_a_test_clock_is_created_shown_and_listed(api):
    body = _clock(api, MARCH, name="Renewals")
    assert body["id"].startswith("clock_")
    assert (body["object"], body["livemode"], body["status"], body["name"]) == (
        "test_clock",
        False,
        "ready",
        "Renewals",
    )
    assert _at(body["frozen_time"]) == MARCH
    assert abs(_at(body["created_at"]) - datetime.now(UTC)) < timedelta(minutes=5)
    assert api.get(f"/v1/test_clocks/{body['id']}").json() == body
    assert _clock(api, APRIL)["name"] is None
    assert AuditEvent.objects.filter(action="test_clock.created", object_id=body["id"]).exists()


def test_test_clocks_are_listed_newest_first_a_page_at_a_time(api):
    made = [_clock(api, MARCH + timedelta(days=day))["id"] for day in range(3)]
    first = api.get("/v1/test_clocks", {"limit": 2}).json()
    assert ([item["id"] for item in first["data"]], first["has_more"]) == (made[:0:-1], True)
    rest = api.get("/v1/test_clocks", {"limit": 2, "starting_after": made[1]}).json()
    assert ([item["id"] for item in rest["data"]], rest["has_more"]) == ([made[0]], False)


def test_a_live_key_cannot_create_a_test_clock_or_attach_a_customer_to_one(api):
    live = ApiClient(api.tenant, livemode=True)
    assert _problem(live.post("/v1/test_clocks", {"frozen_time": _iso(MARCH)}), 422) == (
        "validation_failed",
        "livemode",
    )
    clock = _clock(api)
    body = {**customer_data(), "test_clock": clock["id"]}
    assert _problem(live.post("/v1/customers", body), 422) == ("validation_failed", "test_clock")
    assert live.get(f"/v1/test_clocks/{clock['id']}").status_code == 404
    assert live.get("/v1/test_clocks").json()["data"] == []
    assert not ClockRow.objects.filter(livemode=True).exists()


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "frozen_time"),
        ({"frozen_time": "2026-03-01T00:00:00"}, "frozen_time"),
        ({"frozen_time": "1999-12-31T23:00:00Z"}, "frozen_time"),
        ({"frozen_time": "2026-03-01T00:00:00Z", "name": "x" * 301}, "name"),
        ({"frozen_time": "2026-03-01T00:00:00Z", "color": "red"}, "color"),
    ],
)
def test_a_bad_test_clock_is_refused_naming_the_field(api, body, field):
    assert _problem(api.post("/v1/test_clocks", body), 422) == ("validation_failed", field)
    assert not ClockRow.objects.exists()


def test_a_customer_attaches_at_creation_and_shows_its_clock(api):
    clock = _clock(api)
    customer = _customer(api, clock["id"])
    shown = api.get(f"/v1/customers/{customer}").json()
    assert shown["test_clock"] == clock["id"]
    assert _at(shown["created_at"]) == MARCH
    assert api.get("/v1/customers").json()["data"][0]["test_clock"] == clock["id"]
    assert api.get(f"/v1/customers/{_customer(api)}").json()["test_clock"] is None
    moved = api.post(f"/v1/customers/{customer}", {"test_clock": None})
    assert _problem(moved, 422) == ("validation_failed", "test_clock")


def test_an_unknown_or_foreign_test_clock_is_a_404_and_creates_no_customer(api, make_tenant):
    foreign = _clock(ApiClient(make_tenant()))["id"]
    for reference in (foreign, "clock_0000000000000000000000000"):
        response = api.post("/v1/customers", {**customer_data(), "test_clock": reference})
        assert _problem(response, 404) == ("not_found", "test_clock")
    assert api.get("/v1/customers").json()["data"] == []


def test_a_subscription_on_a_test_clock_starts_at_the_clocks_time(on_clock):
    _, _, subscription = on_clock
    assert _at(subscription["started_at"]) == MARCH
    assert _at(subscription["current_period_start"]) == MARCH
    assert _at(subscription["current_period_end"]) == APRIL
    audited = AuditEvent.objects.get(action="subscription.created", object_id=subscription["id"])
    assert abs(audited.created_at - datetime.now(UTC)) < timedelta(minutes=5), "the audit log keeps real time"


def test_advancing_three_months_bills_each_period_at_its_own_time(api, on_clock):
    clock_id, _, subscription = on_clock
    response = _advance(api, clock_id, JUNE - timedelta(hours=1))
    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["id"], body["object"], body["status"]) == (clock_id, "test_clock", "ready")
    assert _at(body["frozen_time"]) == JUNE - timedelta(hours=1)
    advance = body["advance"]
    assert (_at(advance["previous_time"]), _at(advance["frozen_time"])) == (MARCH, JUNE - timedelta(hours=1))
    counts = (advance["billing_runs"], advance["invoices_created"], advance["finalized"], advance["errors"])
    assert counts == (3, 3, 3, 0)
    assert _period_starts(subscription["id"]) == [MARCH, APRIL, MAY]
    invoices = Invoice.objects.filter(subscription__public_id=subscription["id"]).order_by("period_start")
    assert [invoice.created_at for invoice in invoices] == [MARCH, APRIL, MAY]
    assert [invoice.finalized_at for invoice in invoices] == [MARCH, APRIL, MAY]
    assert [str(invoice.issue_date) for invoice in invoices] == ["2026-03-01", "2026-04-01", "2026-05-01"]
    shown = api.get(f"/v1/subscriptions/{subscription['id']}").json()
    assert (_at(shown["current_period_start"]), _at(shown["current_period_end"])) == (MAY, JUNE)

    onto_boundary = _advance(api, clock_id, JUNE).json()["advance"]
    assert (onto_boundary["billing_runs"], onto_boundary["invoices_created"]) == (1, 1)
    assert _period_starts(subscription["id"]) == [MARCH, APRIL, MAY, JUNE]


def test_the_regular_billing_run_never_bills_a_test_clocks_customers(api, on_clock, plan_id):
    clock_id, _, on_clock_subscription = on_clock
    real = _subscribe(api, _customer(api), plan_id)
    summary = sweep.run_sweep(datetime.now(UTC))
    assert (summary.subscriptions, summary.invoices_created) == (1, 1)
    assert _period_starts(on_clock_subscription["id"]) == []
    assert not BillingSchedule.objects.filter(subscription__public_id=on_clock_subscription["id"]).exists()
    assert len(_period_starts(real["id"])) == 1
    later = sweep.due_subscriptions(datetime.now(UTC) + timedelta(days=400), limit=10)
    assert [sub.public_id for sub in later] == [real["id"]]
    test_clock = ClockRow.objects.get(public_id=clock_id)
    assert [sub.public_id for sub in sweep.due_subscriptions(MARCH, limit=10, test_clock=test_clock)] == [
        on_clock_subscription["id"]
    ]
    clock_run = sweep.run_sweep(MARCH, test_clock=test_clock)
    assert (clock_run.subscriptions, clock_run.invoices_created) == (1, 1)
    assert len(_period_starts(real["id"])) == 1


def test_a_draft_grace_period_finalizes_each_draft_at_its_own_time_on_the_way(api, on_clock):
    services.set_draft_grace_period(scope_of(api.tenant), timedelta(days=2))
    clock_id, _, subscription = on_clock
    advance = _advance(api, clock_id, MAY + timedelta(days=1)).json()["advance"]
    invoices = Invoice.objects.filter(subscription__public_id=subscription["id"]).order_by("period_start")
    assert [invoice.status for invoice in invoices] == ["finalized", "finalized", "draft"]
    assert [invoice.finalized_at for invoice in invoices[:2]] == [
        MARCH + timedelta(days=2),
        APRIL + timedelta(days=2),
    ]
    assert (advance["invoices_created"], advance["finalized"]) == (3, 2)
    assert advance["billing_runs"] == 5


def test_usage_events_default_to_the_clocks_time_and_may_not_lie_ahead_of_it(api, on_clock, plan_id):
    metric(scope_of(api.tenant))
    _, customer, subscription = on_clock
    real_customer = _customer(api)
    _subscribe(api, real_customer, plan_id)
    defaulted = api.post("/v1/events", {"transaction_id": "t-1", "customer": customer, "metric": "calls"})
    assert defaulted.status_code == 201, defaulted.content
    assert _at(defaulted.json()["timestamp"]) == MARCH
    soon = {"transaction_id": "t-2", "subscription": subscription["id"], "metric": "calls"}
    assert (
        api.post("/v1/events", {**soon, "timestamp": _iso(MARCH + timedelta(minutes=4))}).status_code == 201
    )
    ahead = {"transaction_id": "t-3", "customer": customer, "metric": "calls"}
    refused = api.post("/v1/events", {**ahead, "timestamp": _iso(MARCH + timedelta(hours=1))})
    assert _problem(refused, 422) == ("validation_failed", "timestamp")
    batch = api.post(
        "/v1/events/batch",
        {
            "events": [
                {"transaction_id": "b-1", "customer": customer, "metric": "calls"},
                {"transaction_id": "b-2", "customer": real_customer, "metric": "calls"},
            ]
        },
    )
    assert batch.json()["created"] == 2, batch.content
    stamps = dict(
        UsageEvent.objects.filter(transaction_id__in=["b-1", "b-2"]).values_list(
            "transaction_id", "timestamp"
        )
    )
    assert stamps["b-1"] == MARCH
    assert abs(stamps["b-2"] - datetime.now(UTC)) < timedelta(minutes=5)


def test_operations_on_a_clocks_subscription_and_invoices_run_at_the_clocks_time(api, on_clock):
    _, _, subscription = on_clock
    upcoming = api.get(f"/v1/subscriptions/{subscription['id']}/upcoming_invoice")
    assert upcoming.status_code == 200, upcoming.content
    drafted = api.post(f"/v1/subscriptions/{subscription['id']}/invoices")
    assert drafted.status_code == 201, drafted.content
    invoice = drafted.json()["id"]
    assert _at(drafted.json()["created_at"]) == MARCH
    assert api.post(f"/v1/invoices/{invoice}/finalize").json()["issue_date"] == "2026-03-01"
    assert Invoice.objects.get(public_id=invoice).finalized_at == MARCH
    api.post(f"/v1/invoices/{invoice}/mark_paid")
    assert Invoice.objects.get(public_id=invoice).paid_at == MARCH
    cancelled = api.post(f"/v1/subscriptions/{subscription['id']}/cancel", {"mode": "period_end"})
    assert cancelled.status_code == 200, cancelled.content
    assert _at(cancelled.json()["cancel_at"]) == APRIL


@pytest.mark.parametrize(
    ("to", "reason"),
    [
        (MARCH, "not after"),
        (MARCH - timedelta(days=1), "before"),
        (MARCH + timedelta(days=731, seconds=1), "more than 731 days"),
    ],
)
def test_an_advance_must_move_forward_by_at_most_731_days(api, on_clock, to, reason):
    clock_id, _, subscription = on_clock
    assert _problem(_advance(api, clock_id, to), 422) == ("validation_failed", "frozen_time"), reason
    assert ClockRow.objects.get(public_id=clock_id).frozen_time == MARCH
    assert _period_starts(subscription["id"]) == []


def test_advancing_731_days_is_allowed(api, on_clock):
    clock_id, _, subscription = on_clock
    response = _advance(api, clock_id, MARCH + timedelta(days=731))
    assert response.status_code == 200, response.content
    assert response.json()["advance"]["invoices_created"] == 25
    assert len(_period_starts(subscription["id"])) == 25


def test_an_advance_replayed_with_its_idempotency_key_bills_nothing_twice(api, on_clock):
    clock_id, _, subscription = on_clock
    first = _advance(api, clock_id, APRIL, **{"Idempotency-Key": "advance-1"})
    again = _advance(api, clock_id, APRIL, **{"Idempotency-Key": "advance-1"})
    assert first.status_code == again.status_code == 200
    assert again.json() == first.json()
    assert again["Idempotent-Replayed"] == "true"
    assert _period_starts(subscription["id"]) == [MARCH, APRIL]
    unkeyed = _advance(api, clock_id, APRIL)
    assert _problem(unkeyed, 422) == ("validation_failed", "frozen_time")


def test_a_clock_with_customers_cannot_be_deleted_until_they_are(api, on_clock):
    clock_id, customer, _ = on_clock
    refused = api.delete(f"/v1/test_clocks/{clock_id}")
    assert _problem(refused, 409)[0] == "conflict"
    assert "customer" in refused.json()["detail"]
    assert api.delete(f"/v1/customers/{customer}").status_code == 200
    deleted = api.delete(f"/v1/test_clocks/{clock_id}")
    assert deleted.status_code == 200, deleted.content
    assert deleted.json() == {"id": clock_id, "object": "test_clock", "livemode": False, "deleted": True}
    assert api.get(f"/v1/test_clocks/{clock_id}").status_code == 404
    assert _advance(api, clock_id, APRIL).status_code == 404
    assert api.get("/v1/test_clocks").json()["data"] == []


def test_another_tenants_clock_is_a_404_and_stays_as_it_was(api, on_clock, make_tenant):
    clock_id, _, _ = on_clock
    stranger = ApiClient(make_tenant())
    assert _problem(stranger.get(f"/v1/test_clocks/{clock_id}"), 404)[0] == "not_found"
    assert _advance(stranger, clock_id, APRIL).status_code == 404
    assert stranger.delete(f"/v1/test_clocks/{clock_id}").status_code == 404
    assert ClockRow.objects.get(public_id=clock_id).frozen_time == MARCH


def test_an_advance_holds_the_clocks_row_locked(api, on_clock):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    if not connection.features.has_select_for_update:
        pytest.skip("the database has no row locks (SQLite locks the whole database while writing)")
    clock_id, _, _ = on_clock
    table = ClockRow._meta.db_table
    with CaptureQueriesContext(connection) as queries:
        assert _advance(api, clock_id, APRIL).status_code == 200
    locking = [q["sql"] for q in queries.captured_queries if table in q["sql"] and "FOR UPDATE" in q["sql"]]
    assert locking, "the advance must lock the test clock's row"


def test_a_subscription_on_a_test_clock_gets_its_first_invoice_at_once_at_the_clocks_time(
    api, plan_id, django_capture_on_commit_callbacks
):
    clock = _clock(api, name="March")
    customer = _customer(api, clock["id"])
    with django_capture_on_commit_callbacks(execute=True):
        subscription = _subscribe(api, customer, plan_id)
    # No advance: the clock's run followed the subscription's creation, at the clock's time.
    invoice = Invoice.objects.get(subscription__public_id=subscription["id"], kind="invoice")
    assert (invoice.period_start, invoice.status, invoice.created_at) == (MARCH, "finalized", MARCH)
    assert ClockRow.objects.get(public_id=clock["id"]).frozen_time == MARCH


def test_a_cancellation_now_on_a_test_clock_brings_its_closing_invoice_at_once(
    api, on_clock, plan_id, django_capture_on_commit_callbacks
):
    clock_id, customer_id, subscription = on_clock
    assert _advance(api, clock_id, MARCH + timedelta(days=10)).status_code == 200
    calls(
        Billed(scope_of(api.tenant), customer_id, plan_id, subscription["id"]), 130, MARCH + timedelta(days=5)
    )
    with django_capture_on_commit_callbacks(execute=True):
        cancelled = api.post(f"/v1/subscriptions/{subscription['id']}/cancel", {"mode": "now"})
    assert cancelled.status_code == 200, cancelled.content
    ended_at = _at(cancelled.json()["ended_at"])
    closing = Invoice.objects.get(
        subscription__public_id=subscription["id"], billed_periods__period_start=ended_at
    )
    assert (closing.status, closing.created_at) == ("finalized", MARCH + timedelta(days=10))
    # 130 calls, the first 100 free, 0.10 each after: 3.00 net for the usage up to the end.
    assert [(line.kind, line.net_amount) for line in closing.lines.all()] == [("usage", Decimal("3.00"))]


def test_a_test_clocks_own_run_does_not_start_another(api, on_clock, django_capture_on_commit_callbacks):
    clock_id, _customer_id, _subscription = on_clock
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        assert _advance(api, clock_id, APRIL + timedelta(hours=1)).status_code == 200
    # The renewal the advance made sent a change, but no second run follows the advance's own.
    assert not [callback for callback in callbacks if "bill_now" in repr(callback)]
