"""The back-office lists a tenant's documents with a download link; another tenant's stay hidden."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.test import Client

from tests.apps.documents.support import START, issued_invoice, scope_of
from turnus.apps.documents import services
from turnus.apps.documents.models import Document
from turnus.apps.tenants.models import StaffMembership
from turnus.core.clock import FrozenClock, use_clock

pytestmark = pytest.mark.django_db

LIST = "/admin/documents/document/"


@pytest.fixture
def documents(make_tenant):
    made = {}
    with use_clock(FrozenClock(START)):
        for name in ("mine", "theirs"):
            tenant = make_tenant(legal_name=f"Shop {name}")
            invoice = issued_invoice(scope_of(tenant))
            services.render_documents(invoice.public_id)
            made[name] = (tenant, Document.objects.get(invoice=invoice, format="pdf"))
    return made


@pytest.fixture
def staff(documents):
    user = get_user_model().objects.create_user("clerk", password="pw", is_staff=True)
    user.user_permissions.add(Permission.objects.get(codename="view_document"))
    StaffMembership.objects.create(user=user, tenant=documents["mine"][0])
    client = Client()
    client.force_login(user)
    return client


def test_staff_see_their_tenants_documents_with_a_download_link(staff, documents):
    mine = documents["mine"][1]
    response = staff.get(LIST)
    assert response.status_code == 200
    assert list(response.context["cl"].queryset) == list(Document.objects.filter(tenant=documents["mine"][0]))
    assert f"/admin/documents/document/{mine.pk}/download/" in response.content.decode()


def test_the_download_link_serves_the_stored_file(staff, documents):
    mine = documents["mine"][1]
    response = staff.get(f"{LIST}{mine.pk}/download/")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/pdf"
    assert response["Content-Disposition"] == f'attachment; filename="{mine.invoice.number}.pdf"'
    assert response.content == services.content(mine)


def test_another_tenants_document_cannot_be_downloaded(staff, documents):
    theirs = documents["theirs"][1]
    assert staff.get(f"{LIST}{theirs.pk}/download/").status_code == 404


def test_a_document_cannot_be_added_changed_or_deleted_in_the_back_office(admin_client, documents):
    mine = documents["mine"][1]
    assert admin_client.get(f"{LIST}add/").status_code == 403
    assert admin_client.post(f"{LIST}{mine.pk}/delete/").status_code == 403
    assert admin_client.get(f"{LIST}{mine.pk}/change/").status_code == 200
    assert Document.objects.filter(pk=mine.pk).exists()
