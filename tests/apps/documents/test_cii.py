"""The CII XML of finalized invoices and credit notes: valid against the EN 16931 XSD, the CEN EN 16931
schematron (no fatal finding) and, for Factur-X, the Factur-X EN 16931 schematron; XRechnung also meets
the BR-DE rules checked in ``validation.xrechnung_violations``; the XML's totals are the invoice's."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest

from tests.apps.billing.support import APRIL, MARCH, scope_of, subscribe
from tests.apps.customers.support import customer_data
from tests.apps.documents import validation
from turnus.apps.billing import services
from turnus.apps.billing.models import DocumentKind, Invoice, InvoiceStatus
from turnus.apps.customers import services as customers
from turnus.apps.documents import cii
from turnus.core.errors import ValidationFailed
from turnus.engine.invoice import LineInput, compose_invoice
from turnus.engine.tax import TaxDecision, VatCategory

START = MARCH + timedelta(hours=9)
AUSTRIAN_BUSINESS = {
    "country": "AT",
    "company": "Muster GmbH",
    "vat_id": "ATU13585627",
    "postal_code": "1010",
    "city": "Wien",
    "locale": "en",
}
GERMAN_BUSINESS = {"company": "Kunde AG", "vat_id": "DE811907980"}
SUPPLIER_EXTRAS = {"phone": "+49 30 1234567", "email": "rechnung@beispiel.example"}
SETTLEMENT = "/rsm:CrossIndustryInvoice/rsm:SupplyChainTradeTransaction/ram:ApplicableHeaderTradeSettlement"
AGREEMENT = "/rsm:CrossIndustryInvoice/rsm:SupplyChainTradeTransaction/ram:ApplicableHeaderTradeAgreement"
TOTALS = {
    "LineTotalAmount": "line_total",
    "AllowanceTotalAmount": "allowance_total",
    "TaxBasisTotalAmount": "tax_exclusive",
    "TaxTotalAmount": "tax_total",
    "GrandTotalAmount": "grand_total",
    "DuePayableAmount": "amount_due",
}


def _finalized(scope, *, supplier=None, recipient=None, **subscribe_kwargs):
    billed = subscribe(scope, **subscribe_kwargs)
    draft = services.create_draft(scope, billed.subscription).invoice
    _amend(draft, supplier, recipient)
    return Invoice.objects.get(pk=services.finalize(scope, draft.public_id).pk)


def _amend(draft, supplier, recipient):
    """Add keys to a draft's supplier / recipient copies (data the tenant or customer does not hold yet)."""
    changes = {}
    if supplier:
        changes["supplier"] = {**draft.supplier, **supplier}
    if recipient:
        changes["recipient"] = {**draft.recipient, **recipient}
    if changes:
        Invoice.objects.filter(pk=draft.pk).update(**changes)


def _composed(scope, lines, *, customer=None, prepaid=Decimal(0), prices_include_tax=False, supplier=None):
    """An invoice composed by the engine from ``lines`` and stored and finalized by the billing app
    (for cases one subscription cannot produce: several rates, credit applied)."""
    owner = customers.create_customer(scope, customer_data(timezone="Europe/Berlin", **(customer or {})))
    composed = compose_invoice("EUR", lines, prepaid=prepaid, prices_include_tax=prices_include_tax)
    draft = services._store(
        scope,
        composed,
        customer=owner,
        subscription=None,
        kind=DocumentKind.INVOICE,
        status=InvoiceStatus.DRAFT,
        period=(MARCH, APRIL),
    )
    _amend(draft, supplier, None)
    return Invoice.objects.get(pk=services.finalize(scope, draft.public_id).pk)


def _line(description, amount, rate, *, period=None):
    tax = TaxDecision(VatCategory.S, Decimal(rate), "DE", None, None)
    return LineInput(description, Decimal(1), Decimal(amount), tax, period=period)


