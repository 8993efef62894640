"""``turnus demo simulate``: a year (or N months) of a demo merchant's billing, run on a test clock.

A new test-mode tenant gets a small catalogue, six customers on one test clock and their subscriptions;
then the clock walks through the months. Every customer uses the API every day (figures pseudo-random
from the seed); the clock stops on the simulation's event days: at least weekly to send the days' usage
(through the same ingestion service the API uses), before every period boundary (billing closes the usage
before it), and on the days the script upgrades, adds seats, pauses, resumes, cancels and charges once,
each at the clock's time as the API would. Advancing the clock (``billing.test_clocks.advance_test_clock``)
runs the billing at every moment something falls due on the way. Nothing of the ``demo load`` tenant is
read or written, and the whole run is one transaction: all of it or nothing.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from django.db import transaction
from django.utils.text import slugify

from turnus.apps.billing import charges, test_clocks
from turnus.apps.billing.models import DocumentKind, Invoice
from turnus.apps.catalog import services as catalog
from turnus.apps.customers import services as customers
from turnus.apps.customers.clocks import at as clock_at
from turnus.apps.customers.models import TestClock
from turnus.apps.demo.loader import DEMO_SLUG
from turnus.apps.metering import services as metering
from turnus.apps.subscriptions import services as subscriptions
from turnus.apps.subscriptions.models import Subscription
from turnus.apps.tenants import services as tenants
from turnus.apps.tenants.models import Tenant
from turnus.core import clock
from turnus.core.errors import ValidationFailed
from turnus.core.scope import Actor, ActorKind, Scope
from turnus.engine.periods import local_date, local_midnight

ACTOR = Actor(ActorKind.CLI, "turnus demo simulate")
TIMEZONE = "Europe/Berlin"
SLUG_PREFIX = "demo-sim-"
DEFAULT_SEED = 2026
MIN_MONTHS, MAX_MONTHS = 1, 24
#: The customers send their usage at this local hour every day; the actions happen at 10:00.
USAGE_HOUR, ACTION_HOUR = 18, 10
#: The clock stops at least weekly to send the days' usage, and besides on the days of actions and
#: before every period boundary.
USAGE_BATCH_DAYS = 7

TENANT = {
    "address_line1": "Friedrichstraße 123",
    "postal_code": "10117",
    "city": "Berlin",
    "country": "DE",
    "vat_id": "DE136695976",
    "tax_number": "37/123/45678",
    "default_currency": "EUR",
    "timezone": TIMEZONE,
    "locale": "en",
    "iban": "DE89370400440532013000",
    "bic": "COBADEFFXXX",
    "sepa_creditor_id": "DE98ZZZ09999999999",
    "email": "billing@demo.example",
}

API_CALLS = "api_calls"

#: The six customers: key, data, plan code, subscription options, daily API calls (low, high).
CUSTOMERS: tuple[tuple[str, dict[str, Any], str, dict[str, Any], tuple[int, int]], ...] = (
    (
        "erika",
        {
            "name": "Erika Mustermann",
            "email": "erika@example.com",
            "address_line1": "Musterweg 5",
            "postal_code": "50667",
            "city": "Köln",
            "country": "DE",
            "locale": "de",
            "external_id": "sim-erika",
        },
        "basic",
        {},
        (80, 400),
    ),
    (
        "schmidt",
        {
            "name": "Max Schmidt",
            "company": "Schmidt & Partner GmbH",
            "email": "buchhaltung@schmidt.example",
            "address_line1": "Hafenstraße 1",
            "postal_code": "20457",
            "city": "Hamburg",
            "country": "DE",
            "locale": "de",
            "vat_id": "DE811907980",
            "external_id": "sim-schmidt",
        },
        "pro",
        {"quantities": {"seats": 5}},
        (500, 2500),
    ),
    (
        "alpen",
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
            "external_id": "sim-alpen",
        },
        "pro-yearly",
        {"quantities": {"seats": 3}},
        (0, 0),
    ),
    (
        "camille",
        {
            "name": "Camille Dubois",
            "email": "camille@example.fr",
            "address_line1": "12 rue de la Paix",
            "postal_code": "75002",
            "city": "Paris",
            "country": "FR",
            "locale": "en",
            "timezone": "Europe/Paris",
            "external_id": "sim-camille",
        },
        "basic",
        {},
        (50, 300),
    ),
    (
        "jonas",
        {
            "name": "Jonas Weber",
            "email": "jonas@example.com",
            "address_line1": "Marienplatz 8",
            "postal_code": "80331",
            "city": "München",
            "country": "DE",
            "locale": "de",
            "external_id": "sim-jonas",
        },
        "basic",
        {"trial_days": 14},
        (20, 200),
    ),
    (
        "lena",
        {
            "name": "Lena Fischer",
            "email": "lena@example.com",
            "address_line1": "Königstraße 20",
            "postal_code": "70173",
            "city": "Stuttgart",
            "country": "DE",
            "locale": "de",
            "external_id": "sim-lena",
        },
        "basic",
        {"coupon": "WELCOME10"},
        (100, 500),
    ),
)


@dataclass(frozen=True)
class Action:
    """Something the script does on ``day`` (1-based) of simulated ``month`` (1-based), at 10:00 local."""

    month: int
    day: int
    customer: str
    description: str
    run: Callable[[Simulation], None]


@dataclass
class Simulation:
    """The state of one run: the tenant's scope, its test clock and the objects the actions act on."""

    scope: Scope
    test_clock: TestClock
    plans: dict[str, str] = field(default_factory=dict)
    customers: dict[str, str] = field(default_factory=dict)
    subscriptions: dict[str, str] = field(default_factory=dict)

    def now(self) -> datetime:
        return self.test_clock.frozen_time

    def at_clock(self) -> Any:
        """Run the block at the clock's time, as the API runs a call on a customer on the clock."""
        return clock_at(self.test_clock.frozen_time)


