from datetime import timedelta
from decimal import Decimal

import pytest

from tests.apps.billing.support import APRIL, MARCH, calls, plan, scope_of, subscribe
from turnus.apps.billing import services
from turnus.apps.billing.models import Invoice, InvoicedCharge
from turnus.apps.subscriptions import services as subscriptions
from turnus.apps.subscriptions.models import SubscriptionCharge
from turnus.core.clock import FrozenClock, use_clock
from turnus.engine.periods import Period

pytestmark = pytest.mark.django_db


@pytest.fixture
def clock():
    frozen = FrozenClock(MARCH + timedelta(hours=9))
    with use_clock(frozen):
        yield frozen


@pytest.fixture
def scope(tenant):
    return scope_of(tenant)


def _lines(invoice):
    return [(line.kind, line.description, line.net_amount) for line in invoice.lines.order_by("position")]


def _totals(invoice):
    return (invoice.tax_exclusive, invoice.tax_total, invoice.grand_total, invoice.amount_due)


def test_the_first_draft_of_a_monthly_plan_in_advance_holds_the_fee_of_the_period_with_german_vat(
    scope, clock
):
    billed = subscribe(scope)
    invoice = services.create_draft(scope, billed.subscription).invoice
    assert (invoice.status, invoice.number, invoice.kind) == ("draft", None, "invoice")
    assert (invoice.period_start, invoice.period_end) == (MARCH, APRIL)
    assert _lines(invoice) == [("recurring", "Abonnementgebühr: Pro", Decimal("100.00"))]
    assert _totals(invoice) == (Decimal(100), Decimal(19), Decimal(119), Decimal(119))
    group = invoice.vat_breakdown.get()
    assert (group.category, group.rate) == ("S", Decimal(19))
    assert invoice.recipient["name"] == "Erika Mustermann"
    assert invoice.supplier["vat_id"] == "DE136695976"


def test_the_draft_marks_the_pending_charges_it_bills_as_invoiced(scope, clock):
    billed = subscribe(scope)
    invoice = services.create_draft(scope, billed.subscription).invoice
    charge = SubscriptionCharge.objects.get(subscription__public_id=billed.subscription)
    assert InvoicedCharge.objects.get(charge=charge).invoice == invoice


def test_a_second_draft_for_the_same_period_changes_nothing_and_returns_the_first(scope, clock):
    billed = subscribe(scope)
    first = services.create_draft(scope, billed.subscription)
    second = services.create_draft(scope, billed.subscription)
    assert (first.created, second.created) == (True, False)
    assert second.invoice.pk == first.invoice.pk
    assert Invoice.objects.count() == 1


def test_the_setup_fee_is_billed_on_the_first_invoice_only(scope, clock):
    billed = subscribe(scope, setup_fee="49.00")
    first = services.create_draft(scope, billed.subscription).invoice
    assert [line.kind for line in first.lines.order_by("position")] == ["setup_fee", "recurring"]
    clock.set(APRIL + timedelta(hours=1))
    second = services.create_draft(scope, billed.subscription).invoice
    assert [line.kind for line in second.lines.order_by("position")] == ["recurring"]


def test_a_mid_period_upgrade_puts_its_credit_and_charge_on_the_next_invoice(scope, clock):
    billed = subscribe(scope)
    bigger = plan(scope, code="max", fee="200.00")
    services.create_draft(scope, billed.subscription)
    clock.set(MARCH + timedelta(days=15, hours=9))
    subscriptions.change_subscription(scope, billed.subscription, plan=bigger, effective="now")
    clock.set(APRIL + timedelta(hours=1))
    april = services.create_draft(scope, billed.subscription).invoice
    assert (april.period_start, april.period_end) == (APRIL, APRIL + timedelta(days=30))
    assert _lines(april) == [
        ("proration_credit", "Anrechnung ungenutzter Zeit: Pro", Decimal("-51.61")),
        ("proration_charge", "Restlaufzeit: Max", Decimal("103.23")),
        ("recurring", "Abonnementgebühr: Max", Decimal("200.00")),
    ]
    assert april.tax_exclusive == Decimal("251.62")
    assert april.tax_total == Decimal("47.81")


def test_metered_usage_is_billed_in_arrears_on_the_next_invoice_priced_by_the_graduated_price(scope, clock):
    billed = subscribe(scope)
    services.create_draft(scope, billed.subscription)
    clock.set(MARCH + timedelta(days=3, hours=1))
    calls(billed, 250, MARCH + timedelta(days=3))
    clock.set(APRIL + timedelta(hours=1))
    april = services.create_draft(scope, billed.subscription).invoice
    usage = april.lines.get(kind="usage")
    assert (usage.description, usage.quantity, usage.net_amount) == ("Nutzung: API-Aufrufe", 250, Decimal(15))
    assert (usage.period_start, usage.period_end) == (MARCH, APRIL)
    assert (april.usage_start, april.usage_end) == (MARCH, APRIL)
    assert april.tax_exclusive == Decimal(115)


