"""An issued invoice or credit note as a PDF/A-3b document, in the customer's language (German or English).

The page carries every field §14 (4) UStG and Art. 226 of the VAT Directive require (see DOMAIN.md). The
output is deterministic: the page shows only what an issued invoice keeps (never its later status), the
PDF's dates come from its ``finalized_at``, WeasyPrint derives the file identifier from the content, so
the same invoice always gives the same bytes (with the same WeasyPrint, fonts and templates). The bank
details are the tenant's at rendering time unless the invoice's supplier copy carries ``iban``/``bic``.

Each worker thread keeps one font configuration and the parsed stylesheets, so a render only parses the
page's HTML, lays it out and writes it; a short user-agent stylesheet replaces WeasyPrint's HTML5 one.
The plain PDF and the Factur-X PDF (``render_invoice_pdfs``) come from one layout and one painting: the
PDF is written, then extended with the XML and written again.
"""

from __future__ import annotations

import copy
import gc
import io
import logging
import threading
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

from babel import Locale
from babel.dates import format_date
from babel.numbers import format_currency, format_decimal, format_percent
from django.template.loader import render_to_string
from django.utils import translation
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, pgettext
from lxml import etree

from turnus.apps.billing.models import VAT_NOTES, Invoice
from turnus.apps.documents import facturx
from turnus.apps.tenants import logos
from turnus.engine.periods import local_date

TEMPLATE = "documents/invoice.html"
STYLESHEET = Path(__file__).parent / "templates" / "documents" / "invoice.css"
USER_AGENT_STYLESHEET = STYLESHEET.with_name("user_agent.css")
PDF_VARIANT = "pdf/a-3b"

#: Babel locale per language an invoice can be written in; anything else is written in English.
BABEL_LOCALES = {"de": "de_DE", "en": "en_GB"}
EXEMPT_CATEGORIES = {"E", "AE", "K", "G", "O", "Z"}
#: Short names of the engine's VAT note keys for the VAT rows; the notes print the full text.
EXEMPTIONS = {
    "reverse_charge": gettext_lazy("reverse charge"),
    "intra_community_supply": gettext_lazy("intra-community supply"),
    "small_business_exemption": gettext_lazy("small business (§19 UStG)"),
    "not_taxable_in_eu": gettext_lazy("not taxable in the EU"),
    "export_outside_eu": gettext_lazy("export outside the EU"),
    "tax_exempt": gettext_lazy("exempt from VAT"),
}


# --- payment instructions ---------------------------------------------------------------------------


@dataclass(frozen=True)
class PaymentInstructions:
    """What the customer reads under "Payment": a heading and its lines (already translated)."""

    heading: str
    lines: tuple[str, ...]


#: ``method(invoice, amount_text, due_text) -> PaymentInstructions | None``: apps above documents (payments:
#: SEPA mandate reference and pre-notification, a payment provider) register one with
#: ``register_payment_method``; the first that answers wins, bank transfer is the fallback.
PaymentMethod = Callable[[Invoice, str, str], PaymentInstructions | None]
_payment_methods: list[PaymentMethod] = []


def register_payment_method(method: PaymentMethod) -> None:
    if method not in _payment_methods:
        _payment_methods.append(method)


def _bank_transfer(invoice: Invoice, amount: str, due: str, tenant: Any) -> PaymentInstructions:
    supplier = invoice.supplier
    iban = supplier.get("iban") or tenant.iban
    bic = supplier.get("bic") or tenant.bic
    if not iban:
        return PaymentInstructions(
            _("Payment"), (_("Please pay %(amount)s by %(date)s.") % _values(amount, due),)
        )
    lines = [
        _("Please transfer %(amount)s by %(date)s, quoting the invoice number %(number)s, to:")
        % {**_values(amount, due), "number": invoice.number},
        _("Account holder: %(name)s") % {"name": supplier.get("name", "")},
        _("IBAN: %(iban)s") % {"iban": _grouped(iban)},
    ]
    if bic:
        lines.append(_("BIC: %(bic)s") % {"bic": bic})
    return PaymentInstructions(_("Payment by bank transfer"), tuple(lines))


def _values(amount: str, due: str) -> dict[str, str]:
    return {"amount": amount, "date": due}


def _grouped(iban: str) -> str:
    compact = iban.replace(" ", "")
    return " ".join(compact[index : index + 4] for index in range(0, len(compact), 4))


