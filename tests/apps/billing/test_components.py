"""Quantity components and add-ons are billed for every period, besides the proration of their changes."""

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from tests.apps.billing.support import APRIL, MARCH, MAY, base_charge, calls, make_addon, scope_of, subscribe
from tests.apps.customers.support import customer_data
from turnus.apps.billing import services, sweep
from turnus.apps.billing.models import BillingSchedule, Invoice, InvoicedCharge
from turnus.apps.catalog import services as catalog
from turnus.apps.customers import services as customers
from turnus.apps.subscriptions import services as subscriptions
from turnus.apps.subscriptions.models import SubscriptionCharge
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
    # The fee used in March, the change's proration as its own lines (as in advance), the 5 seats March
    # began with.
    assert _lines(march) == [
        ("used", 1, Decimal("100.00")),
        ("proration_credit", 5, Decimal("-25.81")),
        ("proration_charge", 8, Decimal("41.29")),
        ("component", 5, Decimal("50.00")),
    ]
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
    addon = make_addon(scope, "backup", "5.00", "month")
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
    addon = make_addon(scope, "support", "60.00", "year")
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
    addon = make_addon(scope, "books", "10.00", "month", tax_category="reduced")
    subscription = _subscribe(scope, addons=[(addon, 1)])
    sweep.run_sweep(clock.now())
    invoice = _invoice(subscription, MARCH)
    assert invoice.lines.get(kind="addon").vat_rate == 7
    assert invoice.lines.get(kind="component").vat_rate == 19
    assert invoice.tax_total == Decimal("28.50") + Decimal("0.70")


def test_a_trial_bills_no_seats_and_the_first_paid_period_bills_them(scope, clock):
    addon = make_addon(scope, "backup", "5.00", "month")
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


# --- a plan without a base fee (per seat only) ---------------------------------------------------------

#: 1 June 2026, midnight in Berlin: June has 30 days.
JUNE = datetime(2026, 5, 31, 22, 0, tzinfo=UTC)
JULY = datetime(2026, 6, 30, 22, 0, tzinfo=UTC)
#: 11 June, 10:00 in Berlin: by day, the 20 days from the 11th on (the day of the cut counts) are unused.
JUNE_11 = datetime(2026, 6, 11, 8, 0, tzinfo=UTC)


def _per_seat(scope, seats: int = 5, addons=(), **plan_overrides: Any) -> str:
    """A subscription to a plan whose base fee is 0.00 and whose seats cost 10.00 each per month."""
    return _subscribe(scope, seats, addons, charges=[base_charge("0.00"), SEATS], **plan_overrides)


def _seatless(scope, addons=(), **plan_overrides: Any) -> str:
    """A subscription to a plan without a base fee and without seats."""
    plan_id = _plan(scope, charges=[base_charge("0.00")], **plan_overrides)
    owner = customers.create_customer(scope, customer_data(timezone="Europe/Berlin", locale="en"))
    return subscriptions.create_subscription(
        scope, customer=owner.public_id, plan=plan_id, addons=addons
    ).public_id


def _charges(subscription: str) -> list[tuple[str, Decimal]]:
    rows = SubscriptionCharge.objects.filter(subscription__public_id=subscription).order_by("pk")
    return [(row.kind, row.amount) for row in rows]


def test_a_plan_without_a_base_fee_bills_its_seats_every_period_and_no_zero_fee_line(scope, clock):
    subscription = _per_seat(scope)
    sweep.run_sweep(clock.now())
    sweep.run_sweep(APRIL + timedelta(hours=1))
    for start, end in ((MARCH, APRIL), (APRIL, MAY)):
        invoice = _invoice(subscription, start)
        # 5 seats x 10.00 = 50.00 net a month; the 0.00 fee that marks the paid period makes no line.
        assert _lines(invoice) == [("component", 5, Decimal("50.00"))]
        line = invoice.lines.get()
        assert (line.description, line.period_start, line.period_end) == ("Seats × 5", start, end)
        assert (invoice.tax_exclusive, invoice.grand_total) == (Decimal("50.00"), Decimal("59.50"))
    assert _charges(subscription) == [("recurring", Decimal("0.00"))] * 2


def test_a_plan_without_a_base_fee_bills_its_seats_in_arrears_at_each_period_end(scope, clock):
    subscription = _per_seat(scope, billing_timing="in_arrears")
    sweep.run_sweep(clock.now())
    assert not Invoice.objects.filter(subscription__public_id=subscription).exists()
    sweep.run_sweep(APRIL + timedelta(hours=1))
    assert _lines(_invoice(subscription, MARCH)) == [("component", 5, Decimal("50.00"))]
    sweep.run_sweep(MAY + timedelta(hours=1))
    assert _lines(_invoice(subscription, APRIL)) == [("component", 5, Decimal("50.00"))]


def test_a_plan_without_a_base_fee_bills_no_seats_in_its_trial_and_its_add_ons_after(scope, clock):
    addon = make_addon(scope, "backup", "5.00", "month")
    subscription = _per_seat(scope, addons=[(addon, 1)], trial_days=14)
    sweep.run_sweep(clock.now())
    assert not Invoice.objects.filter(subscription__public_id=subscription).exists()
    trial_end = _berlin_midnight(date(2026, 3, 15))
    sweep.run_sweep(trial_end + timedelta(hours=1))
    invoice = Invoice.objects.get(subscription__public_id=subscription)
    assert invoice.period_start == trial_end
    assert _lines(invoice) == [("component", 5, Decimal("50.00")), ("addon", 1, Decimal("5.00"))]


def test_a_free_plan_with_only_an_add_on_bills_the_add_on_every_period(scope, clock):
    addon = make_addon(scope, "support", "20.00", "month")
    subscription = _seatless(scope, [(addon, 1)])
    sweep.run_sweep(clock.now())
    sweep.run_sweep(APRIL + timedelta(hours=1))
    for start in (MARCH, APRIL):
        assert _lines(_invoice(subscription, start)) == [("addon", 1, Decimal("20.00"))]


def test_a_free_plan_without_seats_and_add_ons_stores_no_marks_and_bills_nothing(scope, clock):
    subscription = _seatless(scope)
    for instant in (clock.now(), APRIL + timedelta(hours=1), MAY + timedelta(hours=1)):
        summary = sweep.run_sweep(instant)
        assert (summary.invoices_created, summary.errors) == (0, [])
    assert not Invoice.objects.filter(subscription__public_id=subscription).exists()
    # The 0.00 fees mark nothing here: none is stored, so no period stays due and the batch takes it.
    assert _charges(subscription) == []