@dataclass(frozen=True)
class InvoiceRow:
    number: str
    customer: str
    period: str
    net: Decimal
    vat: Decimal
    gross: Decimal
    currency: str
    status: str
    kind: str


@dataclass
class Result:
    tenant: Tenant
    secret_key: str
    start: datetime
    end: datetime
    months: int
    seed: int
    events_sent: int = 0
    billing_runs: int = 0
    billing_errors: int = 0
    log: list[str] = field(default_factory=list)
    invoices: list[InvoiceRow] = field(default_factory=list)

    def totals(self) -> dict[str, tuple[Decimal, Decimal, Decimal]]:
        """Net, VAT and gross per currency (credit notes count negative)."""
        sums: dict[str, tuple[Decimal, Decimal, Decimal]] = {}
        for row in self.invoices:
            if row.status == "void":
                continue
            sign = -1 if row.kind == DocumentKind.CREDIT_NOTE else 1
            net, vat, gross = sums.get(row.currency, (Decimal(0), Decimal(0), Decimal(0)))
            sums[row.currency] = (net + sign * row.net, vat + sign * row.vat, gross + sign * row.gross)
        return sums


# --- the actions --------------------------------------------------------------------------------------


def _upgrade(sim: Simulation) -> None:
    subscriptions.change_subscription(
        sim.scope,
        sim.subscriptions["erika"],
        plan=sim.plans["pro"],
        quantities={"seats": 2},
        effective="now",
    )


def _more_seats(sim: Simulation) -> None:
    subscriptions.change_subscription(
        sim.scope, sim.subscriptions["schmidt"], quantities={"seats": 8}, effective="now"
    )


def _pause(sim: Simulation) -> None:
    subscriptions.pause_subscription(sim.scope, sim.subscriptions["camille"])


def _resume(sim: Simulation) -> None:
    subscriptions.resume_subscription(sim.scope, sim.subscriptions["camille"])


