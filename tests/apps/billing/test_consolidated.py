"""Consolidated invoicing: a customer's subscriptions due in the same run share one invoice (tenant setting),
each of their periods billed exactly once through its ``BilledPeriod`` row."""

import threading
from datetime import timedelta
from decimal import Decimal
from types import SimpleNamespace

import pytest
from django.apps import apps
from django.db import IntegrityError, connection, connections, transaction

from tests.apps.billing.support import APRIL, MARCH, MAY, calls, plan, scope_of
from tests.apps.customers.support import customer_data
from turnus.apps.billing import balance, charges, services, sweep
from turnus.apps.billing.models import BilledPeriod, Invoice
from turnus.apps.customers import services as customers
from turnus.apps.customers.models import Customer
from turnus.apps.metering.models import UsageWatermark
from turnus.apps.subscriptions import services as subscriptions
from turnus.apps.subscriptions.models import SubscriptionCharge
from turnus.core.clock import FrozenClock, use_clock

pytestmark = pytest.mark.django_db

MID_MARCH = MARCH + timedelta(days=14)


@pytest.fixture
def clock():
    frozen = FrozenClock(MARCH + timedelta(hours=9))
    with use_clock(frozen):
        yield frozen


@pytest.fixture
def scope(tenant):
    return scope_of(tenant)


def _customer(scope):
    return customers.create_customer(scope, customer_data(timezone="Europe/Berlin", locale="en")).public_id


def _subscribe(scope, customer, code, *, coupon=None, **overrides):
    from turnus.apps.catalog import services as catalog

    plan_id = plan(scope, code=code, **overrides)
    coupon_code = catalog.create_coupon(scope, coupon).code if coupon else None
    return subscriptions.create_subscription(
        scope, customer=customer, plan=plan_id, coupon=coupon_code
    ).public_id


def _consolidate(scope, on=True):
    services.update_billing_settings(scope, consolidate_invoices=on)


def _invoices():
    return list(Invoice.objects.filter(kind="invoice").order_by("pk"))


def _periods(invoice):
    return [
        (period.subscription.public_id, period.period_start, period.period_end)
        for period in invoice.billed_periods.select_related("subscription").order_by("subscription_id")
    ]


def _line_texts(invoice):
    return [(line.kind, line.description, Decimal(line.net_amount)) for line in invoice.lines.all()]


def test_without_the_setting_each_subscription_gets_its_own_invoice(scope, clock):
    customer = _customer(scope)
    _subscribe(scope, customer, "pro")
    _subscribe(scope, customer, "team", fee="50.00")
    summary = sweep.run_sweep(clock.now())
    invoices = _invoices()
    assert (summary.invoices_created, len(invoices)) == (2, 2)
    assert all(invoice.subscription is not None for invoice in invoices)
    assert sorted(Decimal(invoice.amount_due) for invoice in invoices) == [
        Decimal("59.50"),
        Decimal("119.00"),
    ]
    assert [len(_periods(invoice)) for invoice in invoices] == [1, 1]


def test_with_the_setting_one_invoice_bills_both_subscriptions(scope, clock):
    _consolidate(scope)
    customer = _customer(scope)
    pro = _subscribe(scope, customer, "pro")
    team = _subscribe(scope, customer, "team", fee="50.00")
    summary = sweep.run_sweep(clock.now())
    assert (summary.subscriptions, summary.invoices_created, summary.finalized, summary.skipped) == (
        2,
        1,
        1,
        0,
    )
    assert summary.amounts == {"EUR": Decimal("178.50")}
    invoice = Invoice.objects.get(kind="invoice")
    assert (invoice.status, invoice.number, invoice.subscription) == ("finalized", "RE-2026-000001", None)
    assert (Decimal(invoice.tax_exclusive), Decimal(invoice.tax_total)) == (
        Decimal("150.00"),
        Decimal("28.50"),
    )
    assert Decimal(invoice.amount_due) == Decimal("178.50")
    assert sorted(_periods(invoice)) == sorted([(pro, MARCH, APRIL), (team, MARCH, APRIL)])
    assert (invoice.period_start, invoice.period_end) == (MARCH, APRIL)
    lines = invoice.lines.all()
    assert sorted(line.metadata["subscription"] for line in lines) == sorted([pro, team])
    texts = sorted(line.description for line in lines)
    assert texts[0].startswith("Pro: Subscription fee: Pro")
    assert texts[1].startswith("Team: ")