def _marks(subscription: str) -> list[tuple[datetime, datetime]]:
    """The periods of the subscription's 0.00 marks (none of them is ever invoiced here)."""
    rows = SubscriptionCharge.objects.filter(subscription__public_id=subscription, amount=0)
    return [(row.period_start, row.period_end) for row in rows.order_by("period_start")]


@pytest.mark.parametrize("timing", ["in_advance", "in_arrears"])
def test_a_plan_without_a_base_fee_and_without_seats_settles_each_period_without_an_invoice(
    scope, clock, timing
):
    subscription = _per_seat(scope, seats=0, billing_timing=timing)
    for start, end in ((MARCH, APRIL), (APRIL, MAY), (MAY, JUNE)):
        summary = sweep.run_sweep(start + timedelta(hours=1))
        assert (summary.subscriptions, summary.invoices_created, summary.errors) == (1, 0, [])
        schedule = BillingSchedule.objects.get(subscription__public_id=subscription)
        assert schedule.next_billing_at == end
        # Nothing is due again before the next period begins.
        assert sweep.run_sweep(start + timedelta(hours=2)).subscriptions == 0
    assert not Invoice.objects.filter(subscription__public_id=subscription).exists()
    # The marks of the periods that are over billed nothing and are gone; only the current period's
    # stays (a change within it may still bill by it), so no period is taken up again.
    assert _marks(subscription) == [(MAY, JUNE)]


def test_seats_added_to_a_period_that_began_without_any_are_credited_when_cancelled_now(scope):
    with use_clock(FrozenClock(JUNE + timedelta(hours=9))):
        subscription = _per_seat(scope, seats=0, credit_unused_on_cancel=True)
        sweep.run_sweep(JUNE + timedelta(hours=9))
    assert not Invoice.objects.filter(subscription__public_id=subscription).exists()
    june_5 = datetime(2026, 6, 5, 8, 0, tzinfo=UTC)
    _change(scope, subscription, june_5, 5)
    sweep.run_sweep(june_5 + timedelta(minutes=1))
    # 26 of June's 30 days at 5 seats: 50.00 x 26/30 = 43.33.
    assert _lines(_invoice(subscription, JUNE)) == [("proration_charge", 5, Decimal("43.33"))]
    with use_clock(FrozenClock(JUNE_11)):
        subscriptions.cancel_subscription(scope, subscription, mode="now")
    sweep.run_sweep(JUNE_11 + timedelta(minutes=1))
    closing = Invoice.objects.filter(subscription__public_id=subscription).latest("pk")
    # The 20 unused days of June: 50.00 x 20/30 = 33.33.
    assert _lines(closing) == [("proration_credit", 5, Decimal("-33.33"))]


def test_a_usage_plan_without_a_base_fee_bills_its_usage_as_before_and_stores_no_marks(scope, clock):
    billed = subscribe(scope, fee="0.00")
    sweep.run_sweep(clock.now())
    with use_clock(FrozenClock(MARCH + timedelta(days=10, hours=1))):
        calls(billed, 150, MARCH + timedelta(days=10))
    sweep.run_sweep(APRIL + timedelta(hours=1))
    [invoice] = Invoice.objects.filter(subscription__public_id=billed.subscription)
    # 150 calls, the first 100 free, 50 x 0.10 = 5.00; no line for the 0.00 fee.
    assert [(kind, net) for kind, _, net in _lines(invoice)] == [("usage", Decimal("5.00"))]
    assert _charges(billed.subscription) == []


def test_a_pause_in_restart_mode_bills_no_seats_while_paused_and_credits_their_unused_part(scope):
    with use_clock(FrozenClock(JUNE + timedelta(hours=9))):
        subscription = _per_seat(scope, pause_resume="restart")
        sweep.run_sweep(JUNE + timedelta(hours=9))
    with use_clock(FrozenClock(JUNE_11)):
        subscriptions.pause_subscription(scope, subscription)
    sweep.run_sweep(JULY + timedelta(hours=1))
    assert Invoice.objects.filter(subscription__public_id=subscription).count() == 1
    resumed_at = datetime(2026, 7, 20, 7, 0, tzinfo=UTC)
    with use_clock(FrozenClock(resumed_at)):
        subscriptions.resume_subscription(scope, subscription)
    sweep.run_sweep(resumed_at + timedelta(minutes=1))
    invoice = _invoice(subscription, _berlin_midnight(date(2026, 7, 20)))
    # The new period from 20 July bills 5 seats; the 20 unused days of June's 30 are credited:
    # 50.00 x 20/30 = 33.33.
    assert _lines(invoice) == [("component", 5, Decimal("50.00")), ("proration_credit", 5, Decimal("-33.33"))]
    credit = invoice.lines.get(kind="proration_credit")
    assert credit.description == "Credit for unused time: Team (Seats × 5)"
    assert (credit.period_start, credit.period_end, credit.metadata) == (JUNE_11, JULY, {"charge": "seats"})


# --- a cancellation now credits the unused part of the seats and add-ons --------------------------------


def _cancelled_now(scope, *, at=JUNE_11, timing: str = "in_advance", **plan: Any) -> str:
    """Subscribed on 1 June, 5 seats (10.00 each) and 2 monthly backups (5.00 each); cancelled at ``at``."""
    with use_clock(FrozenClock(JUNE + timedelta(hours=9))):
        addon = make_addon(scope, "backup", "5.00", "month")
        subscription = _subscribe(
            scope, 5, [(addon, 2)], billing_timing=timing, credit_unused_on_cancel=True, **plan
        )
        sweep.run_sweep(JUNE + timedelta(hours=9))
    with use_clock(FrozenClock(at)):
        subscriptions.cancel_subscription(scope, subscription, mode="now")
    sweep.run_sweep(at + timedelta(minutes=1))
    return subscription


def _closing(subscription: str) -> Invoice:
    return Invoice.objects.filter(subscription__public_id=subscription, kind="invoice").latest("pk")


def test_cancel_now_credits_the_unused_part_of_the_seats_and_add_ons_like_the_base_fee(scope):
    subscription = _cancelled_now(scope)
    closing = _closing(subscription)
    # June has 30 days, 20 of them from the 11th on: 100.00 x 20/30 = 66.67, 50.00 x 20/30 = 33.33 and
    # 10.00 x 20/30 = 6.67 come back.
    assert _lines(closing) == [
        ("proration_credit", 1, Decimal("-66.67")),
        ("proration_credit", 5, Decimal("-33.33")),
        ("proration_credit", 2, Decimal("-6.67")),
    ]
    seats, backup = closing.lines.order_by("position")[1:]
    assert (seats.description, seats.unit_price) == (
        "Credit for unused time: Team (Seats × 5)",
        -Decimal("6.666"),
    )
    assert backup.description == "Credit for unused time: Team (Add-on: Backup × 2)"
    assert (backup.metadata, backup.period_start, backup.period_end) == ({"addon": "backup"}, JUNE_11, JULY)
    assert closing.tax_exclusive == Decimal("-106.67")
    assert sweep.run_sweep(JULY + timedelta(hours=1)).invoices_created == 0


