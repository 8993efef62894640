import threading
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection

from turnus.core.clock import FrozenClock, use_clock
from turnus.core.idempotency import purge_expired
from turnus.core.models import AuditEvent, IdempotencyRecord

pytestmark = [pytest.mark.django_db, pytest.mark.urls("tests.core.idempotency_urls")]


def _notes():
    return AuditEvent.objects.filter(action="note.created")


def test_a_repeat_with_the_same_key_and_body_replays_the_first_response(api):
    first = api.post("/v1/notes", {"text": "hello"}, headers={"Idempotency-Key": "k1"})
    again = api.post("/v1/notes", {"text": "hello"}, headers={"Idempotency-Key": "k1"})
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json()
    assert again["Idempotent-Replayed"] == "true"
    assert _notes().count() == 1


def test_the_same_key_with_another_body_is_a_422(api):
    api.post("/v1/notes", {"text": "hello"}, headers={"Idempotency-Key": "k1"})
    response = api.post("/v1/notes", {"text": "bye"}, headers={"Idempotency-Key": "k1"})
    assert response.status_code == 422
    assert response.json()["code"] == "idempotency_key_reused"
    assert response.json()["errors"][0]["field"] == "Idempotency-Key"
    assert _notes().count() == 1


def test_without_a_key_every_post_acts(api):
    api.post("/v1/notes", {"text": "hello"})
    api.post("/v1/notes", {"text": "hello"})
    assert _notes().count() == 2


@pytest.mark.parametrize("body", [{"text": 1.5}, {"text": "x", "extra": 1}, {}])
def test_a_request_that_fails_validation_stores_nothing(api, body):
    response = api.post("/v1/notes", body, headers={"Idempotency-Key": "k-invalid"})
    assert response.status_code == 422
    assert not IdempotencyRecord.objects.exists()
    fixed = api.post("/v1/notes", {"text": "now valid"}, headers={"Idempotency-Key": "k-invalid"})
    assert fixed.status_code == 201


def test_a_refused_request_rolls_back_what_it_wrote_and_stores_nothing(api):
    response = api.post("/v1/notes", {"text": "conflict"}, headers={"Idempotency-Key": "k2"})
    assert response.status_code == 409
    assert not _notes().exists()
    assert not IdempotencyRecord.objects.exists()


def test_a_crash_rolls_back_and_stores_nothing(api, client):
    client.raise_request_exception = False
    api.client.raise_request_exception = False
    response = api.post("/v1/notes", {"text": "crash"}, headers={"Idempotency-Key": "k3"})
    assert response.status_code == 500
    assert not _notes().exists()
    assert not IdempotencyRecord.objects.exists()


def test_keys_are_per_tenant_and_mode(make_tenant):
    from tests.support import ApiClient

    tenant = make_tenant()
    test_api, live_api, other_api = (
        ApiClient(tenant),
        ApiClient(tenant, livemode=True),
        ApiClient(make_tenant()),
    )
    for client in (test_api, live_api, other_api):
        assert (
            client.post("/v1/notes", {"text": "hi"}, headers={"Idempotency-Key": "same"}).status_code == 201
        )
    assert _notes().count() == 3


@pytest.mark.parametrize("key", ["", "x" * 256, "tab\there"])
def test_malformed_keys_are_a_400_naming_the_header(api, key):
    response = api.post("/v1/notes", {"text": "hello"}, headers={"Idempotency-Key": key})
    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == "Idempotency-Key"
    assert not _notes().exists()


def test_unauthenticated_posts_with_a_key_get_401_and_store_nothing(client):
    response = client.post(
        "/v1/notes", {"text": "x"}, content_type="application/json", headers={"Idempotency-Key": "k"}
    )
    assert response.status_code == 401
    assert not IdempotencyRecord.objects.exists()


def test_records_older_than_the_retention_are_purged(api):
    start = datetime(2026, 11, 1, tzinfo=UTC)
    clock = FrozenClock(start)
    with use_clock(clock):
        api.post("/v1/notes", {"text": "old"}, headers={"Idempotency-Key": "old"})
        clock.advance(timedelta(hours=23))
        api.post("/v1/notes", {"text": "new"}, headers={"Idempotency-Key": "new"})
        clock.advance(timedelta(hours=2))
        assert purge_expired() == 1
    assert list(IdempotencyRecord.objects.values_list("key", flat=True)) == ["new"]


@pytest.mark.django_db(transaction=True)
def test_concurrent_repeats_create_one_object(make_tenant):
    if connection.vendor != "postgresql":
        pytest.skip("concurrency of separate connections is exercised on PostgreSQL")
    from tests.support import ApiClient

    tenant = make_tenant()
    clients = [ApiClient(tenant) for _ in range(8)]
    barrier = threading.Barrier(len(clients))
    results: list[tuple[int, str]] = []

    def post(client: ApiClient) -> None:
        barrier.wait()
        response = client.post("/v1/notes", {"text": "once"}, headers={"Idempotency-Key": "race"})
        results.append((response.status_code, response.json()["id"]))
        connection.close()

    threads = [threading.Thread(target=post, args=(c,)) for c in clients]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [status for status, _ in results] == [201] * len(clients)
    assert len({note_id for _, note_id in results}) == 1
    assert _notes().count() == 1
