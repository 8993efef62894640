from datetime import UTC, datetime, timedelta

import pytest

from tests.apps.metering.support import START, metered_subscription
from tests.support import ApiClient
from turnus.apps.metering import services
from turnus.apps.metering.models import EventTransaction, EventVoid, UsageEvent
from turnus.core.clock import FrozenClock, use_clock
from turnus.core.models import AuditEvent
from turnus.core.scope import Actor, ActorKind, Scope

pytestmark = pytest.mark.django_db

NOW = START + timedelta(days=3)


@pytest.fixture
def clock():
    frozen = FrozenClock(START)
    with use_clock(frozen):
        yield frozen


@pytest.fixture
def metered(api, clock):
    found = metered_subscription(
        api,
        {
            "calls": {"aggregation": "count"},
            "tokens": {"aggregation": "sum", "property": "tokens", "group_by": "model"},
        },
        external_id="crm-42",
    )
    clock.set(NOW)
    return found


def _event(metered, transaction_id="tx-1", **fields):
    return {
        "transaction_id": transaction_id,
        "subscription": metered.subscription,
        "metric": "calls",
        **fields,
    }


def _problem(response):
    assert response["Content-Type"] == "application/problem+json", response.content
    body = response.json()
    return body["code"], body["errors"][0]["field"] if body["errors"] else None


def test_an_event_is_recorded_once_and_its_repeat_is_a_flagged_no_op(metered):
    first = metered.api.post("/v1/events", _event(metered))
    again = metered.api.post("/v1/events", _event(metered))
    assert first.status_code == 201
    assert first.json()["duplicate"] is False
    assert first.json()["timestamp"] == "2026-05-07T08:00:00Z"
    assert again.status_code == 200
    assert again.json()["duplicate"] is True
    assert again.json()["subscription"] == metered.subscription
    assert UsageEvent.objects.count() == 1


def test_a_repeated_transaction_id_with_other_content_is_a_conflict(metered):
    metered.api.post("/v1/events", _event(metered))
    response = metered.api.post("/v1/events", _event(metered, properties={"region": "eu"}))
    assert response.status_code == 409
    assert _problem(response) == ("transaction_id_reused", "transaction_id")
    assert UsageEvent.objects.count() == 1


def test_an_event_names_its_customer_by_id_or_external_id(metered):
    by_id = metered.api.post(
        "/v1/events", {"transaction_id": "a", "customer": metered.customer, "metric": "calls"}
    )
    by_external = metered.api.post(
        "/v1/events", {"transaction_id": "b", "customer": "crm-42", "metric": "calls"}
    )
    assert by_id.status_code == by_external.status_code == 201
    assert by_external.json()["subscription"] == metered.subscription


@pytest.mark.parametrize(
    ("fields", "status", "code", "field"),
    [
        ({"metric": "unknown"}, 404, "not_found", "metric"),
        ({"subscription": None, "customer": "cus_01M8GRA8DT7AVJ64BAXTG8ZYYX"}, 404, "not_found", "customer"),
        ({"subscription": None}, 422, "validation_failed", "customer"),
        ({"metric": "tokens", "properties": {"model": "a"}}, 422, "validation_failed", "properties.tokens"),
        (
            {"metric": "tokens", "properties": {"tokens": "many"}},
            422,
            "validation_failed",
            "properties.tokens",
        ),
        ({"metric": "tokens", "properties": {"tokens": True}}, 422, "validation_failed", "properties.tokens"),
        ({"metric": "tokens", "properties": {"tokens": -1}}, 422, "validation_failed", "properties.tokens"),
        ({"properties": {"nested": {"a": 1}}}, 422, "validation_failed", "properties.nested"),
        ({"properties": {"text": "x" * 501}}, 422, "validation_failed", "properties.text"),
        ({"properties": {f"key{n}": "x" * 90 for n in range(45)}}, 422, "validation_failed", "properties"),
        ({"timestamp": "2026-05-07T08:05:01Z"}, 422, "validation_failed", "timestamp"),
        ({"timestamp": "2026-05-07T08:00:00"}, 422, "validation_failed", "timestamp"),
        ({"timestamp": "yesterday"}, 422, "validation_failed", "timestamp"),
        ({"timestamp": "2026-05-01T00:00:00Z"}, 422, "validation_failed", "timestamp"),
        ({"transaction_id": ""}, 422, "validation_failed", "transaction_id"),
        ({"colour": "blue"}, 422, "validation_failed", "colour"),
    ],
)
def test_a_bad_event_is_refused_naming_the_field_and_nothing_is_stored(metered, fields, status, code, field):
    response = metered.api.post("/v1/events", {**_event(metered), **fields})
    assert response.status_code == status, response.content
    assert _problem(response) == (code, field)
    assert UsageEvent.objects.count() == 0
    assert EventTransaction.objects.count() == 0