def _payment(invoice: Invoice, fmt: Formats, tenant: Any) -> PaymentInstructions:
    due = Decimal(invoice.amount_due)
    if due < 0:
        text = _("The amount of %(amount)s will be refunded to you or set off against open invoices.")
        return PaymentInstructions(_("Payment"), (text % {"amount": fmt.money(-due)},))
    if due == 0:
        return PaymentInstructions(_("Payment"), (_("Nothing is due: this invoice is paid."),))
    amount = fmt.money(due)
    due_text = fmt.date(invoice.due_date) if invoice.due_date else ""
    for method in _payment_methods:
        found = method(invoice, amount, due_text)
        if found is not None:
            return found
    return _bank_transfer(invoice, amount, due_text, tenant)


# --- formatting in the customer's language ----------------------------------------------------------


class Formats:
    """Numbers, amounts, rates, dates and countries as the customer's language writes them."""

    def __init__(self, language: str, currency: str, zone: str) -> None:
        self.locale = BABEL_LOCALES.get(language, BABEL_LOCALES["en"])
        self.currency = currency
        self.zone = zone
        self._territories = Locale.parse(self.locale).territories

    def money(self, value: Any) -> str:
        return str(format_currency(Decimal(value), self.currency, locale=self.locale))

    def unit_price(self, value: Any) -> str:
        """Unit prices keep up to 12 decimal places, never fewer than the currency's."""
        exact = Decimal(value).normalize()
        return str(format_currency(exact, self.currency, locale=self.locale, decimal_quantization=False))

    def quantity(self, value: Any) -> str:
        exact = Decimal(value).normalize()
        return str(format_decimal(exact, locale=self.locale, decimal_quantization=False))

    def rate(self, value: Any) -> str:
        return str(format_percent(Decimal(value) / 100, locale=self.locale, decimal_quantization=False))

    def date(self, value: date) -> str:
        return str(format_date(value, "medium", locale=self.locale))

    def period(self, start: datetime | None, end: datetime | None) -> str:
        """``[start, end)`` as the calendar days it covers in the customer's timezone."""
        if start is None or end is None:
            return ""
        first = local_date(start, self.zone)
        last = max(first, local_date(end, self.zone) - timedelta(days=1))
        if first == last:
            return self.date(first)
        return f"{self.date(first)} – {self.date(last)}"

    def country(self, code: str) -> str:
        return str(self._territories.get(code, code)) if code else ""


# --- what the page shows ----------------------------------------------------------------------------


def _address(party: dict[str, Any], fmt: Formats, home_country: str) -> list[str]:
    lines = [party.get("company", ""), party.get("name", ""), party.get("address_line1", "")]
    lines.append(party.get("address_line2", ""))
    lines.append(" ".join(part for part in (party.get("postal_code", ""), party.get("city", "")) if part))
    lines.append(party.get("state", ""))
    country = party.get("country", "")
    if country and country != home_country:
        lines.append(fmt.country(country).upper())
    return [line for line in lines if line]


def _vat_countries(invoice: Invoice) -> dict[tuple[str, Decimal], set[str]]:
    found: dict[tuple[str, Decimal], set[str]] = {}
    for line in invoice.lines.all():
        key = (line.vat_category, Decimal(line.vat_rate).normalize())
        found.setdefault(key, set()).add(line.vat_country)
    return found


def _vat_rows(invoice: Invoice, fmt: Formats, home_country: str) -> list[dict[str, str]]:
    countries = _vat_countries(invoice)
    rows = []
    for group in invoice.vat_breakdown.all():
        rate = fmt.rate(group.rate)
        where = countries.get((group.category, Decimal(group.rate).normalize()), set()) - {"", home_country}
        if group.category in EXEMPT_CATEGORIES:
            reason = EXEMPTIONS.get(group.note) or group.reason_code or group.category
            label = _("VAT %(rate)s (%(reason)s)") % {"rate": rate, "reason": reason}
        elif len(where) == 1:
            label = _("VAT %(country)s %(rate)s") % {"country": next(iter(where)), "rate": rate}
        else:
            label = _("VAT %(rate)s") % {"rate": rate}
        rows.append(
            {
                "label": label,
                "base": _("on %(amount)s") % {"amount": fmt.money(group.taxable_amount)},
                "amount": fmt.money(group.tax_amount),
            }
        )
    return rows


def _notes(invoice: Invoice) -> list[str]:
    keys: list[str] = []
    for note in [group.note for group in invoice.vat_breakdown.all()] + [
        line.vat_note for line in invoice.lines.all()
    ]:
        if note and note not in keys:
            keys.append(note)
    return [str(VAT_NOTES[key]) for key in keys if key in VAT_NOTES]