def test_the_api_lists_the_subscriptions_of_a_consolidated_invoice_and_filters_by_each(api, clock):
    scope = scope_of(api.tenant)
    _consolidate(scope)
    customer = _customer(scope)
    pro = _subscribe(scope, customer, "pro")
    team = _subscribe(scope, customer, "team", fee="50.00")
    sweep.run_sweep(clock.now())
    invoice = Invoice.objects.get(kind="invoice")
    body = api.get(f"/v1/invoices/{invoice.public_id}").json()
    assert body["subscription"] is None
    assert sorted(body["subscriptions"]) == sorted([pro, team])
    for subscription in (pro, team):
        listed = api.get("/v1/invoices", params={"subscription": subscription}).json()["data"]
        assert [found["id"] for found in listed] == [invoice.public_id]
    note = api.post("/v1/credit_notes", {"invoice": invoice.public_id})
    assert note.status_code == 201, note.content
    assert sorted(note.json()["subscriptions"]) == sorted([pro, team])


def test_a_single_subscription_invoice_names_its_subscription_in_both_fields(api, clock):
    scope = scope_of(api.tenant)
    pro = _subscribe(scope, _customer(scope), "pro")
    sweep.run_sweep(clock.now())
    body = api.get("/v1/invoices").json()["data"][0]
    assert (body["subscription"], body["subscriptions"]) == (pro, [pro])


def test_subscriptions_in_different_currencies_get_separate_invoices(scope, clock):
    _consolidate(scope)
    customer = _customer(scope)
    _subscribe(scope, customer, "pro")
    _subscribe(scope, customer, "team", fee="50.00")
    _subscribe(scope, customer, "usd", fee="30.00", currency="USD")
    summary = sweep.run_sweep(clock.now())
    invoices = _invoices()
    assert summary.invoices_created == 2
    by_currency = {invoice.currency: invoice for invoice in invoices}
    assert len(_periods(by_currency["EUR"])) == 2
    assert by_currency["EUR"].subscription is None
    assert by_currency["USD"].subscription is not None
    assert len(_periods(by_currency["USD"])) == 1


def test_a_subscription_due_at_another_time_gets_its_own_invoice_then_joins_the_next(scope, clock):
    _consolidate(scope)
    customer = _customer(scope)
    pro = _subscribe(scope, customer, "pro")
    sweep.run_sweep(clock.now())
    clock.advance(MID_MARCH - clock.now())
    team = _subscribe(scope, customer, "team", fee="50.00")
    second = sweep.run_sweep(clock.now())
    assert second.invoices_created == 1
    alone = _invoices()[-1]
    assert alone.subscription.public_id == team
    assert [period[0] for period in _periods(alone)] == [team]
    clock.advance(APRIL + timedelta(hours=1) - clock.now())
    third = sweep.run_sweep(clock.now())
    assert third.invoices_created == 1
    together = _invoices()[-1]
    assert together.subscription is None
    assert sorted(period[0] for period in _periods(together)) == sorted([pro, team])
    assert len(_invoices()) == 3


def test_running_the_sweep_again_creates_nothing(scope, clock):
    _consolidate(scope)
    customer = _customer(scope)
    _subscribe(scope, customer, "pro")
    _subscribe(scope, customer, "team", fee="50.00")
    sweep.run_sweep(clock.now())
    clock.advance(timedelta(minutes=5))
    again = sweep.run_sweep(clock.now())
    assert (again.invoices_created, again.subscriptions) == (0, 0)
    assert sweep.due_customers(clock.now(), tenants={scope.tenant_id}, limit=10) == ([], [])
    assert len(_invoices()) == 1
    assert BilledPeriod.objects.count() == 2


def test_a_period_is_billed_once_even_by_a_second_invoice_attempt(scope, clock):
    _consolidate(scope)
    customer = _customer(scope)
    pro = _subscribe(scope, customer, "pro")
    _subscribe(scope, customer, "team", fee="50.00")
    sweep.run_sweep(clock.now())
    invoice = Invoice.objects.get(kind="invoice")
    assert (
        services.create_draft(scope, pro, services.billing_period(_subscription(scope, pro))).created is False
    )
    with pytest.raises(IntegrityError), transaction.atomic():
        BilledPeriod.objects.create(
            invoice=invoice,
            subscription=invoice.billed_periods.first().subscription,
            period_start=MARCH,
            period_end=APRIL,
        )


