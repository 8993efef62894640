"""ZUGFeRD / Factur-X: a PDF/A-3 with the invoice's CII XML embedded as ``factur-x.xml``.

Two ways to get one:

* ``attach(pdf, xml_bytes)``, the one rendering uses: it extends the PDF WeasyPrint is about to write
  (its ``pydyf.PDF``, built with the ``pdf/a-3b`` variant, handed over by a ``write_pdf`` finisher), so
  the page is laid out and painted once for the plain PDF and the Factur-X PDF (``pdf.render_invoice_pdfs``).
  It adds the XML as an embedded file (MIME type ``text/xml``, AFRelationship ``Data``, listed in the
  catalogue's ``/AF`` and its ``EmbeddedFiles`` names) and the Factur-X XMP metadata to WeasyPrint's own
  (which already declares ``pdfaid:part`` 3, conformance B, and matches the document information): the
  ``fx:`` PDF/A extension schema and its values, document type INVOICE, file name ``factur-x.xml``,
  version 1.0, conformance level EN 16931. The XML must be the EN 16931 profile (checked) and valid
  (``cii.invoice_xml`` checks every XML it makes against the XSD).
* ``embed(pdf_bytes, xml_bytes)`` for a PDF already written (a stored PDF whose Factur-X PDF is missing):
  the ``factur-x`` package re-reads the PDF, checks the XML against the Factur-X XSD, attaches it
  (AFRelationship ``Data``, listed in ``/AF``) and rewrites the XMP metadata PDF/A-3 and Factur-X require.
  The PDF given must already be PDF/A-3 material (embedded fonts, an output intent), as WeasyPrint's
  ``pdf/a-3b`` variant writes it; the package does not convert.

Deterministic output. ``attach`` dates the embedded file with the ``moment`` given (rendering passes the
invoice's ``finalized_at``, the PDF's own date; default: the issue date, BT-2, at midnight UTC). The
package behind ``embed`` stamps the current time into the PDF's info dictionary, the XMP metadata and the
attachment's ``/ModDate``; ``embed`` fixes that time to ``timestamp`` (default: the issue date, BT-2, at
midnight UTC), so the same PDF and XML always give the same bytes. The PDF's file identifier (``/ID``) is
carried over from the input PDF.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, tzinfo
from typing import Any

import facturx as facturx_lib
import pydyf  # type: ignore[import-untyped]
from facturx import facturx as facturx_module
from lxml import etree

FILENAME = "factur-x.xml"
LEVEL = "en16931"
#: The Factur-X 1.0 XMP namespace of an invoice (prefix ``fx``).
XMP_NAMESPACE = "urn:factur-x:pdfa:CrossIndustryDocument:invoice:1p0#"

_ISSUE_DATE = "/rsm:CrossIndustryInvoice/rsm:ExchangedDocument/ram:IssueDateTime/udt:DateTimeString/text()"
_NAMESPACES = {
    "rsm": "urn:un:unece:uncefact:data:standard:CrossIndustryInvoice:100",
    "ram": "urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:100",
    "udt": "urn:un:unece:uncefact:data:standard:UnqualifiedDataType:100",
}
_clock_lock = threading.Lock()


class FacturXError(RuntimeError):
    """The PDF or the XML could not be made into a Factur-X document (see the message)."""


def _issue_moment(xml_bytes: bytes) -> datetime:
    return _issue_date(etree.fromstring(xml_bytes))


def _issue_date(root: Any) -> datetime:
    found = root.xpath(_ISSUE_DATE, namespaces=_NAMESPACES)
    if not found:
        raise FacturXError("the XML has no issue date (BT-2); pass timestamp= explicitly")
    return datetime.strptime(str(found[0]).strip(), "%Y%m%d").replace(tzinfo=UTC)


@contextmanager
def _package_clock(moment: datetime) -> Iterator[None]:
    """Make the factur-x package see ``moment`` as the current time (it reads ``datetime.now``)."""

    class _Fixed(datetime):
        @classmethod
        def now(cls, tz: tzinfo | None = None) -> Any:
            return moment if tz is None else moment.astimezone(tz)

    with _clock_lock:
        original = facturx_module.datetime
        facturx_module.datetime = _Fixed
        try:
            yield
        finally:
            facturx_module.datetime = original


def embed(
    pdf_bytes: bytes,
    xml_bytes: bytes,
    *,
    timestamp: datetime | None = None,
    lang: str | None = None,
    metadata: dict[str, str] | None = None,
) -> bytes:
    """The PDF/A-3 ``pdf_bytes`` with ``xml_bytes`` (CII, Factur-X EN 16931 profile) embedded as
    ``factur-x.xml`` and the Factur-X XMP metadata. ``timestamp`` (aware) is the time written into the
    metadata, ``lang`` the document language (e.g. "de-DE"), ``metadata`` the PDF's title, author,
    subject and keywords (default: derived from the XML by the factur-x package)."""
    moment = timestamp if timestamp is not None else _issue_moment(xml_bytes)
    if moment.utcoffset() is None:
        raise FacturXError("timestamp must be timezone-aware")
    try:
        with _package_clock(moment.astimezone(UTC)):
            result = facturx_lib.generate_from_binary(
                pdf_bytes,
                xml_bytes,
                flavor="factur-x",
                level=LEVEL,
                check_xsd=True,
                pdf_metadata=dict(metadata) if metadata is not None else None,
                lang=lang,
            )
    except Exception as error:  # the package raises bare Exceptions for bad input
        raise FacturXError(f"could not make the Factur-X PDF: {error}") from error
    return bytes(result)


# --- one pass: extending the PDF WeasyPrint is writing ------------------------------------------------

_RDF = "http://www.w3.org/1999/02/22-rdf-syntax-ns#"


def _property(name: str, description: str) -> str:
    return (
        '<rdf:li rdf:parseType="Resource">'
        f"<pdfaProperty:name>{name}</pdfaProperty:name>"
        "<pdfaProperty:valueType>Text</pdfaProperty:valueType>"
        "<pdfaProperty:category>external</pdfaProperty:category>"
        f"<pdfaProperty:description>{description}</pdfaProperty:description>"
        "</rdf:li>"
    )


#: What ``attach`` adds to the XMP packet's ``rdf:RDF``: the PDF/A extension schema declaring the ``fx``
#: properties (PDF/A admits no undeclared XMP property), then their values.
XMP_DESCRIPTIONS = (
    f'<rdf:Description xmlns:rdf="{_RDF}" rdf:about=""'
    ' xmlns:pdfaExtension="http://www.aiim.org/pdfa/ns/extension/"'
    ' xmlns:pdfaSchema="http://www.aiim.org/pdfa/ns/schema#"'
    ' xmlns:pdfaProperty="http://www.aiim.org/pdfa/ns/property#">'
    '<pdfaExtension:schemas><rdf:Bag><rdf:li rdf:parseType="Resource">'
    "<pdfaSchema:schema>Factur-X PDFA Extension Schema</pdfaSchema:schema>"
    f"<pdfaSchema:namespaceURI>{XMP_NAMESPACE}</pdfaSchema:namespaceURI>"
    "<pdfaSchema:prefix>fx</pdfaSchema:prefix>"
    "<pdfaSchema:property><rdf:Seq>"
    + _property("DocumentFileName", "Name of the embedded XML invoice file")
    + _property("DocumentType", "Type of the hybrid document, in capital letters: INVOICE")
    + _property("Version", "Version of the Factur-X standard the embedded XML follows")
    + _property("ConformanceLevel", "Factur-X profile of the embedded XML")
    + "</rdf:Seq></pdfaSchema:property>"
    "</rdf:li></rdf:Bag></pdfaExtension:schemas>"
    "</rdf:Description>"
    f'<rdf:Description xmlns:rdf="{_RDF}" rdf:about="" xmlns:fx="{XMP_NAMESPACE}">'
    "<fx:DocumentType>INVOICE</fx:DocumentType>"
    f"<fx:DocumentFileName>{FILENAME}</fx:DocumentFileName>"
    "<fx:Version>1.0</fx:Version>"
    "<fx:ConformanceLevel>EN 16931</fx:ConformanceLevel>"
    "</rdf:Description>"
).encode("utf-8")
_RDF_END = b"</rdf:RDF>"


def attach(pdf: Any, xml_bytes: bytes, *, moment: datetime | None = None) -> None:
    """Make ``pdf`` (the ``pydyf.PDF`` WeasyPrint builds with its ``pdf/a-3b`` variant, before it is
    written: ``write_pdf``'s finisher gets it) a Factur-X EN 16931 invoice: ``xml_bytes`` embedded as
    ``factur-x.xml`` and the Factur-X XMP metadata added. ``moment`` (aware) dates the embedded file;
    default: the XML's issue date at midnight UTC. Raises ``FacturXError`` for an XML that is no
    EN 16931 CII invoice or a PDF without WeasyPrint's PDF/A metadata."""
    try:
        root = etree.fromstring(xml_bytes)
        level = facturx_lib.get_level(root, flavor="factur-x")
    except Exception as error:  # lxml's syntax errors; the package raises bare Exceptions
        raise FacturXError(f"the XML is no Factur-X invoice: {error}") from error
    if level != LEVEL:
        raise FacturXError(f"the XML is of the Factur-X profile {level!r}, not {LEVEL!r}")
    moment = moment if moment is not None else _issue_date(root)
    if moment.utcoffset() is None:
        raise FacturXError("moment must be timezone-aware")
    catalog = pdf.catalog
    if "EmbeddedFiles" in catalog.get("Names", {}):
        raise FacturXError("the PDF already has embedded files")
    _add_xmp(pdf)
    stamp = pydyf.String(moment.astimezone(UTC).strftime("D:%Y%m%d%H%M%SZ"))
    embedded = pydyf.Stream(
        [xml_bytes],
        pydyf.Dictionary(
            {
                "Type": "/EmbeddedFile",
                "Subtype": "/text#2Fxml",
                "Params": pydyf.Dictionary(
                    {
                        "Size": len(xml_bytes),
                        "CheckSum": f"<{hashlib.md5(xml_bytes, usedforsecurity=False).hexdigest()}>",
                        "CreationDate": stamp,
                        "ModDate": stamp,
                    }
                ),
            }
        ),
        compress=True,
    )
    pdf.add_object(embedded)
    name = pydyf.String(FILENAME)
    filespec = pydyf.Dictionary(
        {
            "Type": "/Filespec",
            "F": name,
            "UF": name,
            "EF": pydyf.Dictionary({"F": embedded.reference, "UF": embedded.reference}),
            "Desc": pydyf.String("Factur-X invoice"),
            "AFRelationship": "/Data",
        }
    )
    pdf.add_object(filespec)
    names = pydyf.Dictionary({"Names": pydyf.Array([name, filespec.reference])})
    pdf.add_object(names)
    catalog.setdefault("Names", pydyf.Dictionary())["EmbeddedFiles"] = names.reference
    catalog["AF"] = pydyf.Array([*catalog.get("AF", ()), filespec.reference])
    catalog["PageMode"] = "/UseAttachments"  # readers open the attachment panel


def _add_xmp(pdf: Any) -> None:
    """Add the Factur-X descriptions to the XMP packet WeasyPrint wrote for PDF/A (uncompressed yet)."""
    reference = pdf.catalog.get("Metadata")
    metadata: Any = pdf.objects[int(reference.split()[0])] if reference else None
    packet = _packet(metadata)
    if packet is None or _RDF_END not in packet:
        raise FacturXError("the PDF has no XMP metadata to extend (write it with the pdf/a-3b variant)")
    end = packet.rindex(_RDF_END)
    metadata.stream = [packet[:end] + XMP_DESCRIPTIONS + packet[end:]]


def _packet(metadata: Any) -> bytes | None:
    parts = getattr(metadata, "stream", None)
    if not isinstance(parts, list) or len(parts) != 1 or "Filter" in metadata.extra:
        return None
    return parts[0] if isinstance(parts[0], bytes) else None