def _validated(invoice, profile="en16931", **overrides):
    """The invoice's XML after checking it: XSD, CEN schematron, the profile's own rules, totals."""
    xml = cii.invoice_xml(invoice, profile=profile, **overrides)
    cii.check_xsd(xml)
    report = validation.cen_schematron(xml)
    assert report.fatal == [], "\n".join(map(str, report.fatal))
    for warning in report.warnings:
        print("CEN warning:", warning)
    if profile == "en16931":
        facturx = validation.facturx_schematron(xml)
        assert facturx.fatal == [], "\n".join(map(str, facturx.fatal))
        for warning in facturx.warnings:
            print("Factur-X warning:", warning)
    else:
        assert validation.xrechnung_violations(xml) == []
    root = validation.parse(xml)
    sign = -1 if invoice.is_credit_note else 1
    for element, name in TOTALS.items():
        assert validation.amount(root, element) == sign * Decimal(getattr(invoice, name)), element
    assert (validation.amount(root, "RoundingAmount") or Decimal(0)) == sign * invoice.rounding_amount
    assert (validation.amount(root, "TotalPrepaidAmount") or Decimal(0)) == sign * invoice.prepaid
    groups = root.xpath(f"{SETTLEMENT}/ram:ApplicableTradeTax", namespaces=validation.NS)
    assert sorted(
        (
            g.findtext("ram:CategoryCode", namespaces=validation.NS),
            Decimal(g.findtext("ram:BasisAmount", namespaces=validation.NS)),
            Decimal(g.findtext("ram:CalculatedAmount", namespaces=validation.NS)),
        )
        for g in groups
    ) == sorted(
        (b.category, sign * b.taxable_amount, sign * b.tax_amount) for b in invoice.vat_breakdown.all()
    )
    return root


def _text(root, path):
    return validation.text(root, path)


def _ids(root, party):
    return {
        node.get("schemeID"): node.text
        for node in root.xpath(
            f"{AGREEMENT}/ram:{party}/ram:SpecifiedTaxRegistration/ram:ID", namespaces=validation.NS
        )
    }


@pytest.mark.django_db
def test_a_domestic_b2b_invoice_at_19_percent_is_valid_en16931(scope, clock):
    invoice = _finalized(scope, customer=GERMAN_BUSINESS)
    root = _validated(invoice)
    assert _text(root, "/rsm:CrossIndustryInvoice/rsm:ExchangedDocument/ram:ID") == invoice.number
    assert _text(root, "/rsm:CrossIndustryInvoice/rsm:ExchangedDocument/ram:TypeCode") == "380"
    assert _text(root, "//ram:GuidelineSpecifiedDocumentContextParameter/ram:ID") == "urn:cen.eu:en16931:2017"
    assert _text(root, "//ram:IssueDateTime/udt:DateTimeString") == "20260301"
    assert _text(root, f"{SETTLEMENT}/ram:InvoiceCurrencyCode") == "EUR"
    assert _text(
        root, f"{SETTLEMENT}/ram:SpecifiedTradePaymentTerms/ram:DueDateDateTime/udt:DateTimeString"
    ) == ("20260315")
    assert "15.03.2026" in _text(root, f"{SETTLEMENT}/ram:SpecifiedTradePaymentTerms/ram:Description")
    assert _text(root, f"{SETTLEMENT}/ram:SpecifiedTradeSettlementPaymentMeans/ram:TypeCode") == "58"
    assert _text(root, "//ram:PayeePartyCreditorFinancialAccount/ram:IBANID") == "DE89370400440532013000"
    assert _text(root, "//ram:PayeeSpecifiedCreditorFinancialInstitution/ram:BICID") == "COBADEFFXXX"
    assert _ids(root, "SellerTradeParty") == {"VA": "DE136695976"}
    assert _ids(root, "BuyerTradeParty") == {"VA": "DE811907980"}
    assert _text(root, f"{AGREEMENT}/ram:BuyerTradeParty/ram:Name") == "Kunde AG"
    assert _text(root, f"{AGREEMENT}/ram:BuyerTradeParty/ram:URIUniversalCommunication/ram:URIID") == (
        "erika@example.com"
    )
    assert (
        _text(root, f"{SETTLEMENT}/ram:BillingSpecifiedPeriod/ram:StartDateTime/udt:DateTimeString")
        == "20260301"
    )
    assert (
        _text(root, f"{SETTLEMENT}/ram:BillingSpecifiedPeriod/ram:EndDateTime/udt:DateTimeString")
        == "20260331"
    )
    line = root.xpath("//ram:IncludedSupplyChainTradeLineItem", namespaces=validation.NS)[0]
    assert _text(line, "ram:AssociatedDocumentLineDocument/ram:LineID") == "1"
    assert _text(line, "ram:SpecifiedTradeProduct/ram:Name") == invoice.lines.get(position=1).description
    assert _text(line, "ram:SpecifiedLineTradeDelivery/ram:BilledQuantity") == "1"
    assert line.xpath(
        "ram:SpecifiedLineTradeDelivery/ram:BilledQuantity/@unitCode", namespaces=validation.NS
    ) == ["C62"]
    assert (
        _text(line, "ram:SpecifiedLineTradeAgreement/ram:NetPriceProductTradePrice/ram:ChargeAmount") == "100"
    )
    assert (
        _text(line, "ram:SpecifiedLineTradeSettlement/ram:ApplicableTradeTax/ram:RateApplicablePercent")
        == "19"
    )
    assert _text(
        line, "ram:SpecifiedLineTradeSettlement/ram:BillingSpecifiedPeriod/ram:EndDateTime/udt:DateTimeString"
    ) == ("20260331")