def _subscription(scope, public_id):
    return subscriptions.get_subscription(scope, public_id)


def test_each_coupon_discounts_only_its_own_subscriptions_lines(scope, clock):
    _consolidate(scope)
    customer = _customer(scope)
    coupon = {"code": "WELCOME", "name": "Welcome", "kind": "percentage", "value": "10", "duration": "once"}
    _subscribe(scope, customer, "pro", coupon=coupon)
    _subscribe(scope, customer, "team", fee="50.00")
    sweep.run_sweep(clock.now())
    invoice = Invoice.objects.get(kind="invoice")
    assert Decimal(invoice.tax_exclusive) == Decimal("140.00")  # 100 - 10% + 50
    assert Decimal(invoice.amount_due) == Decimal("166.60")
    discounts = [line for line in invoice.lines.all() if line.kind == "discount"]
    assert [(line.description, Decimal(line.net_amount)) for line in discounts] == [
        ("Pro: Discount WELCOME", Decimal("-10.00"))
    ]


def test_a_coupon_on_gross_prices_takes_off_what_the_subscriptions_own_invoice_would(scope, clock):
    _consolidate(scope)
    customer = _customer(scope)
    coupon = {"code": "WELCOME", "name": "Welcome", "kind": "percentage", "value": "10", "duration": "once"}
    _subscribe(scope, customer, "pro", coupon=coupon, fee="119.00", prices_include_tax=True)
    _subscribe(scope, customer, "team", fee="59.50", prices_include_tax=True)
    sweep.run_sweep(clock.now())
    invoice = Invoice.objects.get(kind="invoice")
    assert invoice.prices_include_tax
    assert Decimal(invoice.amount_due) == Decimal("166.60")  # 119 - 11.90 + 59.50
    assert not services.check_en16931_totals(services._composed_from(invoice))


def test_gross_and_net_priced_subscriptions_are_not_mixed_on_one_invoice(scope, clock):
    _consolidate(scope)
    customer = _customer(scope)
    _subscribe(scope, customer, "pro")
    _subscribe(scope, customer, "gross", fee="59.50", prices_include_tax=True)
    assert sweep.run_sweep(clock.now()).invoices_created == 2


def test_the_setup_fee_is_billed_once_per_subscription(scope, clock):
    _consolidate(scope)
    customer = _customer(scope)
    _subscribe(scope, customer, "pro", setup_fee="20.00")
    _subscribe(scope, customer, "team", fee="50.00", setup_fee="5.00")
    sweep.run_sweep(clock.now())
    clock.advance(APRIL + timedelta(hours=1) - clock.now())
    sweep.run_sweep(clock.now())
    first, second = _invoices()
    assert sorted(
        (line.description, Decimal(line.net_amount)) for line in first.lines.all() if line.kind == "setup_fee"
    ) == [("Pro: Setup fee: Pro", Decimal("20.00")), ("Team: Setup fee: Team", Decimal("5.00"))]
    assert not [line for line in second.lines.all() if line.kind == "setup_fee"]
    assert Decimal(second.tax_exclusive) == Decimal("150.00")


def test_a_pending_one_off_charge_lands_once_on_the_consolidated_invoice(scope, clock):
    _consolidate(scope)
    customer = _customer(scope)
    _subscribe(scope, customer, "pro")
    team = _subscribe(scope, customer, "team", fee="50.00")
    charges.create_charge(scope, customer, charges.NewCharge(description="Onboarding", amount=Decimal("80")))
    charges.create_charge(
        scope, customer, charges.NewCharge(description="Extra seat", amount=Decimal("7"), subscription=team)
    )
    sweep.run_sweep(clock.now())
    invoice = Invoice.objects.get(kind="invoice")
    one_offs = sorted(line.description for line in invoice.lines.all() if line.kind == "one_off")
    assert one_offs == ["Extra seat", "Onboarding"]
    assert Decimal(invoice.tax_exclusive) == Decimal("237.00")
    assert invoice.customer_charges.count() == 2


