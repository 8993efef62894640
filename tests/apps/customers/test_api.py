import threading

import pytest
from django.db import connection

from tests.apps.customers.support import customer_data
from tests.support import ApiClient
from turnus.apps.customers.models import Customer
from turnus.core.models import AuditEvent, IdempotencyRecord, OutboxEvent

pytestmark = pytest.mark.django_db


def _create(api, **overrides):
    response = api.post("/v1/customers", customer_data(**overrides))
    assert response.status_code == 201, response.json()
    return response.json()


def test_creating_a_customer_answers_201_with_every_field(api):
    body = _create(api, company="Beispiel GmbH", vat_id="DE136695976", metadata={"crm": "42"})
    assert body["id"].startswith("cus_")
    assert (body["object"], body["livemode"]) == ("customer", False)
    assert body["created_at"].startswith("20")
    assert body["company"] == "Beispiel GmbH"
    assert (body["vat_id"], body["country"], body["is_business"]) == ("DE136695976", "DE", True)
    assert (body["locale"], body["timezone"], body["tax_exempt"]) == ("de", "Europe/Berlin", "none")
    assert (body["address_line2"], body["state"], body["external_id"]) == (None, None, None)
    assert body["metadata"] == {"crm": "42"}
    assert AuditEvent.objects.filter(action="customer.created", object_id=body["id"]).exists()
    assert OutboxEvent.objects.filter(type="customer.created", object_id=body["id"]).exists()


def test_a_customer_is_retrieved_by_its_id(api):
    created = _create(api)
    response = api.get(f"/v1/customers/{created['id']}")
    assert response.status_code == 200
    assert response.json() == created


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"country": "XX"}, "country"),
        ({"vat_id": "DE136695977"}, "vat_id"),
        ({"vat_id": "ATU13585627"}, "vat_id"),
        ({"timezone": "Europe/Atlantis"}, "timezone"),
        ({"locale": "fr"}, "locale"),
        ({"email": "erika-at-example"}, "email"),
        ({"metadata": {f"k{n}": "v" for n in range(51)}}, "metadata"),
        ({"metadata": {"k": 1}}, "metadata.k"),
        ({"metadata": {"k": "v" * 501}}, "metadata.k"),
        ({"nickname": "Eri"}, "nickname"),
        ({"postal_code": 51147.0}, "postal_code"),
        ({"name": 3.5}, "name"),
        ({"tax_exempt": "always"}, "tax_exempt"),
    ],
)
def test_invalid_input_is_a_422_problem_naming_the_field_and_writes_nothing(api, overrides, field):
    response = api.post("/v1/customers", customer_data(**overrides), headers={"Idempotency-Key": "k"})
    assert response.status_code == 422
    assert response["Content-Type"] == "application/problem+json"
    assert response.json()["errors"][0]["field"] == field
    assert not Customer.objects.exists()
    assert not OutboxEvent.objects.filter(type__startswith="customer.").exists()
    assert not IdempotencyRecord.objects.exists()


def test_a_missing_required_field_is_a_422_naming_it(api):
    body = customer_data()
    del body["city"]
    response = api.post("/v1/customers", body)
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "city"


def test_malformed_json_is_refused_without_a_500(api):
    response = api.post("/v1/customers", raw="{not json")
    assert response.status_code in {400, 422}
    assert not Customer.objects.exists()


def test_a_second_customer_with_the_same_external_id_is_a_409(api):
    _create(api, external_id="user-1")
    response = api.post("/v1/customers", customer_data(external_id="user-1"))
    assert response.status_code == 409
    assert response.json()["code"] == "conflict"
    assert response.json()["errors"][0]["field"] == "external_id"
    assert Customer.objects.count() == 1


def test_a_repeated_create_with_the_same_idempotency_key_returns_the_same_customer(api):
    first = api.post("/v1/customers", customer_data(), headers={"Idempotency-Key": "create-erika"})
    again = api.post("/v1/customers", customer_data(), headers={"Idempotency-Key": "create-erika"})
    assert first.status_code == again.status_code == 201
    assert again["Idempotent-Replayed"] == "true"
    assert again.json()["id"] == first.json()["id"]
    assert Customer.objects.count() == 1


def test_the_list_pages_newest_first_and_filters(api):
    ids = [_create(api, email=f"c{n}@example.com", external_id=f"user-{n}")["id"] for n in range(3)]
    first = api.get("/v1/customers", {"limit": 2}).json()
    assert (first["object"], first["has_more"]) == ("list", True)
    second = api.get("/v1/customers", {"limit": 2, "starting_after": first["data"][-1]["id"]}).json()
    assert [c["id"] for c in first["data"] + second["data"]] == ids[::-1]
    assert second["has_more"] is False
    by_email = api.get("/v1/customers", {"email": "C1@example.com"}).json()["data"]
    assert [c["id"] for c in by_email] == [ids[1]]
    by_external = api.get("/v1/customers", {"external_id": "user-2"}).json()["data"]
    assert [c["id"] for c in by_external] == [ids[2]]


def test_the_list_filters_by_creation_time(api):
    created = _create(api)
    at = created["created_at"]
    window = {"created_gte": at, "created_lte": "2999-01-01T00:00:00Z"}
    assert len(api.get("/v1/customers", window).json()["data"]) == 1
    assert api.get("/v1/customers", {"created_gte": "2999-01-01T00:00:00Z"}).json()["data"] == []
    assert api.get("/v1/customers", {"created_lte": "2000-01-01T00:00:00+01:00"}).json()["data"] == []
    naive = api.get("/v1/customers", {"created_gte": "2026-01-01T00:00:00"})
    assert naive.status_code == 422
    assert naive.json()["errors"][0]["field"] == "created_gte"