def _lines(invoice: Invoice, fmt: Formats, invoice_period: str) -> list[dict[str, str]]:
    rows = []
    for line in invoice.lines.all():
        period = fmt.period(line.period_start, line.period_end)
        gross = invoice.prices_include_tax and line.gross_amount is not None
        rows.append(
            {
                "position": str(line.position),
                "description": line.description,
                "period": period if period and period != invoice_period else "",
                "quantity": fmt.quantity(line.quantity),
                "unit_price": fmt.unit_price(line.unit_price),
                "rate": fmt.rate(line.vat_rate),
                "amount": fmt.money(line.gross_amount if gross else line.net_amount),
            }
        )
    return rows


def _allowances(invoice: Invoice, fmt: Formats) -> list[dict[str, str]]:
    return [
        {
            "label": _("Discount %(code)s (VAT %(rate)s)")
            % {"code": allowance.discount_code, "rate": fmt.rate(allowance.rate)},
            "amount": fmt.money(-Decimal(allowance.amount)),
        }
        for allowance in invoice.allowances.all()
    ]


def _tax_ids(party: dict[str, Any]) -> list[tuple[str, str]]:
    ids = []
    if party.get("vat_id"):
        ids.append((_("VAT ID"), party["vat_id"]))
    if party.get("tax_number"):
        ids.append((_("Tax number"), party["tax_number"]))
    return ids


def _zone(invoice: Invoice, tenant: Any) -> str:
    if invoice.subscription is not None and invoice.subscription.timezone:
        return str(invoice.subscription.timezone)
    return str(invoice.customer.timezone or tenant.timezone)


def _w3c(instant: datetime | None) -> str:
    return instant.strftime("%Y-%m-%dT%H:%M:%SZ") if instant else ""


def context(invoice: Invoice) -> dict[str, Any]:
    """What the template shows, every value already formatted in the active language."""
    tenant = invoice.tenant
    supplier, recipient = invoice.supplier, invoice.recipient
    home = supplier.get("country", "")
    fmt = Formats(translation.get_language() or "en", invoice.currency, _zone(invoice, tenant))
    period = fmt.period(invoice.period_start, invoice.period_end)
    credit_note = invoice.is_credit_note
    title = pgettext("document title", "Credit note") if credit_note else _("Invoice")
    facts = [(_("Invoice number") if not credit_note else _("Credit note number"), invoice.number or "")]
    if invoice.issue_date:
        facts.append((_("Invoice date") if not credit_note else _("Date"), fmt.date(invoice.issue_date)))
    if period:
        facts.append((_("Service period"), period))
    elif invoice.issue_date:
        facts.append((_("Date of supply"), fmt.date(invoice.issue_date)))
    if invoice.due_date and not credit_note and Decimal(invoice.amount_due) > 0:
        facts.append((_("Due date"), fmt.date(invoice.due_date)))
    if recipient.get("vat_id"):
        facts.append((_("Your VAT ID"), recipient["vat_id"]))
    corrected = invoice.credit_note_for
    reference = ""
    if credit_note and corrected is not None:
        reference = _("Correction of invoice %(number)s of %(date)s") % {
            "number": corrected.number,
            "date": fmt.date(corrected.issue_date) if corrected.issue_date else "",
        }
    allowances = _allowances(invoice, fmt)
    return {
        "language": translation.get_language() or "en",
        "title": title,
        "document_name": f"{title} {invoice.number}",
        "created": _w3c(invoice.finalized_at),
        "supplier": supplier,
        "supplier_address": _address(supplier, fmt, recipient.get("country", "")),
        "supplier_tax_ids": _tax_ids(supplier),
        "recipient_address": _address(recipient, fmt, home),
        "facts": facts,
        "reference": reference,
        "reason": invoice.reason,
        "lines": _lines(invoice, fmt, period),
        "gross_prices": invoice.prices_include_tax,
        "line_total": fmt.money(invoice.line_total),
        "allowances": allowances,
        "tax_exclusive": fmt.money(invoice.tax_exclusive),
        "vat_rows": _vat_rows(invoice, fmt, home),
        "grand_total": fmt.money(invoice.grand_total),
        "rounding": fmt.money(invoice.rounding_amount) if Decimal(invoice.rounding_amount) else "",
        "prepaid": fmt.money(-Decimal(invoice.prepaid)) if Decimal(invoice.prepaid) else "",
        "amount_due": fmt.money(invoice.amount_due),
        "notes": _notes(invoice),
        "payment": _payment(invoice, fmt, tenant),
        "bank": _bank_lines(supplier, tenant),
        "logo": logos.data_uri(invoice.tenant_id),
    }