def test_finalizing_closes_each_subscriptions_usage_and_uses_the_customers_credit(scope, clock):
    _consolidate(scope)
    customer = _customer(scope)
    pro = _subscribe(scope, customer, "pro")
    team = _subscribe(scope, customer, "team", fee="50.00")
    sweep.run_sweep(clock.now())
    clock.advance(MID_MARCH - clock.now())
    for public_id in (pro, team):
        calls(
            SimpleNamespace(scope=scope, subscription=public_id),
            150,
            MARCH + timedelta(days=3),
            prefix=public_id,
        )
    balance.adjust(scope, customer, amount=Decimal("20.00"), currency="EUR", description="Goodwill")
    clock.advance(APRIL + timedelta(hours=1) - clock.now())
    sweep.run_sweep(clock.now())
    invoice = _invoices()[-1]
    usage = sorted(
        (line.metadata["subscription"], Decimal(line.net_amount))
        for line in invoice.lines.all()
        if line.kind == "usage"
    )
    assert usage == sorted([(pro, Decimal("5.00")), (team, Decimal("5.00"))])
    assert {(p.usage_start, p.usage_end) for p in invoice.billed_periods.all()} == {(MARCH, APRIL)}
    closed = dict(UsageWatermark.objects.values_list("subscription__public_id", "closed_until"))
    assert closed == {pro: APRIL, team: APRIL}
    assert Decimal(invoice.prepaid) == Decimal("20.00")
    assert Decimal(invoice.amount_due) == Decimal(invoice.grand_total) - Decimal("20.00")


def test_the_upcoming_invoice_of_each_subscription_is_its_own(scope, clock):
    _consolidate(scope)
    customer = _customer(scope)
    pro = _subscribe(scope, customer, "pro")
    _subscribe(scope, customer, "team", fee="50.00")
    preview = services.preview_invoice(scope, pro)
    assert [line.description for line in preview.composed.lines] == ["Subscription fee: Pro"]
    assert preview.composed.totals.amount_due.amount == Decimal("119.00")
    assert Invoice.objects.count() == 0


def test_voiding_a_consolidated_invoice_keeps_its_periods_billed(scope, clock):
    _consolidate(scope)
    services.set_draft_grace_period(scope, timedelta(days=1))
    customer = _customer(scope)
    _subscribe(scope, customer, "pro")
    _subscribe(scope, customer, "team", fee="50.00")
    sweep.run_sweep(clock.now())
    invoice = Invoice.objects.get(kind="invoice")
    assert invoice.status == "draft"
    services.void(scope, invoice.public_id)
    clock.advance(timedelta(hours=2))
    assert sweep.run_sweep(clock.now()).invoices_created == 0
    assert BilledPeriod.objects.filter(invoice=invoice).count() == 2


def _without_seats(scope, customer, code):
    """A subscription without seats to a plan that has no base fee and charges 10.00 per seat."""
    base = {"code": "base", "name_en": "Base", "kind": "recurring", "price": {"model": "flat", "amount": "0"}}
    seats = {"code": "seats", "name_en": "Seats", "kind": "quantity"}
    seats["price"] = {"model": "per_unit", "unit_price": "10.00"}
    plan_id = plan(scope, code=code, charges=[base, seats])
    return subscriptions.create_subscription(
        scope, customer=customer, plan=plan_id, quantities={"seats": 0}
    ).public_id


@pytest.mark.parametrize(
    ("with_fee", "codes"), [(True, ("solo", "duo")), (False, ("solo", "duo")), (False, ("solo",))]
)
def test_periods_with_nothing_to_bill_are_settled_and_not_taken_up_again(scope, clock, with_fee, codes):
    _consolidate(scope)
    customer = _customer(scope)
    if with_fee:
        _subscribe(scope, customer, "pro")
    free = [_without_seats(scope, customer, code) for code in codes]
    for start in (MARCH, APRIL):
        summary = sweep.run_sweep(start + timedelta(hours=1))
        assert (summary.invoices_created, summary.errors) == (int(with_fee), [])
        assert sweep.run_sweep(start + timedelta(hours=2)).subscriptions == 0
    assert not BilledPeriod.objects.filter(subscription__public_id__in=free).exists()
    # March's 0.00 marks billed nothing and are gone; April's stay while April is under way.
    marks = SubscriptionCharge.objects.filter(subscription__public_id__in=free, amount=0)
    assert sorted(marks.values_list("period_start", "period_end")) == [(APRIL, MAY)] * len(codes)


