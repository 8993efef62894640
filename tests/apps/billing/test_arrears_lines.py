"""In arrears, the used time of the plan is its own line; the prorations of seat and add-on changes are
lines of their own, as on an invoice billed in advance."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from tests.apps.billing.support import base_charge, scope_of
from tests.apps.customers.support import customer_data
from turnus.apps.billing import sweep
from turnus.apps.billing.models import Invoice, InvoiceLine
from turnus.apps.catalog import services as catalog
from turnus.apps.customers import services as customers
from turnus.apps.subscriptions import services as subscriptions
from turnus.core.clock import FrozenClock, use_clock

pytestmark = pytest.mark.django_db

#: 1 June 2026, midnight in Berlin: June has 30 days.
JUNE = datetime(2026, 5, 31, 22, 0, tzinfo=UTC)
JULY = datetime(2026, 6, 30, 22, 0, tzinfo=UTC)
AUGUST = datetime(2026, 7, 31, 22, 0, tzinfo=UTC)
#: 11 June, 10:00 in Berlin: by day, the 20 of June's 30 days from the 11th on are left.
JUNE_11 = datetime(2026, 6, 11, 8, 0, tzinfo=UTC)

SEATS = {
    "code": "seats",
    "name_en": "Seats",
    "name_de": "Plätze",
    "kind": "quantity",
    "price": {"model": "per_unit", "unit_price": "10.00"},
}

Line = tuple[str, str, Decimal, Decimal, datetime | None, datetime | None]


@pytest.fixture
def scope(tenant):
    return scope_of(tenant)


def _plan(scope, product: str, name: str, fee: str, timing: str, seats: bool = True) -> str:
    data: dict[str, Any] = {
        "code": f"{name.lower()}-{timing}",
        "product": product,
        "name_en": name,
        "name_de": name,
        "currency": "EUR",
        "interval": {"unit": "month", "count": 1},
        "anchoring": "anniversary",
        "billing_timing": timing,
        "charges": [base_charge(fee), SEATS] if seats else [base_charge(fee)],
    }
    return catalog.create_plan(scope, data).public_id


def _subscribed(scope, timing: str, *, seats: bool = True, backups: int = 0) -> tuple[str, str, str]:
    """Subscribed on 1 June to Team (100.00 a month, 5 seats at 10.00 if ``seats``) with ``backups``
    add-ons at 5.00 a month; the run of 1 June has happened. The subscription, its add-on and the
    product's id."""
    with use_clock(FrozenClock(JUNE + timedelta(hours=9))):
        product = catalog.create_product(scope, {"name_en": "Cloud", "name_de": "Cloud"}).public_id
        plan = _plan(scope, product, "Team", "100.00", timing, seats)
        addon = catalog.create_addon(
            scope,
            {
                "code": f"backup-{timing}",
                "name_en": "Backup",
                "name_de": "Backup",
                "currency": "EUR",
                "price": {"model": "per_unit", "unit_price": "5.00"},
                "interval": {"unit": "month", "count": 1},
            },
        ).public_id
        owner = customers.create_customer(scope, customer_data(timezone="Europe/Berlin", locale="en"))
        subscription = subscriptions.create_subscription(
            scope,
            customer=owner.public_id,
            plan=plan,
            quantities={"seats": 5} if seats else None,
            addons=[(addon, backups)] if backups else (),
        ).public_id
        sweep.run_sweep(JUNE + timedelta(hours=9))
    return subscription, addon, product


def _invoice(subscription: str, start: datetime) -> Invoice:
    return Invoice.objects.get(subscription__public_id=subscription, kind="invoice", period_start=start)


def _line(line: InvoiceLine) -> Line:
    return (
        line.kind,
        line.description,
        line.quantity,
        line.net_amount,
        line.period_start,
        line.period_end,
    )


def _lines(invoice: Invoice) -> list[Line]:
    return [_line(line) for line in invoice.lines.order_by("position")]


def _prorations(invoice: Invoice) -> list[Line]:
    return [line for line in _lines(invoice) if line[0].startswith("proration_")]


def _raise_seats(scope, subscription: str) -> None:
    with use_clock(FrozenClock(JUNE_11)):
        subscriptions.change_subscription(scope, subscription, quantities={"seats": 8})


def _raise_backups(scope, subscription: str, addon: str) -> None:
    with use_clock(FrozenClock(JUNE_11)):
        subscriptions.change_addon(scope, subscription, addon=addon, quantity=3)