def _bank_lines(supplier: dict[str, Any], tenant: Any) -> list[str]:
    iban = supplier.get("iban") or tenant.iban
    bic = supplier.get("bic") or tenant.bic
    lines = [f"IBAN {_grouped(iban)}"] if iban else []
    if bic:
        lines.append(f"BIC {bic}")
    return lines


def load(public_id: str) -> Invoice:
    """The invoice with everything the page shows, in as few queries as it takes."""
    return (
        Invoice.objects.select_related("tenant", "customer", "subscription", "credit_note_for")
        .prefetch_related("lines", "vat_breakdown", "allowances")
        .get(public_id=public_id)
    )


def language_of(invoice: Invoice) -> str:
    language = (invoice.locale or "en").split("-")[0].split("_")[0].lower()
    return language if language in BABEL_LOCALES else "en"


def html(invoice: Invoice) -> str:
    with translation.override(language_of(invoice)):
        return render_to_string(TEMPLATE, context(invoice))


# --- rendering --------------------------------------------------------------------------------------


_EMPTY_PAGE = "<html></html>"


class _TreeBuilder(ElementTree.TreeBuilder):
    """ElementTree's tree builder as the target of lxml's parser (which hands over read-only attributes)."""

    def start(self, tag: str, attrs: Any) -> ElementTree.Element:
        return super().start(tag, dict(attrs))


def parse_page(page: str) -> ElementTree.Element:
    """The page's element tree as WeasyPrint's HTML5 parser builds it, built by libxml2's HTML parser in a
    tenth of the time. The two agree on the HTML the invoice template writes (the tests compare them) once
    tables whose rows stand in the table itself get the row group HTML5 adds; white space after the end of
    the document, which HTML5 moves into the body, is left out (it shows nothing)."""
    parser = etree.HTMLParser(target=_TreeBuilder(), remove_comments=True, remove_pis=True)
    root: ElementTree.Element = etree.fromstring(page.rstrip(), parser)
    for table in root.iter("table"):
        _add_row_groups(table)
    return root


def _add_row_groups(table: ElementTree.Element) -> None:
    """Put each run of rows standing in ``table`` itself into a ``tbody``, as HTML5 parsing does."""
    if not any(child.tag == "tr" for child in table):
        return
    children: list[ElementTree.Element] = []
    group: ElementTree.Element | None = None
    for child in table:
        if child.tag != "tr":
            group = None
            children.append(child)
            continue
        if group is None:
            group = ElementTree.Element("tbody")
            children.append(group)
        group.append(child)
    table[:] = children


class _Renderer(threading.local):
    """One font configuration and the parsed stylesheets per thread, reused by every render."""

    def __init__(self) -> None:
        # WeasyPrint parses its user-agent stylesheets on import (logging each step): only processes that
        # render pay for it, and quietly.
        logging.getLogger("weasyprint.progress").setLevel(logging.WARNING)
        from cssselect2 import ElementWrapper  # type: ignore[import-untyped]
        from weasyprint import CSS, HTML
        from weasyprint.text.fonts import FontConfiguration

        self.font_config = FontConfiguration()
        self.stylesheet = CSS(string=STYLESHEET.read_text(encoding="utf-8"), font_config=self.font_config)
        user_agent = CSS(
            string=USER_AGENT_STYLESHEET.read_text(encoding="utf-8"), font_config=self.font_config
        )

        blank = HTML(string=_EMPTY_PAGE)

        class InvoicePage(HTML):  # type: ignore[misc]
            """The page, cascaded with the invoice's short user-agent stylesheet (see user_agent.css) and
            parsed by ``parse_page`` rather than by WeasyPrint's HTML5 parser (pure Python)."""

            def __init__(self, string: str) -> None:
                self.__dict__.update(blank.__dict__)  # WeasyPrint's set-up (URL fetcher, media type)
                self.wrapper_element = ElementWrapper.from_html_root(
                    parse_page(string), content_language=None
                )
                self.etree_element = self.wrapper_element.etree_element

            def _ua_stylesheets(self, forms: bool = False) -> list[Any]:
                return [user_agent]

        self.page_class = InvoicePage

    def pdf(self, page: str) -> bytes:
        with _collector_paused():
            return _write(self._layout(page))

    def pdfs(self, page: str, extend: Callable[[Any], None]) -> tuple[bytes, bytes]:
        """The page laid out and painted once, written twice: as it is, then extended by ``extend``."""
        with _collector_paused():
            written: list[bytes] = []
            extended = _write(self._layout(page), written.append, extend)
        return written[0], extended

    def _layout(self, page: str) -> Any:
        return self.page_class(string=page).render(
            stylesheets=[self.stylesheet], font_config=self.font_config
        )


