"""A customer's e-invoice settings: XRechnung needs a buyer reference (a Leitweg-ID is checked with its
check digits) and an electronic address; bad settings are a 422 naming the field, and nothing is written."""

from __future__ import annotations

import pytest

from tests.apps.customers.support import customer_data
from tests.support import ApiClient
from turnus.apps.customers.models import Customer
from turnus.apps.tenants.models import Tenant
from turnus.core.models import AuditEvent

pytestmark = pytest.mark.django_db

LEITWEG_ID = "04011000-1234512345-06"
XRECHNUNG = {"einvoice_format": "xrechnung", "buyer_reference": LEITWEG_ID}


@pytest.fixture
def seller(make_tenant):
    """A tenant that can issue XRechnung: it has a telephone number and an e-mail address."""
    return ApiClient(make_tenant(phone="+49 30 1234567", email="rechnung@beispiel.example"))


def _field_of(response) -> str:
    assert response.status_code == 422, response.content
    assert response["Content-Type"] == "application/problem+json"
    return str(response.json()["errors"][0]["field"])


def test_a_customer_without_e_invoice_settings_gets_factur_x_only(api):
    body = api.post("/v1/customers", customer_data()).json()
    assert (body["einvoice_format"], body["buyer_reference"], body["electronic_address"]) == ("", None, None)


def test_an_xrechnung_customer_is_created_with_its_leitweg_id_and_electronic_address(seller):
    response = seller.post(
        "/v1/customers", customer_data(**XRECHNUNG, electronic_address="0204:991-33333test-33")
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["einvoice_format"] == "xrechnung"
    assert body["buyer_reference"] == LEITWEG_ID
    assert body["electronic_address"] == "0204:991-33333TEST-33"
    assert seller.get(f"/v1/customers/{body['id']}").json() == body
    created = AuditEvent.objects.get(action="customer.created", object_id=body["id"])
    assert created.after["buyer_reference"] == LEITWEG_ID


def test_the_buyers_own_reference_and_a_plain_e_mail_address_are_accepted(seller):
    body = seller.post(
        "/v1/customers",
        customer_data(
            einvoice_format="xrechnung", buyer_reference="PO-4711", electronic_address="ap@kunde.de"
        ),
    ).json()
    assert (body["buyer_reference"], body["electronic_address"]) == ("PO-4711", "ap@kunde.de")


@pytest.mark.parametrize(
    ("settings", "field"),
    [
        ({"buyer_reference": "04011000-1234512345-07"}, "buyer_reference"),  # wrong check digits
        ({"buyer_reference": "991-33333TEST"}, "buyer_reference"),  # no check digits
        ({"buyer_reference": "17-33333-12"}, "buyer_reference"),  # no federal state 17
        ({"buyer_reference": "991-" + "A" * 31 + "-00"}, "buyer_reference"),  # fine address too long
        ({"electronic_address": "0204:991-33333TEST-34"}, "electronic_address"),  # Leitweg-ID as address
        ({"electronic_address": "1234:whatever"}, "electronic_address"),  # not an EAS scheme
        ({"electronic_address": "no address"}, "electronic_address"),
        ({"electronic_address": "EM:not-an-email"}, "electronic_address"),
        ({"einvoice_format": "xrechnung", "buyer_reference": ""}, "buyer_reference"),
        ({"einvoice_format": "xrechnung"}, "buyer_reference"),
        ({"einvoice_format": "ubl"}, "einvoice_format"),
    ],
)
def test_bad_e_invoice_settings_are_refused_naming_the_field(seller, settings, field):
    response = seller.post("/v1/customers", customer_data(**settings))
    assert _field_of(response) == field
    assert not Customer.objects.exists()


def test_a_wrong_leitweg_id_says_what_is_wrong(seller):
    response = seller.post("/v1/customers", customer_data(buyer_reference="991-33333TEST-34"))
    assert _field_of(response) == "buyer_reference"
    assert "check digits" in response.json()["detail"]


def test_xrechnung_is_refused_while_the_tenant_lacks_a_telephone_number(api):
    response = api.post("/v1/customers", customer_data(**XRECHNUNG))
    assert _field_of(response) == "einvoice_format"
    assert "phone" in response.json()["detail"]
    assert not Customer.objects.exists()


def test_an_update_switches_a_customer_to_xrechnung_and_checks_its_settings(seller):
    created = seller.post("/v1/customers", customer_data()).json()
    path = f"/v1/customers/{created['id']}"
    assert _field_of(seller.post(path, {"einvoice_format": "xrechnung"})) == "buyer_reference"
    assert _field_of(seller.post(path, {"buyer_reference": "991-33333TEST-00"})) == "buyer_reference"
    assert Customer.objects.get(public_id=created["id"]).buyer_reference == ""
    response = seller.post(path, XRECHNUNG)
    assert response.status_code == 200, response.content
    assert (response.json()["einvoice_format"], response.json()["buyer_reference"]) == (
        "xrechnung",
        LEITWEG_ID,
    )
    assert _field_of(seller.post(path, {"buyer_reference": None})) == "buyer_reference"
    back = seller.post(path, {"einvoice_format": ""})
    assert back.status_code == 200
    assert (back.json()["einvoice_format"], back.json()["buyer_reference"]) == ("", LEITWEG_ID)


def test_an_xrechnung_customer_stays_editable_after_the_tenant_removes_its_telephone(seller):
    created = seller.post("/v1/customers", customer_data(**XRECHNUNG)).json()
    Tenant.objects.filter(pk=seller.tenant.pk).update(phone="")
    response = seller.post(f"/v1/customers/{created['id']}", {"name": "Erika Musterfrau"})
    assert response.status_code == 200, response.content