def test_an_update_changes_the_given_fields_only(api):
    created = _create(api, metadata={"plan": "gold"})
    response = api.post(f"/v1/customers/{created['id']}", {"city": "Bonn", "locale": "en"})
    assert response.status_code == 200
    body = response.json()
    assert (body["city"], body["locale"], body["name"]) == ("Bonn", "en", created["name"])
    assert body["metadata"] == {"plan": "gold"}
    event = AuditEvent.objects.get(action="customer.updated", object_id=created["id"])
    assert (event.before["city"], event.after["city"]) == ("Köln", "Bonn")
    assert OutboxEvent.objects.filter(type="customer.updated", object_id=created["id"]).exists()


def test_an_update_can_clear_an_optional_field(api):
    created = _create(api, company="Beispiel GmbH")
    body = api.post(f"/v1/customers/{created['id']}", {"company": None}).json()
    assert (body["company"], body["is_business"]) == (None, False)


@pytest.mark.parametrize(
    ("changes", "field"),
    [({"country": "ZZ"}, "country"), ({"name": None}, "name"), ({"email": 5}, "email"), ({"x": "y"}, "x")],
)
def test_an_invalid_update_is_a_422_and_changes_nothing(api, changes, field):
    created = _create(api)
    response = api.post(f"/v1/customers/{created['id']}", changes)
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == field
    assert api.get(f"/v1/customers/{created['id']}").json() == created


def test_an_update_to_a_taken_external_id_is_a_409(api):
    _create(api, external_id="user-1")
    other = _create(api, external_id="user-2")
    response = api.post(f"/v1/customers/{other['id']}", {"external_id": "user-1"})
    assert response.status_code == 409
    assert response.json()["errors"][0]["field"] == "external_id"


def test_a_deleted_customer_is_hidden_from_the_api(api):
    created = _create(api, external_id="user-1")
    response = api.delete(f"/v1/customers/{created['id']}")
    assert response.status_code == 200
    assert response.json() == {"id": created["id"], "object": "customer", "livemode": False, "deleted": True}
    assert api.get(f"/v1/customers/{created['id']}").status_code == 404
    assert api.post(f"/v1/customers/{created['id']}", {"name": "x"}).status_code == 404
    assert api.delete(f"/v1/customers/{created['id']}").status_code == 404
    assert api.get("/v1/customers").json()["data"] == []
    assert api.get("/v1/customers", {"external_id": "user-1"}).json()["data"] == []
    assert Customer.objects.filter(public_id=created["id"], deleted_at__isnull=False).exists()
    assert OutboxEvent.objects.filter(type="customer.deleted", object_id=created["id"]).exists()


@pytest.mark.parametrize("customer_id", ["cus_01JD8Z6W0M4Q7RX3V5T9K2H8BN", "nonsense"])
def test_unknown_ids_are_a_404(api, customer_id):
    for response in (
        api.get(f"/v1/customers/{customer_id}"),
        api.post(f"/v1/customers/{customer_id}", {"name": "x"}),
        api.delete(f"/v1/customers/{customer_id}"),
    ):
        assert response.status_code == 404
        assert response.json()["code"] == "not_found"


def test_another_tenants_and_the_other_modes_customers_are_a_404_and_stay_unchanged(make_tenant, api):
    created = _create(api)
    strangers = (ApiClient(make_tenant()), ApiClient(api.tenant, livemode=True))
    for stranger in strangers:
        assert stranger.get(f"/v1/customers/{created['id']}").status_code == 404
        assert stranger.post(f"/v1/customers/{created['id']}", {"name": "Mallory"}).status_code == 404
        assert stranger.delete(f"/v1/customers/{created['id']}").status_code == 404
        assert stranger.get("/v1/customers").json()["data"] == []
    assert api.get(f"/v1/customers/{created['id']}").json() == created
    assert not AuditEvent.objects.filter(object_id=created["id"]).exclude(action="customer.created").exists()


def test_the_routes_are_in_the_openapi_document(client):
    paths = client.get("/v1/openapi.json").json()["paths"]
    assert {"get", "post"} <= set(paths["/v1/customers"])
    assert {"get", "post", "delete"} <= set(paths["/v1/customers/{customer_id}"])


@pytest.mark.django_db(transaction=True)
def test_concurrent_creates_with_the_same_external_id_make_one_customer(make_tenant):
    if connection.vendor != "postgresql":
        pytest.skip("concurrency of separate connections is exercised on PostgreSQL")
    tenant = make_tenant()
    clients = [ApiClient(tenant) for _ in range(8)]
    barrier = threading.Barrier(len(clients))
    statuses: list[int] = []

    def create(client: ApiClient) -> None:
        try:
            barrier.wait()
            response = client.post("/v1/customers", customer_data(external_id="user-race"))
            statuses.append(response.status_code)
        finally:
            connection.close()

    threads = [threading.Thread(target=create, args=(c,)) for c in clients]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(statuses) == [201] + [409] * (len(clients) - 1)
    assert Customer.objects.filter(external_id="user-race").count() == 1


def test_created_filters_take_any_utc_offset_and_refuse_instants_beyond_the_calendar(api):
    odd_offset = api.get("/v1/customers", {"created_gte": "0405-08-16T06:46:37-18:52"})
    assert odd_offset.status_code == 200
    beyond = api.get("/v1/customers", {"created_lte": "9999-12-31T23:00:00-05:00"})
    assert beyond.status_code == 422
    assert beyond.json()["errors"][0]["field"] == "created_lte"
