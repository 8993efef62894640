"""Add-ons on a running subscription: added, changed and removed now (prorated) or at the period end."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from tests.apps.billing.support import make_addon
from tests.apps.customers.support import customer_data
from tests.support import TEST_ACTOR
from turnus.apps.catalog import services as catalog
from turnus.apps.catalog.models import AddOn
from turnus.apps.customers import services as customers
from turnus.apps.subscriptions import services
from turnus.apps.subscriptions.models import Subscription, SubscriptionAddOn, SubscriptionCharge
from turnus.core.clock import FrozenClock, use_clock
from turnus.core.errors import Conflict, NotFound, ValidationFailed
from turnus.core.models import AuditEvent, OutboxEvent
from turnus.core.scope import Scope
from turnus.engine.errors import InvalidTransition
from turnus.engine.periods import Period

pytestmark = pytest.mark.django_db

#: Midnight of 1 June 2026 in Berlin: the monthly periods run from the 1st, June has 30 days.
JUNE = datetime(2026, 5, 31, 22, 0, tzinfo=UTC)
JULY = datetime(2026, 6, 30, 22, 0, tzinfo=UTC)
#: 11 June, 10:00 in Berlin: by day, the 20 days from the 11th on are the rest of June.
JUNE_11 = datetime(2026, 6, 11, 8, 0, tzinfo=UTC)
#: The yearly add-on's first year, 1 June 2026 to 1 June 2027, has 365 days; 355 of them from 11 June.
NEXT_JUNE = datetime(2027, 5, 31, 22, 0, tzinfo=UTC)


@pytest.fixture
def scope(tenant):
    return Scope(tenant.pk, False, TEST_ACTOR)


@pytest.fixture
def clock():
    frozen = FrozenClock(JUNE + timedelta(hours=9))
    with use_clock(frozen):
        yield frozen


def _subscribe(scope, addons=(), *, trial_days: int | None = None, **plan: Any) -> str:
    product = catalog.create_product(scope, {"name_en": "Cloud", "name_de": "Cloud"})
    plan_id = catalog.create_plan(
        scope,
        {
            "code": "team",
            "product": product.public_id,
            "name_en": "Team",
            "name_de": "Team",
            "currency": "EUR",
            "interval": {"unit": "month", "count": 1},
            "anchoring": "anniversary",
            "charges": [
                {
                    "code": "base",
                    "name_en": "Base fee",
                    "kind": "recurring",
                    "price": {"model": "flat", "amount": "100.00"},
                }
            ],
            **plan,
        },
    ).public_id
    owner = customers.create_customer(scope, customer_data(timezone="Europe/Berlin", locale="en"))
    return services.create_subscription(
        scope, customer=owner.public_id, plan=plan_id, addons=addons, trial_days=trial_days
    ).public_id


def _items(outcome: services.Outcome) -> list[tuple[str, Decimal, Decimal, datetime, datetime]]:
    return [
        (item.kind.value, item.quantity, item.amount.amount, item.period.start, item.period.end)
        for item in outcome.transition.items
        if item.kind.value != "recurring"
    ]


def _pending(subscription: str) -> list[tuple[str, Decimal, str]]:
    rows = SubscriptionCharge.objects.filter(subscription__public_id=subscription).exclude(kind="recurring")
    return [(row.kind, row.amount, row.description) for row in rows.order_by("pk")]


def _attached(subscription: str, addon: str) -> SubscriptionAddOn:
    return SubscriptionAddOn.objects.get(subscription__public_id=subscription, addon__public_id=addon)


def test_an_add_on_added_now_charges_the_rest_of_the_period_and_is_attached_from_now_on(scope, clock):
    backup = make_addon(scope, "backup", "5.00")
    subscription = _subscribe(scope)
    with use_clock(FrozenClock(JUNE_11)):
        outcome = services.change_addon(scope, subscription, addon=backup, quantity=2)
    # 2 x 5.00 = 10.00 a month; 20 of June's 30 days are left: 10.00 x 20/30 = 6.67.
    assert _items(outcome) == [("proration_charge", 2, Decimal("6.67"), JUNE_11, JULY)]
    assert (outcome.direction.value, outcome.effective_at) == ("upgrade", JUNE_11)
    assert _pending(subscription) == [("proration_charge", Decimal("6.67"), "Add-on: Backup 0 → 2")]
    attached = _attached(subscription, backup)
    assert (attached.quantity, attached.added_at, attached.scheduled_quantity) == (2, JUNE_11, None)
    assert attached.quantity_at(JUNE) == 0
    assert attached.quantity_at(JULY) == 2


def test_a_quantity_raised_now_credits_the_old_and_charges_the_new_quantity_for_the_rest(scope, clock):
    backup = make_addon(scope, "backup", "5.00")
    subscription = _subscribe(scope, [(backup, 2)])
    with use_clock(FrozenClock(JUNE_11)):
        outcome = services.change_addon(scope, subscription, addon=backup, quantity=3, effective="now")
    # 10.00 x 20/30 = 6.67 back, 15.00 x 20/30 = 10.00 charged.
    assert _items(outcome) == [
        ("proration_credit", 2, Decimal("-6.67"), JUNE_11, JULY),
        ("proration_charge", 3, Decimal("10.00"), JUNE_11, JULY),
    ]
    attached = _attached(subscription, backup)
    # The period that began on 1 June is billed at 2; from July on, 3.
    assert (attached.quantity_at(JUNE), attached.quantity_at(JULY), attached.quantity) == (2, 3, 3)


def test_a_lower_quantity_takes_effect_at_the_period_end_by_default_and_can_be_withdrawn(scope, clock):
    backup = make_addon(scope, "backup", "5.00")
    subscription = _subscribe(scope, [(backup, 2)])
    with use_clock(FrozenClock(JUNE_11)):
        lowered = services.change_addon(scope, subscription, addon=backup, quantity=0)
    assert (_items(lowered), lowered.direction.value, lowered.effective_at) == ([], "downgrade", JULY)
    attached = _attached(subscription, backup)
    assert (attached.quantity, attached.scheduled_quantity, attached.scheduled_at) == (2, 0, JULY)
    assert (attached.quantity_at(JUNE), attached.quantity_at(JULY)) == (2, 0)
    with use_clock(FrozenClock(JUNE_11 + timedelta(days=1))):
        kept = services.change_addon(scope, subscription, addon=backup, quantity=2)
    assert (_items(kept), kept.effective_at) == ([], JUNE_11 + timedelta(days=1))
    attached.refresh_from_db()
    assert (attached.quantity, attached.scheduled_quantity, attached.quantity_at(JULY)) == (2, None, 2)
    events = AuditEvent.objects.filter(object_id=subscription).values_list("action", flat=True)
    assert {"subscription.change_scheduled", "subscription.change_unscheduled"} <= set(events)
    assert _pending(subscription) == []


def test_a_scheduled_quantity_becomes_the_current_one_when_the_period_ends(scope, clock):
    backup = make_addon(scope, "backup", "5.00")
    subscription = _subscribe(scope, [(backup, 2)])
    with use_clock(FrozenClock(JUNE_11)):
        services.change_addon(scope, subscription, addon=backup, quantity=1, effective="period_end")
    with use_clock(FrozenClock(JULY + timedelta(hours=1))):
        services.advance_subscription(scope, subscription)
        shown = services.current_view(scope, subscription)
    attached = _attached(subscription, backup)
    assert (attached.quantity, attached.scheduled_quantity, attached.scheduled_at) == (1, None, None)
    assert shown.subscription.addons.get().quantity_as_of(JULY) == 1


def test_removing_now_credits_the_unused_part_when_the_plan_allows_lowering_now(scope, clock):
    backup = make_addon(scope, "backup", "5.00")
    subscription = _subscribe(scope, [(backup, 2)], allow_downgrade_now=True, credit_unused_on_downgrade=True)
    with use_clock(FrozenClock(JUNE_11)):
        outcome = services.change_addon(scope, subscription, addon=backup, quantity=0, effective="now")
    assert _items(outcome) == [("proration_credit", 2, Decimal("-6.67"), JUNE_11, JULY)]
    attached = _attached(subscription, backup)
    # Kept with its history: the period that began on 1 June still bills 2.
    assert (attached.quantity, attached.quantity_at(JUNE), attached.quantity_at(JULY)) == (0, 2, 0)


def test_removing_now_without_credit_for_the_unused_part_moves_no_money(scope, clock):
    backup = make_addon(scope, "backup", "5.00")
    subscription = _subscribe(
        scope, [(backup, 2)], allow_downgrade_now=True, credit_unused_on_downgrade=False
    )
    with use_clock(FrozenClock(JUNE_11)):
        outcome = services.change_addon(scope, subscription, addon=backup, quantity=0, effective="now")
    assert _items(outcome) == []
    assert _attached(subscription, backup).quantity == 0


def test_a_yearly_add_on_is_prorated_over_its_own_year(scope, clock):
    support = make_addon(scope, "support", "60.00", "year")
    subscription = _subscribe(scope, [(support, 1)])
    with use_clock(FrozenClock(JUNE_11)):
        outcome = services.change_addon(scope, subscription, addon=support, quantity=2)
        later = services.preview_addon_change(scope, subscription, addon=support, quantity=1)
    # 355 of the year's 365 days are left: 60.00 x 355/365 = 58.36 back, 120.00 x 355/365 = 116.71.
    assert _items(outcome) == [
        ("proration_credit", 1, Decimal("-58.36"), JUNE_11, NEXT_JUNE),
        ("proration_charge", 2, Decimal("116.71"), JUNE_11, NEXT_JUNE),
    ]
    # Lowering it waits for the end of its own year, not of the plan's month.
    assert later.effective_at == NEXT_JUNE


def test_a_trialing_subscription_changes_its_add_ons_at_once_without_proration(scope, clock):
    backup = make_addon(scope, "backup", "5.00")
    subscription = _subscribe(scope, [(backup, 2)], trial_days=14)
    with use_clock(FrozenClock(JUNE_11)):
        outcome = services.change_addon(scope, subscription, addon=backup, quantity=1, effective="period_end")
    assert (_items(outcome), outcome.effective_at) == ([], JUNE_11)
    attached = _attached(subscription, backup)
    # Nothing was billed in the trial: the first paid period bills the new quantity.
    assert (attached.quantity, attached.quantity_at(JUNE), attached.quantity_at(JULY)) == (1, 1, 1)


def test_a_change_is_audited_and_announced_like_the_other_subscription_changes(scope, clock):
    backup = make_addon(scope, "backup", "5.00")
    subscription = _subscribe(scope)
    with use_clock(FrozenClock(JUNE_11)):
        services.change_addon(scope, subscription, addon=backup, quantity=2)
    events = list(
        OutboxEvent.objects.filter(object_id=subscription).order_by("pk").values_list("type", flat=True)
    )
    assert events[-3:] == ["subscription.changed", "subscription.updated", "subscription.addon_changed"]
    audit = AuditEvent.objects.filter(object_id=subscription, action="subscription.addon_changed").get()
    assert audit.before == {
        "id": subscription,
        "addon": backup,
        "code": "backup",
        "quantity": "0",
        "scheduled_quantity": None,
        "scheduled_at": None,
    }
    assert (audit.after["quantity"], audit.occurred_at) == ("2", JUNE_11)


def test_a_preview_shows_what_the_change_would_do_and_writes_nothing(scope, clock):
    backup = make_addon(scope, "backup", "5.00")
    subscription = _subscribe(scope, [(backup, 2)])
    audit_count = AuditEvent.objects.count()
    with use_clock(FrozenClock(JUNE_11)):
        preview = services.preview_addon_change(scope, subscription, addon=backup, quantity=3)
        assert AuditEvent.objects.count() == audit_count
        assert _attached(subscription, backup).changes == []
        assert _pending(subscription) == []
        changed = services.change_addon(scope, subscription, addon=backup, quantity=3)
    assert _items(preview) == _items(changed)
    assert [row.quantity for row in preview.addons or ()] == [3]


def _state(subscription: str) -> tuple[Any, ...]:
    stored = Subscription.objects.get(public_id=subscription)
    addons = list(
        SubscriptionAddOn.objects.filter(subscription=stored).values_list(
            "addon_id", "quantity", "changes", "scheduled_quantity", "scheduled_at", "added_at"
        )
    )
    charges = SubscriptionCharge.objects.filter(subscription=stored).count()
    return (
        services.snapshot(stored),
        addons,
        charges,
        AuditEvent.objects.count(),
        OutboxEvent.objects.count(),
    )


@pytest.mark.parametrize(
    ("change", "error", "field"),
    [
        ({"addon": "addon_unknown", "quantity": 1}, NotFound, "addon"),
        ({"addon": "DOLLARS", "quantity": 1}, ValidationFailed, "addon"),
        ({"addon": "BACKUP", "quantity": -1}, ValidationFailed, "quantity"),
        ({"addon": "BACKUP", "quantity": Decimal("1.5")}, ValidationFailed, "quantity"),
        ({"addon": "BACKUP", "quantity": 3, "effective": "tomorrow"}, ValidationFailed, "effective"),
        ({"addon": "BACKUP", "quantity": 2}, InvalidTransition, "quantity"),
        ({"addon": "SUPPORT", "quantity": 0}, InvalidTransition, "addon"),
        ({"addon": "OLD", "quantity": 1}, Conflict, "addon"),
        ({"addon": "BOOKS", "quantity": 1, "effective": "now"}, InvalidTransition, "effective"),
        ({"addon": "BACKUP", "quantity": 1, "effective": "now"}, InvalidTransition, "effective"),
    ],
)
def test_bad_input_is_refused_naming_the_field_and_changes_nothing(scope, clock, change, error, field):
    ids = {
        "BACKUP": make_addon(scope, "backup", "5.00"),
        "DOLLARS": make_addon(scope, "dollars", "5.00", currency="USD"),
        "SUPPORT": make_addon(scope, "support", "60.00", "year"),
        "OLD": make_addon(scope, "old", "1.00"),
        "BOOKS": make_addon(scope, "books", "3.00", tax_category="reduced"),
    }
    AddOn.objects.filter(public_id=ids["OLD"]).update(active=False)
    subscription = _subscribe(scope, [(ids["BACKUP"], 2)])
    change = {**change, "addon": ids.get(change["addon"], change["addon"])}
    with use_clock(FrozenClock(JUNE_11)):
        before = _state(subscription)
        with pytest.raises(error) as refused:
            services.change_addon(scope, subscription, **change)
        assert refused.value.field == field
        assert _state(subscription) == before


@pytest.mark.parametrize("how", ["cancel", "pause"])
def test_a_cancelled_or_paused_subscription_refuses_add_on_changes(scope, clock, how):
    backup = make_addon(scope, "backup", "5.00")
    subscription = _subscribe(scope, [(backup, 2)])
    with use_clock(FrozenClock(JUNE_11)):
        if how == "cancel":
            services.cancel_subscription(scope, subscription, mode="now")
        else:
            services.pause_subscription(scope, subscription)
        before = _state(subscription)
        with pytest.raises(InvalidTransition) as refused:
            services.change_addon(scope, subscription, addon=backup, quantity=3)
        assert refused.value.field == "status"
        assert _state(subscription) == before


# --- the API ---------------------------------------------------------------------------------------------


@pytest.fixture
def shop(api, scope, clock):
    backup = make_addon(scope, "backup", "5.00")
    dollars = make_addon(scope, "dollars", "5.00", currency="USD")
    subscription = _subscribe(scope, [(backup, 2)])
    return {"subscription": subscription, "backup": backup, "dollars": dollars}


def test_the_api_changes_an_add_on_now_and_shows_the_proration(api, shop):
    path = f"/v1/subscriptions/{shop['subscription']}/addons"
    with use_clock(FrozenClock(JUNE_11)):
        preview = api.post(f"{path}/preview", {"addon": shop["backup"], "quantity": "3"})
        response = api.post(path, {"addon": shop["backup"], "quantity": "3"})
    assert response.status_code == 200, response.json()
    body = response.json()
    assert preview.json() == body
    assert (body["object"], body["direction"], body["effective_at"]) == (
        "subscription_change",
        "upgrade",
        "2026-06-11T08:00:00Z",
    )
    assert [(item["kind"], item["amount"], item["description"]) for item in body["items"]] == [
        ("proration_credit", "-6.67", "Add-on: Backup 2 → 3"),
        ("proration_charge", "10.00", "Add-on: Backup 2 → 3"),
    ]
    assert body["total"] == {"amount": "3.33", "currency": "EUR"}
    assert body["subscription"]["addons"] == [{"addon": shop["backup"], "quantity": "3"}]
    pending = api.get(f"/v1/subscriptions/{shop['subscription']}/pending_charges").json()
    assert [charge["amount"] for charge in pending if charge["kind"] != "recurring"] == ["-6.67", "10.00"]


def test_the_api_schedules_a_removal_for_the_period_end_and_lists_it(api, shop):
    path = f"/v1/subscriptions/{shop['subscription']}/addons"
    with use_clock(FrozenClock(JUNE_11)):
        response = api.post(path, {"addon": shop["backup"], "quantity": "0"})
        assert response.status_code == 200, response.json()
        body = response.json()
        assert (body["direction"], body["effective_at"], body["items"]) == (
            "downgrade",
            "2026-06-30T22:00:00Z",
            [],
        )
        shown = api.get(f"/v1/subscriptions/{shop['subscription']}").json()
        scheduled = api.get(f"/v1/subscriptions/{shop['subscription']}/scheduled_changes").json()
    assert shown["addons"] == [{"addon": shop["backup"], "quantity": "2"}]
    expected = {
        "type": "addon_change",
        "effective_at": "2026-06-30T22:00:00Z",
        "addon": shop["backup"],
        "quantity": "0",
        "plan_version": None,
        "quantities": None,
    }
    assert shown["scheduled_changes"] == scheduled == [expected]
    with use_clock(FrozenClock(JULY + timedelta(hours=1))):
        after = api.get(f"/v1/subscriptions/{shop['subscription']}").json()
    assert (after["addons"], after["scheduled_changes"]) == ([], [])


def test_a_repeated_add_on_change_with_the_same_idempotency_key_applies_once(api, shop):
    path = f"/v1/subscriptions/{shop['subscription']}/addons"
    body = {"addon": shop["backup"], "quantity": "3", "effective": "now"}
    with use_clock(FrozenClock(JUNE_11)):
        first = api.post(path, body, headers={"Idempotency-Key": "addon-1"})
        second = api.post(path, body, headers={"Idempotency-Key": "addon-1"})
        other = api.post(path, {**body, "quantity": "4"}, headers={"Idempotency-Key": "addon-1"})
    assert (first.status_code, second.status_code) == (200, 200)
    assert second.json() == first.json()
    assert other.status_code == 422
    assert other.json()["code"] == "idempotency_key_reused"
    assert len(_pending(shop["subscription"])) == 2
    assert _attached(shop["subscription"], shop["backup"]).quantity == 3


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        ({"addon": "addon_unknown", "quantity": "1"}, 404, "addon"),
        ({"addon": "DOLLARS", "quantity": "1"}, 422, "addon"),
        ({"addon": "BACKUP", "quantity": "-1"}, 422, "quantity"),
        ({"addon": "BACKUP", "quantity": "1", "effective": "later"}, 422, "effective"),
        ({"addon": "BACKUP", "quantity": "1", "effective": "now"}, 409, "effective"),
    ],
)
def test_the_api_answers_bad_input_with_a_problem_naming_the_field(api, shop, body, status, field):
    body = {
        **body,
        "addon": {"BACKUP": shop["backup"], "DOLLARS": shop["dollars"]}.get(body["addon"], body["addon"]),
    }
    with use_clock(FrozenClock(JUNE_11)):
        before = _state(shop["subscription"])
        response = api.post(f"/v1/subscriptions/{shop['subscription']}/addons", body)
        assert _state(shop["subscription"]) == before
    assert response.status_code == status, response.json()
    assert response["Content-Type"] == "application/problem+json"
    assert [error["field"] for error in response.json()["errors"]] == [field]


def test_the_api_refuses_an_add_on_change_of_a_cancelled_subscription(api, shop):
    with use_clock(FrozenClock(JUNE_11)):
        api.post(f"/v1/subscriptions/{shop['subscription']}/cancel", {"mode": "now"})
        response = api.post(
            f"/v1/subscriptions/{shop['subscription']}/addons", {"addon": shop["backup"], "quantity": "3"}
        )
    assert response.status_code == 409
    assert (response.json()["code"], response.json()["errors"][0]["field"]) == (
        "invalid_transition",
        "status",
    )


def test_the_api_answers_404_for_another_tenants_subscription(api, shop, make_tenant):
    from tests.support import ApiClient

    stranger = ApiClient(make_tenant())
    response = stranger.post(
        f"/v1/subscriptions/{shop['subscription']}/addons", {"addon": shop["backup"], "quantity": "3"}
    )
    assert response.status_code == 404


def test_a_yearly_add_on_added_at_the_period_end_begins_its_own_year_then(scope, clock):
    support = make_addon(scope, "support", "60.00", "year")
    subscription = _subscribe(scope)
    with use_clock(FrozenClock(JUNE_11)):
        outcome = services.change_addon(
            scope, subscription, addon=support, quantity=1, effective="period_end"
        )
    assert (_items(outcome), outcome.effective_at) == ([], JULY)
    attached = _attached(subscription, support)
    assert (attached.added_at, attached.quantity, attached.scheduled_quantity) == (JULY, 0, 1)
    assert (attached.quantity_at(JUNE_11), attached.quantity_at(JULY)) == (0, 1)
    assert services.addon_period_at(attached.addon, attached.added_at, JULY, "Europe/Berlin") == (
        Period(JULY, datetime(2027, 6, 30, 22, 0, tzinfo=UTC))
    )


def test_the_api_names_an_add_on_by_its_code_too(api, shop):
    with use_clock(FrozenClock(JUNE_11)):
        response = api.post(
            f"/v1/subscriptions/{shop['subscription']}/addons", {"addon": "backup", "quantity": "4"}
        )
    assert response.status_code == 200, response.json()
    assert response.json()["subscription"]["addons"] == [{"addon": shop["backup"], "quantity": "4"}]


FREE_PLAN = {
    "charges": [
        {
            "code": "base",
            "name_en": "Base fee",
            "kind": "recurring",
            "price": {"model": "flat", "amount": "0.00"},
        }
    ]
}


def _marks(subscription: str) -> list[tuple[datetime, datetime]]:
    rows = SubscriptionCharge.objects.filter(subscription__public_id=subscription, kind="recurring")
    return [(row.period_start, row.period_end) for row in rows if not row.amount]


def test_an_add_on_added_now_marks_a_period_that_began_with_nothing_to_bill_once(scope, clock):
    backup = make_addon(scope, "backup", "5.00")
    subscription = _subscribe(scope, **FREE_PLAN)
    # Without a base fee, seats or add-ons the period began unmarked.
    assert _marks(subscription) == []
    with use_clock(FrozenClock(JUNE_11)):
        services.change_addon(scope, subscription, addon=backup, quantity=2)
    with use_clock(FrozenClock(JUNE_11 + timedelta(days=1))):
        services.change_addon(scope, subscription, addon=backup, quantity=3)
    # The period is marked once, so it bills and credits the add-on from then on as if it began with it.
    assert _marks(subscription) == [(JUNE, JULY)]
    assert [kind for kind, _amount, _text in _pending(subscription)] == [
        "proration_charge",
        "proration_credit",
        "proration_charge",
    ]


def test_an_add_on_scheduled_for_the_period_end_or_added_in_a_trial_marks_no_period_now(scope, clock):
    backup = make_addon(scope, "backup", "5.00")
    later = _subscribe(scope, **FREE_PLAN)
    trialing = _subscribe(scope, trial_days=14, code="trial", **FREE_PLAN)
    with use_clock(FrozenClock(JUNE_11)):
        services.change_addon(scope, later, addon=backup, quantity=2, effective="period_end")
        services.change_addon(scope, trialing, addon=backup, quantity=2)
    assert (_marks(later), _marks(trialing)) == ([], [])


def test_the_api_shows_no_mark_for_an_add_on_added_to_a_period_that_began_with_nothing(api, scope, clock):
    backup = make_addon(scope, "backup", "5.00")
    subscription = _subscribe(scope, **FREE_PLAN)
    with use_clock(FrozenClock(JUNE_11)):
        response = api.post(f"/v1/subscriptions/{subscription}/addons", {"addon": backup, "quantity": "2"})
        pending = api.get(f"/v1/subscriptions/{subscription}/pending_charges").json()
    assert response.status_code == 200, response.json()
    body = response.json()
    # 2 x 5.00 for the 20 of June's 30 days left: 6.67; the period's 0.00 mark is bookkeeping.
    assert [(item["kind"], item["amount"]) for item in body["items"]] == [("proration_charge", "6.67")]
    assert [(charge["kind"], charge["amount"]) for charge in pending] == [("proration_charge", "6.67")]
    assert _marks(subscription) == [(JUNE, JULY)]
