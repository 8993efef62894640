from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from tests.support import ApiClient
from turnus.core.clock import FrozenClock, use_clock
from turnus.core.models import AuditEvent
from turnus.engine.money import Money
from turnus.engine.periods import Period
from turnus.engine.proration import ProrationMode, change_proration

pytestmark = pytest.mark.django_db

START = datetime(2026, 3, 10, 9, 30, tzinfo=UTC)


@pytest.fixture
def clock():
    frozen = FrozenClock(START)
    with use_clock(frozen):
        yield frozen


def _plan(api: ApiClient, product: str, code: str, price: str, **extra) -> str:
    body = {
        "code": code,
        "product": product,
        "name_en": code.title(),
        "name_de": code.title(),
        "currency": "EUR",
        "interval": {"unit": "month", "count": 1},
        "charges": [
            {
                "code": "base",
                "name_en": "Base fee",
                "name_de": "Grundgebühr",
                "kind": "recurring",
                "price": {"model": "per_unit", "unit_price": price},
            }
        ],
        **extra,
    }
    response = api.post("/v1/plans", body)
    assert response.status_code == 201, response.json()
    return response.json()["id"]


@pytest.fixture
def catalogue(api, clock):
    product = api.post("/v1/products", {"name_en": "Cloud", "name_de": "Cloud"}).json()["id"]
    customer = api.post(
        "/v1/customers",
        {
            "name": "Erika Mustermann",
            "email": "erika@example.com",
            "address_line1": "Weg 1",
            "postal_code": "10115",
            "city": "Berlin",
            "country": "DE",
            "timezone": "Europe/Berlin",
        },
    )
    assert customer.status_code == 201, customer.json()
    return {
        "product": product,
        "customer": customer.json()["id"],
        "basic": _plan(api, product, "basic", "10.00"),
        "pro": _plan(api, product, "pro", "20.00"),
        "yearly_contract": _plan(
            api,
            product,
            "contract",
            "30.00",
            contract={
                "initial_term": {"unit": "month", "count": 12},
                "initial_notice": {"unit": "month"},
                "renewal_term": {"unit": "month"},
                "renewal_notice": {"unit": "week", "count": 2},
            },
        ),
    }


def _subscribe(api, catalogue, plan="basic", **extra):
    response = api.post(
        "/v1/subscriptions", {"customer": catalogue["customer"], "plan": catalogue[plan], **extra}
    )
    assert response.status_code == 201, response.json()
    return response.json()


def test_a_subscription_starts_at_local_midnight_and_charges_its_first_period(api, catalogue):
    sub = _subscribe(api, catalogue, quantity="2")
    assert sub["id"].startswith("sub_")
    assert sub["status"] == "active"
    assert sub["current_period_start"] == "2026-03-09T23:00:00Z"
    assert sub["current_period_end"] == "2026-04-09T22:00:00Z"
    assert sub["quantity"] == "2"
    assert sub["recurring_price"] == "10.00"
    charges = api.get(f"/v1/subscriptions/{sub['id']}/pending_charges").json()
    assert [(c["kind"], c["amount"]) for c in charges] == [("recurring", "20.00")]
    events = AuditEvent.objects.filter(object_id=sub["id"]).values_list("action", flat=True)
    assert "subscription.created" in events


def test_an_upgrade_now_credits_the_unused_part_and_charges_the_new_plan_as_the_engine_quotes(
    api, catalogue, clock
):
    sub = _subscribe(api, catalogue)
    clock.advance(timedelta(days=10))
    preview = api.post(f"/v1/subscriptions/{sub['id']}/preview_change", {"plan": catalogue["pro"]}).json()
    assert preview["direction"] == "upgrade"
    period = Period(datetime(2026, 3, 9, 23, tzinfo=UTC), datetime(2026, 4, 9, 22, tzinfo=UTC))
    quote = change_proration(
        Money("10.00", "EUR"), Money("20.00", "EUR"), period, clock.now(), ProrationMode.DAY, "Europe/Berlin"
    )
    amounts = {item["kind"]: Decimal(item["amount"]) for item in preview["items"]}
    assert amounts == {"proration_credit": -quote.credit.amount, "proration_charge": quote.charge.amount}
    assert Decimal(preview["total"]["amount"]) == quote.charge.amount - quote.credit.amount
    assert len(api.get(f"/v1/subscriptions/{sub['id']}/pending_charges").json()) == 1

    changed = api.post(f"/v1/subscriptions/{sub['id']}/change", {"plan": catalogue["pro"]}).json()
    assert [i["amount"] for i in changed["items"]] == [i["amount"] for i in preview["items"]]
    assert changed["subscription"]["plan"] == catalogue["pro"]
    pending = api.get(f"/v1/subscriptions/{sub['id']}/pending_charges").json()
    assert [c["kind"] for c in pending] == ["recurring", "proration_credit", "proration_charge"]