def test_finalizing_closes_the_usage_the_invoice_billed(scope, clock):
    from turnus.apps.metering import services as metering

    billed = subscribe(scope)
    services.create_draft(scope, billed.subscription)
    clock.set(APRIL + timedelta(hours=1))
    april = services.create_draft(scope, billed.subscription).invoice
    services.finalize(scope, april.public_id)
    late = metering.ingest(
        scope,
        [
            {
                "transaction_id": "late",
                "subscription": billed.subscription,
                "metric": "calls",
                "timestamp": (APRIL - timedelta(hours=1)).isoformat(),
            }
        ],
    )
    assert late[0].error is not None


def test_a_percentage_coupon_is_an_allowance_before_tax_on_the_first_invoice_only(scope, clock):
    coupon = {"code": "WELCOME", "name": "Welcome", "kind": "percentage", "value": "10", "duration": "once"}
    billed = subscribe(scope, coupon=coupon)
    first = services.create_draft(scope, billed.subscription).invoice
    allowance = first.allowances.get()
    assert (allowance.discount_code, allowance.amount) == ("WELCOME", Decimal(10))
    assert _totals(first) == (Decimal(90), Decimal("17.10"), Decimal("107.10"), Decimal("107.10"))
    clock.set(APRIL + timedelta(hours=1))
    second = services.create_draft(scope, billed.subscription).invoice
    assert not second.allowances.exists()


def test_an_austrian_business_is_reverse_charged_at_zero_with_the_note(scope, clock):
    business = {
        "country": "AT",
        "company": "Muster GmbH",
        "vat_id": "ATU13585627",
        "postal_code": "1010",
        "city": "Wien",
        "locale": "en",
    }
    billed = subscribe(scope, customer=business)
    invoice = services.create_draft(scope, billed.subscription).invoice
    group = invoice.vat_breakdown.get()
    assert (group.category, group.rate, group.reason_code, group.note) == (
        "AE",
        Decimal(0),
        "VATEX-EU-AE",
        "reverse_charge",
    )
    assert _totals(invoice) == (Decimal(100), Decimal(0), Decimal(100), Decimal(100))
    assert invoice.recipient["vat_id"] == "ATU13585627"
    assert _lines(invoice)[0][1] == "Subscription fee: Pro"


def test_a_french_consumer_pays_french_vat_under_oss(scope, clock):
    billed = subscribe(scope, customer={"country": "FR", "postal_code": "75001", "city": "Paris"})
    invoice = services.create_draft(scope, billed.subscription).invoice
    group = invoice.vat_breakdown.get()
    assert (group.category, group.rate, group.tax_amount) == ("S", Decimal(20), Decimal(20))
    assert invoice.grand_total == Decimal(120)


def test_a_small_business_tenant_charges_no_vat(make_tenant, clock):
    scope = scope_of(make_tenant(small_business=True, vat_id=""))
    billed = subscribe(scope)
    invoice = services.create_draft(scope, billed.subscription).invoice
    group = invoice.vat_breakdown.get()
    assert (group.category, group.rate, group.note) == ("E", Decimal(0), "small_business_exemption")
    assert invoice.grand_total == Decimal(100)


def test_a_plan_with_prices_including_vat_bills_the_shown_gross_amount(scope, clock):
    billed = subscribe(scope, fee="119.00", prices_include_tax=True)
    invoice = services.create_draft(scope, billed.subscription).invoice
    assert _totals(invoice) == (Decimal(100), Decimal(19), Decimal(119), Decimal(119))


def test_a_plan_billed_in_arrears_bills_the_used_period_when_it_ends(scope, clock):
    billed = subscribe(scope, billing_timing="in_arrears")
    with pytest.raises(services.NothingToInvoice):
        services.create_draft(scope, billed.subscription)
    clock.set(MARCH + timedelta(days=3, hours=1))
    calls(billed, 150, MARCH + timedelta(days=3))
    clock.set(APRIL + timedelta(hours=1))
    invoice = services.create_draft(scope, billed.subscription).invoice
    assert (invoice.period_start, invoice.period_end) == (MARCH, APRIL)
    assert [(line.kind, line.net_amount) for line in invoice.lines.order_by("position")] == [
        ("used", Decimal(100)),
        ("usage", Decimal(5)),
    ]


def test_every_stored_invoice_satisfies_the_en16931_totals(scope, clock):
    coupon = {
        "code": "FIVE",
        "name": "Five",
        "kind": "amount",
        "value": "5",
        "currency": "EUR",
        "duration": "forever",
    }
    billed = subscribe(scope, coupon=coupon, setup_fee="9.99")
    invoice = services.create_draft(scope, billed.subscription).invoice
    composed = services._composed_from(invoice)
    from turnus.engine.invoice import check_en16931_totals

    assert check_en16931_totals(composed) == []


def test_the_upcoming_invoice_is_computed_without_writing_anything(scope, clock):
    billed = subscribe(scope)
    clock.set(APRIL + timedelta(hours=1))
    charges = SubscriptionCharge.objects.count()
    preview = services.preview_invoice(scope, billed.subscription)
    assert preview.period == Period(APRIL, APRIL + timedelta(days=30))
    assert preview.composed is not None
    assert [line.amount for line in preview.lines] == [Decimal(100), Decimal(100)]
    assert SubscriptionCharge.objects.count() == charges
    assert not Invoice.objects.exists()
