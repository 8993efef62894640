from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from turnus.apps.subscriptions.models import Subscription, SubscriptionCharge
from turnus.core.clock import FrozenClock, use_clock
from turnus.core.models import AuditEvent
from turnus.engine.money import Money
from turnus.engine.periods import Period
from turnus.engine.pricing import price_from_dict, rate
from turnus.engine.proration import ProrationMode, change_proration

pytestmark = pytest.mark.django_db

START = datetime(2026, 3, 10, 9, 30, tzinfo=UTC)
PERIOD = Period(datetime(2026, 3, 9, 23, tzinfo=UTC), datetime(2026, 4, 9, 22, tzinfo=UTC))
SEATS_PRICE = {
    "model": "graduated",
    "tiers": [{"up_to": "5", "unit_price": "8.00"}, {"up_to": None, "unit_price": "6.00"}],
}
STORAGE_PRICE = {"model": "per_unit", "unit_price": "2.50"}


@pytest.fixture
def clock():
    frozen = FrozenClock(START)
    with use_clock(frozen):
        yield frozen


def _charge(code: str, name_en: str, name_de: str, kind: str, price: dict) -> dict:
    return {"code": code, "name_en": name_en, "name_de": name_de, "kind": kind, "price": price}


def _plan(api, product: str, code: str, base: str, components: list[dict], **extra) -> str:
    body = {
        "code": code,
        "product": product,
        "name_en": code.title(),
        "currency": "EUR",
        "interval": {"unit": "month"},
        "charges": [
            _charge(
                "base", "Base fee", "Grundgebühr", "recurring", {"model": "per_unit", "unit_price": base}
            ),
            *components,
        ],
        **extra,
    }
    response = api.post("/v1/plans", body)
    assert response.status_code == 201, response.json()
    return response.json()["id"]


SEATS = _charge("seats", "Seats", "Plätze", "quantity", SEATS_PRICE)
STORAGE = _charge("storage", "Storage", "Speicher", "quantity", STORAGE_PRICE)
SSO = _charge("sso", "SSO", "SSO", "quantity", {"model": "flat", "amount": "0"})


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
            "locale": "en",
        },
    )
    assert customer.status_code == 201, customer.json()
    return {
        "customer": customer.json()["id"],
        "team": _plan(api, product, "team", "10.00", [SEATS, STORAGE]),
        "team_plus": _plan(api, product, "team_plus", "20.00", [SEATS, SSO]),
        "lenient": _plan(
            api,
            product,
            "lenient",
            "10.00",
            [SEATS],
            allow_downgrade_now=True,
            credit_unused_on_downgrade=True,
        ),
        "strict_credit": _plan(
            api,
            product,
            "strict_credit",
            "10.00",
            [SEATS],
            allow_downgrade_now=True,
            credit_unused_on_downgrade=False,
        ),
    }


def _subscribe(api, catalogue, plan="team", **quantities):
    response = api.post(
        "/v1/subscriptions",
        {"customer": catalogue["customer"], "plan": catalogue[plan], "quantities": quantities},
    )
    assert response.status_code == 201, response.json()
    return response.json()


def _seats(quantity: int) -> Money:
    return rate(price_from_dict(SEATS_PRICE), Decimal(quantity), "EUR").amount


def test_a_subscription_is_created_with_component_quantities_and_the_others_start_at_zero(api, catalogue):
    sub = _subscribe(api, catalogue, seats="3")
    assert sub["quantities"] == {"seats": "3", "storage": "0"}
    assert api.get(f"/v1/subscriptions/{sub['id']}").json() == sub
    listed = api.get("/v1/subscriptions").json()["data"]
    assert listed[0]["quantities"] == {"seats": "3", "storage": "0"}
    created = AuditEvent.objects.get(object_id=sub["id"], action="subscription.created")
    assert created.after["quantities"] == {"seats": "3", "storage": "0"}


@pytest.mark.parametrize(
    ("quantities", "field"),
    [
        ({"nope": "1"}, "quantities.nope"),
        ({"base": "1"}, "quantities.base"),
        ({"seats": "1.5"}, "quantities.seats"),
        ({"seats": "-1"}, "quantities.seats"),
        ({"seats": 2.0}, "quantities.seats"),
        ({"seats": "abc"}, "quantities.seats"),
    ],
)
def test_bad_component_quantities_are_a_422_naming_the_component_and_write_nothing(
    api, catalogue, quantities, field
):
    body = {"customer": catalogue["customer"], "plan": catalogue["team"], "quantities": quantities}
    response = api.post("/v1/subscriptions", body)
    assert response.status_code == 422, response.json()
    assert response.json()["errors"][0]["field"] == field
    assert not Subscription.objects.exists()