#: 11 March 2026, 10:00 in Berlin.
ELEVENTH = MARCH + timedelta(days=10, hours=10)


def test_a_shared_closing_invoice_shows_the_span_its_lines_cover(scope, clock):
    _consolidate(scope)
    customer = _customer(scope)
    pro = _subscribe(scope, customer, "pro", credit_unused_on_cancel=True)
    team = _subscribe(scope, customer, "team", fee="50.00", credit_unused_on_cancel=True)
    sweep.run_sweep(clock.now())
    clock.advance(ELEVENTH - clock.now())
    for public_id in (pro, team):
        calls(
            SimpleNamespace(scope=scope, subscription=public_id),
            150,
            MARCH + timedelta(days=3),
            prefix=public_id,
        )
        subscriptions.cancel_subscription(scope, public_id, mode="now")
    clock.advance(timedelta(minutes=1))

    assert sweep.run_sweep(clock.now()).invoices_created == 1

    closing = _invoices()[-1]
    assert closing.subscription is None
    # Each subscription's closing period is keyed by one microsecond from the cancellation ...
    closing_key = (ELEVENTH, ELEVENTH + timedelta(microseconds=1))
    assert sorted(_periods(closing)) == sorted([(pro, *closing_key), (team, *closing_key)])
    # ... while the shared invoice shows what its lines cover: the usage since 1 March and the credits
    # up to where the cancelled periods would have ended.
    credits = {(line.period_start, line.period_end) for line in closing.lines.filter(kind="proration_credit")}
    assert credits == {(ELEVENTH, APRIL)}
    assert {(line.period_start, line.period_end) for line in closing.lines.filter(kind="usage")} == {
        (MARCH, ELEVENTH)
    }
    assert (closing.period_start, closing.period_end) == (MARCH, APRIL)
    assert (closing.usage_start, closing.usage_end) == (MARCH, ELEVENTH)


def test_the_data_migration_gives_each_existing_subscription_invoice_its_period(scope, clock):
    from importlib import import_module

    migration = import_module("turnus.apps.billing.migrations.0005_consolidated_invoices")
    pro = _subscribe(scope, _customer(scope), "pro")
    invoice = services.create_draft(scope, pro).invoice
    BilledPeriod.objects.all().delete()
    migration.billed_periods_of_existing_invoices(apps, SimpleNamespace(connection=connection))
    row = BilledPeriod.objects.get()
    assert (row.invoice_id, row.subscription.public_id, row.period_start, row.period_end) == (
        invoice.pk,
        pro,
        MARCH,
        APRIL,
    )
    assert (row.usage_start, row.usage_end) == (invoice.usage_start, invoice.usage_end)


def test_the_setting_round_trips_through_the_api_with_validation(api):
    assert api.get("/v1/billing_settings").json() == {
        "object": "billing_settings",
        "draft_grace_period": 0,
        "consolidate_invoices": False,
    }
    changed = api.post("/v1/billing_settings", {"consolidate_invoices": True})
    assert changed.status_code == 200, changed.content
    assert changed.json()["consolidate_invoices"] is True
    grace = api.post("/v1/billing_settings", {"draft_grace_period": 3600})
    assert grace.json() == {
        "object": "billing_settings",
        "draft_grace_period": 3600,
        "consolidate_invoices": True,
    }
    for bad in ({"draft_grace_period": -1}, {"draft_grace_period": 10**20}):
        refused = api.post("/v1/billing_settings", bad)
        assert refused.status_code == 422, refused.content
        assert refused.headers["content-type"].startswith("application/problem+json")
        assert "draft_grace_period" in refused.text
    assert api.post("/v1/billing_settings", {"consolidate_invoices": "maybe"}).status_code == 422
    assert api.post("/v1/billing_settings", {"unknown": 1}).status_code == 422
    assert api.get("/v1/billing_settings").json()["draft_grace_period"] == 3600


