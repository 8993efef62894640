import pytest

from tests.support import TEST_ACTOR, ApiClient
from turnus.apps.tenants import services

pytestmark = pytest.mark.django_db


def test_requests_without_a_key_get_a_401_problem(client):
    response = client.get("/v1/audit_events")
    assert response.status_code == 401
    assert response["Content-Type"] == "application/problem+json"
    assert response.json()["code"] == "unauthenticated"
    assert response["WWW-Authenticate"] == "Bearer"


@pytest.mark.parametrize("header", ["Bearer sk_test_wrong", "Basic abc", "Bearer ", "sk_test_x"])
def test_bad_credentials_get_a_401(client, header):
    assert client.get("/v1/audit_events", headers={"Authorization": header}).status_code == 401


def test_publishable_and_revoked_keys_cannot_call_the_server_api(client, tenant):
    publishable = services.create_api_key(tenant, livemode=False, kind="publishable", actor=TEST_ACTOR)
    response = client.get("/v1/audit_events", headers={"Authorization": f"Bearer {publishable.plaintext}"})
    assert response.status_code == 401
    secret = services.create_api_key(tenant, livemode=False, actor=TEST_ACTOR)
    services.revoke_api_key(tenant, secret.key.public_id, actor=TEST_ACTOR)
    response = client.get("/v1/audit_events", headers={"Authorization": f"Bearer {secret.plaintext}"})
    assert response.status_code == 401


def test_the_audit_log_lists_this_tenants_and_modes_events_newest_first(make_tenant):
    mine, theirs = make_tenant(), make_tenant()
    test_api, live_api, their_api = ApiClient(mine), ApiClient(mine, livemode=True), ApiClient(theirs)
    body = test_api.get("/v1/audit_events").json()
    assert body["object"] == "list"
    assert [e["action"] for e in body["data"]] == ["api_key.created"]
    assert body["data"][0]["livemode"] is False
    live_body = live_api.get("/v1/audit_events").json()
    assert {e["object_id"] for e in live_body["data"]}.isdisjoint({e["object_id"] for e in body["data"]})
    theirs_ids = {e["id"] for e in their_api.get("/v1/audit_events").json()["data"]}
    assert theirs_ids.isdisjoint({e["id"] for e in body["data"] + live_body["data"]})


def test_the_audit_log_pages_with_a_cursor(api):
    for _ in range(4):
        services.create_api_key(api.tenant, livemode=False, actor=TEST_ACTOR)
    first = api.get("/v1/audit_events", {"limit": 2}).json()
    assert len(first["data"]) == 2
    assert first["has_more"] is True
    second = api.get("/v1/audit_events", {"limit": 2, "starting_after": first["data"][-1]["id"]}).json()
    third = api.get("/v1/audit_events", {"limit": 2, "starting_after": second["data"][-1]["id"]}).json()
    ids = [e["id"] for e in first["data"] + second["data"] + third["data"]]
    assert len(ids) == len(set(ids)) == 5
    assert ids == sorted(ids, reverse=True)
    assert third["has_more"] is False


@pytest.mark.parametrize("limit", [0, 101, -1])
def test_an_out_of_range_limit_is_a_422_naming_limit(api, limit):
    response = api.get("/v1/audit_events", {"limit": limit})
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "limit"


def test_a_non_numeric_limit_is_a_422_naming_limit(api):
    response = api.get("/v1/audit_events", {"limit": "ten"})
    assert response.status_code == 422
    assert response["Content-Type"] == "application/problem+json"
    assert response.json()["errors"][0]["field"] == "limit"


def test_the_audit_log_filters_by_object_and_action(api):
    extra = services.create_api_key(api.tenant, livemode=False, actor=TEST_ACTOR)
    services.revoke_api_key(api.tenant, extra.key.public_id, actor=TEST_ACTOR)
    by_object = api.get("/v1/audit_events", {"object_id": extra.key.public_id}).json()["data"]
    assert [e["action"] for e in by_object] == ["api_key.revoked", "api_key.created"]
    revoked = api.get("/v1/audit_events", {"action": "api_key.revoked"}).json()["data"]
    assert [e["object_id"] for e in revoked] == [extra.key.public_id]
    assert revoked[0]["before"] is None
    assert revoked[0]["actor"] == "system:tests"


def test_the_openapi_document_and_docs_are_served_offline(client):
    spec = client.get("/v1/openapi.json")
    assert spec.status_code == 200
    assert "/v1/audit_events" in spec.json()["paths"]
    docs = client.get("/v1/docs")
    assert docs.status_code == 200
    page = docs.content.decode()
    assert "/static/ninja/" in page
    assert "cdn." not in page