def test_cancel_now_on_a_plan_without_a_base_fee_credits_the_unused_seats(scope):
    with use_clock(FrozenClock(JUNE + timedelta(hours=9))):
        subscription = _per_seat(scope, credit_unused_on_cancel=True)
        sweep.run_sweep(JUNE + timedelta(hours=9))
    with use_clock(FrozenClock(JUNE_11)):
        subscriptions.cancel_subscription(scope, subscription, mode="now")
    sweep.run_sweep(JUNE_11 + timedelta(minutes=1))
    # 5 seats x 10.00 = 50.00 billed for June; cancelled on day 11 of 30: 50.00 x 20/30 = 33.33 back.
    assert _lines(_closing(subscription)) == [("proration_credit", 5, Decimal("-33.33"))]


def test_cancel_now_credits_the_seats_by_the_second_when_the_plan_prorates_by_the_second(scope):
    subscription = _cancelled_now(scope, proration_mode="second")
    # 19 days and 14 hours of June's 30 days are unused: 50.00 x 470/720 = 32.64 (10.00 x ... = 6.53).
    assert _lines(_closing(subscription)) == [
        ("proration_credit", 1, Decimal("-65.28")),
        ("proration_credit", 5, Decimal("-32.64")),
        ("proration_credit", 2, Decimal("-6.53")),
    ]


def test_cancel_now_without_credit_for_the_unused_time_credits_no_seats_either(scope):
    with use_clock(FrozenClock(JUNE + timedelta(hours=9))):
        subscription = _subscribe(scope)
        sweep.run_sweep(JUNE + timedelta(hours=9))
    with use_clock(FrozenClock(JUNE_11)):
        subscriptions.cancel_subscription(scope, subscription, mode="now")
    sweep.run_sweep(JUNE_11 + timedelta(minutes=1))
    assert Invoice.objects.filter(subscription__public_id=subscription).count() == 1


def test_in_arrears_cancel_now_bills_the_used_part_of_the_fee_seats_and_add_ons_at_once(scope):
    subscription = _cancelled_now(scope, timing="in_arrears")
    invoice = _invoice(subscription, JUNE)
    # Used: the 10 days 1-10 June of 30: 100.00 - 66.67 = 33.33, 50.00 - 33.33 = 16.67, 10.00 - 6.67 = 3.33.
    assert _lines(invoice) == [
        ("used", 1, Decimal("33.33")),
        ("component", 5, Decimal("16.67")),
        ("addon", 2, Decimal("3.33")),
    ]
    for line in invoice.lines.exclude(kind="used"):
        assert (line.period_start, line.period_end) == (JUNE, JUNE_11)
    assert invoice.tax_exclusive == Decimal("53.33")
    assert sweep.run_sweep(JULY + timedelta(hours=1)).invoices_created == 0
    assert Invoice.objects.filter(subscription__public_id=subscription).count() == 1


def test_cancel_now_in_a_remainder_carried_over_a_pause_credits_the_seats_by_the_resumed_basis(scope):
    with use_clock(FrozenClock(JUNE + timedelta(hours=9))):
        subscription = _per_seat(scope, credit_unused_on_cancel=True)
        sweep.run_sweep(JUNE + timedelta(hours=9))
    with use_clock(FrozenClock(JUNE_11)):
        subscriptions.pause_subscription(scope, subscription)
    # Resumed on 11 August: the 20 paid days of June run 11-30 August.
    with use_clock(FrozenClock(datetime(2026, 8, 11, 7, 0, tzinfo=UTC))):
        subscriptions.resume_subscription(scope, subscription)
    cancelled_at = datetime(2026, 8, 21, 7, 0, tzinfo=UTC)
    with use_clock(FrozenClock(cancelled_at)):
        subscriptions.cancel_subscription(scope, subscription, mode="now")
    sweep.run_sweep(cancelled_at + timedelta(minutes=1))
    closing = _closing(subscription)
    # 21-30 August are 10 of the 30 days the 50.00 for June paid for: 50.00 x 10/30 = 16.67.
    assert _lines(closing) == [("proration_credit", 5, Decimal("-16.67"))]
    line = closing.lines.get()
    assert (line.period_start, line.period_end) == (cancelled_at, _berlin_midnight(date(2026, 8, 31)))


def test_a_pause_scheduled_ahead_credits_the_seats_when_a_run_carries_it_out(scope):
    with use_clock(FrozenClock(JUNE + timedelta(hours=9))):
        subscription = _subscribe(scope, pause_resume="restart")
        sweep.run_sweep(JUNE + timedelta(hours=9))
        subscriptions.pause_subscription(
            scope, subscription, starts_at=JUNE_11, resume_at=datetime(2026, 7, 5, 22, 0, tzinfo=UTC)
        )
    sweep.run_sweep(JUNE_11 + timedelta(minutes=1))
    sweep.run_sweep(datetime(2026, 7, 6, 8, 0, tzinfo=UTC))
    invoice = _invoice(subscription, _berlin_midnight(date(2026, 7, 6)))
    assert sorted(_lines(invoice)) == sorted(
        [
            ("recurring", 1, Decimal("100.00")),
            ("component", 5, Decimal("50.00")),
            ("proration_credit", 1, Decimal("-66.67")),
            ("proration_credit", 5, Decimal("-33.33")),
        ]
    )


def test_a_change_now_to_a_new_cycle_with_the_same_seat_amount_still_moves_the_seats(scope, clock):
    subscription = _subscribe(scope)
    sweep.run_sweep(clock.now())
    yearly = _plan(
        scope, code="team_yearly", interval={"unit": "year"}, charges=[base_charge("2000.00"), SEATS]
    )
    with use_clock(FrozenClock(MID_MARCH)):
        subscriptions.change_subscription(scope, subscription, plan=yearly)
    with use_clock(FrozenClock(MID_MARCH + timedelta(hours=1))):
        services.create_draft(scope, subscription)
    invoice = _invoice(subscription, _berlin_midnight(date(2026, 3, 16)))
    # 5 seats cost 50.00 a month on the old plan and 50.00 a year on the new one: March's 16 unused days
    # are credited (50 x 16/31 = 25.81) and the new year is charged (50.00).
    assert sorted(_lines(invoice)) == sorted(
        [
            ("proration_credit", 1, Decimal("-51.61")),
            ("proration_credit", 5, Decimal("-25.81")),
            ("recurring", 1, Decimal("2000.00")),
            ("proration_charge", 5, Decimal("50.00")),
        ]
    )