def test_a_downgrade_waits_for_the_period_end(api, catalogue, clock):
    sub = _subscribe(api, catalogue, plan="pro")
    changed = api.post(f"/v1/subscriptions/{sub['id']}/change", {"plan": catalogue["basic"]}).json()
    assert changed["direction"] == "downgrade"
    assert changed["items"] == []
    assert changed["effective_at"] == "2026-04-09T22:00:00Z"
    scheduled = api.get(f"/v1/subscriptions/{sub['id']}/scheduled_changes").json()
    assert [(s["type"], s["effective_at"]) for s in scheduled] == [("plan_change", "2026-04-09T22:00:00Z")]
    clock.set(datetime(2026, 4, 10, 12, tzinfo=UTC))
    shown = api.get(f"/v1/subscriptions/{sub['id']}").json()
    assert shown["plan"] == catalogue["basic"]
    assert shown["current_period_start"] == "2026-04-09T22:00:00Z"
    assert shown["scheduled_changes"] == []


def test_a_quantity_change_now_is_prorated(api, catalogue, clock):
    sub = _subscribe(api, catalogue, quantity="1")
    clock.advance(timedelta(days=15))
    changed = api.post(f"/v1/subscriptions/{sub['id']}/change", {"quantity": "3", "effective": "now"}).json()
    assert changed["direction"] == "upgrade"
    assert changed["subscription"]["quantity"] == "3"
    assert Decimal(changed["total"]["amount"]) > 0


def test_pause_and_resume(api, catalogue, clock):
    sub = _subscribe(api, catalogue)
    clock.advance(timedelta(days=5))
    paused = api.post(f"/v1/subscriptions/{sub['id']}/pause", {}).json()
    assert paused["status"] == "paused"
    assert paused["paused_at"] is not None
    clock.advance(timedelta(days=20))
    resumed = api.post(f"/v1/subscriptions/{sub['id']}/resume", {}).json()
    assert resumed["status"] == "active"
    assert resumed["current_period_end"] > sub["current_period_end"]


def test_a_pause_with_a_resume_date_is_listed_as_scheduled(api, catalogue, clock):
    sub = _subscribe(api, catalogue)
    resume_at = (START + timedelta(days=7)).isoformat()
    paused = api.post(f"/v1/subscriptions/{sub['id']}/pause", {"resume_at": resume_at}).json()
    assert [s["type"] for s in paused["scheduled_changes"]] == ["resume"]


def test_cancel_at_period_end_then_reactivate(api, catalogue):
    sub = _subscribe(api, catalogue)
    cancelled = api.post(f"/v1/subscriptions/{sub['id']}/cancel", {"mode": "period_end"}).json()
    assert cancelled["cancel_at"] == "2026-04-09T22:00:00Z"
    assert cancelled["status"] == "active"
    reactivated = api.post(f"/v1/subscriptions/{sub['id']}/reactivate", {}).json()
    assert reactivated["cancel_at"] is None


def test_cancel_now_ends_the_subscription(api, catalogue, clock):
    sub = _subscribe(api, catalogue)
    clock.advance(timedelta(days=3))
    cancelled = api.post(f"/v1/subscriptions/{sub['id']}/cancel", {"mode": "now"}).json()
    assert cancelled["status"] == "cancelled"
    refused = api.post(f"/v1/subscriptions/{sub['id']}/pause", {})
    assert refused.status_code == 409
    assert refused.json()["code"] == "invalid_transition"


def _per_seat_plan(api, catalogue, code: str, interval: str) -> str:
    """A plan without a base fee (0.00) whose seats cost 10.00 each per ``interval``."""
    seats = {
        "code": "seats",
        "name_en": "Seats",
        "name_de": "Plätze",
        "kind": "quantity",
        "price": {"model": "per_unit", "unit_price": "10.00"},
    }
    base = {
        "code": "base",
        "name_en": "Base fee",
        "name_de": "Grundgebühr",
        "kind": "recurring",
        "price": {"model": "flat", "amount": "0.00"},
    }
    return _plan(
        api,
        catalogue["product"],
        code,
        "0.00",
        interval={"unit": interval, "count": 1},
        charges=[base, seats],
        credit_unused_on_cancel=True,
    )


