"""The tenant's logo heads its invoices' PDFs, rendered from the logo it has at rendering time; the same
invoice still gives the same bytes, and a stored document keeps the logo it was rendered with."""

from __future__ import annotations

import io

import pytest
from pypdf import PdfReader

from tests.apps.documents.support import DOMESTIC_BUSINESS, issued_invoice, text_of
from tests.apps.tenants import images
from tests.support import TEST_ACTOR
from turnus.apps.documents import pdf, services, storage
from turnus.apps.documents.models import Document, DocumentFormat
from turnus.apps.tenants import logos

pytestmark = pytest.mark.django_db


def _render(invoice) -> bytes:
    return pdf.render_invoice_pdf(pdf.load(invoice.public_id))


def _images_on_first_page(data: bytes) -> list[tuple[int, int, str]]:
    """(width, height, filter) of every image XObject page 1 draws, also inside form XObjects."""
    found = []

    def walk(resources, depth: int) -> None:
        xobjects = resources.get("/XObject") if resources else None
        for reference in (xobjects or {}).values():
            xobject = reference.get_object()
            if xobject.get("/Subtype") == "/Image":
                found.append((int(xobject["/Width"]), int(xobject["/Height"]), str(xobject.get("/Filter"))))
            elif depth < 4:
                walk(xobject.get("/Resources"), depth + 1)

    walk(PdfReader(io.BytesIO(data)).pages[0].get("/Resources"), 0)
    return found


def _stored_pdf(invoice) -> bytes:
    return services.content(Document.objects.get(invoice=invoice, format=DocumentFormat.PDF))


def test_without_a_logo_the_page_draws_no_image(scope, clock):
    assert _images_on_first_page(_render(issued_invoice(scope))) == []


def test_a_png_logo_is_drawn_on_the_first_page_with_the_tenants_name(scope, tenant, clock):
    logos.set_logo(tenant, images.png(120, 40), actor=TEST_ACTOR)
    data = _render(issued_invoice(scope, customer=DOMESTIC_BUSINESS))
    assert [(width, height) for width, height, _ in _images_on_first_page(data)] == [(120, 40)]
    assert tenant.legal_name in text_of(data)


def test_a_jpeg_logo_is_embedded_as_a_jpeg(scope, tenant, clock):
    logos.set_logo(tenant, images.jpeg(90, 30), actor=TEST_ACTOR)
    assert _images_on_first_page(_render(issued_invoice(scope))) == [(90, 30, "/DCTDecode")]


def test_an_svg_logo_is_drawn_as_vectors(scope, tenant, clock):
    plain = _render(issued_invoice(scope, code="before"))
    logos.set_logo(
        tenant, images.svg('<rect width="120" height="40" fill="#1a6"/><text x="8" y="26">ACME-LOGO</text>'),
        actor=TEST_ACTOR,
    )  # fmt: skip
    with_logo = _render(issued_invoice(scope))
    assert "ACME-LOGO" in text_of(with_logo)
    assert "ACME-LOGO" not in text_of(plain)


@pytest.mark.parametrize("image", [images.png(), images.jpeg(), images.svg()], ids=["png", "jpeg", "svg"])
def test_the_same_invoice_with_a_logo_renders_to_the_same_bytes(scope, tenant, clock, image):
    logos.set_logo(tenant, image, actor=TEST_ACTOR)
    invoice = issued_invoice(scope)
    assert _render(invoice) == _render(invoice)


def test_a_fresh_render_with_the_logo_gives_byte_identical_documents(scope, tenant, clock):
    logos.set_logo(tenant, images.png(), actor=TEST_ACTOR)
    invoice = issued_invoice(scope, customer=DOMESTIC_BUSINESS)
    services.render_documents(invoice.public_id)
    first = {d.format: services.content(d) for d in Document.objects.filter(invoice=invoice)}
    for document in Document.objects.all():
        storage.delete(document.file.name)
        document.delete()
    services.render_documents(invoice.public_id)
    assert {d.format: services.content(d) for d in Document.objects.filter(invoice=invoice)} == first
    assert len(_images_on_first_page(first[DocumentFormat.FACTURX_PDF])) == 1


def test_a_rendered_invoice_keeps_its_logo_when_the_tenant_changes_or_removes_it(scope, tenant, clock):
    logos.set_logo(tenant, images.png(120, 40), actor=TEST_ACTOR)
    first = issued_invoice(scope)
    services.render_documents(first.public_id)
    stored = _stored_pdf(first)
    logos.set_logo(tenant, images.png(60, 20), actor=TEST_ACTOR)
    second = issued_invoice(scope, code="second")
    services.render_documents(second.public_id)
    services.render_documents(first.public_id)
    assert _stored_pdf(first) == stored
    assert [size[:2] for size in _images_on_first_page(_stored_pdf(first))] == [(120, 40)]
    assert [size[:2] for size in _images_on_first_page(_stored_pdf(second))] == [(60, 20)]
    logos.remove_logo(tenant, actor=TEST_ACTOR)
    third = issued_invoice(scope, code="third")
    services.render_documents(third.public_id)
    assert _images_on_first_page(_stored_pdf(third)) == []
    assert _stored_pdf(first) == stored