@pytest.mark.django_db
def test_an_invoice_with_7_and_19_percent_has_two_vat_groups(scope, clock):
    lines = [_line("E-Book-Abo", "10.00", 7, period=(MARCH, APRIL)), _line("Cloud", "100.00", 19)]
    invoice = _composed(scope, lines, customer=GERMAN_BUSINESS)
    root = _validated(invoice)
    rates = root.xpath(
        f"{SETTLEMENT}/ram:ApplicableTradeTax/ram:RateApplicablePercent/text()", namespaces=validation.NS
    )
    assert rates == ["7", "19"]
    assert validation.amount(root, "TaxTotalAmount") == Decimal("19.70")


@pytest.mark.django_db
def test_a_reverse_charge_invoice_to_an_austrian_business_names_both_vat_ids_and_the_reason(scope, clock):
    invoice = _finalized(scope, customer=AUSTRIAN_BUSINESS)
    root = _validated(invoice)
    group = f"{SETTLEMENT}/ram:ApplicableTradeTax"
    assert _text(root, f"{group}/ram:CategoryCode") == "AE"
    assert _text(root, f"{group}/ram:ExemptionReasonCode") == "VATEX-EU-AE"
    assert (
        _text(root, f"{group}/ram:ExemptionReason") == "Reverse charge: the recipient is liable for the VAT."
    )
    assert _ids(root, "BuyerTradeParty") == {"VA": "ATU13585627"}
    assert _text(root, f"{AGREEMENT}/ram:BuyerTradeParty/ram:PostalTradeAddress/ram:CountryID") == "AT"


@pytest.mark.django_db
def test_an_oss_invoice_to_a_french_consumer_charges_french_vat(scope, clock):
    invoice = _finalized(
        scope, customer={"country": "FR", "postal_code": "75001", "city": "Paris", "locale": "en"}
    )
    root = _validated(invoice)
    assert _text(root, f"{SETTLEMENT}/ram:ApplicableTradeTax/ram:RateApplicablePercent") == "20"
    assert _ids(root, "BuyerTradeParty") == {}
    assert _text(root, f"{SETTLEMENT}/ram:SpecifiedTradePaymentTerms/ram:Description") == (
        "Payable without deduction by 03/15/2026."
    )


@pytest.mark.django_db
def test_a_small_business_invoice_is_exempt_with_the_19_ustg_note_and_the_tax_number(make_tenant, clock):
    scope = scope_of(make_tenant(small_business=True, vat_id="", tax_number="21/815/08150"))
    invoice = _finalized(scope)
    root = _validated(invoice)
    group = f"{SETTLEMENT}/ram:ApplicableTradeTax"
    assert (_text(root, f"{group}/ram:CategoryCode"), _text(root, f"{group}/ram:CalculatedAmount")) == (
        "E",
        "0.00",
    )
    assert "19 UStG" in _text(root, f"{group}/ram:ExemptionReason")
    assert _ids(root, "SellerTradeParty") == {"FC": "21/815/08150"}