def test_an_event_up_to_five_minutes_ahead_is_accepted(metered):
    response = metered.api.post("/v1/events", _event(metered, timestamp="2026-05-07T10:05:00+02:00"))
    assert response.status_code == 201
    assert response.json()["timestamp"] == "2026-05-07T08:05:00Z"


def test_a_decimal_property_is_read_exactly_and_stored_as_text(metered):
    response = metered.api.post(
        "/v1/events", _event(metered, metric="tokens", properties={"tokens": 0.1, "model": "a"})
    )
    assert response.status_code == 201
    assert response.json()["properties"] == {"tokens": "0.1", "model": "a"}
    assert UsageEvent.objects.get().value == services.Decimal("0.1")


def test_a_body_that_is_not_json_is_refused(metered):
    response = metered.api.post("/v1/events", raw="{not json")
    assert response.status_code == 422
    assert _problem(response) == ("validation_failed", "body")


def test_a_batch_answers_each_event_and_stores_only_the_good_ones(metered):
    events = [
        _event(metered, "good-1"),
        _event(metered, "bad-metric", metric="nope"),
        _event(metered, "good-2", metric="tokens", properties={"tokens": 5, "model": "a"}),
        _event(metered, "bad-value", metric="tokens", properties={"tokens": "x"}),
        _event(metered, "good-1"),
        _event(metered, "good-2", metric="tokens", properties={"tokens": 6, "model": "a"}),
        "not an event",
    ]
    response = metered.api.post("/v1/events/batch", {"events": events})
    assert response.status_code == 200
    body = response.json()
    assert [(item["index"], item["status"]) for item in body["data"]] == [
        (0, "created"),
        (1, "rejected"),
        (2, "created"),
        (3, "rejected"),
        (4, "duplicate"),
        (5, "rejected"),
        (6, "rejected"),
    ]
    assert body["data"][1]["error"] == {
        "status": 404,
        "code": "not_found",
        "field": "metric",
        "message": "no billable metric 'nope'",
    }
    assert body["data"][5]["error"]["code"] == "transaction_id_reused"
    assert (body["created"], body["duplicates"], body["rejected"]) == (2, 1, 4)
    assert sorted(UsageEvent.objects.values_list("transaction_id", flat=True)) == ["good-1", "good-2"]


def test_a_repeated_batch_creates_nothing_new(metered):
    events = [_event(metered, f"tx-{n}") for n in range(20)]
    metered.api.post("/v1/events/batch", {"events": events})
    again = metered.api.post("/v1/events/batch", {"events": events}).json()
    assert (again["created"], again["duplicates"]) == (0, 20)
    assert UsageEvent.objects.count() == EventTransaction.objects.count() == 20


@pytest.mark.parametrize("events", [[], [{}] * 1001, "events"])
def test_a_batch_holds_one_to_a_thousand_events(metered, events):
    response = metered.api.post("/v1/events/batch", {"events": events})
    assert response.status_code == 422
    assert _problem(response) == ("validation_failed", "events")


def test_a_full_batch_of_a_thousand_events_is_accepted(metered):
    events = [_event(metered, f"tx-{n}") for n in range(1000)]
    body = metered.api.post("/v1/events/batch", {"events": events}).json()
    assert body["created"] == 1000
    assert UsageEvent.objects.count() == 1000