@contextmanager
def _collector_paused() -> Iterator[None]:
    """A render allocates a great many short-lived objects; the cyclic collector, run meanwhile, would
    mostly rescan the process's long-lived ones (a tenth of the render time). It runs afterwards."""
    collecting = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if collecting:
            gc.enable()


#: How WeasyPrint's ``pdf/a-3b`` variant writes a PDF (named, so that a second copy is written alike).
PDF_VERSION = "1.7"
_WRITE_OPTIONS = {"pdf_variant": PDF_VARIANT, "pdf_version": PDF_VERSION, "pdf_identifier": True}


def _write(
    document: Any,
    plain: Callable[[bytes], object] | None = None,
    extend: Callable[[Any], None] | None = None,
) -> bytes:
    """``document`` as PDF/A-3b bytes. With ``plain`` and ``extend``: ``plain`` first gets those bytes,
    then ``extend`` changes the PDF (a ``pydyf.PDF``) and the result is returned; the page is painted and
    its fonts subset once for both."""

    def finish(_document: Any, pdf: Any) -> None:
        _compress_streams(pdf)
        if plain is not None and extend is not None:
            plain(_serialized(pdf))
            extend(pdf)
            _compress_streams(pdf)

    data: bytes = document.write_pdf(finisher=finish, **_WRITE_OPTIONS)
    return data


def _compress_streams(pdf: Any) -> None:
    """Compress each stream once, as it would be written. pydyf compresses a stream every time it is
    serialized, and the file identifier (a hash of every object) serializes them all a second time: a
    third of the writing. The XMP metadata is left as it is (small; ``extend`` may add to it)."""
    for item in pdf.objects:
        parts = getattr(item, "stream", None)
        extra = getattr(item, "extra", None)
        if (
            not getattr(item, "compress", False)
            or not isinstance(parts, list)
            or not isinstance(extra, dict)
            or "Filter" in extra
            or extra.get("Type") == "/Metadata"
            or not all(isinstance(part, bytes) for part in parts)
        ):
            continue
        packer = zlib.compressobj(level=9)  # pydyf's level: the same bytes as it would write
        item.stream = [packer.compress(b"\n".join(parts)) + packer.flush()]
        item.compress = False
        extra["Filter"] = "/FlateDecode"


def _serialized(pdf: Any) -> bytes:
    """``pdf`` written as ``write_pdf`` writes it, leaving ``pdf`` as it was (writing appends the info,
    object stream and cross-reference stream objects to the list of objects and advances the position)."""
    snapshot = copy.copy(pdf)
    snapshot.objects = list(pdf.objects)
    output = io.BytesIO()
    snapshot.write(output, PDF_VERSION, True, True)
    return output.getvalue()


_renderer: _Renderer | None = None
_renderer_lock = threading.Lock()


def _thread_renderer() -> _Renderer:
    """The renderer (created on first use; being a ``threading.local``, each thread gets its own state)."""
    global _renderer
    if _renderer is None:
        with _renderer_lock:
            if _renderer is None:
                _renderer = _Renderer()
    return _renderer


def render_invoice_pdf(invoice: Invoice) -> bytes:
    """The invoice or credit note as PDF/A-3b bytes; the same invoice always gives the same bytes."""
    _check_issued(invoice)
    return _thread_renderer().pdf(html(invoice))


def render_invoice_pdfs(invoice: Invoice, xml: bytes) -> tuple[bytes, bytes]:
    """The invoice or credit note as PDF/A-3b (the bytes ``render_invoice_pdf`` gives) and, from the same
    layout, as Factur-X PDF/A-3b with ``xml`` (its CII XML, EN 16931) embedded; both deterministic."""
    _check_issued(invoice)
    moment = invoice.finalized_at

    def factur_x(pdf: Any) -> None:
        facturx.attach(pdf, xml, moment=moment)

    return _thread_renderer().pdfs(html(invoice), factur_x)


def _check_issued(invoice: Invoice) -> None:
    if invoice.number is None:
        raise ValueError(f"invoice {invoice.public_id} is a draft; only issued invoices are rendered")
