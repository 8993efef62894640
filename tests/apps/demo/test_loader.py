from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.test import Client

from turnus.apps.demo.loader import load_demo
from turnus.apps.subscriptions.models import Subscription

pytestmark = pytest.mark.django_db


@pytest.fixture
def var_dir(settings, tmp_path):
    settings.VAR_DIR = tmp_path
    return tmp_path


def test_the_demo_merchant_is_loaded_once_with_a_working_test_key(var_dir):
    first = load_demo()
    again = load_demo()
    assert first.created
    assert not again.created
    assert first.secret_key == again.secret_key
    assert first.secret_key.startswith("sk_test_")
    client = Client()
    response = client.get("/v1/subscriptions", headers={"Authorization": f"Bearer {first.secret_key}"})
    body = response.json()
    assert response.status_code == 200
    assert len(body["data"]) == 3
    assert sum(1 for s in body["data"] if s["cancel_at"]) == 1
    assert Subscription.objects.filter(livemode=True).count() == 0


def test_the_demo_back_office_login_works_and_an_existing_admin_keeps_its_password(var_dir):
    access = load_demo()
    assert Client().login(username="admin", password=access.admin_password)
    (var_dir / "demo-access.txt").unlink()
    again = load_demo()
    assert again.admin_user is None
    assert Client().login(username="admin", password=access.admin_password)


def test_an_admin_created_by_the_merchant_is_left_alone(var_dir):
    get_user_model().objects.create_superuser("admin", "a@example.com", "merchant-secret")
    access = load_demo()
    assert access.admin_user is None
    assert Client().login(username="admin", password="merchant-secret")


def test_the_command_prints_the_key_and_the_login(var_dir):
    out = StringIO()
    call_command("demo", "load", stdout=out)
    text = out.getvalue()
    assert "sk_test_" in text
    assert "admin /" in text