def test_more_seats_now_are_prorated_as_change_proration_quotes_for_the_rated_amounts(api, catalogue, clock):
    sub = _subscribe(api, catalogue, seats="3")
    clock.advance(timedelta(days=10))
    body = {"quantities": {"seats": "7"}}
    preview = api.post(f"/v1/subscriptions/{sub['id']}/preview_change", body).json()
    assert SubscriptionCharge.objects.filter(kind__startswith="proration").count() == 0

    quote = change_proration(_seats(3), _seats(7), PERIOD, clock.now(), ProrationMode.DAY, "Europe/Berlin")
    assert [(i["kind"], Decimal(i["amount"]), i["description"]) for i in preview["items"]] == [
        ("proration_credit", -quote.credit.amount, "Seats 3 → 7"),
        ("proration_charge", quote.charge.amount, "Seats 3 → 7"),
    ]
    assert preview["direction"] == "upgrade"
    assert preview["effective_at"] == "2026-03-20T09:30:00Z"

    changed = api.post(f"/v1/subscriptions/{sub['id']}/change", body).json()
    assert changed["items"] == preview["items"]
    assert changed["total"] == preview["total"]
    assert changed["subscription"] == preview["subscription"]
    assert changed["subscription"]["quantities"] == {"seats": "7", "storage": "0"}
    pending = api.get(f"/v1/subscriptions/{sub['id']}/pending_charges").json()
    assert [(c["kind"], c["amount"], c["description"]) for c in pending[1:]] == [
        (i["kind"], i["amount"], i["description"]) for i in changed["items"]
    ]
    updated = AuditEvent.objects.get(object_id=sub["id"], action="subscription.updated")
    assert (updated.before["quantities"]["seats"], updated.after["quantities"]["seats"]) == ("3", "7")
    assert AuditEvent.objects.filter(object_id=sub["id"], action="subscription.changed").count() == 1


def test_fewer_seats_wait_for_the_period_end_and_then_apply(api, catalogue, clock, django_assert_num_queries):
    sub = _subscribe(api, catalogue, seats="7")
    clock.advance(timedelta(days=10))
    changed = api.post(f"/v1/subscriptions/{sub['id']}/change", {"quantities": {"seats": "2"}}).json()
    assert (changed["direction"], changed["items"]) == ("downgrade", [])
    assert changed["effective_at"] == "2026-04-09T22:00:00Z"
    expected = [
        {"type": "quantity_change", "effective_at": "2026-04-09T22:00:00Z", "quantities": {"seats": "2"}}
    ]
    for shown in (
        changed["subscription"]["scheduled_changes"],
        api.get(f"/v1/subscriptions/{sub['id']}/scheduled_changes").json(),
        api.get(f"/v1/subscriptions/{sub['id']}").json()["scheduled_changes"],
    ):
        assert [{k: v for k, v in s.items() if v is not None} for s in shown] == expected
    assert api.get(f"/v1/subscriptions/{sub['id']}").json()["quantities"]["seats"] == "7"

    clock.set(datetime(2026, 4, 10, 12, tzinfo=UTC))
    with django_assert_num_queries(2):
        shown = api.get(f"/v1/subscriptions/{sub['id']}").json()
    assert (shown["quantities"], shown["scheduled_changes"]) == ({"seats": "2", "storage": "0"}, [])
    assert Subscription.objects.get().component_quantities["seats"] == "7"

    api.post(f"/v1/subscriptions/{sub['id']}/cancel", {"mode": "period_end"})
    stored = Subscription.objects.get()
    assert stored.component_quantities == {"seats": "2", "storage": "0"}
    assert (stored.scheduled_component_quantities, stored.scheduled_components_at) == (None, None)


def test_asking_for_the_current_quantity_withdraws_a_scheduled_decrease(api, catalogue, clock):
    sub = _subscribe(api, catalogue, seats="7")
    api.post(f"/v1/subscriptions/{sub['id']}/change", {"quantities": {"seats": "2"}})
    kept = api.post(f"/v1/subscriptions/{sub['id']}/change", {"quantities": {"seats": "7"}}).json()
    assert kept["subscription"]["scheduled_changes"] == []
    again = api.post(f"/v1/subscriptions/{sub['id']}/change", {"quantities": {"seats": "7"}})
    assert again.status_code == 409


def test_fewer_seats_now_are_refused_unless_the_plan_allows_downgrades_now(api, catalogue, clock):
    sub = _subscribe(api, catalogue, seats="7")
    clock.advance(timedelta(days=10))
    refused = api.post(
        f"/v1/subscriptions/{sub['id']}/change", {"quantities": {"seats": "2"}, "effective": "now"}
    )
    assert refused.status_code == 409
    assert (refused.json()["code"], refused.json()["errors"][0]["field"]) == (
        "invalid_transition",
        "effective",
    )
    assert Subscription.objects.get().component_quantities["seats"] == "7"
    assert not AuditEvent.objects.filter(object_id=sub["id"], action="subscription.updated").exists()