@pytest.mark.django_db(transaction=True)
def test_a_customer_held_by_another_worker_is_left_whole_to_it(tenant):
    if connection.vendor != "postgresql":
        pytest.skip("row locks that other workers skip exist on PostgreSQL only")
    clock = FrozenClock(MARCH + timedelta(hours=9))
    scope = scope_of(tenant)
    with use_clock(clock):
        _consolidate(scope)
        held_customer = _customer(scope)
        _subscribe(scope, held_customer, "pro")
        _subscribe(scope, held_customer, "team", fee="50.00")
        other = _customer(scope)
        _subscribe(scope, other, "solo", fee="10.00")
    locked = threading.Event()
    release = threading.Event()

    def hold() -> None:
        try:
            with transaction.atomic():
                Customer.objects.select_for_update().get(public_id=held_customer)
                locked.set()
                release.wait(timeout=30)
        finally:
            connections.close_all()

    holder = threading.Thread(target=hold)
    holder.start()
    assert locked.wait(timeout=10)
    try:
        first = sweep.run_sweep(clock.now())
    finally:
        release.set()
        holder.join()
    assert first.invoices_created == 1  # only the other customer's; the held one was not split
    assert Invoice.objects.filter(customer__public_id=held_customer).count() == 0
    second = sweep.run_sweep(clock.now())
    assert second.invoices_created == 1
    assert Invoice.objects.get(customer__public_id=held_customer).billed_periods.count() == 2


@pytest.mark.django_db(transaction=True)
def test_two_concurrent_runs_bill_each_customer_once_on_one_invoice(tenant):
    if connection.vendor != "postgresql":
        pytest.skip("SQLite serialises writers; concurrent workers are a PostgreSQL concern")
    clock = FrozenClock(MARCH + timedelta(hours=9))
    scope = scope_of(tenant)
    with use_clock(clock):
        _consolidate(scope)
        owners = [_customer(scope) for _ in range(6)]
        for index, owner in enumerate(owners):
            _subscribe(scope, owner, f"a{index}")
            _subscribe(scope, owner, f"b{index}", fee="50.00")
    summaries: list[sweep.SweepSummary] = []
    failures: list[BaseException] = []
    barrier = threading.Barrier(2)

    def run() -> None:
        try:
            barrier.wait()
            summaries.append(sweep.run_sweep(clock.now(), batch=2))
        except BaseException as error:
            failures.append(error)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    assert sum(summary.invoices_created for summary in summaries) == 6
    for owner in owners:
        assert Invoice.objects.get(customer__public_id=owner).billed_periods.count() == 2
    assert BilledPeriod.objects.count() == 12


def test_a_test_clock_advance_consolidates_and_finalizes_each_consolidated_draft_after_the_grace(api):
    scope = scope_of(api.tenant)
    settings = api.post("/v1/billing_settings", {"consolidate_invoices": True, "draft_grace_period": 86400})
    assert settings.status_code == 200, settings.content
    made = api.post("/v1/test_clocks", {"frozen_time": MARCH.isoformat()})
    assert made.status_code == 201, made.content
    clock_id = made.json()["id"]
    body = customer_data(timezone="Europe/Berlin", locale="en", test_clock=clock_id)
    customer = api.post("/v1/customers", body).json()["id"]
    for code, fee in (("pro", "100.00"), ("team", "50.00")):
        created = api.post(
            "/v1/subscriptions", {"customer": customer, "plan": plan(scope, code=code, fee=fee)}
        )
        assert created.status_code == 201, created.content
    advanced = api.post(
        f"/v1/test_clocks/{clock_id}/advance", {"frozen_time": (APRIL + timedelta(days=2)).isoformat()}
    )
    assert advanced.status_code == 200, advanced.content
    invoices = _invoices()
    assert [
        (invoice.status, invoice.subscription_id, invoice.billed_periods.count()) for invoice in invoices
    ] == [
        ("finalized", None, 2),
        ("finalized", None, 2),
    ]
    assert [invoice.finalized_at for invoice in invoices] == [
        MARCH + timedelta(days=1),
        APRIL + timedelta(days=1),
    ]


def test_a_tenants_billing_settings_are_its_own(api, make_tenant):
    from tests.support import ApiClient

    stranger = ApiClient(make_tenant())
    assert stranger.post("/v1/billing_settings", {"consolidate_invoices": True}).status_code == 200
    assert api.get("/v1/billing_settings").json()["consolidate_invoices"] is False
    assert stranger.get("/v1/billing_settings").json()["consolidate_invoices"] is True