# --- add-ons changed on a running subscription ----------------------------------------------------------

AUGUST = datetime(2026, 7, 31, 22, 0, tzinfo=UTC)
SEPTEMBER = datetime(2026, 8, 31, 22, 0, tzinfo=UTC)
#: The end of the yearly add-on's first year (1 June 2026 to 1 June 2027: 365 days, 355 from 11 June).
NEXT_JUNE = datetime(2027, 5, 31, 22, 0, tzinfo=UTC)


def _set_addon(scope, subscription: str, addon: str, quantity: int, at: datetime, effective=None) -> None:
    with use_clock(FrozenClock(at)):
        subscriptions.change_addon(scope, subscription, addon=addon, quantity=quantity, effective=effective)


def _in_june(scope, addons: tuple[tuple[str, str, str, int], ...] = (), **plan: Any) -> tuple[str, list[str]]:
    """Subscribed on 1 June (5 seats) with the add-ons (code, price, interval, quantity); June is billed."""
    with use_clock(FrozenClock(JUNE + timedelta(hours=9))):
        ids = [make_addon(scope, code, amount, unit) for code, amount, unit, _ in addons]
        attached = [(addon, quantity) for addon, (*_, quantity) in zip(ids, addons, strict=True) if quantity]
        subscription = _subscribe(scope, 5, attached, **plan)
        sweep.run_sweep(JUNE + timedelta(hours=9))
    return subscription, ids


def test_an_add_on_added_now_bills_the_rest_of_the_period_then_each_period_until_removed(scope):
    subscription, [backup] = _in_june(scope, (("backup", "5.00", "month", 0),))
    _set_addon(scope, subscription, backup, 2, JUNE_11)
    sweep.run_sweep(JULY + timedelta(hours=1))
    july = _invoice(subscription, JULY)
    # 2 backups at 5.00 for the 20 of June's 30 days left: 10.00 x 20/30 = 6.67; July bills both.
    assert _lines(july) == [
        ("proration_charge", 2, Decimal("6.67")),
        ("recurring", 1, Decimal("100.00")),
        ("component", 5, Decimal("50.00")),
        ("addon", 2, Decimal("10.00")),
    ]
    charge = july.lines.get(kind="proration_charge")
    assert charge.description == "Remaining time: Team (Add-on: Backup 0 → 2)"
    assert (charge.period_start, charge.period_end) == (JUNE_11, JULY)
    assert july.tax_exclusive == Decimal("166.67")
    _set_addon(scope, subscription, backup, 0, JULY + timedelta(days=14))
    sweep.run_sweep(AUGUST + timedelta(hours=1))
    sweep.run_sweep(SEPTEMBER + timedelta(hours=1))
    for start in (AUGUST, SEPTEMBER):
        assert _lines(_invoice(subscription, start)) == [
            ("recurring", 1, Decimal("100.00")),
            ("component", 5, Decimal("50.00")),
        ]


def test_an_add_on_raised_now_is_credited_and_charged_for_the_rest_and_billed_higher_next(scope):
    subscription, [backup] = _in_june(scope, (("backup", "5.00", "month", 2),))
    assert ("addon", 2, Decimal("10.00")) in _lines(_invoice(subscription, JUNE))
    _set_addon(scope, subscription, backup, 3, JUNE_11)
    sweep.run_sweep(JULY + timedelta(hours=1))
    july = _invoice(subscription, JULY)
    # 10.00 x 20/30 = 6.67 back, 15.00 x 20/30 = 10.00 charged, then 3 x 5.00 for July.
    assert _lines(july) == [
        ("proration_credit", 2, Decimal("-6.67")),
        ("proration_charge", 3, Decimal("10.00")),
        ("recurring", 1, Decimal("100.00")),
        ("component", 5, Decimal("50.00")),
        ("addon", 3, Decimal("15.00")),
    ]
    credit = july.lines.get(kind="proration_credit")
    assert credit.description == "Credit for unused time: Team (Add-on: Backup 2 → 3)"
    assert july.tax_exclusive == Decimal("168.33")


def test_an_add_on_removed_now_is_credited_for_the_rest_and_never_billed_again(scope):
    subscription, [backup] = _in_june(
        scope, (("backup", "5.00", "month", 2),), allow_downgrade_now=True, credit_unused_on_downgrade=True
    )
    _set_addon(scope, subscription, backup, 0, JUNE_11, "now")
    sweep.run_sweep(JULY + timedelta(hours=1))
    sweep.run_sweep(AUGUST + timedelta(hours=1))
    assert _lines(_invoice(subscription, JULY)) == [
        ("proration_credit", 2, Decimal("-6.67")),
        ("recurring", 1, Decimal("100.00")),
        ("component", 5, Decimal("50.00")),
    ]
    assert _lines(_invoice(subscription, AUGUST)) == [
        ("recurring", 1, Decimal("100.00")),
        ("component", 5, Decimal("50.00")),
    ]


def test_a_period_invoiced_after_an_add_on_change_bills_the_quantity_it_began_with(scope):
    with use_clock(FrozenClock(JUNE + timedelta(hours=9))):
        backup = make_addon(scope, "backup", "5.00", "month")
        subscription = _subscribe(scope, 5, [(backup, 2)])
    # No run before the change: June's invoice is made after it, and bills June as it was.
    _set_addon(scope, subscription, backup, 3, JUNE_11)
    sweep.run_sweep(JUNE_11 + timedelta(minutes=1))
    # 2 backups for June (10.00), 6.67 back and 10.00 for the 20 days at 3: 3.33 + 10.00 in all.
    assert sorted(_lines(_invoice(subscription, JUNE))) == sorted(
        [
            ("recurring", 1, Decimal("100.00")),
            ("proration_credit", 2, Decimal("-6.67")),
            ("proration_charge", 3, Decimal("10.00")),
            ("component", 5, Decimal("50.00")),
            ("addon", 2, Decimal("10.00")),
        ]
    )