@pytest.mark.parametrize(("plan", "credited"), [("lenient", True), ("strict_credit", False)])
def test_fewer_seats_now_credit_the_unused_part_only_if_the_plan_says_so(
    api, catalogue, clock, plan, credited
):
    sub = _subscribe(api, catalogue, plan=plan, seats="7")
    clock.advance(timedelta(days=10))
    body = {"quantities": {"seats": "2"}, "effective": "now"}
    preview = api.post(f"/v1/subscriptions/{sub['id']}/preview_change", body).json()
    changed = api.post(f"/v1/subscriptions/{sub['id']}/change", body).json()
    assert changed["items"] == preview["items"]
    assert changed["subscription"]["quantities"] == {"seats": "2"}
    quote = change_proration(_seats(7), _seats(2), PERIOD, clock.now(), ProrationMode.DAY, "Europe/Berlin")
    expected = [("proration_credit", -quote.credit.amount)] if credited else []
    expected.append(("proration_charge", quote.charge.amount))
    assert [(i["kind"], Decimal(i["amount"])) for i in changed["items"]] == expected


def test_a_plan_change_carries_the_quantities_the_new_plan_has_and_drops_the_others(api, catalogue, clock):
    sub = _subscribe(api, catalogue, seats="3", storage="4")
    clock.advance(timedelta(days=10))
    body = {"plan": catalogue["team_plus"]}
    preview = api.post(f"/v1/subscriptions/{sub['id']}/preview_change", body).json()
    changed = api.post(f"/v1/subscriptions/{sub['id']}/change", body).json()
    assert changed["items"] == preview["items"]
    assert changed["dropped_quantities"] == ["storage"]
    assert changed["subscription"]["quantities"] == {"seats": "3", "sso": "0"}
    storage = change_proration(
        Money("10.00", "EUR"), Money("0", "EUR"), PERIOD, clock.now(), ProrationMode.DAY, "Europe/Berlin"
    )
    assert [(i["kind"], Decimal(i["amount"])) for i in changed["items"] if "Storage" in i["description"]] == [
        ("proration_credit", -storage.credit.amount)
    ]
    assert not [i for i in changed["items"] if "Seats" in i["description"]]


def test_a_plan_change_can_set_quantities_of_the_new_plan(api, catalogue, clock):
    sub = _subscribe(api, catalogue, seats="3")
    changed = api.post(
        f"/v1/subscriptions/{sub['id']}/change", {"plan": catalogue["team_plus"], "quantities": {"sso": "2"}}
    ).json()
    assert changed["subscription"]["quantities"] == {"seats": "3", "sso": "2"}
    unknown = api.post(
        f"/v1/subscriptions/{sub['id']}/change", {"plan": catalogue["team"], "quantities": {"sso": "1"}}
    )
    assert (unknown.status_code, unknown.json()["errors"][0]["field"]) == (422, "quantities.sso")


def test_a_scheduled_plan_change_carries_the_quantities_at_the_period_end(api, catalogue, clock):
    sub = _subscribe(api, catalogue, plan="team_plus", seats="3")
    changed = api.post(
        f"/v1/subscriptions/{sub['id']}/change", {"plan": catalogue["team"], "quantities": {"storage": "2"}}
    ).json()
    assert changed["direction"] == "downgrade"
    assert changed["dropped_quantities"] == ["sso"]
    assert changed["subscription"]["quantities"] == {"seats": "3", "sso": "0"}
    clock.set(datetime(2026, 4, 10, 12, tzinfo=UTC))
    shown = api.get(f"/v1/subscriptions/{sub['id']}").json()
    assert (shown["plan"], shown["quantities"]) == (catalogue["team"], {"seats": "3", "storage": "2"})


@pytest.mark.parametrize(("action", "body"), [("pause", {}), ("cancel", {"mode": "now"})])
def test_paused_and_stopped_subscriptions_refuse_quantity_changes(api, catalogue, clock, action, body):
    sub = _subscribe(api, catalogue, seats="3")
    assert api.post(f"/v1/subscriptions/{sub['id']}/{action}", body).status_code == 200
    for route in ("change", "preview_change"):
        refused = api.post(f"/v1/subscriptions/{sub['id']}/{route}", {"quantities": {"seats": "5"}})
        assert (refused.status_code, refused.json()["code"]) == (409, "invalid_transition")
    assert Subscription.objects.get().component_quantities["seats"] == "3"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"quantities": {"nope": "1"}}, "quantities.nope"),
        ({"quantities": {"seats": "0.5"}}, "quantities.seats"),
        ({"quantities": {"seats": 3.0}}, "quantities.seats"),
        ({"quantities": {}}, "plan"),
    ],
)
def test_bad_quantity_changes_are_a_422(api, catalogue, body, field):
    sub = _subscribe(api, catalogue, seats="3")
    response = api.post(f"/v1/subscriptions/{sub['id']}/change", body)
    assert (response.status_code, response.json()["errors"][0]["field"]) == (422, field)


def test_a_repeated_quantity_change_with_the_same_idempotency_key_applies_once(api, catalogue, clock):
    sub = _subscribe(api, catalogue, seats="3")
    clock.advance(timedelta(days=3))
    body = {"quantities": {"seats": "4"}}
    first = api.post(f"/v1/subscriptions/{sub['id']}/change", body, headers={"Idempotency-Key": "q-1"})
    second = api.post(f"/v1/subscriptions/{sub['id']}/change", body, headers={"Idempotency-Key": "q-1"})
    assert first.json() == second.json()
    assert SubscriptionCharge.objects.filter(kind="proration_charge").count() == 1