def test_the_zero_marks_of_a_plan_without_a_base_fee_are_not_shown_as_items(api, catalogue, clock):
    from turnus.apps.subscriptions.models import SubscriptionCharge

    monthly = _per_seat_plan(api, catalogue, "per_seat", "month")
    yearly = _per_seat_plan(api, catalogue, "per_seat_yearly", "year")
    body = {"customer": catalogue["customer"], "plan": monthly, "quantities": {"seats": "2"}}
    sub = api.post("/v1/subscriptions", body).json()
    stored = SubscriptionCharge.objects.filter(subscription__public_id=sub["id"])

    def pending() -> list[tuple[str, str]]:
        return [
            (c["kind"], c["amount"]) for c in api.get(f"/v1/subscriptions/{sub['id']}/pending_charges").json()
        ]

    # The first period's 0.00 fee is stored as the mark that bills the seats, and not listed.
    assert [(c.kind, c.amount) for c in stored] == [("recurring", 0)]
    assert pending() == []

    clock.advance(timedelta(days=10))
    more = api.post(f"/v1/subscriptions/{sub['id']}/change", {"quantities": {"seats": "5"}}).json()
    assert [i["kind"] for i in more["items"]] == ["proration_credit", "proration_charge"]
    assert pending() == [(i["kind"], i["amount"]) for i in more["items"]]

    # A change to a yearly cycle begins a new period: its 0.00 fee is a mark too, neither shown by the
    # preview nor by the change, while the seats' proration is.
    change = {"plan": yearly, "effective": "now"}
    preview = api.post(f"/v1/subscriptions/{sub['id']}/preview_change", change).json()
    changed = api.post(f"/v1/subscriptions/{sub['id']}/change", change).json()
    assert changed["items"] == preview["items"]
    assert changed["items"]
    assert all(Decimal(item["amount"]) for item in changed["items"])
    assert ("recurring", Decimal(0)) in [(c.kind, c.amount) for c in stored.order_by("pk")[3:]]
    assert pending() == [
        *((i["kind"], i["amount"]) for i in more["items"]),
        *((i["kind"], i["amount"]) for i in changed["items"]),
    ]

    # Cancelled now, the credit of the period cut short is 0.00: a mark, stored and not listed.
    clock.advance(timedelta(days=3))
    before = pending()
    cancelled = api.post(f"/v1/subscriptions/{sub['id']}/cancel", {"mode": "now"})
    assert cancelled.status_code == 200, cancelled.content
    assert stored.filter(kind="proration_credit", amount=0, description="lifecycle.cancel.credit").exists()
    assert pending() == before


def test_cancel_at_contract_end_respects_the_notice_period(api, catalogue, clock):
    sub = _subscribe(api, catalogue, plan="yearly_contract")
    assert sub["contract_end"] == "2027-03-09T23:00:00Z"
    assert sub["earliest_cancellation_at"] == "2027-03-09T23:00:00Z"
    cancelled = api.post(f"/v1/subscriptions/{sub['id']}/cancel", {"mode": "contract_end"}).json()
    assert cancelled["cancel_at"] == "2027-03-09T23:00:00Z"


def test_a_cancellation_too_late_for_the_notice_runs_to_the_next_term(api, catalogue, clock):
    sub = _subscribe(api, catalogue, plan="yearly_contract")
    clock.set(datetime(2027, 2, 20, tzinfo=UTC))
    cancelled = api.post(f"/v1/subscriptions/{sub['id']}/cancel", {"mode": "contract_end"}).json()
    assert cancelled["cancel_at"] == "2027-04-09T22:00:00Z"


@pytest.mark.parametrize(
    ("action", "body"),
    [("resume", {}), ("reactivate", {})],
)
def test_transitions_that_do_not_apply_are_409_with_the_reason(api, catalogue, action, body):
    sub = _subscribe(api, catalogue)
    response = api.post(f"/v1/subscriptions/{sub['id']}/{action}", body)
    assert response.status_code == 409
    assert response["Content-Type"] == "application/problem+json"
    assert response.json()["detail"]


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        ({"quantity": "-1"}, 422, "quantity"),
        ({"quantity": 1.5}, 422, "quantity"),
        ({"quantity": "1.5"}, 422, "quantity"),
        ({"trial_days": -3}, 422, "trial_days"),
        ({"colour": "red"}, 422, "colour"),
        ({"plan": "plan_00000000000000000000000000"}, 404, "plan"),
        ({"customer": "cus_00000000000000000000000000"}, 404, "customer"),
        ({"start_at": "2020-01-01T00:00:00Z"}, 422, "start_at"),
        ({"start_at": "2027-01-01T00:00:00"}, 422, "start_at"),
        ({"coupon": "NOPE"}, 404, "coupon"),
    ],
)
def test_bad_subscription_requests_name_the_field_and_write_nothing(api, catalogue, body, status, field):
    payload = {"customer": catalogue["customer"], "plan": catalogue["basic"], **body}
    response = api.post("/v1/subscriptions", payload)
    assert response.status_code == status, response.json()
    assert response.json()["errors"][0]["field"] == field
    assert api.get("/v1/subscriptions").json()["data"] == []


