from datetime import UTC, datetime
from unittest import mock

import pytest
from django.db import DatabaseError

from turnus.core.clock import FrozenClock, use_clock


@pytest.mark.django_db
def test_healthz_reports_ok_with_the_database_and_the_clocks_time(client):
    with use_clock(FrozenClock(datetime(2026, 11, 28, 9, 30, tzinfo=UTC))):
        response = client.get("/healthz")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert body["database"] == "ok"
    assert body["time"] == "2026-11-28T09:30:00Z"
    assert response["Cache-Control"].startswith("max-age=0")


@pytest.mark.django_db
def test_healthz_answers_503_when_the_database_fails(client):
    with mock.patch("django.db.backends.utils.CursorWrapper.execute", side_effect=DatabaseError("down")):
        response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json()["database"] == "unavailable"


def test_healthz_refuses_writes(client):
    assert client.post("/healthz").status_code == 405