@pytest.mark.django_db
def test_an_export_outside_the_eu_is_not_subject_to_vat_and_names_no_vat_id(scope, clock):
    customer = {
        "country": "US",
        "postal_code": "10001",
        "city": "New York",
        "company": "Acme Inc.",
        "locale": "en",
    }
    invoice = _finalized(scope, customer=customer)
    root = _validated(invoice)
    group = f"{SETTLEMENT}/ram:ApplicableTradeTax"
    assert (_text(root, f"{group}/ram:CategoryCode"), _text(root, f"{group}/ram:ExemptionReasonCode")) == (
        "O",
        "VATEX-EU-O",
    )
    assert _ids(root, "SellerTradeParty") == {}  # BR-O-02
    assert (
        root.xpath(
            "//ram:IncludedSupplyChainTradeLineItem//ram:RateApplicablePercent", namespaces=validation.NS
        )
        == []
    )


@pytest.mark.django_db
def test_a_tax_inclusive_invoice_carries_its_rounding_amount(scope, clock):
    invoice = _finalized(scope, fee="10.05", prices_include_tax=True)
    assert invoice.rounding_amount != 0
    root = _validated(invoice)
    assert validation.amount(root, "RoundingAmount") == invoice.rounding_amount
    assert validation.amount(root, "DuePayableAmount") == Decimal("10.05")


@pytest.mark.django_db
def test_a_coupon_is_a_document_level_allowance(scope, clock):
    coupon = {"code": "WELCOME", "name": "Welcome", "kind": "percentage", "value": "10", "duration": "once"}
    invoice = _finalized(scope, coupon=coupon)
    root = _validated(invoice)
    allowance = root.xpath(f"{SETTLEMENT}/ram:SpecifiedTradeAllowanceCharge", namespaces=validation.NS)[0]
    assert _text(allowance, "ram:ChargeIndicator/udt:Indicator") == "false"
    assert _text(allowance, "ram:ActualAmount") == "10.00"
    assert _text(allowance, "ram:ReasonCode") == "95"
    assert "WELCOME" in _text(allowance, "ram:Reason")
    assert _text(allowance, "ram:CategoryTradeTax/ram:CategoryCode") == "S"
    assert validation.amount(root, "TaxBasisTotalAmount") == Decimal(90)


@pytest.mark.django_db
def test_credit_applied_in_advance_is_the_prepaid_amount(scope, clock):
    invoice = _composed(scope, [_line("Cloud", "100.00", 19)], prepaid=Decimal("50.00"))
    root = _validated(invoice)
    assert validation.amount(root, "TotalPrepaidAmount") == Decimal("50.00")
    assert validation.amount(root, "DuePayableAmount") == Decimal("69.00")


@pytest.mark.django_db
def test_a_fully_prepaid_invoice_says_there_is_nothing_to_pay(scope, clock):
    invoice = _composed(scope, [_line("Cloud", "100.00", 19)], prepaid=Decimal("119.00"))
    root = _validated(invoice)
    assert validation.amount(root, "DuePayableAmount") == Decimal(0)
    assert _text(root, f"{SETTLEMENT}/ram:SpecifiedTradePaymentTerms/ram:DueDateDateTime") is None


@pytest.mark.django_db
def test_a_credit_note_is_type_381_with_positive_amounts_and_the_corrected_invoice(scope, clock):
    invoice = _finalized(
        scope,
        customer=GERMAN_BUSINESS,
        coupon={"code": "TEN", "name": "Ten", "kind": "percentage", "value": "10", "duration": "once"},
    )
    note = Invoice.objects.get(pk=services.create_credit_note(scope, invoice.public_id, reason="Kulanz").pk)
    assert note.grand_total < 0
    root = _validated(note)
    assert _text(root, "/rsm:CrossIndustryInvoice/rsm:ExchangedDocument/ram:TypeCode") == "381"
    reference = f"{SETTLEMENT}/ram:InvoiceReferencedDocument"
    assert _text(root, f"{reference}/ram:IssuerAssignedID") == invoice.number
    assert _text(root, f"{reference}/ram:FormattedIssueDateTime/qdt:DateTimeString") == "20260301"
    assert validation.amount(root, "GrandTotalAmount") == Decimal("107.10")
    quantities = root.xpath("//ram:BilledQuantity/text()", namespaces=validation.NS)
    assert quantities == ["1"]
    notes = root.xpath(
        "//rsm:ExchangedDocument/ram:IncludedNote/ram:Content/text()", namespaces=validation.NS
    )
    assert "Kulanz" in notes