def test_an_archived_plan_takes_no_new_subscriptions(api, catalogue):
    api.post(f"/v1/plans/{catalogue['basic']}/archive", {})
    response = api.post("/v1/subscriptions", {"customer": catalogue["customer"], "plan": catalogue["basic"]})
    assert response.status_code == 409


def test_another_tenant_and_the_other_mode_see_404_and_change_nothing(api, catalogue, make_tenant):
    sub = _subscribe(api, catalogue)
    for stranger in (ApiClient(make_tenant()), ApiClient(api.tenant, livemode=True)):
        assert stranger.get(f"/v1/subscriptions/{sub['id']}").status_code == 404
        for action, body in [("cancel", {"mode": "now"}), ("pause", {}), ("change", {"quantity": "5"})]:
            assert stranger.post(f"/v1/subscriptions/{sub['id']}/{action}", body).status_code == 404
        foreign = stranger.post(
            "/v1/subscriptions", {"customer": catalogue["customer"], "plan": catalogue["basic"]}
        )
        assert foreign.status_code == 404
    assert api.get(f"/v1/subscriptions/{sub['id']}").json()["status"] == "active"


def test_a_repeated_create_with_the_same_idempotency_key_makes_one_subscription(api, catalogue):
    body = {"customer": catalogue["customer"], "plan": catalogue["basic"]}
    first = api.post("/v1/subscriptions", body, headers={"Idempotency-Key": "sub-1"})
    second = api.post("/v1/subscriptions", body, headers={"Idempotency-Key": "sub-1"})
    assert first.json()["id"] == second.json()["id"]
    assert len(api.get("/v1/subscriptions").json()["data"]) == 1


def test_migrating_a_plan_moves_subscribers_to_its_new_version(api, catalogue):
    sub = _subscribe(api, catalogue)
    edited = api.post(
        f"/v1/plans/{catalogue['basic']}",
        {
            "charges": [
                {
                    "code": "base",
                    "name_en": "Base",
                    "name_de": "Basis",
                    "kind": "recurring",
                    "price": {"model": "per_unit", "unit_price": "12.00"},
                }
            ]
        },
    ).json()
    assert edited["version"] == 2
    assert api.get(f"/v1/subscriptions/{sub['id']}").json()["recurring_price"] == "10.00"
    migration = api.post(f"/v1/plans/{catalogue['basic']}/migrate", {"effective": "now"}).json()
    assert migration["migrated"] == [sub["id"]]
    shown = api.get(f"/v1/subscriptions/{sub['id']}").json()
    assert (shown["plan_version"], shown["recurring_price"]) == (edited["version_id"], "12.00")


def test_a_coupon_is_redeemed_once_per_subscription_up_to_its_limit(api, catalogue):
    api.post(
        "/v1/coupons",
        {
            "code": "WELCOME",
            "name": "Welcome",
            "kind": "percentage",
            "value": "10",
            "duration": "once",
            "max_redemptions": 1,
        },
    )
    sub = _subscribe(api, catalogue, coupon="WELCOME")
    assert sub["coupon"] == "WELCOME"
    second = api.post(
        "/v1/subscriptions",
        {"customer": catalogue["customer"], "plan": catalogue["basic"], "coupon": "WELCOME"},
    )
    assert second.status_code == 409
    assert second.json()["code"] == "coupon_exhausted"
    assert len(api.get("/v1/subscriptions").json()["data"]) == 1


def test_subscriptions_list_filters_by_customer_status_and_plan(api, catalogue):
    basic = _subscribe(api, catalogue)
    pro = _subscribe(api, catalogue, plan="pro")
    api.post(f"/v1/subscriptions/{pro['id']}/cancel", {"mode": "now"})
    active = api.get("/v1/subscriptions", {"status": "active"}).json()["data"]
    assert [s["id"] for s in active] == [basic["id"]]
    by_plan = api.get("/v1/subscriptions", {"plan": catalogue["pro"]}).json()["data"]
    assert [s["id"] for s in by_plan] == [pro["id"]]
    by_customer = api.get("/v1/subscriptions", {"customer": catalogue["customer"]}).json()["data"]
    assert {s["id"] for s in by_customer} == {basic["id"], pro["id"]}