def _cancel(sim: Simulation) -> None:
    subscriptions.cancel_subscription(sim.scope, sim.subscriptions["jonas"], mode="period_end")


def _workshop(sim: Simulation) -> None:
    charges.create_charge(
        sim.scope,
        sim.customers["schmidt"],
        charges.NewCharge(
            description="Onboarding workshop (half day)",
            amount=Decimal("240.00"),
            quantity=2,
            currency="EUR",
            invoice_now=True,
        ),
    )


ACTIONS: tuple[Action, ...] = (
    Action(
        2, 10, "schmidt", "one-off charge: onboarding workshop, 2 × 240.00 EUR, invoiced at once", _workshop
    ),
    Action(3, 15, "erika", "upgrade Basic → Pro with 2 seats, prorated now", _upgrade),
    Action(4, 10, "schmidt", "seats 5 → 8, prorated now", _more_seats),
    Action(5, 10, "camille", "pause (open-ended)", _pause),
    Action(7, 5, "camille", "resume; the unused days of the paused period carry over", _resume),
    Action(9, 12, "jonas", "cancel at the end of the current period", _cancel),
)


# --- set-up -------------------------------------------------------------------------------------------


def _monthly_charges(
    base: str, included_calls: str, tiers: list[tuple[str | None, str]], metric: str
) -> list[dict[str, Any]]:
    return [
        {
            "code": "base",
            "name_en": "Monthly fee",
            "name_de": "Monatsgebühr",
            "kind": "recurring",
            "price": {"model": "flat", "amount": base},
        },
        {
            "code": "api",
            "name_en": "API calls",
            "name_de": "API-Aufrufe",
            "kind": "metered",
            "metric": metric,
            "price": {
                "model": "graduated",
                "tiers": [{"up_to": included_calls, "unit_price": "0"}]
                + [{"up_to": up_to, "unit_price": price} for up_to, price in tiers],
            },
        },
    ]


SEATS = {
    "code": "seats",
    "name_en": "Seats",
    "name_de": "Arbeitsplätze",
    "kind": "quantity",
    "price": {"model": "per_unit", "unit_price": "9.00"},
}


def _catalogue(sim: Simulation) -> None:
    scope = sim.scope
    product = catalog.create_product(
        scope,
        {
            "name_en": "Cloud Office",
            "name_de": "Cloud Office",
            "description_en": "Online office suite for teams",
            "description_de": "Online-Büro für Teams",
        },
    )
    metric = catalog.create_billable_metric(
        scope,
        {
            "code": API_CALLS,
            "name_en": "API calls",
            "name_de": "API-Aufrufe",
            "aggregation": "sum",
            "property": "calls",
        },
    ).public_id
    plans: dict[str, dict[str, Any]] = {
        "basic": {
            "name_en": "Basic",
            "name_de": "Basic",
            "interval": {"unit": "month"},
            "charges": _monthly_charges("19.00", "2000", [("20000", "0.002"), (None, "0.001")], metric),
        },
        "pro": {
            "name_en": "Pro",
            "name_de": "Pro",
            "interval": {"unit": "month"},
            "charges": [
                *_monthly_charges("49.00", "5000", [("100000", "0.0015"), (None, "0.0008")], metric),
                SEATS,
            ],
        },
        "pro-yearly": {
            "name_en": "Pro, yearly",
            "name_de": "Pro, jährlich",
            "interval": {"unit": "year"},
            "charges": [
                {
                    "code": "base",
                    "name_en": "Yearly fee",
                    "name_de": "Jahresgebühr",
                    "kind": "recurring",
                    "price": {"model": "flat", "amount": "490.00"},
                },
                {**SEATS, "price": {"model": "per_unit", "unit_price": "90.00"}},
            ],
        },
    }
    for code, data in plans.items():
        plan = catalog.create_plan(
            scope, {"code": code, "product": product.public_id, "currency": "EUR", **data}
        )
        sim.plans[code] = plan.public_id
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


