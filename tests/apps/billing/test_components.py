"""Quantity components and add-ons are billed for every period, besides the proration of their changes."""

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from tests.apps.billing.support import APRIL, MARCH, MAY, scope_of
from tests.apps.customers.support import customer_data
from turnus.apps.billing import services, sweep
from turnus.apps.billing.models import Invoice
from turnus.apps.catalog import services as catalog
from turnus.apps.customers import services as customers
from turnus.apps.subscriptions import services as subscriptions
from turnus.core.clock import FrozenClock, SimulatedClock, use_clock
from turnus.engine.periods import local_midnight

pytestmark = pytest.mark.django_db

SEATS = {
    "code": "seats",
    "name_en": "Seats",
    "name_de": "Plätze",
    "kind": "quantity",
    "price": {"model": "per_unit", "unit_price": "10.00"},
}
#: 16 March, the day of a change: 16 of March's 31 days are left.
MID_MARCH = datetime(2026, 3, 16, 9, 0, tzinfo=UTC)


def _berlin_midnight(day: date) -> datetime:
    return local_midnight(day, "Europe/Berlin")


@pytest.fixture
def clock():
    frozen = FrozenClock(MARCH + timedelta(hours=9))
    with use_clock(frozen):
        yield frozen


@pytest.fixture
def scope(tenant):
    return scope_of(tenant)


def _plan(scope, **overrides: Any) -> str:
    product = catalog.create_product(scope, {"name_en": "Cloud", "name_de": "Cloud"})
    data: dict[str, Any] = {
        "code": "team",
        "product": product.public_id,
        "name_en": "Team",
        "name_de": "Team",
        "currency": "EUR",
        "interval": {"unit": "month", "count": 1},
        "anchoring": "anniversary",
        "charges": [
            {
                "code": "base",
                "name_en": "Base fee",
                "name_de": "Grundgebühr",
                "kind": "recurring",
                "price": {"model": "flat", "amount": "100.00"},
            },
            SEATS,
        ],
        **overrides,
    }
    return catalog.create_plan(scope, data).public_id


def _addon(scope, code: str, amount: str, unit: str, **overrides: Any) -> str:
    data = {
        "code": code,
        "name_en": code.title(),
        "name_de": code.title(),
        "currency": "EUR",
        "price": {"model": "per_unit", "unit_price": amount},
        "interval": {"unit": unit, "count": 1},
        **overrides,
    }
    return catalog.create_addon(scope, data).public_id


def _subscribe(scope, seats: int = 5, addons=(), **plan_overrides: Any) -> str:
    plan_id = _plan(scope, **plan_overrides)
    owner = customers.create_customer(scope, customer_data(timezone="Europe/Berlin", locale="en"))
    return subscriptions.create_subscription(
        scope, customer=owner.public_id, plan=plan_id, quantities={"seats": seats}, addons=addons
    ).public_id


def _invoice(subscription: str, start: datetime) -> Invoice:
    return Invoice.objects.get(subscription__public_id=subscription, kind="invoice", period_start=start)


def _lines(invoice: Invoice) -> list[tuple[str, Decimal, Decimal]]:
    return [(line.kind, line.quantity, line.net_amount) for line in invoice.lines.order_by("position")]


def _change(scope, subscription: str, at: datetime, seats: int) -> None:
    with use_clock(FrozenClock(at)):
        subscriptions.change_subscription(scope, subscription, quantities={"seats": seats})


def test_the_first_invoice_bills_the_base_fee_and_five_seats_and_the_next_period_again(scope, clock):
    subscription = _subscribe(scope)
    sweep.run_sweep(clock.now())
    first = _invoice(subscription, MARCH)
    assert _lines(first) == [("recurring", 1, Decimal("100.00")), ("component", 5, Decimal("50.00"))]
    seats = first.lines.get(kind="component")
    assert (seats.description, seats.unit_price, seats.metadata) == ("Seats × 5", 10, {"charge": "seats"})
    assert (seats.period_start, seats.period_end) == (MARCH, APRIL)
    assert (first.tax_exclusive, first.tax_total, first.grand_total) == (
        Decimal("150.00"),
        Decimal("28.50"),
        Decimal("178.50"),
    )
    sweep.run_sweep(APRIL + timedelta(hours=1))
    second = _invoice(subscription, APRIL)
    assert _lines(second) == [("recurring", 1, Decimal("100.00")), ("component", 5, Decimal("50.00"))]
    assert (second.lines.get(kind="component").period_start, second.period_end) == (APRIL, MAY)