def test_a_retrieved_subscription_matches_the_created_and_listed_one_with_coupon_and_addons(api, catalogue):
    addon = api.post(
        "/v1/addons",
        {
            "code": "support",
            "name_en": "Support",
            "name_de": "Support",
            "currency": "EUR",
            "price": {"model": "flat", "amount": "5.00"},
            "interval": {"unit": "month"},
        },
    )
    assert addon.status_code == 201, addon.json()
    welcome = {"code": "WELCOME", "name": "Welcome", "kind": "percentage", "value": "10"}
    coupon = api.post("/v1/coupons", welcome)
    assert coupon.status_code == 201, coupon.json()
    plain = _subscribe(api, catalogue)
    support = [{"addon": addon.json()["id"], "quantity": "2"}]
    rich = _subscribe(api, catalogue, coupon="WELCOME", addons=support)
    listed = {item["id"]: item for item in api.get("/v1/subscriptions").json()["data"]}
    for created in (plain, rich):
        retrieved = api.get(f"/v1/subscriptions/{created['id']}").json()
        assert retrieved == created == listed[created["id"]]
    assert plain["coupon"] is None
    assert plain["addons"] == []
    assert rich["coupon"] == "WELCOME"
    assert rich["addons"] == support


def test_retrieving_a_subscription_takes_two_queries_once_its_locked_plan_version_is_known(
    api, catalogue, django_assert_num_queries
):
    sub = _subscribe(api, catalogue)
    api.get(f"/v1/subscriptions/{sub['id']}")
    with django_assert_num_queries(2):
        assert api.get(f"/v1/subscriptions/{sub['id']}").status_code == 200


def _edit_price(api, plan_id, price):
    charges = [
        {
            "code": "base",
            "name_en": "Base",
            "name_de": "Basis",
            "kind": "recurring",
            "price": {"model": "per_unit", "unit_price": price},
        }
    ]
    return api.post(f"/v1/plans/{plan_id}", {"charges": charges}).json()


def test_a_migration_with_a_future_date_waits_for_the_sweep_after_that_date(api, catalogue, clock):
    from turnus.apps.billing.sweep import run_sweep

    sub = _subscribe(api, catalogue)
    edited = _edit_price(api, catalogue["basic"], "12.00")
    scheduled = api.post(
        f"/v1/plans/{catalogue['basic']}/migrate",
        {"effective": "now", "effective_at": "2026-03-20T00:00:00+01:00"},
    ).json()
    assert (scheduled["status"], scheduled["migrated"]) == ("scheduled", [])
    assert scheduled["effective_at"] == "2026-03-19T23:00:00Z"
    assert scheduled["version"] == edited["version_id"]
    run_sweep(clock.now())
    assert api.get(f"/v1/subscriptions/{sub['id']}").json()["recurring_price"] == "10.00"
    clock.set(datetime(2026, 3, 20, 8, tzinfo=UTC))
    run_sweep(clock.now())
    moved = api.get(f"/v1/subscriptions/{sub['id']}").json()
    assert (moved["plan_version"], moved["recurring_price"]) == (edited["version_id"], "12.00")
    kinds = [c["kind"] for c in api.get(f"/v1/subscriptions/{sub['id']}/pending_charges").json()]
    assert "proration_charge" in kinds
    actions = list(
        AuditEvent.objects.filter(action__startswith="plan_migration").values_list("action", flat=True)
    )
    assert sorted(actions) == ["plan_migration.applied", "plan_migration.created"]


def test_a_migration_dated_in_the_past_happens_at_once(api, catalogue):
    sub = _subscribe(api, catalogue)
    _edit_price(api, catalogue["basic"], "11.00")
    done = api.post(
        f"/v1/plans/{catalogue['basic']}/migrate",
        {"effective": "period_end", "effective_at": "2020-01-01T00:00:00Z"},
    ).json()
    assert (done["status"], done["migrated"]) == ("applied", [sub["id"]])
    scheduled = api.get(f"/v1/subscriptions/{sub['id']}/scheduled_changes").json()
    assert [s["type"] for s in scheduled] == ["plan_change"]


def test_a_migration_date_without_an_offset_is_refused(api, catalogue):
    response = api.post(f"/v1/plans/{catalogue['basic']}/migrate", {"effective_at": "2027-01-01T00:00:00"})
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "effective_at"