def _customers(sim: Simulation) -> None:
    for key, data, plan, options, _calls in CUSTOMERS:
        customer = customers.create_customer(sim.scope, {**data, "test_clock": sim.test_clock.public_id})
        sim.customers[key] = customer.public_id
        with sim.at_clock():
            subscription = subscriptions.create_subscription(
                sim.scope, customer=customer.public_id, plan=sim.plans[plan], **options
            )
        sim.subscriptions[key] = subscription.public_id


def _next_slug() -> str:
    taken = Tenant.objects.filter(slug__startswith=SLUG_PREFIX).values_list("slug", flat=True)
    numbers = [int(match.group(1)) for slug in taken if (match := re.fullmatch(r"demo-sim-(\d+)", slug))]
    return f"{SLUG_PREFIX}{max(numbers, default=0) + 1}"


def first_of_month(instant: datetime) -> datetime:
    """Midnight (Berlin) of the first of the month ``instant`` falls in."""
    day = local_date(instant, TIMEZONE)
    return local_midnight(day.replace(day=1), TIMEZONE)


def _add_months(day: date, months: int) -> date:
    index = day.year * 12 + day.month - 1 + months
    return date(index // 12, index % 12 + 1, 1)


# --- the walk -----------------------------------------------------------------------------------------


def _days(start: datetime, end: datetime) -> Iterator[date]:
    day = local_date(start, TIMEZONE)
    last = local_date(end, TIMEZONE)
    while day < last:
        yield day
        day += timedelta(days=1)


def _at_hour(day: date, hour: int) -> datetime:
    return local_midnight(day, TIMEZONE) + timedelta(hours=hour)


def _advance(sim: Simulation, result: Result, to: datetime) -> None:
    if to <= sim.test_clock.frozen_time:
        return
    advanced = test_clocks.advance_test_clock(sim.scope, sim.test_clock.public_id, frozen_time=to)
    sim.test_clock = advanced.test_clock
    result.billing_runs += advanced.summary.billing_runs
    result.billing_errors += advanced.summary.errors


def _takes_usage(subscription: Subscription, at: datetime) -> bool:
    if subscription.ended_at is not None and at >= subscription.ended_at:
        return False
    if subscription.cancel_at is not None and at >= subscription.cancel_at:
        return False
    pause = subscription.pause or {}
    if pause.get("paused_at"):
        begins = datetime.fromisoformat(pause["paused_at"])
        ends = datetime.fromisoformat(pause["resume_at"]) if pause.get("resume_at") else None
        if begins <= at and (ends is None or at < ends):
            return False
    return True


@dataclass
class UsageQueue:
    """The daily usage figures drawn but not sent yet; sent in one batch at the next stop of the clock."""

    days: list[tuple[date, dict[str, int]]] = field(default_factory=list)


def _draw(rng: random.Random, queue: UsageQueue, day: date) -> None:
    """Each customer's API calls of ``day``; drawn in a fixed order, so the seed decides them all."""
    queue.days.append((day, {key: rng.randint(low, high) for key, *_, (low, high) in CUSTOMERS}))


def _send_usage(sim: Simulation, result: Result, queue: UsageQueue) -> None:
    """Send the queued days' usage, each event stamped 18:00 of its day (the clock stands at or after
    the last of them); days on which a subscription took no usage (paused, ended) send nothing."""
    if not queue.days:
        return
    rows = Subscription.objects.filter(public_id__in=sim.subscriptions.values()).only(
        "public_id", "ended_at", "cancel_at", "pause"
    )
    by_id = {row.public_id: row for row in rows}
    events = []
    for day, figures in queue.days:
        stamp = _at_hour(day, USAGE_HOUR)
        for key, calls in figures.items():
            if calls and _takes_usage(by_id[sim.subscriptions[key]], stamp):
                events.append(
                    {
                        "transaction_id": f"sim-{key}-{day.isoformat()}",
                        "metric": API_CALLS,
                        "customer": sim.customers[key],
                        "timestamp": stamp.isoformat(),
                        "properties": {"calls": calls},
                    }
                )
    queue.days.clear()
    if not events:
        return
    with sim.at_clock():
        results = metering.ingest(sim.scope, events)
    refused = [item for item in results if item.status != metering.EventStatus.CREATED]
    if refused:
        first = refused[0]
        raise ValidationFailed(
            f"usage event {first.transaction_id} was refused: {first.error}", field="events"
        )
    result.events_sent += len(events)


def _flush(sim: Simulation, result: Result, queue: UsageQueue) -> None:
    """Move the clock to the last queued day's usage time (billing what falls due) and send the usage."""
    if queue.days:
        _advance(sim, result, _at_hour(queue.days[-1][0], USAGE_HOUR))
        _send_usage(sim, result, queue)


def _next_boundary(sim: Simulation) -> datetime | None:
    """The first moment after the clock's time at which a period ends or the lifecycle moves: billing
    closes the usage before it then, so the usage up to it must be sent first."""
    rows = Subscription.objects.filter(public_id__in=sim.subscriptions.values())
    moments = [
        moment
        for pair in rows.values_list("current_period_end", "next_event_at")
        for moment in pair
        if moment is not None and moment > sim.now()
    ]
    return min(moments, default=None)


def _act(sim: Simulation, result: Result, action: Action) -> None:
    with sim.at_clock():
        action.run(sim)
    day = local_date(sim.now(), TIMEZONE)
    name = next(data.get("company") or data["name"] for key, data, *_ in CUSTOMERS if key == action.customer)
    result.log.append(f"{day.isoformat()}  {name}: {action.description}")


def _period(invoice: Invoice) -> str:
    if invoice.period_start is None or invoice.period_end is None:
        return "one-off"
    first = local_date(invoice.period_start, TIMEZONE)
    last = local_date(invoice.period_end - timedelta(microseconds=1), TIMEZONE)
    return f"{first.isoformat()} – {last.isoformat()}"


def invoice_rows(scope: Scope) -> list[InvoiceRow]:
    documents = (
        Invoice.objects.filter(tenant_id=scope.tenant_id, livemode=scope.livemode)
        .select_related("customer")
        .order_by("created_at", "pk")
    )
    return [
        InvoiceRow(
            number=invoice.number or "(draft)",
            customer=invoice.customer.company or invoice.customer.name,
            period=_period(invoice),
            net=invoice.tax_exclusive,
            vat=invoice.tax_total,
            gross=invoice.grand_total,
            currency=invoice.currency,
            status=invoice.status,
            kind=invoice.kind,
        )
        for invoice in documents
    ]


@transaction.atomic
def simulate(
    *, months: int = 12, seed: int = DEFAULT_SEED, slug: str | None = None, start: datetime | None = None
) -> Result:
    """Create a demo tenant and bill ``months`` of its customers' life on a test clock; all or nothing."""
    if not MIN_MONTHS <= months <= MAX_MONTHS:
        raise ValidationFailed(f"months must be {MIN_MONTHS} to {MAX_MONTHS}", field="months")
    slug = slug or _next_slug()
    if slugify(slug)[:60] != slug:
        raise ValidationFailed("the tenant slug takes lower-case letters, digits and hyphens", field="slug")
    if slug == DEMO_SLUG:
        raise ValidationFailed("the merchant of `turnus demo load` is never simulated on", field="slug")
    if Tenant.objects.filter(slug=slug).exists():
        raise ValidationFailed(f"a tenant {slug!r} exists already; pick another slug", field="slug")
    begin = first_of_month(start or clock.now())
    end = local_midnight(_add_months(local_date(begin, TIMEZONE), months), TIMEZONE)
    tenant = tenants.create_tenant(
        {**TENANT, "slug": slug, "legal_name": f"Turnus Demo Simulation GmbH ({slug})"}, actor=ACTOR
    )
    scope = Scope(tenant.pk, False, ACTOR)
    key = tenants.create_api_key(tenant, livemode=False, name="simulation", actor=ACTOR).plaintext
    test_clock = test_clocks.create_test_clock(scope, frozen_time=begin, name=f"Simulation, seed {seed}")
    sim = Simulation(scope, test_clock)
    result = Result(tenant, key, begin, end, months, seed)
    _catalogue(sim)
    _customers(sim)
    rng = random.Random(seed)  # noqa: S311 - reproducible demo figures, not secrets
    month_starts = {_add_months(local_date(begin, TIMEZONE), offset): offset + 1 for offset in range(months)}
    month = 0
    queue = UsageQueue()
    boundary = _next_boundary(sim)
    for day in _days(begin, end):
        month = month_starts.get(day, month)
        for action in ACTIONS:
            if (action.month, action.day) == (month, day.day):
                _flush(sim, result, queue)
                _advance(sim, result, _at_hour(day, ACTION_HOUR))
                _act(sim, result, action)
                boundary = _next_boundary(sim)
        _draw(rng, queue, day)
        tomorrow = _at_hour(day + timedelta(days=1), USAGE_HOUR)
        if len(queue.days) >= USAGE_BATCH_DAYS or (boundary is not None and boundary <= tomorrow):
            _flush(sim, result, queue)
            boundary = _next_boundary(sim)
    _flush(sim, result, queue)
    _advance(sim, result, end)
    result.invoices = invoice_rows(scope)
    return result


# --- the report ---------------------------------------------------------------------------------------

COLUMNS = ("Number", "Customer", "Period", "Net", "VAT", "Gross", "Status")
RIGHT = {"Net", "VAT", "Gross"}


def _money(amount: Decimal, currency: str) -> str:
    return f"{amount.quantize(Decimal('0.01')):,.2f} {currency}"


def _table(rows: Sequence[tuple[str, ...]]) -> list[str]:
    widths = [max(len(column), *(len(row[index]) for row in rows)) for index, column in enumerate(COLUMNS)]

    def line(cells: tuple[str, ...]) -> str:
        return "  ".join(
            cell.rjust(width) if column in RIGHT else cell.ljust(width)
            for cell, width, column in zip(cells, widths, COLUMNS, strict=True)
        ).rstrip()

    return [line(COLUMNS), line(tuple("-" * width for width in widths)), *(line(row) for row in rows)]


def report(result: Result) -> list[str]:
    """The printout: the tenant, what happened on which day, every invoice, totals and a summary."""
    start = local_date(result.start, TIMEZONE)
    last = local_date(result.end, TIMEZONE) - timedelta(days=1)
    lines = [
        f"Demo tenant {result.tenant.slug} ({result.tenant.legal_name}), test mode, seed {result.seed}",
        f"  Test-mode secret key: {result.secret_key}",
        f"Simulated {result.months} month(s) on a test clock: {start.isoformat()} to {last.isoformat()}",
        "",
        "What happened:",
        *(f"  {entry}" for entry in result.log),
        "",
    ]
    rows = [
        (
            row.number + (" (credit note)" if row.kind == DocumentKind.CREDIT_NOTE else ""),
            row.customer,
            row.period,
            _money(row.net, row.currency),
            _money(row.vat, row.currency),
            _money(row.gross, row.currency),
            row.status,
        )
        for row in result.invoices
    ]
    lines += _table(rows) if rows else ["(no invoices)"]
    lines.append("")
    for currency, (net, vat, gross) in sorted(result.totals().items()):
        lines.append(
            f"Total {currency}: net {_money(net, currency)}, VAT {_money(vat, currency)}, "
            f"gross {_money(gross, currency)}"
        )
    customers_billed = len({row.customer for row in result.invoices})
    lines.append(
        f"Summary: {len(result.invoices)} invoices for {customers_billed} customers, "
        f"{result.events_sent} usage events, {result.billing_runs} billing runs, "
        f"{result.billing_errors} billing errors."
    )
    return lines
