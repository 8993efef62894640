"""Request and response bodies of the customer routes."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from ninja import Schema
from pydantic import Field, field_validator

from turnus.apps.customers.models import Customer
from turnus.core.api import InputSchema, UtcDateTime
from turnus.core.pagination import DEFAULT_LIMIT

Locale = Literal["de", "en"]
TaxExemptChoice = Literal["none", "exempt", "reverse"]
Metadata = dict[str, str]
EInvoiceFormatChoice = Literal["", "xrechnung"]

_METADATA_DESCRIPTION = "Up to 50 string keys (at most 40 characters) with string values (at most 500)."
_EINVOICE_FORMAT_DESCRIPTION = (
    "The e-invoice besides the ZUGFeRD / Factur-X PDF every invoice gets: '' (none) or 'xrechnung' "
    "(XRechnung 3.0 CII XML, for public buyers; needs buyer_reference)."
)
_BUYER_REFERENCE_DESCRIPTION = (
    "The buyer reference (EN 16931 BT-10): the Leitweg-ID of a German public buyer (checked with its check "
    "digits, e.g. 991-33333TEST-33) or the reference the buyer asked for."
)
_ELECTRONIC_ADDRESS_DESCRIPTION = (
    "Where e-invoices are addressed (BT-49): SCHEME:id with a CEF EAS scheme (e.g. 0204:991-33333TEST-33) "
    "or an e-mail address; the customer's e-mail address when empty."
)


class CustomerIn(InputSchema):
    name: str
    company: str | None = None
    email: str
    address_line1: str
    address_line2: str | None = None
    postal_code: str
    city: str
    state: str | None = None
    country: str = Field(description="ISO 3166 alpha-2, e.g. DE")
    locale: Locale | None = Field(None, description="Defaults to the tenant's language.")
    timezone: str | None = Field(None, description="IANA timezone; defaults to the tenant's.")
    vat_id: str | None = Field(None, description="Its country prefix must match the billing country.")
    tax_exempt: TaxExemptChoice = "none"
    external_id: str | None = Field(None, description="Your own id; unique among your customers.")
    metadata: Metadata | None = Field(None, description=_METADATA_DESCRIPTION)
    einvoice_format: EInvoiceFormatChoice = Field("", description=_EINVOICE_FORMAT_DESCRIPTION)
    buyer_reference: str | None = Field(None, description=_BUYER_REFERENCE_DESCRIPTION)
    electronic_address: str | None = Field(None, description=_ELECTRONIC_ADDRESS_DESCRIPTION)
    test_clock: str | None = Field(
        None, description="Test mode only: the test clock whose time this customer lives at; set at creation."
    )


class CustomerUpdate(InputSchema):
    """Only the fields sent change; ``metadata`` is replaced as a whole."""

    name: str | None = None
    company: str | None = None
    email: str | None = None
    address_line1: str | None = None
    address_line2: str | None = None
    postal_code: str | None = None
    city: str | None = None
    state: str | None = None
    country: str | None = None
    locale: Locale | None = None
    timezone: str | None = None
    vat_id: str | None = None
    tax_exempt: TaxExemptChoice | None = None
    external_id: str | None = None
    metadata: Metadata | None = Field(None, description=_METADATA_DESCRIPTION)
    einvoice_format: EInvoiceFormatChoice | None = Field(None, description=_EINVOICE_FORMAT_DESCRIPTION)
    buyer_reference: str | None = Field(None, description=_BUYER_REFERENCE_DESCRIPTION)
    electronic_address: str | None = Field(None, description=_ELECTRONIC_ADDRESS_DESCRIPTION)


class CustomerOut(Schema):
    id: str
    object: str = "customer"
    livemode: bool
    created_at: datetime
    name: str
    company: str | None
    email: str
    address_line1: str
    address_line2: str | None
    postal_code: str
    city: str
    state: str | None
    country: str
    locale: str
    timezone: str
    vat_id: str | None
    tax_exempt: str
    external_id: str | None
    metadata: Metadata
    is_business: bool
    einvoice_format: str = Field(description="'' (ZUGFeRD / Factur-X only) or 'xrechnung'.")
    buyer_reference: str | None
    electronic_address: str | None
    test_clock: str | None = Field(description="The test clock this customer is attached to, if any.")

    @staticmethod
    def resolve_id(customer: Customer) -> str:
        return customer.public_id

    @staticmethod
    def resolve_test_clock(customer: Customer) -> str | None:
        return customer.test_clock.public_id if customer.test_clock is not None else None

    @field_validator(
        "company",
        "address_line2",
        "state",
        "vat_id",
        "external_id",
        "buyer_reference",
        "electronic_address",
        mode="before",
    )
    @classmethod
    def _blank_is_none(cls, value: Any) -> Any:
        return value or None


class CustomerDeletedOut(Schema):
    id: str
    object: str = "customer"
    livemode: bool
    deleted: bool = True

    @staticmethod
    def resolve_id(customer: Customer) -> str:
        return customer.public_id


class CustomerFilters(Schema):
    limit: int = DEFAULT_LIMIT
    starting_after: str | None = None
    email: str | None = None
    external_id: str | None = None
    created_gte: UtcDateTime | None = None
    created_lte: UtcDateTime | None = None
