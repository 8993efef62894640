"""ZUGFeRD / Factur-X embedding: the CII XML travels in the PDF as factur-x.xml with Factur-X XMP metadata,
and the same inputs give the same bytes."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta

import facturx as facturx_lib
import pytest
from pypdf import PdfReader, PdfWriter

from tests.apps.billing.support import MARCH, scope_of, subscribe
from tests.apps.documents import validation
from turnus.apps.billing import services
from turnus.apps.billing.models import Invoice
from turnus.apps.documents import cii, facturx
from turnus.core.clock import FrozenClock, use_clock


@pytest.fixture
def xml(tenant):
    with use_clock(FrozenClock(MARCH + timedelta(hours=9))):
        scope = scope_of(tenant)
        billed = subscribe(scope)
        draft = services.create_draft(scope, billed.subscription).invoice
        invoice = Invoice.objects.get(pk=services.finalize(scope, draft.public_id).pk)
    return cii.invoice_xml(invoice)


@pytest.fixture
def pdf():
    writer = PdfWriter()
    writer.add_blank_page(width=595, height=842)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def _xmp(document: bytes) -> str:
    return PdfReader(io.BytesIO(document)).xmp_metadata.stream.get_data().decode("utf-8")


@pytest.mark.django_db
def test_the_xml_is_embedded_as_factur_x_xml(pdf, xml):
    document = facturx.embed(pdf, xml)
    reader = PdfReader(io.BytesIO(document))
    assert reader.attachments == {"factur-x.xml": [xml]}
    filespec = reader.trailer["/Root"]["/AF"][0].get_object()
    assert (filespec["/F"], filespec["/AFRelationship"]) == ("factur-x.xml", "/Data")
    assert len(reader.pages) == 1


@pytest.mark.django_db
def test_the_factur_x_package_reads_back_a_valid_en16931_invoice(pdf, xml):
    document = facturx.embed(pdf, xml)
    filename, extracted = facturx_lib.get_facturx_xml_from_pdf(document, check_xsd=True)
    assert (filename, extracted) == ("factur-x.xml", xml)
    assert facturx_lib.get_level(validation.parse(extracted)) == "en16931"


@pytest.mark.django_db
def test_the_xmp_metadata_declares_pdf_a_3_and_the_factur_x_profile(pdf, xml):
    xmp = _xmp(facturx.embed(pdf, xml, lang="de-DE"))
    for expected in (
        "<pdfaid:part>3</pdfaid:part>",
        "<pdfaid:conformance>B</pdfaid:conformance>",
        "<fx:DocumentType>INVOICE</fx:DocumentType>",
        "<fx:DocumentFileName>factur-x.xml</fx:DocumentFileName>",
        "<fx:ConformanceLevel>EN 16931</fx:ConformanceLevel>",
        "urn:factur-x:pdfa:CrossIndustryDocument:invoice:1p0#",
        "2026-03-01T00:00:00+00:00",
    ):
        assert expected in xmp, expected


@pytest.mark.django_db
def test_embedding_is_deterministic_and_stamps_the_given_time(pdf, xml):
    first = facturx.embed(pdf, xml)
    assert facturx.embed(pdf, xml) == first
    later = facturx.embed(pdf, xml, timestamp=datetime(2026, 3, 2, 8, 30, tzinfo=UTC))
    assert later != first
    assert "2026-03-02T08:30:00+00:00" in _xmp(later)
    info = PdfReader(io.BytesIO(later)).metadata
    assert info["/CreationDate"] == "D:20260302083000+00'00'"


@pytest.mark.django_db
def test_embedding_does_not_leave_the_package_clock_fixed(pdf, xml):
    facturx.embed(pdf, xml)
    assert facturx_lib.facturx.datetime is datetime


def test_an_xml_that_is_no_factur_x_invoice_is_refused(pdf):
    with pytest.raises(facturx.FacturXError):
        facturx.embed(pdf, b"<invoice/>", timestamp=datetime(2026, 3, 1, tzinfo=UTC))