def test_in_arrears_a_period_bills_the_add_ons_it_began_with_and_the_proration_of_their_changes(scope):
    subscription, [backup] = _in_june(
        scope,
        (("backup", "5.00", "month", 2),),
        billing_timing="in_arrears",
        allow_downgrade_now=True,
        credit_unused_on_downgrade=True,
    )
    _set_addon(scope, subscription, backup, 3, JUNE_11)
    # Removed on 21 June, 10 days before the end: 15.00 x 10/30 = 5.00 back.
    _set_addon(scope, subscription, backup, 0, datetime(2026, 6, 21, 8, 0, tzinfo=UTC), "now")
    sweep.run_sweep(JULY + timedelta(hours=1))
    # Used 100.00; the prorations -6.67 + 10.00 - 5.00 as their own lines; the 2 backups June began with
    # are billed for June.
    assert _lines(_invoice(subscription, JUNE)) == [
        ("used", 1, Decimal("100.00")),
        ("proration_credit", 2, Decimal("-6.67")),
        ("proration_charge", 3, Decimal("10.00")),
        ("proration_credit", 3, Decimal("-5.00")),
        ("component", 5, Decimal("50.00")),
        ("addon", 2, Decimal("10.00")),
    ]
    sweep.run_sweep(AUGUST + timedelta(hours=1))
    assert _lines(_invoice(subscription, JULY)) == [
        ("used", 1, Decimal("100.00")),
        ("component", 5, Decimal("50.00")),
    ]


