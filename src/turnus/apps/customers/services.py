"""Use cases for customers: create, update, soft delete and lookups by public or external id."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, transaction
from django.db.models import CharField

from turnus.apps.customers import clocks
from turnus.apps.customers.models import Customer, EInvoiceFormat, TaxExempt, TestClock
from turnus.apps.customers.queries import live_customers
from turnus.apps.tenants.models import Tenant
from turnus.core import clock, validation
from turnus.core.audit import record
from turnus.core.errors import Conflict, NotFound, ValidationFailed
from turnus.core.ids import new_id
from turnus.core.scope import Scope

CUSTOMER_FIELDS = (
    "name",
    "company",
    "email",
    "address_line1",
    "address_line2",
    "postal_code",
    "city",
    "state",
    "country",
    "locale",
    "timezone",
    "vat_id",
    "tax_exempt",
    "external_id",
    "metadata",
    "einvoice_format",
    "buyer_reference",
    "electronic_address",
)
REQUIRED_FIELDS = ("name", "email", "address_line1", "postal_code", "city", "country")
LOCALES = ("de", "en")
METADATA_MAX_KEYS = 50
METADATA_MAX_KEY_LENGTH = 40
METADATA_MAX_VALUE_LENGTH = 500
_TEXT_FIELDS = tuple(name for name in CUSTOMER_FIELDS if name != "metadata")


def customer_snapshot(customer: Customer) -> dict[str, Any]:
    return {
        "id": customer.public_id,
        **{name: getattr(customer, name) for name in CUSTOMER_FIELDS},
        "metadata": dict(customer.metadata),
        "is_business": customer.is_business,
        "test_clock": customer.test_clock.public_id if customer.test_clock is not None else None,
        "deleted_at": customer.deleted_at.isoformat() if customer.deleted_at else None,
    }


def _max_length(name: str) -> int:
    field = Customer._meta.get_field(name)
    if not isinstance(field, CharField) or field.max_length is None:
        raise TypeError(f"{name} is not a bounded text field")
    return field.max_length


def _clean_text(data: dict[str, Any], name: str) -> str:
    value = data.get(name)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise ValidationFailed(f"{name} must be a string", field=name)
    value = value.strip()
    if len(value) > _max_length(name):
        raise ValidationFailed(f"{name} must be at most {_max_length(name)} characters", field=name)
    return value


def clean_metadata(value: Any) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ValidationFailed(
            "metadata must be an object of string keys and string values", field="metadata"
        )
    if len(value) > METADATA_MAX_KEYS:
        raise ValidationFailed(f"metadata may hold at most {METADATA_MAX_KEYS} keys", field="metadata")
    for key, item in value.items():
        if not isinstance(key, str) or not key or len(key) > METADATA_MAX_KEY_LENGTH:
            raise ValidationFailed(
                f"metadata keys are 1 to {METADATA_MAX_KEY_LENGTH} characters", field=f"metadata.{key}"
            )
        if not isinstance(item, str):
            raise ValidationFailed("metadata values must be strings", field=f"metadata.{key}")
        if len(item) > METADATA_MAX_VALUE_LENGTH:
            raise ValidationFailed(
                f"metadata values are at most {METADATA_MAX_VALUE_LENGTH} characters", field=f"metadata.{key}"
            )
    return dict(value)


def clean_customer(data: dict[str, Any], *, default_locale: str, default_timezone: str) -> dict[str, Any]:
    """``data`` checked and in canonical form; raises ``ValidationFailed`` naming the first bad field."""
    unknown = sorted(set(data) - set(CUSTOMER_FIELDS))
    if unknown:
        raise ValidationFailed(f"unknown field {unknown[0]!r}", field=unknown[0])
    clean: dict[str, Any] = {name: _clean_text(data, name) for name in _TEXT_FIELDS}
    for name in REQUIRED_FIELDS:
        if not clean[name]:
            raise ValidationFailed(f"{name} is required", field=name)
    try:
        validate_email(clean["email"])
    except DjangoValidationError:
        raise ValidationFailed(f"{clean['email']!r} is not a valid e-mail address", field="email") from None
    clean["country"] = validation.country(clean["country"])
    clean["locale"] = clean["locale"] or default_locale
    if clean["locale"] not in LOCALES:
        raise ValidationFailed("locale must be 'de' or 'en'", field="locale")
    clean["timezone"] = validation.timezone(clean["timezone"] or default_timezone)
    if clean["vat_id"]:
        clean["vat_id"] = validation.vat_id(clean["vat_id"])
        if validation.vat_id_country(clean["vat_id"]) != clean["country"]:
            raise ValidationFailed(
                f"the VAT id {clean['vat_id']} is not from the billing country {clean['country']}",
                field="vat_id",
            )
    clean["tax_exempt"] = clean["tax_exempt"] or TaxExempt.NONE
    if clean["tax_exempt"] not in TaxExempt.values:
        raise ValidationFailed("tax_exempt must be 'none', 'exempt' or 'reverse'", field="tax_exempt")
    clean["metadata"] = clean_metadata(data.get("metadata"))
    _clean_einvoicing(clean)
    return clean


def _clean_einvoicing(clean: dict[str, Any]) -> None:
    """The e-invoice settings: a known format, a valid buyer reference (a Leitweg-ID is checked with its
    check digits) and electronic address; XRechnung needs the buyer reference and an address."""
    if clean["einvoice_format"] not in EInvoiceFormat.values:
        raise ValidationFailed(
            "einvoice_format must be '' (ZUGFeRD / Factur-X only) or 'xrechnung'", field="einvoice_format"
        )
    if clean["buyer_reference"]:
        clean["buyer_reference"] = validation.buyer_reference(clean["buyer_reference"])
    if clean["electronic_address"]:
        clean["electronic_address"] = validation.electronic_address(clean["electronic_address"])
    if clean["einvoice_format"] == EInvoiceFormat.XRECHNUNG:
        if not clean["buyer_reference"]:
            raise ValidationFailed(
                "an XRechnung needs the buyer reference: the Leitweg-ID of a public buyer, or the "
                "reference the buyer asked for",
                field="buyer_reference",
            )
        if not (clean["electronic_address"] or clean["email"]):
            raise ValidationFailed(
                "an XRechnung needs the buyer's electronic address or e-mail address",
                field="electronic_address",
            )


def check_xrechnung_seller(tenant: Tenant) -> None:
    """Refuse XRechnung for customers while the tenant lacks the seller contact it requires (BR-DE-2, -6,
    -7): its telephone number and e-mail address."""
    missing = [name for name in ("phone", "email") if not getattr(tenant, name)]
    if missing:
        raise ValidationFailed(
            "an XRechnung needs your telephone number and e-mail address: add "
            + " and ".join(missing)
            + " to the tenant's settings first",
            field="einvoice_format",
        )


def _xrechnung_seller_ready(scope: Scope, clean: dict[str, Any], before: str | None) -> None:
    """When a customer newly asks for XRechnung, the tenant must be able to issue one."""
    if clean["einvoice_format"] == EInvoiceFormat.XRECHNUNG and before != EInvoiceFormat.XRECHNUNG:
        check_xrechnung_seller(Tenant.objects.only("phone", "email").get(pk=scope.tenant_id))


def _tenant_defaults(scope: Scope) -> dict[str, str]:
    tenant = Tenant.objects.only("locale", "timezone").get(pk=scope.tenant_id)
    return {"default_locale": tenant.locale, "default_timezone": tenant.timezone}


def get_customer(scope: Scope, public_id: str, *, field: str = "id") -> Customer:
    """The live (not deleted) customer ``public_id`` of this scope; ``NotFound`` otherwise."""
    customer: Customer | None = live_customers(scope).filter(public_id=public_id).first()
    if customer is None:
        raise NotFound(f"no customer {public_id}", field=field)
    return customer


def get_customer_by_external_id(scope: Scope, external_id: str, *, field: str = "external_id") -> Customer:
    customer: Customer | None = (
        live_customers(scope).filter(external_id=external_id).first() if external_id else None
    )
    if customer is None:
        raise NotFound(f"no customer with external id {external_id!r}", field=field)
    return customer


def _lock_customer(scope: Scope, public_id: str) -> Customer:
    customer: Customer | None = live_customers(scope).select_for_update().filter(public_id=public_id).first()
    if customer is None:
        raise NotFound(f"no customer {public_id}", field="id")
    return customer


def _external_id_taken(external_id: str) -> Conflict:
    return Conflict(f"a customer with external id {external_id!r} exists", field="external_id")


def _test_clock(scope: Scope, public_id: Any) -> TestClock | None:
    if public_id is None:
        return None
    if scope.livemode:
        raise ValidationFailed(
            "test clocks exist in test mode only; a live customer cannot attach to one", field="test_clock"
        )
    if not isinstance(public_id, str):
        raise ValidationFailed("test_clock must be a test clock id", field="test_clock")
    return clocks.get_test_clock(scope, public_id, field="test_clock")


@transaction.atomic
def create_customer(scope: Scope, data: dict[str, Any]) -> Customer:
    """A new customer; ``data["test_clock"]`` (test mode only) attaches it to a test clock for good."""
    data = dict(data)
    test_clock = _test_clock(scope, data.pop("test_clock", None))
    clean = clean_customer(data, **_tenant_defaults(scope))
    _xrechnung_seller_ready(scope, clean, None)
    now = test_clock.frozen_time if test_clock is not None else clock.now()
    customer = Customer(
        public_id=new_id("cus", at=now),
        tenant_id=scope.tenant_id,
        livemode=scope.livemode,
        created_at=now,
        test_clock=test_clock,
        **clean,
    )
    if clean["external_id"]:
        # Only the external id can collide; the savepoint keeps the transaction usable for the 409.
        try:
            with transaction.atomic():
                customer.save(force_insert=True)
        except IntegrityError:
            raise _external_id_taken(clean["external_id"]) from None
    else:
        customer.save(force_insert=True)
    record(scope, "customer.created", "customer", customer.public_id, after=customer_snapshot(customer))
    return customer


@transaction.atomic
def update_customer(scope: Scope, public_id: str, changes: dict[str, Any]) -> Customer:
    """Change the fields in ``changes``; the others keep their values."""
    customer = _lock_customer(scope, public_id)
    before = customer_snapshot(customer)
    current = {name: before[name] for name in CUSTOMER_FIELDS}
    clean = clean_customer({**current, **changes}, **_tenant_defaults(scope))
    _xrechnung_seller_ready(scope, clean, before["einvoice_format"])
    for name, value in clean.items():
        setattr(customer, name, value)
    try:
        with transaction.atomic():
            customer.save(update_fields=CUSTOMER_FIELDS)
    except IntegrityError:
        if clean["external_id"]:
            raise _external_id_taken(clean["external_id"]) from None
        raise
    record(
        scope,
        "customer.updated",
        "customer",
        customer.public_id,
        before=before,
        after=customer_snapshot(customer),
    )
    return customer


@transaction.atomic
def delete_customer(scope: Scope, public_id: str) -> Customer:
    """Hide the customer from the API; the row stays for the invoices that name it."""
    customer = _lock_customer(scope, public_id)
    before = customer_snapshot(customer)
    customer.deleted_at = clock.now()
    customer.save(update_fields=("deleted_at",))
    record(
        scope,
        "customer.deleted",
        "customer",
        customer.public_id,
        before=before,
        after=customer_snapshot(customer),
    )
    return customer