@pytest.mark.django_db
def test_a_partial_credit_note_is_valid(scope, clock):
    invoice = _finalized(scope)
    note = services.create_credit_note(scope, invoice.public_id, [services.CreditLine(1, Decimal("25.00"))])
    root = _validated(Invoice.objects.get(pk=note.pk))
    assert validation.amount(root, "LineTotalAmount") == Decimal("25.00")


@pytest.mark.django_db
def test_a_proration_credit_line_has_a_negative_quantity_and_a_positive_price(scope, clock):
    lines = [
        _line("Remaining time: Pro", "60.00", 19),
        LineInput(
            "Credit for unused time: Basic",
            Decimal(1),
            Decimal("-20.00"),
            TaxDecision(VatCategory.S, Decimal(19), "DE", None, None),
        ),
    ]
    invoice = _composed(scope, lines)
    root = _validated(invoice)
    second = root.xpath("//ram:IncludedSupplyChainTradeLineItem", namespaces=validation.NS)[1]
    assert _text(second, "ram:SpecifiedLineTradeDelivery/ram:BilledQuantity") == "-1"
    assert (
        _text(second, "ram:SpecifiedLineTradeAgreement/ram:NetPriceProductTradePrice/ram:ChargeAmount")
        == "20"
    )
    assert (
        _text(
            second,
            "ram:SpecifiedLineTradeSettlement/ram:SpecifiedTradeSettlementLineMonetarySummation/ram:LineTotalAmount",
        )
        == "-20.00"
    )


# --- XRechnung ------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_an_xrechnung_carries_the_leitweg_id_and_both_electronic_addresses(make_tenant, clock):
    scope = scope_of(make_tenant(email="rechnung@beispiel.example"))
    recipient = {"buyer_reference": "991-01234-56", "electronic_address": "0204:991-01234-56"}
    invoice = _finalized(scope, customer=GERMAN_BUSINESS, supplier=SUPPLIER_EXTRAS, recipient=recipient)
    root = _validated(invoice, "xrechnung")
    assert _text(root, "//ram:GuidelineSpecifiedDocumentContextParameter/ram:ID") == (
        "urn:cen.eu:en16931:2017#compliant#urn:xeinkauf.de:kosit:xrechnung_3.0"
    )
    assert _text(root, f"{AGREEMENT}/ram:BuyerReference") == "991-01234-56"
    buyer_uri = root.xpath(
        f"{AGREEMENT}/ram:BuyerTradeParty/ram:URIUniversalCommunication/ram:URIID", namespaces=validation.NS
    )[0]
    assert (buyer_uri.get("schemeID"), buyer_uri.text) == ("0204", "991-01234-56")
    seller_uri = root.xpath(
        f"{AGREEMENT}/ram:SellerTradeParty/ram:URIUniversalCommunication/ram:URIID", namespaces=validation.NS
    )[0]
    assert (seller_uri.get("schemeID"), seller_uri.text) == ("EM", "rechnung@beispiel.example")
    contact = f"{AGREEMENT}/ram:SellerTradeParty/ram:DefinedTradeContact"
    assert (
        _text(root, f"{contact}/ram:TelephoneUniversalCommunication/ram:CompleteNumber") == "+49 30 1234567"
    )


@pytest.mark.django_db
def test_an_xrechnung_credit_note_and_reverse_charge_are_valid(make_tenant, clock, monkeypatch):
    scope = scope_of(make_tenant(email="rechnung@beispiel.example"))
    # The tenant has no telephone field yet: let the supplier copy carry one, as it will.
    copy_supplier = services._supplier
    monkeypatch.setattr(services, "_supplier", lambda tenant: {**copy_supplier(tenant), **SUPPLIER_EXTRAS})
    invoice = _finalized(scope, customer=AUSTRIAN_BUSINESS)
    _validated(invoice, "xrechnung", buyer_reference="PO-4711")
    note = services.create_credit_note(scope, invoice.public_id)
    root = _validated(Invoice.objects.get(pk=note.pk), "xrechnung", buyer_reference="PO-4711")
    assert _text(root, "/rsm:CrossIndustryInvoice/rsm:ExchangedDocument/ram:TypeCode") == "381"