def test_a_yearly_add_on_raised_now_is_prorated_over_its_year_and_billed_higher_the_next_year(scope):
    subscription, [support] = _in_june(scope, (("support", "60.00", "year", 1),))
    assert ("addon", 1, Decimal("60.00")) in _lines(_invoice(subscription, JUNE))
    _set_addon(scope, subscription, support, 2, JUNE_11)
    sweep.run_sweep(JULY + timedelta(hours=1))
    july = _invoice(subscription, JULY)
    # 355 of the year's 365 days left: 60.00 x 355/365 = 58.36 back, 120.00 x 355/365 = 116.71.
    assert _lines(july) == [
        ("proration_credit", 1, Decimal("-58.36")),
        ("proration_charge", 2, Decimal("116.71")),
        ("recurring", 1, Decimal("100.00")),
        ("component", 5, Decimal("50.00")),
    ]
    credit = july.lines.get(kind="proration_credit")
    assert (credit.period_start, credit.period_end) == (JUNE_11, NEXT_JUNE)
    for month in range(8, 18):
        start = _berlin_midnight(date(2026 + (month - 1) // 12, (month - 1) % 12 + 1, 1))
        sweep.run_sweep(start + timedelta(hours=1))
        assert [line for line in _lines(_invoice(subscription, start)) if line[0] == "addon"] == []
    sweep.run_sweep(NEXT_JUNE + timedelta(hours=1))
    assert ("addon", 2, Decimal("120.00")) in _lines(_invoice(subscription, NEXT_JUNE))


def test_cancel_now_credits_the_unused_part_of_a_yearly_add_ons_year(scope):
    subscription, _ = _in_june(scope, (("support", "60.00", "year", 1),), credit_unused_on_cancel=True)
    with use_clock(FrozenClock(JUNE_11)):
        subscriptions.cancel_subscription(scope, subscription, mode="now")
    sweep.run_sweep(JUNE_11 + timedelta(minutes=1))
    closing = _closing(subscription)
    # June: 100.00 x 20/30 = 66.67 and 50.00 x 20/30 = 33.33; the add-on's year: 60.00 x 355/365 = 58.36.
    assert _lines(closing) == [
        ("proration_credit", 1, Decimal("-66.67")),
        ("proration_credit", 5, Decimal("-33.33")),
        ("proration_credit", 1, Decimal("-58.36")),
    ]
    support = closing.lines.order_by("position")[2]
    assert support.metadata == {"addon": "support"}
    assert support.description == "Credit for unused time: Team (Add-on: Support × 1)"
    assert (support.period_start, support.period_end) == (JUNE_11, NEXT_JUNE)


def test_in_arrears_cancel_now_bills_the_used_part_of_a_yearly_add_on(scope):
    subscription, _ = _in_june(
        scope,
        (("support", "60.00", "year", 1),),
        billing_timing="in_arrears",
        credit_unused_on_cancel=True,
    )
    with use_clock(FrozenClock(JUNE_11)):
        subscriptions.cancel_subscription(scope, subscription, mode="now")
    sweep.run_sweep(JUNE_11 + timedelta(minutes=1))
    invoice = _invoice(subscription, JUNE)
    # The year's 10 days used: 60.00 - 58.36 = 1.64.
    assert _lines(invoice) == [
        ("used", 1, Decimal("33.33")),
        ("component", 5, Decimal("16.67")),
        ("addon", 1, Decimal("1.64")),
    ]
    support = invoice.lines.get(kind="addon")
    assert (support.period_start, support.period_end) == (JUNE, JUNE_11)


def test_a_pause_credits_a_yearly_add_ons_unused_year_and_the_resumption_bills_the_rest_of_it(scope):
    subscription, _ = _in_june(scope, (("support", "60.00", "year", 1),), pause_resume="restart")
    with use_clock(FrozenClock(JUNE_11)):
        subscriptions.pause_subscription(scope, subscription)
    resumed_at = datetime(2026, 7, 20, 7, 0, tzinfo=UTC)
    with use_clock(FrozenClock(resumed_at)):
        subscriptions.resume_subscription(scope, subscription)
    sweep.run_sweep(resumed_at + timedelta(minutes=1))
    resumed = _berlin_midnight(date(2026, 7, 20))
    invoice = _invoice(subscription, resumed)
    # Credited at the pause: 66.67, 33.33 and 60.00 x 355/365 = 58.36; from 20 July the 316 days left of
    # the add-on's year are billed again: 60.00 x 316/365 = 51.95.
    assert sorted(_lines(invoice)) == sorted(
        [
            ("proration_credit", 1, Decimal("-66.67")),
            ("recurring", 1, Decimal("100.00")),
            ("component", 5, Decimal("50.00")),
            ("addon", 1, Decimal("51.95")),
            ("proration_credit", 5, Decimal("-33.33")),
            ("proration_credit", 1, Decimal("-58.36")),
        ]
    )
    rest = invoice.lines.get(kind="addon")
    assert (rest.period_start, rest.period_end) == (resumed, NEXT_JUNE)
    following = _berlin_midnight(date(2026, 8, 20))
    sweep.run_sweep(following + timedelta(hours=1))
    assert _lines(_invoice(subscription, following)) == [
        ("recurring", 1, Decimal("100.00")),
        ("component", 5, Decimal("50.00")),
    ]


def test_a_yearly_add_on_added_now_is_charged_for_its_first_year_once(scope):
    subscription, [support] = _in_june(scope, (("support", "60.00", "year", 0),))
    _set_addon(scope, subscription, support, 1, JUNE_11)
    sweep.run_sweep(JULY + timedelta(hours=1))
    sweep.run_sweep(AUGUST + timedelta(hours=1))
    # Its own year begins on 11 June: by day the whole of it is left, 60.00.
    assert _lines(_invoice(subscription, JULY)) == [
        ("proration_charge", 1, Decimal("60.00")),
        ("recurring", 1, Decimal("100.00")),
        ("component", 5, Decimal("50.00")),
    ]
    assert _lines(_invoice(subscription, AUGUST)) == [
        ("recurring", 1, Decimal("100.00")),
        ("component", 5, Decimal("50.00")),
    ]


def test_a_yearly_add_on_is_credited_its_year_after_an_end_at_the_period_end(scope):
    subscription, _ = _in_june(scope, (("support", "60.00", "year", 1),), credit_unused_on_cancel=True)
    with use_clock(FrozenClock(JUNE_11)):
        subscriptions.cancel_subscription(scope, subscription, mode="period_end")
    sweep.run_sweep(JULY + timedelta(hours=1))
    closing = _closing(subscription)
    # The month is used up and nothing is cut short; the add-on's year (1 June 2026 to 1 June 2027, 365
    # days) was billed in June and ends 335 days after the subscription: 60.00 x 335/365 = 55.07 back.
    assert _lines(closing) == [("proration_credit", 1, Decimal("-55.07"))]
    credit = closing.lines.get()
    assert credit.description == "Credit for unused time: Team (Add-on: Support × 1)"
    assert (credit.period_start, credit.period_end) == (JULY, NEXT_JUNE)
    assert len(_invoices(subscription)) == 2


def test_a_yearly_add_on_added_after_a_cancellation_for_the_period_end_is_billed_up_to_the_end(scope):
    subscription, [support] = _in_june(
        scope, (("support", "60.00", "year", 0),), credit_unused_on_cancel=True
    )
    with use_clock(FrozenClock(JUNE_11)):
        subscriptions.cancel_subscription(scope, subscription, mode="period_end")
    _set_addon(scope, subscription, support, 1, JUNE_11)
    sweep.run_sweep(JULY + timedelta(hours=1))
    sweep.run_sweep(AUGUST + timedelta(hours=1))
    added = _berlin_midnight(date(2027, 6, 11))
    # Its own year begins on 11 June (365 days, 60.00 by day); the subscription ends 20 days later, the
    # other 345 are credited: 60.00 x 345/365 = 56.71, so 3.29 is billed for the 20 days.
    closing = _closing(subscription)
    assert _lines(closing) == [
        ("proration_charge", 1, Decimal("60.00")),
        ("proration_credit", 1, Decimal("-56.71")),
    ]
    assert closing.tax_exclusive == Decimal("3.29")
    credit = closing.lines.get(kind="proration_credit")
    assert (credit.period_start, credit.period_end) == (JULY, added)
    assert len(_invoices(subscription)) == 2


def test_a_yearly_add_on_added_now_and_cancelled_now_is_credited_once(scope):
    subscription, [support] = _in_june(
        scope, (("support", "60.00", "year", 0),), credit_unused_on_cancel=True
    )
    _set_addon(scope, subscription, support, 1, JUNE_11)
    with use_clock(FrozenClock(JUNE_21)):
        subscriptions.cancel_subscription(scope, subscription, mode="now")
    sweep.run_sweep(JUNE_21 + timedelta(minutes=1))
    credits = [
        line for line in _lines(_closing(subscription)) if line[1] == 1 and line[0] == "proration_credit"
    ]
    # June: 100.00 x 10/30 = 33.33; the add-on's year from 21 June (355 of 365 days): 60.00 x 355/365 = 58.36.
    assert sorted(credits) == sorted(
        [("proration_credit", 1, Decimal("-33.33")), ("proration_credit", 1, Decimal("-58.36"))]
    )


# --- an add-on added to a period that began with nothing to bill ------------------------------------------

#: 21 June, 10:00 in Berlin: by day the 10 days from the 21st on are the rest of June.
JUNE_21 = datetime(2026, 6, 21, 8, 0, tzinfo=UTC)


def _free_in_june(scope, *, timing: str = "in_advance", **plan: Any) -> tuple[str, str]:
    """Subscribed on 1 June to a plan without a base fee, seats and add-ons: June begins with nothing to
    bill (no invoice, no mark); a backup (5.00 a month) exists to be added."""
    with use_clock(FrozenClock(JUNE + timedelta(hours=9))):
        backup = make_addon(scope, "backup", "5.00", "month")
        subscription = _seatless(scope, billing_timing=timing, **plan)
        assert sweep.run_sweep(JUNE + timedelta(hours=9)).invoices_created == 0
    assert _charges(subscription) == []
    return subscription, backup


def _uninvoiced(subscription: str) -> list[tuple[str, Decimal]]:
    invoiced = InvoicedCharge.objects.values("charge_id")
    rows = SubscriptionCharge.objects.filter(subscription__public_id=subscription).exclude(pk__in=invoiced)
    return [(row.kind, row.amount) for row in rows]


def _invoices(subscription: str) -> list[Invoice]:
    return list(Invoice.objects.filter(subscription__public_id=subscription, kind="invoice").order_by("pk"))


@pytest.mark.parametrize(
    ("mode", "charged", "credited"),
    [
        # By day: 2 x 5.00 = 10.00 for the 20 of June's 30 days from the 11th (6.67), back for the 10
        # days from the 21st (3.33).
        ("day", Decimal("6.67"), Decimal("3.33")),
        # By the second: 19 days 14 hours of 30 days left at the addition (10.00 x 470/720 = 6.53),
        # 9 days 14 hours at the cancellation (10.00 x 230/720 = 3.19).
        ("second", Decimal("6.53"), Decimal("3.19")),
    ],
)
def test_an_add_on_added_to_a_period_that_began_with_nothing_to_bill_is_credited_when_cancelled_now(
    scope, mode, charged, credited
):
    subscription, backup = _free_in_june(scope, credit_unused_on_cancel=True, proration_mode=mode)
    _set_addon(scope, subscription, backup, 2, JUNE_11)
    sweep.run_sweep(JUNE_11 + timedelta(minutes=1))
    june = _invoice(subscription, JUNE)
    assert _lines(june) == [("proration_charge", 2, charged)]
    assert june.lines.get().description == "Remaining time: Team (Add-on: Backup 0 → 2)"
    with use_clock(FrozenClock(JUNE_21)):
        subscriptions.cancel_subscription(scope, subscription, mode="now")
    sweep.run_sweep(JUNE_21 + timedelta(minutes=1))
    june, closing = _invoices(subscription)
    assert _lines(closing) == [("proration_credit", 2, -credited)]
    credit = closing.lines.get()
    assert credit.description == "Credit for unused time: Team (Add-on: Backup × 2)"
    assert (credit.period_start, credit.period_end, credit.metadata) == (JUNE_21, JULY, {"addon": "backup"})
    assert (closing.tax_exclusive, closing.tax_total) == (-credited, round(-credited * Decimal("0.19"), 2))
    assert sweep.run_sweep(JULY + timedelta(hours=1)).invoices_created == 0
    assert len(_invoices(subscription)) == 2
    # June's mark, made with the add-on, and the cancellation's went on the invoices: none is left.
    assert sorted(_charges(subscription)) == sorted(
        [("recurring", 0), ("proration_charge", charged), ("proration_credit", 0)]
    )
    assert not _uninvoiced(subscription)


def test_an_add_on_added_and_removed_now_in_a_period_that_began_with_nothing_to_bill_is_credited(scope):
    subscription, backup = _free_in_june(scope, allow_downgrade_now=True, credit_unused_on_downgrade=True)
    _set_addon(scope, subscription, backup, 2, JUNE_11)
    sweep.run_sweep(JUNE_11 + timedelta(minutes=1))
    _set_addon(scope, subscription, backup, 0, JUNE_21, "now")
    sweep.run_sweep(JUNE_21 + timedelta(minutes=1))
    sweep.run_sweep(JULY + timedelta(hours=1))
    sweep.run_sweep(AUGUST + timedelta(hours=1))
    june, july = _invoices(subscription)
    # 10.00 x 20/30 = 6.67 charged from 11 June; 10.00 x 10/30 = 3.33 back from 21 June; then nothing.
    assert (june.period_start, _lines(june)) == (JUNE, [("proration_charge", 2, Decimal("6.67"))])
    assert (july.period_start, _lines(july)) == (JULY, [("proration_credit", 2, Decimal("-3.33"))])
    credit = july.lines.get()
    assert credit.description == "Credit for unused time: Team (Add-on: Backup 2 → 0)"
    assert (credit.period_start, credit.period_end) == (JUNE_21, JULY)


def test_in_arrears_an_add_on_added_to_a_period_that_began_with_nothing_to_bill_bills_its_used_part(scope):
    subscription, backup = _free_in_june(scope, timing="in_arrears", credit_unused_on_cancel=True)
    _set_addon(scope, subscription, backup, 2, JUNE_11)
    sweep.run_sweep(JUNE_11 + timedelta(minutes=1))
    assert _invoices(subscription) == []
    with use_clock(FrozenClock(JUNE_21)):
        subscriptions.cancel_subscription(scope, subscription, mode="now")
    sweep.run_sweep(JUNE_21 + timedelta(minutes=1))
    [june] = _invoices(subscription)
    # Charged 10.00 x 20/30 = 6.67 from 11 June, 10.00 x 10/30 = 3.33 back from 21 June: 3.34 used.
    assert june.period_start == JUNE
    assert _lines(june) == [
        ("proration_charge", 2, Decimal("6.67")),
        ("proration_credit", 2, Decimal("-3.33")),
    ]
    credit = june.lines.get(kind="proration_credit")
    assert credit.description == "Credit for unused time: Team (Add-on: Backup × 2)"
    assert (credit.period_start, credit.period_end) == (JUNE_21, JULY)
    assert june.tax_exclusive == Decimal("3.34")
    assert sweep.run_sweep(JULY + timedelta(hours=1)).invoices_created == 0
    assert not _uninvoiced(subscription)


def test_in_arrears_an_add_on_added_and_removed_now_in_a_period_that_began_with_nothing_is_billed(scope):
    subscription, backup = _free_in_june(
        scope, timing="in_arrears", allow_downgrade_now=True, credit_unused_on_downgrade=True
    )
    _set_addon(scope, subscription, backup, 2, JUNE_11)
    _set_addon(scope, subscription, backup, 0, JUNE_21, "now")
    sweep.run_sweep(JUNE_21 + timedelta(minutes=1))
    assert _invoices(subscription) == []
    sweep.run_sweep(JULY + timedelta(hours=1))
    sweep.run_sweep(AUGUST + timedelta(hours=1))
    [june] = _invoices(subscription)
    # Used from 11 to 21 June: 6.67 charged less 3.33 back.
    assert (june.period_start, _lines(june)) == (
        JUNE,
        [("proration_charge", 2, Decimal("6.67")), ("proration_credit", 2, Decimal("-3.33"))],
    )
    assert not _uninvoiced(subscription)


def test_an_add_on_added_in_the_remainder_a_pause_carried_over_is_credited_by_the_resumed_basis(scope):
    subscription, backup = _free_in_june(scope, credit_unused_on_cancel=True)
    with use_clock(FrozenClock(JUNE_11)):
        subscriptions.pause_subscription(scope, subscription)
    # Resumed on 11 August: the 20 days left of June run 11-30 August, a share of 30 days.
    with use_clock(FrozenClock(datetime(2026, 8, 11, 7, 0, tzinfo=UTC))):
        subscriptions.resume_subscription(scope, subscription)
    added_at = datetime(2026, 8, 21, 7, 0, tzinfo=UTC)
    _set_addon(scope, subscription, backup, 2, added_at)
    sweep.run_sweep(added_at + timedelta(minutes=1))
    cancelled_at = datetime(2026, 8, 26, 7, 0, tzinfo=UTC)
    with use_clock(FrozenClock(cancelled_at)):
        subscriptions.cancel_subscription(scope, subscription, mode="now")
    sweep.run_sweep(cancelled_at + timedelta(minutes=1))
    # 10.00 x 10/30 = 3.33 for 21-30 August, 10.00 x 5/30 = 1.67 back for 26-30 August; the remainder
    # itself was paid in June and bills nothing again.
    assert [_lines(invoice) for invoice in _invoices(subscription)] == [
        [("proration_charge", 2, Decimal("3.33"))],
        [("proration_credit", 2, Decimal("-1.67"))],
    ]


# --- billed in arrears, a pause in remaining mode splits the seats and add-ons like the base fee -----

#: 11 August 2026 in Berlin, 9:00: the resume; the 20 days carried over from June run 11-30 August.
AUGUST_11 = datetime(2026, 8, 11, 7, 0, tzinfo=UTC)
#: 31 August 2026 in Berlin: the end of the remainder carried over.
REMAINDER_END = _berlin_midnight(date(2026, 8, 31))


def _paused_in_arrears(scope, *, resume: bool = True) -> str:
    """Billed in arrears: 1 June, 5 seats (10.00 each), 2 monthly backups (5.00 each); paused on 11 June
    (remaining mode), the run on 1 July bills June; resumed on 11 August unless ``resume`` is off."""
    subscription, _ = _in_june(
        scope,
        (("backup", "5.00", "month", 2),),
        billing_timing="in_arrears",
        pause_resume="remaining",
        credit_unused_on_cancel=True,
    )
    with use_clock(FrozenClock(JUNE_11)):
        subscriptions.pause_subscription(scope, subscription)
    sweep.run_sweep(JUNE_11 + timedelta(minutes=1))
    sweep.run_sweep(JULY + timedelta(hours=1))
    if resume:
        with use_clock(FrozenClock(AUGUST_11)):
            subscriptions.resume_subscription(scope, subscription)
        sweep.run_sweep(AUGUST_11 + timedelta(minutes=1))
    return subscription


def _june_before_the_pause(subscription: str) -> None:
    """June's invoice bills the 10 days used before the pause (of 30): 100.00 - 66.67 = 33.33, 50.00 -
    33.33 = 16.67, 10.00 - 6.67 = 3.33; the 20 days carried over are billed with the remainder."""
    june = _invoice(subscription, JUNE)
    assert _lines(june) == [
        ("used", 1, Decimal("33.33")),
        ("component", 5, Decimal("16.67")),
        ("addon", 2, Decimal("3.33")),
    ]
    for line in june.lines.exclude(kind="used"):
        assert (line.period_start, line.period_end) == (JUNE, JUNE_11)
    assert june.tax_exclusive == Decimal("53.33")


def test_in_arrears_a_pause_bills_the_seats_and_add_ons_used_before_it_and_the_rest_after_the_resume(
    scope,
):
    subscription = _paused_in_arrears(scope)
    _june_before_the_pause(subscription)
    sweep.run_sweep(REMAINDER_END + timedelta(hours=1))
    remainder = _invoice(subscription, _berlin_midnight(date(2026, 8, 11)))
    # The 20 days carried over: 66.67, 33.33 and 6.67, as June's invoice left them.
    assert _lines(remainder) == [
        ("used", 1, Decimal("66.67")),
        ("component", 5, Decimal("33.33")),
        ("addon", 2, Decimal("6.67")),
    ]
    seats, backup = remainder.lines.exclude(kind="used").order_by("position")
    assert (seats.description, backup.description) == ("Seats × 5", "Add-on: Backup × 2")
    for line in (seats, backup):
        assert (line.period_start, line.period_end) == (_berlin_midnight(date(2026, 8, 11)), REMAINDER_END)
    # The whole month once: 100.00 + 50.00 + 10.00.
    assert _invoice(subscription, JUNE).tax_exclusive + remainder.tax_exclusive == Decimal("160.00")
    sweep.run_sweep(SEPTEMBER + timedelta(days=30, hours=1))
    assert _lines(_invoice(subscription, REMAINDER_END)) == [
        ("used", 1, Decimal("100.00")),
        ("component", 5, Decimal("50.00")),
        ("addon", 2, Decimal("10.00")),
    ]


def test_in_arrears_a_cancellation_now_in_the_remainder_bills_the_seats_and_add_ons_used_in_it(scope):
    subscription = _paused_in_arrears(scope)
    cancelled_at = datetime(2026, 8, 21, 7, 0, tzinfo=UTC)
    with use_clock(FrozenClock(cancelled_at)):
        subscriptions.cancel_subscription(scope, subscription, mode="now")
    sweep.run_sweep(cancelled_at + timedelta(minutes=1))
    _june_before_the_pause(subscription)
    remainder = _invoice(subscription, _berlin_midnight(date(2026, 8, 11)))
    # 11-20 August used, 21-30 August (10 of June's 30 days) credited: 66.67 - 33.33 = 33.34,
    # 33.33 - 16.67 = 16.66, 6.67 - 3.33 = 3.34; June and the remainder bill 20 days of 30 once.
    assert _lines(remainder) == [
        ("used", 1, Decimal("33.34")),
        ("component", 5, Decimal("16.66")),
        ("addon", 2, Decimal("3.34")),
    ]
    for line in remainder.lines.exclude(kind="used"):
        assert (line.period_start, line.period_end) == (_berlin_midnight(date(2026, 8, 11)), cancelled_at)
    assert _invoice(subscription, JUNE).tax_exclusive + remainder.tax_exclusive == Decimal("106.67")
    assert sweep.run_sweep(SEPTEMBER + timedelta(days=30)).invoices_created == 0
    assert len(_invoices(subscription)) == 2


def test_in_arrears_a_pause_never_resumed_bills_the_seats_and_add_ons_used_before_it_only(scope):
    subscription = _paused_in_arrears(scope, resume=False)
    sweep.run_sweep(SEPTEMBER + timedelta(hours=1))
    _june_before_the_pause(subscription)
    assert len(_invoices(subscription)) == 1


def test_in_arrears_a_cancellation_now_during_the_pause_bills_nothing_after_the_pause(scope):
    subscription = _paused_in_arrears(scope, resume=False)
    cancelled_at = datetime(2026, 7, 21, 7, 0, tzinfo=UTC)
    with use_clock(FrozenClock(cancelled_at)):
        subscriptions.cancel_subscription(scope, subscription, mode="now")
    sweep.run_sweep(cancelled_at + timedelta(minutes=1))
    sweep.run_sweep(SEPTEMBER + timedelta(hours=1))
    # The carried part is charged back and credited by the cancellation: neither a charge nor a credit.
    _june_before_the_pause(subscription)
    assert len(_invoices(subscription)) == 1


def test_in_arrears_a_yearly_add_on_is_credited_its_year_after_an_end_at_the_period_end(scope):
    subscription, _ = _in_june(
        scope,
        (("support", "60.00", "year", 1),),
        billing_timing="in_arrears",
        credit_unused_on_cancel=True,
    )
    with use_clock(FrozenClock(JUNE_11)):
        subscriptions.cancel_subscription(scope, subscription, mode="period_end")
    sweep.run_sweep(JULY + timedelta(hours=1))
    # June's own invoice bills the month (100.00, 5 x 10.00) and the add-on's year (60.00), and credits
    # the 335 days of that year (1 June 2026 to 1 June 2027, 365 days) after the end: 60.00 x 335/365
    # = 55.07.
    [june] = _invoices(subscription)
    assert (june.period_start, june.period_end) == (JUNE, JULY)
    assert _lines(june) == [
        ("used", 1, Decimal("100.00")),
        ("component", 5, Decimal("50.00")),
        ("addon", 1, Decimal("60.00")),
        ("proration_credit", 1, Decimal("-55.07")),
    ]
    credit = june.lines.get(kind="proration_credit")
    assert credit.description == "Credit for unused time: Team (Add-on: Support × 1)"
    assert (credit.period_start, credit.period_end) == (JULY, NEXT_JUNE)
    assert june.tax_exclusive == Decimal("154.93")
    assert sweep.run_sweep(AUGUST + timedelta(hours=1)).invoices_created == 0
