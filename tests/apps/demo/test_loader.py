from datetime import UTC, datetime
from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.test import Client

from tests.apps.documents import validation
from turnus.apps.billing.models import Invoice
from turnus.apps.billing.sweep import run_sweep
from turnus.apps.customers.models import Customer
from turnus.apps.demo.loader import LEITWEG_ID, load_demo
from turnus.apps.documents import cii, services
from turnus.apps.documents.models import Document, DocumentFormat
from turnus.apps.subscriptions.models import Subscription
from turnus.apps.tenants.models import TenantLogo
from turnus.core.clock import FrozenClock, use_clock

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
    assert len(body["data"]) == 4
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


AGREEMENT = "/rsm:CrossIndustryInvoice/rsm:SupplyChainTradeTransaction/ram:ApplicableHeaderTradeAgreement"
SELLER_CONTACT = f"{AGREEMENT}/ram:SellerTradeParty/ram:DefinedTradeContact"


def test_the_demo_public_buyer_gets_its_invoices_as_xrechnung_from_a_seller_with_a_logo(var_dir):
    with use_clock(FrozenClock(datetime(2026, 3, 2, 9, tzinfo=UTC))):
        access = load_demo()
        summary = run_sweep(datetime(2026, 3, 2, 9, tzinfo=UTC), tenant=access.tenant)
        assert summary.errors == []
        invoices = list(Invoice.objects.filter(tenant=access.tenant, number__isnull=False))
        for invoice in invoices:
            services.render_documents(invoice.public_id)
    town = Customer.objects.get(tenant=access.tenant, external_id="shop-1004")
    (invoice,) = [invoice for invoice in invoices if invoice.customer_id == town.pk]
    formats = set(Document.objects.filter(invoice=invoice).values_list("format", flat=True))
    assert DocumentFormat.XRECHNUNG_XML in formats
    assert DocumentFormat.FACTURX_PDF in formats
    xml = services.content(Document.objects.get(invoice=invoice, format=DocumentFormat.XRECHNUNG_XML))
    cii.check_xsd(xml)
    assert validation.xrechnung_violations(xml) == []
    root = validation.parse(xml)
    assert validation.text(root, f"{AGREEMENT}/ram:BuyerReference") == LEITWEG_ID
    assert validation.text(root, f"{SELLER_CONTACT}/ram:PersonName") == "Petra Schneider"
    assert validation.text(root, f"{SELLER_CONTACT}/ram:TelephoneUniversalCommunication/ram:CompleteNumber")
    others = Document.objects.filter(invoice__in=invoices, format=DocumentFormat.XRECHNUNG_XML)
    assert list(others.values_list("invoice__customer", flat=True)) == [town.pk], "only the buyer who asked"
    rendered = Document.objects.filter(invoice__in=invoices, format=DocumentFormat.FACTURX_PDF)
    assert rendered.count() == len(invoices) == 3, "every customer but the one on trial, each rendered"
    assert TenantLogo.objects.get(tenant=access.tenant).content_type == "image/svg+xml"