def test_an_idempotency_key_replays_the_first_answer_of_either_post(metered):
    headers = {"Idempotency-Key": "key-1"}
    first = metered.api.post("/v1/events", _event(metered), headers=headers)
    replay = metered.api.post("/v1/events", _event(metered), headers=headers)
    assert replay.status_code == 201
    assert replay["Idempotent-Replayed"] == "true"
    assert replay.json() == first.json()
    batch = {"events": [_event(metered, "tx-2")]}
    first_batch = metered.api.post("/v1/events/batch", batch, headers={"Idempotency-Key": "key-2"})
    replayed_batch = metered.api.post("/v1/events/batch", batch, headers={"Idempotency-Key": "key-2"})
    assert replayed_batch.json() == first_batch.json()
    reused = metered.api.post("/v1/events/batch", {"events": []}, headers={"Idempotency-Key": "key-2"})
    assert reused.status_code == 422
    assert UsageEvent.objects.count() == 2


def _scope(api: ApiClient) -> Scope:
    return Scope(api.tenant.pk, api.livemode, Actor(ActorKind.SYSTEM, "tests"))


def test_events_before_the_usage_watermark_are_refused_as_closed(metered, clock):
    services.close_usage(_scope(metered.api), metered.subscription, datetime(2026, 5, 6, tzinfo=UTC))
    late = metered.api.post("/v1/events", _event(metered, "late", timestamp="2026-05-05T23:59:59Z"))
    on_time = metered.api.post("/v1/events", _event(metered, "on-time", timestamp="2026-05-06T00:00:00Z"))
    assert late.status_code == 422
    assert _problem(late) == ("usage_closed", "timestamp")
    assert on_time.status_code == 201


def test_the_watermark_only_moves_forward(metered):
    scope = _scope(metered.api)
    services.close_usage(scope, metered.subscription, datetime(2026, 5, 6, tzinfo=UTC))
    services.close_usage(scope, metered.subscription, datetime(2026, 5, 5, tzinfo=UTC))
    watermark = services.UsageWatermark.objects.get()
    assert watermark.closed_until == datetime(2026, 5, 6, tzinfo=UTC)
    assert AuditEvent.objects.filter(action="usage.closed").count() == 1


def test_the_late_event_grace_is_a_tenant_setting_with_a_default(metered):
    scope = _scope(metered.api)
    assert services.late_event_grace(scope) == services.DEFAULT_LATE_EVENT_GRACE
    services.set_late_event_grace(scope, timedelta(hours=6))
    assert services.late_event_grace(scope) == timedelta(hours=6)


def test_a_paused_subscription_takes_no_usage_from_the_pause_on(metered, clock):
    paused = metered.api.post(f"/v1/subscriptions/{metered.subscription}/pause", {})
    assert paused.status_code == 200, paused.content
    during = metered.api.post("/v1/events", _event(metered, "during"))
    before = metered.api.post("/v1/events", _event(metered, "before", timestamp="2026-05-06T12:00:00Z"))
    assert during.status_code == 422
    assert _problem(during) == ("subscription_paused", "timestamp")
    assert before.status_code == 201


def test_a_cancelled_subscription_takes_no_usage_after_it_ended(metered, clock):
    cancelled = metered.api.post(f"/v1/subscriptions/{metered.subscription}/cancel", {"mode": "now"})
    assert cancelled.status_code == 200, cancelled.content
    clock.advance(timedelta(minutes=1))
    after = metered.api.post("/v1/events", _event(metered, "after"))
    before = metered.api.post("/v1/events", _event(metered, "before", timestamp="2026-05-06T12:00:00Z"))
    assert after.status_code == 422
    assert _problem(after)[1] == "timestamp"
    assert before.status_code == 201


def test_voiding_an_event_removes_it_from_usage_and_is_audited(metered):
    metered.api.post("/v1/events", _event(metered, "oops"))
    metered.api.post("/v1/events", _event(metered, "kept"))
    voided = metered.api.post("/v1/events/oops/void", {})
    assert voided.status_code == 200
    assert voided.json()["voided"] is True
    usage = metered.api.get(f"/v1/subscriptions/{metered.subscription}/usage").json()
    assert [(line["metric"], line["quantity"]) for line in usage["lines"]] == [("calls", "1")]
    assert AuditEvent.objects.filter(action="usage_event.voided", object_id="oops").count() == 1
    assert UsageEvent.objects.count() == 2


