"""ZUGFeRD / Factur-X: a PDF/A-3 with the invoice's CII XML embedded as ``factur-x.xml``.

``embed(pdf_bytes, xml_bytes)`` uses the ``factur-x`` package: it checks the XML against the Factur-X
XSD, attaches it (AFRelationship ``Data``, listed in the catalogue's ``/AF``) and writes the XMP
metadata PDF/A-3 and Factur-X require (``pdfaid:part`` 3, conformance B, the ``fx:`` extension schema
with document type INVOICE, file name ``factur-x.xml``, version 1.0 and the profile, here EN 16931).
The PDF given must already be PDF/A-3 material (embedded fonts, an output intent), as WeasyPrint's
``pdf/a-3b`` variant writes it; the package does not convert.

Deterministic output. The package stamps the current time into the PDF's info dictionary, the XMP
metadata and the attachment's ``/ModDate``; ``embed`` fixes that time to ``timestamp`` (default: the
invoice's issue date, BT-2, at midnight UTC), so the same PDF and XML always give the same bytes.
The PDF's file identifier (``/ID``) is carried over from the input PDF.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, tzinfo
from typing import Any

import facturx as facturx_lib
from facturx import facturx as facturx_module
from lxml import etree

FILENAME = "factur-x.xml"
LEVEL = "en16931"

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
    found = etree.fromstring(xml_bytes).xpath(_ISSUE_DATE, namespaces=_NAMESPACES)
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
