"""ZUGFeRD / Factur-X embedding: the CII XML travels in the PDF as factur-x.xml with Factur-X XMP metadata,
and the same inputs give the same bytes. Rendering makes the Factur-X PDF in one pass with the plain PDF
(``pdf.render_invoice_pdfs``, ``facturx.attach``); ``facturx.embed`` adds the XML to a PDF already written."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta

import facturx as facturx_lib
import pytest
import weasyprint
from lxml import etree
from pypdf import PdfReader, PdfWriter

from tests.apps.billing.support import MARCH, scope_of, subscribe
from tests.apps.documents import validation
from tests.apps.documents.support import text_of
from turnus.apps.billing import services
from turnus.apps.billing.models import Invoice
from turnus.apps.documents import cii, facturx
from turnus.apps.documents import pdf as documents_pdf
from turnus.core.clock import FrozenClock, use_clock


@pytest.fixture
def invoice(tenant):
    with use_clock(FrozenClock(MARCH + timedelta(hours=9))):
        scope = scope_of(tenant)
        billed = subscribe(scope)
        draft = services.create_draft(scope, billed.subscription).invoice
        finalized = services.finalize(scope, draft.public_id)
    return documents_pdf.load(finalized.public_id)


@pytest.fixture
def xml(invoice):
    return cii.invoice_xml(Invoice.objects.get(pk=invoice.pk))


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


# --- one pass: the Factur-X PDF written with the plain one -------------------------------------------------

XMP_NS = {
    "x": "adobe:ns:meta/",
    "rdf": "http://www.w3.org/1999/02/22-rdf-syntax-ns#",
    "fx": facturx.XMP_NAMESPACE,
    "pdfaExtension": "http://www.aiim.org/pdfa/ns/extension/",
    "pdfaSchema": "http://www.aiim.org/pdfa/ns/schema#",
    "pdfaProperty": "http://www.aiim.org/pdfa/ns/property#",
}


@pytest.fixture
def pdfs(invoice, xml):
    return documents_pdf.render_invoice_pdfs(invoice, xml)


def _xmp_root(document: bytes) -> etree._Element:
    packet = _xmp(document)
    meta = packet[packet.index("<x:xmpmeta") : packet.rindex("</x:xmpmeta>") + len("</x:xmpmeta>")]
    return etree.fromstring(meta.encode("utf-8"), etree.XMLParser(resolve_entities=False))


@pytest.mark.django_db
def test_one_layout_gives_the_plain_pdf_and_the_factur_x_pdf_carrying_the_xml(invoice, xml, pdfs):
    plain, hybrid = pdfs
    assert plain == documents_pdf.render_invoice_pdf(invoice), "the plain PDF is the one rendered alone"
    assert PdfReader(io.BytesIO(plain)).attachments == {}
    assert text_of(hybrid) == text_of(plain)
    filename, extracted = facturx_lib.get_facturx_xml_from_pdf(hybrid, check_xsd=True)
    assert (filename, extracted) == ("factur-x.xml", xml)
    assert facturx_lib.get_level(validation.parse(extracted)) == "en16931"


@pytest.mark.django_db
def test_the_factur_x_pdf_names_the_xml_as_its_data_in_the_catalogue(invoice, xml, pdfs):
    reader = PdfReader(io.BytesIO(pdfs[1]))
    assert reader.attachments == {"factur-x.xml": [xml]}
    root = reader.trailer["/Root"]
    (filespec,) = [reference.get_object() for reference in root["/AF"]]
    assert filespec["/Type"] == "/Filespec"
    assert filespec["/F"] == filespec["/UF"] == "factur-x.xml"
    assert filespec["/AFRelationship"] == "/Data"
    names = root["/Names"]["/EmbeddedFiles"]["/Names"]
    assert (names[0], names[1].get_object()) == ("factur-x.xml", filespec)
    embedded = filespec["/EF"]["/F"].get_object()
    assert (embedded["/Type"], embedded["/Subtype"]) == ("/EmbeddedFile", "/text/xml")
    assert embedded.get_data() == xml
    assert embedded["/Params"]["/Size"] == len(xml)
    assert invoice.finalized_at == datetime(2026, 3, 1, 8, 0, tzinfo=UTC)
    assert embedded["/Params"]["/ModDate"] == "D:20260301080000Z", "dated when the invoice was finalized"


@pytest.mark.django_db
def test_the_factur_x_pdf_keeps_pdf_a_3b_and_adds_the_factur_x_xmp_with_its_extension_schema(pdfs):
    plain, hybrid = pdfs
    reader = PdfReader(io.BytesIO(hybrid))
    assert (reader.xmp_metadata.pdfaid_part, reader.xmp_metadata.pdfaid_conformance) == ("3", "B")
    assert reader.metadata == PdfReader(io.BytesIO(plain)).metadata, "the same document information"
    assert reader.trailer["/Root"]["/OutputIntents"][0]["/S"] == "/GTS_PDFA1"
    root = _xmp_root(hybrid)
    assert len(root.findall("rdf:RDF", XMP_NS)) == 1, "one RDF element: PDF/A readers look at no other"
    values = {
        name: root.findtext(f"rdf:RDF/rdf:Description/fx:{name}", namespaces=XMP_NS)
        for name in ("DocumentType", "DocumentFileName", "Version", "ConformanceLevel")
    }
    assert values == {
        "DocumentType": "INVOICE",
        "DocumentFileName": "factur-x.xml",
        "Version": "1.0",
        "ConformanceLevel": "EN 16931",
    }
    schema = root.find("rdf:RDF/rdf:Description/pdfaExtension:schemas/rdf:Bag/rdf:li", XMP_NS)
    assert schema is not None
    assert schema.findtext("pdfaSchema:namespaceURI", namespaces=XMP_NS) == facturx.XMP_NAMESPACE
    assert schema.findtext("pdfaSchema:prefix", namespaces=XMP_NS) == "fx"
    declared = [
        item.findtext("pdfaProperty:name", namespaces=XMP_NS)
        for item in schema.findall("pdfaSchema:property/rdf:Seq/rdf:li", XMP_NS)
    ]
    assert sorted(declared) == sorted(values)
    assert "fx:" not in _xmp(plain)


@pytest.mark.django_db
def test_rendering_both_pdfs_is_deterministic(invoice, xml, pdfs):
    assert documents_pdf.render_invoice_pdfs(invoice, xml) == pdfs
    assert pdfs[0] != pdfs[1]


@pytest.mark.django_db
def test_only_an_en16931_invoice_is_attached(invoice, xml):
    basic = xml.replace(b"urn:cen.eu:en16931:2017<", b"urn:factur-x.eu:1p0:minimum<")
    assert basic != xml
    for wrong in (basic, b"<invoice/>", b"no xml"):
        with pytest.raises(facturx.FacturXError):
            documents_pdf.render_invoice_pdfs(invoice, wrong)


@pytest.mark.django_db
def test_attaching_to_a_pdf_without_xmp_metadata_is_refused(xml):
    page = weasyprint.HTML(string="<p>Rechnung</p>").render()
    with pytest.raises(facturx.FacturXError, match="no XMP metadata"):
        page.write_pdf(finisher=lambda _document, made: facturx.attach(made, xml))
