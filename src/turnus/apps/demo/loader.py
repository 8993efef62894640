"""A demo merchant with a small catalogue, customers and subscriptions, to look around in."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction

from turnus.apps.catalog import services as catalog
from turnus.apps.customers import services as customers
from turnus.apps.subscriptions import services as subscriptions
from turnus.apps.tenants import logos
from turnus.apps.tenants import services as tenants
from turnus.apps.tenants.models import ApiKey, Tenant
from turnus.core.scope import Actor, ActorKind, Scope

DEMO_SLUG = "demo"
ACTOR = Actor(ActorKind.CLI, "turnus demo load")

TENANT = {
    "slug": DEMO_SLUG,
    "legal_name": "Turnus Demo GmbH",
    "address_line1": "Friedrichstraße 123",
    "postal_code": "10117",
    "city": "Berlin",
    "country": "DE",
    "vat_id": "DE136695976",
    "tax_number": "37/123/45678",
    "default_currency": "EUR",
    "timezone": "Europe/Berlin",
    "locale": "de",
    "iban": "DE89370400440532013000",
    "bic": "COBADEFFXXX",
    "sepa_creditor_id": "DE98ZZZ09999999999",
    "email": "billing@demo.example",
    "phone": "+49 30 1234567-0",
    "contact_name": "Petra Schneider",
}
#: The Leitweg-ID of the demo's public buyer, who gets its invoices as XRechnung.
LEITWEG_ID = "05999000-DEMO-77"
#: The demo merchant's logo, drawn here: a turning ring and the name.
LOGO = (
    b'<svg xmlns="http://www.w3.org/2000/svg" width="240" height="60" viewBox="0 0 240 60">'
    b'<circle cx="30" cy="30" r="22" fill="none" stroke="#0b6e4f" stroke-width="8" stroke-dasharray="52 17"/>'
    b'<circle cx="30" cy="30" r="7" fill="#f2a541"/>'
    b'<text x="64" y="39" font-family="Liberation Sans, DejaVu Sans, sans-serif" font-size="26" '
    b'font-weight="bold" fill="#0b6e4f">Turnus Demo</text>'
    b"</svg>"
)


def _charge(
    code: str, en: str, de: str, kind: str, price: dict[str, object], **extra: object
) -> dict[str, object]:
    return {"code": code, "name_en": en, "name_de": de, "kind": kind, "price": price, **extra}


def _monthly(amount: str) -> list[dict[str, object]]:
    return [
        _charge(
            "base", "Monthly fee", "Monatsgebühr", "recurring", {"model": "per_unit", "unit_price": amount}
        )
    ]


@dataclass(frozen=True)
class DemoAccess:
    tenant: Tenant
    secret_key: str
    admin_user: str | None
    admin_password: str
    created: bool


def _secret_path() -> Path:
    return Path(settings.VAR_DIR) / "demo-access.txt"


def _catalogue(scope: Scope) -> None:
    product = catalog.create_product(
        scope,
        {
            "name_en": "Cloud Office",
            "name_de": "Cloud Office",
            "description_en": "Online office suite for teams",
            "description_de": "Online-Büro für Teams",
        },
    )
    calls = catalog.create_billable_metric(
        scope,
        {
            "code": "api_calls",
            "name_en": "API calls",
            "name_de": "API-Aufrufe",
            "aggregation": "sum",
            "property": "calls",
        },
    )
    starter = catalog.create_plan(
        scope,
        {
            "code": "starter",
            "product": product.public_id,
            "name_en": "Starter",
            "name_de": "Starter",
            "currency": "EUR",
            "interval": {"unit": "month"},
            "trial_days": 14,
            "charges": _monthly("9.90"),
        },
    )
    business = catalog.create_plan(
        scope,
        {
            "code": "business",
            "product": product.public_id,
            "name_en": "Business",
            "name_de": "Business",
            "currency": "EUR",
            "interval": {"unit": "month"},
            "charges": [
                _charge(
                    "seats",
                    "Seats",
                    "Arbeitsplätze",
                    "recurring",
                    {"model": "per_unit", "unit_price": "29.90"},
                ),
                _charge(
                    "api",
                    "API calls",
                    "API-Aufrufe",
                    "metered",
                    {
                        "model": "graduated",
                        "tiers": [
                            {"up_to": "10000", "unit_price": "0"},
                            {"up_to": "100000", "unit_price": "0.002"},
                            {"up_to": None, "unit_price": "0.001"},
                        ],
                    },
                    metric=calls.public_id,
                ),
            ],
        },
    )
    yearly = catalog.create_plan(
        scope,
        {
            "code": "business-yearly",
            "product": product.public_id,
            "name_en": "Business, yearly",
            "name_de": "Business, jährlich",
            "currency": "EUR",
            "interval": {"unit": "month"},
            "contract": {
                "initial_term": {"unit": "month", "count": 12},
                "initial_notice": {"unit": "month", "count": 1},
                "renewal_term": {"unit": "month", "count": 1},
                "renewal_notice": {"unit": "week", "count": 2},
            },
            "charges": _monthly("24.90"),
        },
    )
    catalog.create_addon(
        scope,
        {
            "code": "priority-support",
            "name_en": "Priority support",
            "name_de": "Priority-Support",
            "currency": "EUR",
            "interval": {"unit": "month"},
            "price": {"model": "flat", "amount": "5.00"},
        },
    )
    catalog.create_coupon(
        scope,
        {
            "code": "WELCOME10",
            "name": "10 % welcome discount",
            "kind": "percentage",
            "value": "10",
            "duration": "repeating",
            "periods": 3,
        },
    )

    erika = customers.create_customer(
        scope,
        {
            "name": "Erika Mustermann",
            "email": "erika@example.com",
            "address_line1": "Musterweg 5",
            "postal_code": "50667",
            "city": "Köln",
            "country": "DE",
            "locale": "de",
            "external_id": "shop-1001",
        },
    )
    acme = customers.create_customer(
        scope,
        {
            "name": "Max Schmidt",
            "company": "Schmidt & Partner GmbH",
            "email": "buchhaltung@schmidt.example",
            "address_line1": "Hafenstraße 1",
            "postal_code": "20457",
            "city": "Hamburg",
            "country": "DE",
            "vat_id": "DE136695976",
            "external_id": "shop-1002",
        },
    )
    alpen = customers.create_customer(
        scope,
        {
            "name": "Anna Huber",
            "company": "Alpen Software GmbH",
            "email": "office@alpen.example",
            "address_line1": "Ringstraße 10",
            "postal_code": "1010",
            "city": "Wien",
            "country": "AT",
            "vat_id": "ATU13585627",
            "locale": "en",
            "timezone": "Europe/Vienna",
            "external_id": "shop-1003",
        },
    )

    town = customers.create_customer(
        scope,
        {
            "name": "Jonas Weber",
            "company": "Stadtverwaltung Musterstadt",
            "email": "rechnungseingang@musterstadt.example",
            "address_line1": "Rathausplatz 1",
            "postal_code": "59999",
            "city": "Musterstadt",
            "country": "DE",
            "locale": "de",
            "einvoice_format": "xrechnung",
            "buyer_reference": LEITWEG_ID,
            "electronic_address": f"0204:{LEITWEG_ID}",
            "external_id": "shop-1004",
        },
    )

    subscriptions.create_subscription(scope, customer=erika.public_id, plan=starter.public_id)
    subscriptions.create_subscription(
        scope, customer=acme.public_id, plan=business.public_id, quantity=5, coupon="WELCOME10"
    )
    yearly_sub = subscriptions.create_subscription(
        scope, customer=alpen.public_id, plan=yearly.public_id, quantity=2
    )
    subscriptions.cancel_subscription(scope, yearly_sub.public_id, mode="contract_end")
    subscriptions.create_subscription(scope, customer=town.public_id, plan=business.public_id, quantity=8)


def _admin_user(password: str) -> str | None:
    """The demo back-office user with ``password``; ``None`` if an ``admin`` of someone else's exists."""
    user_model = get_user_model()
    user, created = user_model.objects.get_or_create(
        username="admin", defaults={"is_staff": True, "is_superuser": True}
    )
    if not created and not user.check_password(password):
        return None
    if created:
        user.set_password(password)
        user.save()
    return str(user.get_username())


@transaction.atomic
def load_demo() -> DemoAccess:
    """Create the demo merchant once; later calls return its access again (kept in ``var/``)."""
    path = _secret_path()
    tenant = Tenant.objects.filter(slug=DEMO_SLUG).first()
    created = tenant is None
    if tenant is None:
        tenant = tenants.create_tenant(dict(TENANT), actor=ACTOR)
        logos.set_logo(tenant, LOGO, actor=ACTOR)
        _catalogue(Scope(tenant.pk, False, ACTOR))
    stored = path.read_text().split() if path.exists() else []
    key = stored[0] if stored else ""
    password = stored[1] if len(stored) > 1 else ""
    active = tenants.find_active_key(key) if key else None
    if (
        active is None
        or active.tenant_id != tenant.pk
        or active.livemode
        or active.kind != ApiKey.Kind.SECRET
    ):
        key = tenants.create_api_key(tenant, livemode=False, name="demo", actor=ACTOR).plaintext
    if not password:
        password = secrets.token_urlsafe(12)
    user = _admin_user(password)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"{key}\n{password}\n")
    path.chmod(0o600)
    return DemoAccess(tenant, key, user, password, created)