def test_an_increase_mid_period_is_prorated_now_and_the_next_period_bills_the_new_quantity(scope, clock):
    subscription = _subscribe(scope)
    sweep.run_sweep(clock.now())
    _change(scope, subscription, MID_MARCH, 8)
    assert _invoice(subscription, MARCH).tax_exclusive == Decimal("150.00")
    sweep.run_sweep(APRIL + timedelta(hours=1))
    april = _invoice(subscription, APRIL)
    # 16/31 of 50 credited (25.81), 16/31 of 80 charged (41.29), then 8 seats for April.
    assert sorted(_lines(april)) == sorted(
        [
            ("proration_credit", 5, Decimal("-25.81")),
            ("proration_charge", 8, Decimal("41.29")),
            ("recurring", 1, Decimal("100.00")),
            ("component", 8, Decimal("80.00")),
        ]
    )
    assert april.tax_exclusive == Decimal("195.48")
    sweep.run_sweep(MAY + timedelta(hours=1))
    assert _lines(_invoice(subscription, MAY)) == [
        ("recurring", 1, Decimal("100.00")),
        ("component", 8, Decimal("80.00")),
    ]


def test_a_decrease_at_the_period_end_bills_the_lower_quantity_from_the_next_period_on(scope, clock):
    subscription = _subscribe(scope)
    sweep.run_sweep(clock.now())
    _change(scope, subscription, MID_MARCH, 3)
    sweep.run_sweep(APRIL + timedelta(hours=1))
    assert _lines(_invoice(subscription, APRIL)) == [
        ("recurring", 1, Decimal("100.00")),
        ("component", 3, Decimal("30.00")),
    ]
    assert _invoice(subscription, MARCH).tax_exclusive == Decimal("150.00")


def test_a_preview_mid_period_shows_the_quantity_the_period_began_with(scope, clock):
    subscription = _subscribe(scope)
    _change(scope, subscription, MID_MARCH, 8)
    with use_clock(FrozenClock(MID_MARCH + timedelta(hours=1))):
        built = services.preview_invoice(scope, subscription)
    assert built.composed is not None
    components = [line for line in built.composed.lines if line.kind == "component"]
    assert [(line.quantity, line.net_amount.amount) for line in components] == [(5, Decimal("50.00"))]
    assert built.composed.totals.tax_exclusive.amount == Decimal("165.48")


def test_in_arrears_each_period_bills_the_seats_it_began_with_and_the_proration_of_changes(scope, clock):
    subscription = _subscribe(scope, billing_timing="in_arrears")
    sweep.run_sweep(clock.now())
    assert not Invoice.objects.filter(subscription__public_id=subscription).exists()
    _change(scope, subscription, MID_MARCH, 8)
    sweep.run_sweep(APRIL + timedelta(hours=1))
    march = _invoice(subscription, MARCH)
    # used: 100 + 41.29 - 25.81 (the proration of the change), plus the 5 seats March began with.
    assert _lines(march) == [("used", 1, Decimal("115.48")), ("component", 5, Decimal("50.00"))]
    assert march.period_end == APRIL
    with use_clock(FrozenClock(APRIL + timedelta(days=3))):
        subscriptions.change_subscription(scope, subscription, quantities={"seats": 3})
    sweep.run_sweep(MAY + timedelta(hours=1))
    assert _lines(_invoice(subscription, APRIL)) == [
        ("used", 1, Decimal("100.00")),
        ("component", 8, Decimal("80.00")),
    ]
    sweep.run_sweep(datetime(2026, 5, 31, 23, tzinfo=UTC))
    assert _lines(_invoice(subscription, MAY)) == [
        ("used", 1, Decimal("100.00")),
        ("component", 3, Decimal("30.00")),
    ]


def test_a_monthly_add_on_is_billed_at_its_quantity_every_period(scope, clock):
    addon = _addon(scope, "backup", "5.00", "month")
    subscription = _subscribe(scope, addons=[(addon, 2)])
    sweep.run_sweep(clock.now())
    sweep.run_sweep(APRIL + timedelta(hours=1))
    for start, end in ((MARCH, APRIL), (APRIL, MAY)):
        invoice = _invoice(subscription, start)
        assert _lines(invoice) == [
            ("recurring", 1, Decimal("100.00")),
            ("component", 5, Decimal("50.00")),
            ("addon", 2, Decimal("10.00")),
        ]
        line = invoice.lines.get(kind="addon")
        assert (line.description, line.metadata) == ("Add-on: Backup × 2", {"addon": "backup"})
        assert (line.period_start, line.period_end, line.vat_rate) == (start, end, 19)
        assert invoice.tax_exclusive == Decimal("160.00")


