"""The production WSGI application: /v1 runs a shorter middleware chain than the admin and the pages."""

import io
import json

import pytest
from django.core.signals import request_finished, request_started
from django.db import close_old_connections

from tests.support import ApiClient
from turnus.project.wsgi import application

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _keep_the_test_transaction():
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


def call(method, path, *, body=b"", host="127.0.0.1", headers=None, content_type="application/json"):
    environ = {
        "REQUEST_METHOD": method,
        "PATH_INFO": path.partition("?")[0],
        "QUERY_STRING": path.partition("?")[2],
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "8000",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "HTTP_HOST": host,
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(body),
        "wsgi.errors": io.StringIO(),
        "CONTENT_LENGTH": str(len(body)),
        "CONTENT_TYPE": content_type,
        **{"HTTP_" + name.upper().replace("-", "_"): value for name, value in (headers or {}).items()},
    }
    started = {}

    def start_response(status, response_headers, exc_info=None):
        started["status"] = int(status.split(" ", 1)[0])
        started["headers"] = response_headers

    result = application(environ, start_response)
    try:
        content = b"".join(result)
    finally:
        result.close()
    return started["status"], started["headers"], content


def names(headers):
    return {name.lower() for name, _ in headers}


def value(headers, wanted):
    return next(v.strip() for name, v in headers if name.lower() == wanted)


def cookies(headers):
    return [v.strip() for name, v in headers if name.lower() == "set-cookie"]


@pytest.fixture
def customer_body():
    body = {
        "name": "Erika",
        "email": "erika@example.com",
        "address_line1": "Weg 1",
        "postal_code": "10115",
        "city": "Berlin",
        "country": "DE",
    }
    return json.dumps(body).encode()


def test_api_responses_carry_the_security_headers_and_no_session_or_csrf_cookie(tenant, customer_body):
    key = {"Authorization": f"Bearer {ApiClient(tenant).key}"}
    status, headers, content = call("POST", "/v1/customers", body=customer_body, headers=key)
    assert status == 201, content
    assert value(headers, "x-content-type-options") == "nosniff"
    assert value(headers, "referrer-policy") == "same-origin"
    assert value(headers, "cross-origin-opener-policy") == "same-origin"
    assert int(value(headers, "content-length")) == len(content)
    assert "set-cookie" not in names(headers)
    assert "vary" not in names(headers)


def test_api_requests_still_check_the_host(tenant):
    key = {"Authorization": f"Bearer {ApiClient(tenant).key}"}
    status, _, _ = call("GET", "/v1/customers", host="evil.example", headers=key)
    assert status == 400


def test_api_requests_still_refuse_nul_and_replay_idempotent_posts(tenant, customer_body):
    key = {"Authorization": f"Bearer {ApiClient(tenant).key}"}
    assert call("GET", "/v1/customers/cus_\x00", headers=key)[0] == 404
    once = {**key, "Idempotency-Key": "create-erika"}
    first = call("POST", "/v1/customers", body=customer_body, headers=once)
    second = call("POST", "/v1/customers", body=customer_body, headers=once)
    assert first[0] == second[0] == 201
    assert second[2] == first[2]
    assert value(second[1], "idempotent-replayed") == "true"


def test_the_admin_keeps_sessions_csrf_locale_and_frame_options():
    status, headers, content = call("GET", "/admin/login/", headers={"Accept-Language": "de"})
    assert status == 200
    assert any(cookie.startswith("csrftoken=") for cookie in cookies(headers))
    assert value(headers, "x-frame-options") == "DENY"
    assert value(headers, "content-language") == "de"
    assert b"csrfmiddlewaretoken" in content


def test_the_admin_refuses_a_post_without_csrf_token_and_logs_in_with_one(django_user_model):
    django_user_model.objects.create_superuser("root", "root@example.com", "a-long-password-1")
    _, headers, _ = call("GET", "/admin/login/")
    token = next(c for c in cookies(headers) if c.startswith("csrftoken=")).split(";")[0].split("=", 1)[1]
    form = "username=root&password=a-long-password-1"
    login = {"path": "/admin/login/?next=/admin/", "content_type": "application/x-www-form-urlencoded"}
    refused = call("POST", body=form.encode(), headers={"Cookie": f"csrftoken={token}"}, **login)
    assert refused[0] == 403
    form += f"&csrfmiddlewaretoken={token}"
    status, headers, _ = call("POST", body=form.encode(), headers={"Cookie": f"csrftoken={token}"}, **login)
    assert status == 302
    assert any(cookie.startswith("sessionid=") for cookie in cookies(headers))