def test_seats_raised_now_bill_the_whole_fee_as_used_and_the_proration_on_lines_of_its_own(scope):
    subscription, _, _ = _subscribed(scope, "in_arrears")
    _raise_seats(scope, subscription)
    sweep.run_sweep(JULY + timedelta(hours=1))
    june = _invoice(subscription, JUNE)
    # The fee for all of June, the 5 seats June began with, then 5 x 10.00 x 20/30 = 33.33 back and
    # 8 x 10.00 x 20/30 = 53.33 charged for 11 June to 1 July.
    assert _lines(june) == [
        ("used", "Used time: Team", 1, Decimal("100.00"), JUNE, JULY),
        (
            "proration_credit",
            "Credit for unused time: Team (Seats 5 → 8)",
            5,
            Decimal("-33.33"),
            JUNE_11,
            JULY,
        ),
        ("proration_charge", "Remaining time: Team (Seats 5 → 8)", 8, Decimal("53.33"), JUNE_11, JULY),
        ("component", "Seats × 5", 5, Decimal("50.00"), JUNE, JULY),
    ]
    # As before: 100.00 + 50.00 - 33.33 + 53.33.
    assert june.tax_exclusive == Decimal("170.00")
    sweep.run_sweep(AUGUST + timedelta(hours=1))
    assert _lines(_invoice(subscription, JULY)) == [
        ("used", "Used time: Team", 1, Decimal("100.00"), JULY, AUGUST),
        ("component", "Seats × 8", 8, Decimal("80.00"), JULY, AUGUST),
    ]


def test_an_add_on_raised_now_bills_the_whole_fee_as_used_and_the_proration_on_lines_of_its_own(scope):
    subscription, backup, _ = _subscribed(scope, "in_arrears", backups=2)
    _raise_backups(scope, subscription, backup)
    sweep.run_sweep(JULY + timedelta(hours=1))
    june = _invoice(subscription, JUNE)
    # 2 x 5.00 x 20/30 = 6.67 back and 3 x 5.00 x 20/30 = 10.00 charged; no "used" 103.33 up to 11 June.
    assert _lines(june) == [
        ("used", "Used time: Team", 1, Decimal("100.00"), JUNE, JULY),
        (
            "proration_credit",
            "Credit for unused time: Team (Add-on: Backup 2 → 3)",
            2,
            Decimal("-6.67"),
            JUNE_11,
            JULY,
        ),
        (
            "proration_charge",
            "Remaining time: Team (Add-on: Backup 2 → 3)",
            3,
            Decimal("10.00"),
            JUNE_11,
            JULY,
        ),
        ("component", "Seats × 5", 5, Decimal("50.00"), JUNE, JULY),
        ("addon", "Add-on: Backup × 2", 2, Decimal("10.00"), JUNE, JULY),
    ]
    assert june.tax_exclusive == Decimal("163.33")


@pytest.mark.parametrize("change", ["seats", "addon"])
def test_in_arrears_a_proration_shows_as_the_invoice_in_advance_shows_it(scope, change):
    shown = []
    for timing, billed in (("in_advance", JULY), ("in_arrears", JUNE)):
        subscription, backup, _ = _subscribed(scope, timing, backups=2)
        if change == "seats":
            _raise_seats(scope, subscription)
        else:
            _raise_backups(scope, subscription, backup)
        sweep.run_sweep(JULY + timedelta(hours=1))
        shown.append(_prorations(_invoice(subscription, billed)))
    advance, arrears = shown
    assert len(arrears) == 2
    assert arrears == advance


def test_a_plan_changed_now_is_still_billed_as_the_used_time_of_each_plan(scope):
    subscription, _, product = _subscribed(scope, "in_arrears", seats=False)
    with use_clock(FrozenClock(JUNE_11)):
        business = _plan(scope, product, "Business", "200.00", "in_arrears", seats=False)
        subscriptions.change_subscription(scope, subscription, plan=business)
    sweep.run_sweep(JULY + timedelta(hours=1))
    june = _invoice(subscription, JUNE)
    # Team for the 10 days 1-10 June: 100.00 - 100.00 x 20/30 = 33.33; Business for the 20 days left:
    # 200.00 x 20/30 = 133.33.
    assert _lines(june) == [
        ("used", "Used time: Team", 1, Decimal("33.33"), JUNE, JUNE_11),
        ("used", "Used time: Business", 1, Decimal("133.33"), JUNE_11, JULY),
    ]
    assert june.tax_exclusive == Decimal("166.66")