def test_an_event_is_voided_once_and_never_in_an_invoiced_period(metered):
    metered.api.post("/v1/events", _event(metered, "oops", timestamp="2026-05-05T00:00:00Z"))
    metered.api.post("/v1/events", _event(metered, "old", timestamp="2026-05-05T00:00:00Z"))
    metered.api.post("/v1/events/oops/void", {})
    twice = metered.api.post("/v1/events/oops/void", {})
    services.close_usage(_scope(metered.api), metered.subscription, datetime(2026, 5, 6, tzinfo=UTC))
    closed = metered.api.post("/v1/events/old/void", {})
    unknown = metered.api.post("/v1/events/never-sent/void", {})
    assert twice.status_code == 409
    assert _problem(twice) == ("already_voided", "transaction_id")
    assert closed.status_code == 409
    assert _problem(closed) == ("usage_closed", "transaction_id")
    assert unknown.status_code == 404
    assert EventVoid.objects.count() == 1


def test_a_correcting_event_replaces_the_one_it_names(metered):
    metered.api.post(
        "/v1/events", _event(metered, "wrong", metric="tokens", properties={"tokens": 500, "model": "a"})
    )
    correction = metered.api.post(
        "/v1/events",
        _event(metered, "right", metric="tokens", properties={"tokens": 50, "model": "a"}, corrects="wrong"),
    )
    assert correction.status_code == 201
    usage = metered.api.get(f"/v1/subscriptions/{metered.subscription}/usage").json()
    assert [(line["group"], line["quantity"]) for line in usage["lines"] if line["metric"] == "tokens"] == [
        ("a", "50")
    ]
    void = EventVoid.objects.get()
    assert (void.transaction_id, void.reason, void.corrected_by) == ("wrong", "corrected", "right")
    assert AuditEvent.objects.filter(action="usage_event.corrected", object_id="wrong").exists()


def test_a_correction_of_an_unknown_event_is_refused(metered):
    response = metered.api.post("/v1/events", _event(metered, "right", corrects="never-sent"))
    assert response.status_code == 404
    assert _problem(response) == ("not_found", "corrects")
    assert UsageEvent.objects.count() == 0


def test_live_usage_shows_quantity_and_amount_per_metric_and_group(metered):
    events = [
        _event(metered, f"t{n}", metric="tokens", properties={"tokens": 1000, "model": model})
        for n, model in enumerate(["small", "small", "large"])
    ] + [_event(metered, f"c{n}") for n in range(3)]
    metered.api.post("/v1/events/batch", {"events": events})
    usage = metered.api.get(f"/v1/subscriptions/{metered.subscription}/usage").json()
    assert usage["period_start"] == "2026-05-03T22:00:00Z"
    assert usage["period_end"] == "2026-06-03T22:00:00Z"
    assert [(line["metric"], line["group"], line["quantity"], line["amount"]) for line in usage["lines"]] == [
        ("calls", None, "3", "0.03"),
        ("tokens", "large", "1000", "10.00"),
        ("tokens", "small", "2000", "20.00"),
    ]
    assert usage["total"] == "30.03"


def test_usage_and_events_of_one_tenant_or_mode_are_invisible_to_others(metered, make_tenant):
    metered.api.post("/v1/events", _event(metered, "mine"))
    for stranger in (ApiClient(make_tenant()), ApiClient(metered.api.tenant, livemode=True)):
        assert stranger.get(f"/v1/subscriptions/{metered.subscription}/usage").status_code == 404
        assert stranger.post("/v1/events/mine/void", {}).status_code == 404
        again = stranger.post("/v1/events", _event(metered, "mine"))
        assert again.status_code == 404
        assert _problem(again) == ("not_found", "metric")
    assert EventVoid.objects.count() == 0
    assert UsageEvent.objects.count() == 1