def test_a_yearly_add_on_on_a_monthly_plan_is_billed_once_a_year(scope, clock):
    addon = _addon(scope, "support", "60.00", "year")
    subscription = _subscribe(scope, addons=[(addon, 1)])
    starts = [date(2026 + (2 + month) // 12, (2 + month) % 12 + 1, 1) for month in range(14)]
    for start in starts:
        sweep.run_sweep(_berlin_midnight(start) + timedelta(hours=1))
    invoices = Invoice.objects.filter(subscription__public_id=subscription, kind="invoice").order_by(
        "period_start"
    )
    assert invoices.count() == 14
    addon_lines = [list(invoice.lines.filter(kind="addon")) for invoice in invoices]
    billed = [index for index, lines in enumerate(addon_lines) if lines]
    assert billed == [0, 12]
    first, again = addon_lines[0][0], addon_lines[12][0]
    assert (first.net_amount, again.net_amount) == (Decimal("60.00"), Decimal("60.00"))
    assert (first.period_start, first.period_end) == (MARCH, _berlin_midnight(date(2027, 3, 1)))
    assert again.period_start == _berlin_midnight(date(2027, 3, 1))
    assert [invoice.tax_exclusive for invoice in invoices].count(Decimal("150.00")) == 12


def test_an_add_on_of_another_tax_category_is_taxed_at_its_own_rate(scope, clock):
    addon = _addon(scope, "books", "10.00", "month", tax_category="reduced")
    subscription = _subscribe(scope, addons=[(addon, 1)])
    sweep.run_sweep(clock.now())
    invoice = _invoice(subscription, MARCH)
    assert invoice.lines.get(kind="addon").vat_rate == 7
    assert invoice.lines.get(kind="component").vat_rate == 19
    assert invoice.tax_total == Decimal("28.50") + Decimal("0.70")


def test_a_trial_bills_no_seats_and_the_first_paid_period_bills_them(scope, clock):
    addon = _addon(scope, "backup", "5.00", "month")
    subscription = _subscribe(scope, addons=[(addon, 1)], trial_days=14)
    sweep.run_sweep(clock.now())
    assert not Invoice.objects.filter(subscription__public_id=subscription).exists()
    trial_end = _berlin_midnight(date(2026, 3, 15))
    sweep.run_sweep(trial_end + timedelta(hours=1))
    invoice = Invoice.objects.get(subscription__public_id=subscription)
    assert invoice.period_start == trial_end
    assert _lines(invoice) == [
        ("recurring", 1, Decimal("100.00")),
        ("component", 5, Decimal("50.00")),
        ("addon", 1, Decimal("5.00")),
    ]


def test_zero_seats_bill_no_seat_line(scope, clock):
    subscription = _subscribe(scope, seats=0)
    sweep.run_sweep(clock.now())
    assert _lines(_invoice(subscription, MARCH)) == [("recurring", 1, Decimal("100.00"))]


def test_a_first_calendar_period_bills_the_seats_prorated_like_the_fee(scope):
    with use_clock(FrozenClock(datetime(2026, 3, 16, 9, tzinfo=UTC))):
        subscription = _subscribe(scope, anchoring="calendar")
        sweep.run_sweep(datetime(2026, 3, 16, 9, tzinfo=UTC))
    invoice = Invoice.objects.get(subscription__public_id=subscription)
    # 16 of March's 31 days: 100 x 16/31 = 51.61 and 50 x 16/31 = 25.81.
    assert _lines(invoice) == [("recurring", 1, Decimal("51.61")), ("component", 5, Decimal("25.81"))]


def test_a_change_now_to_a_new_billing_cycle_charges_the_seats_once_by_its_proration(scope, clock):
    subscription = _subscribe(scope)
    sweep.run_sweep(clock.now())
    yearly_seats = {**SEATS, "price": {"model": "per_unit", "unit_price": "100.00"}}
    base = {
        "code": "base",
        "name_en": "Base",
        "kind": "recurring",
        "price": {"model": "flat", "amount": "2000"},
    }
    yearly = _plan(scope, code="team_yearly", interval={"unit": "year"}, charges=[base, yearly_seats])
    with use_clock(FrozenClock(MID_MARCH)):
        subscriptions.change_subscription(scope, subscription, plan=yearly)
    with use_clock(FrozenClock(MID_MARCH + timedelta(hours=1))):
        services.create_draft(scope, subscription)
    changed_on = _berlin_midnight(date(2026, 3, 16))
    invoice = _invoice(subscription, changed_on)
    assert sorted(_lines(invoice)) == sorted(
        [
            ("proration_credit", 1, Decimal("-51.61")),
            ("proration_credit", 5, Decimal("-25.81")),
            ("recurring", 1, Decimal("2000.00")),
            ("proration_charge", 5, Decimal("500.00")),
        ]
    )
    next_year = _berlin_midnight(date(2027, 3, 16))
    sweep.run_sweep(next_year + timedelta(hours=1))
    assert _lines(_invoice(subscription, next_year)) == [
        ("recurring", 1, Decimal("2000.00")),
        ("component", 5, Decimal("500.00")),
    ]


def test_a_seat_change_made_on_a_test_clock_counts_from_the_clocks_time_not_the_real_time(scope, clock):
    """The audit trail records when a change happened in the customer's time; the real time of the
    recording (today, long before or after the simulated months) must not decide which quantity a
    period bills."""
    subscription = _subscribe(scope)
    sweep.run_sweep(clock.now())
    with use_clock(SimulatedClock(MID_MARCH)):
        subscriptions.change_subscription(scope, subscription, quantities={"seats": 8})
    sweep.run_sweep(APRIL + timedelta(hours=1))
    assert ("component", 8, Decimal("80.00")) in _lines(_invoice(subscription, APRIL))