@pytest.mark.django_db
def test_an_explicit_buyer_reference_wins_over_the_recipient_copy(make_tenant, clock):
    scope = scope_of(make_tenant(email="rechnung@beispiel.example"))
    invoice = _finalized(scope, supplier=SUPPLIER_EXTRAS, recipient={"buyer_reference": "old"})
    root = _validated(
        invoice, "xrechnung", buyer_reference="991-1-2", electronic_address="einkauf@kunde.example"
    )
    assert _text(root, f"{AGREEMENT}/ram:BuyerReference") == "991-1-2"
    assert _text(root, f"{AGREEMENT}/ram:BuyerTradeParty/ram:URIUniversalCommunication/ram:URIID") == (
        "einkauf@kunde.example"
    )


@pytest.mark.django_db
def test_an_xrechnung_without_leitweg_id_or_seller_phone_is_refused_naming_what_is_missing(scope, clock):
    invoice = _finalized(scope)
    with pytest.raises(cii.XRechnungIncomplete) as refused:
        cii.invoice_xml(invoice, profile="xrechnung")
    assert refused.value.field == "buyer_reference"
    assert "telephone" in str(refused.value)
    assert "Leitweg-ID" in str(refused.value)


# --- properties ---------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_same_invoice_gives_the_same_bytes(scope, clock):
    invoice = _finalized(scope, customer=GERMAN_BUSINESS)
    first = cii.invoice_xml(invoice)
    assert cii.invoice_xml(Invoice.objects.get(pk=invoice.pk)) == first
    assert first.startswith(b"<?xml version='1.0' encoding='UTF-8'?>")


@pytest.mark.django_db
def test_a_draft_has_no_xml(scope, clock):
    billed = subscribe(scope)
    draft = services.create_draft(scope, billed.subscription).invoice
    with pytest.raises(ValidationFailed):
        cii.invoice_xml(draft)


def test_xml_breaking_the_xsd_is_reported_as_a_bug():
    xml = (
        b"<rsm:CrossIndustryInvoice xmlns:rsm='urn:un:unece:uncefact:data:standard:CrossIndustryInvoice:100'>"
        b"<rsm:Nonsense/></rsm:CrossIndustryInvoice>"
    )
    with pytest.raises(cii.CiiSchemaError, match="XSD"):
        cii.check_xsd(xml)


def test_the_cen_schematron_finds_fatal_errors_in_a_broken_invoice():
    """The validation tooling itself: the CEN rules must catch a wrong total (BR-CO-15)."""
    sample = validation.cen_xslt_path().parents[2] / "Samples" / "en16931.xml"
    xml = sample.read_bytes()
    root = validation.parse(xml)
    grand = root.xpath("//ram:GrandTotalAmount", namespaces=validation.NS)[0]
    grand.text = str(Decimal(grand.text) + 1)
    from lxml import etree

    broken = validation.cen_schematron(etree.tostring(root))
    assert "BR-CO-15" in {finding.rule for finding in broken.fatal}


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("category", "reason", "note", "customer"),
    [
        ("K", "VATEX-EU-IC", "intra_community_supply", AUSTRIAN_BUSINESS),
        ("G", "VATEX-EU-G", "export_outside_eu", {"country": "CH", "postal_code": "8001", "city": "Zürich"}),
    ],
)
def test_goods_to_eu_businesses_and_exports_are_exempt_with_their_reason(
    scope, clock, category, reason, note, customer
):
    tax = TaxDecision(VatCategory(category), Decimal(0), customer["country"], reason, note)
    invoice = _composed(scope, [LineInput("Hardware", Decimal(2), Decimal("50.00"), tax)], customer=customer)
    root = _validated(invoice)
    group = f"{SETTLEMENT}/ram:ApplicableTradeTax"
    assert (_text(root, f"{group}/ram:CategoryCode"), _text(root, f"{group}/ram:ExemptionReasonCode")) == (
        category,
        reason,
    )
    if category == "K":  # BR-IC-12: the deliver-to country
        delivery = (
            "/rsm:CrossIndustryInvoice/rsm:SupplyChainTradeTransaction/ram:ApplicableHeaderTradeDelivery"
        )
        assert _text(root, f"{delivery}/ram:ShipToTradeParty/ram:PostalTradeAddress/ram:CountryID") == "AT"
