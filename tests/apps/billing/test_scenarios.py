"""Full-stack billing scenarios driven by test clocks through the REST API, in the style of Kill Bill's.

Each scenario makes its own catalogue and a customer on a test clock, advances the clock a day at a time
(one ``POST /v1/test_clocks/{id}/advance`` per local midnight in Berlin; the year-long ones take quiet
weeks in one step, see ``World.until``) and after every step compares the invoices that exist with the
expected ones: no invoice appears on a day none is expected, each expected invoice is issued on exactly its
day and made by the advance that passed that day, and each is checked line by line (kind, description,
quantity, period, net amount), per VAT rate and in its totals, with ``Decimal``. Every figure is worked out
by hand in the comments, from DOMAIN.md's rules (periods at local midnight, day proration with the change
day belonging to the new state, half-up rounding of each line, of each discount and of the VAT per rate).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from tests.apps.customers.support import customer_data
from tests.support import ApiClient

pytestmark = pytest.mark.django_db

BERLIN = ZoneInfo("Europe/Berlin")
D = Decimal


def local(day: date, hour: int = 0, minute: int = 0) -> datetime:
    """The instant of ``day`` at ``hour:minute`` in Berlin."""
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=BERLIN)


def iso(instant: datetime) -> str:
    return instant.astimezone(UTC).isoformat().replace("+00:00", "Z")


def parse(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text.replace("Z", "+00:00"))


# --- expected invoices ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Line:
    kind: str
    description: str
    quantity: str
    net: str
    period: tuple[date, date] | None = None


@dataclass(frozen=True)
class Vat:
    category: str
    rate: str
    taxable: str
    tax: str
    note: str | None = None


@dataclass(frozen=True)
class Expected:
    """One invoice: its period (local dates), lines, VAT per rate and totals."""

    period: tuple[date, date]
    lines: list[Line]
    vat: list[Vat]
    net: str
    gross: str
    allowance: str = "0.00"
    usage: tuple[date, date] | None = None

    def check(self, invoice: dict[str, Any]) -> None:
        where = f"invoice for {self.period}"
        assert (invoice["status"], invoice["currency"]) == ("finalized", "EUR"), where
        assert (parse(invoice["period_start"]), parse(invoice["period_end"])) == _span(self.period), where
        if self.usage is not None:
            assert (parse(invoice["usage_start"]), parse(invoice["usage_end"])) == _span(self.usage), where
        lines = [
            Line(
                line["kind"],
                line["description"],
                line["quantity"],
                line["net_amount"],
                _dates(line["period_start"], line["period_end"]),
            )
            for line in invoice["lines"]
        ]
        assert lines == self.lines, where
        for line in lines:
            assert D(line.net).as_tuple().exponent == -2, f"{where}: {line.net} is not rounded to cents"
        vat = [
            Vat(group["category"], group["rate"], group["taxable_amount"], group["tax_amount"], group["note"])
            for group in invoice["vat_breakdown"]
        ]
        assert vat == self.vat, where
        totals = {name: D(value) for name, value in invoice["totals"].items()}
        tax = sum((D(group.tax) for group in self.vat), D(0))
        line_total = sum((D(line.net) for line in self.lines), D(0))
        assert totals == {
            "line_total": line_total,
            "allowance_total": D(self.allowance),
            "tax_exclusive": D(self.net),
            "tax_total": tax,
            "grand_total": D(self.gross),
            "rounding_amount": D(0),
            "prepaid": D(0),
            "amount_due": D(self.gross),
        }, where
        # The expectations themselves obey EN 16931's BR-CO rules (sums of rounded parts).
        assert line_total - D(self.allowance) == D(self.net), where
        assert D(self.net) + tax == D(self.gross), where


def _span(period: tuple[date, date]) -> tuple[datetime, datetime]:
    return local(period[0]).astimezone(UTC), local(period[1]).astimezone(UTC)


def _dates(start: str | None, end: str | None) -> tuple[date, date] | None:
    if start is None or end is None:
        return None
    first, last = parse(start), parse(end)
    assert first is not None
    assert last is not None
    begin, finish = first.astimezone(BERLIN), last.astimezone(BERLIN)
    assert begin.time() == finish.time() == datetime.min.time(), (start, end)
    return begin.date(), finish.date()


# --- the world of one scenario --------------------------------------------------------------------


@dataclass
class World:
    """A test clock and its customers; walks the clock forward and checks each day's invoices."""

    api: ApiClient
    clock: str
    now: datetime
    customers: list[str] = field(default_factory=list)
    seen: dict[str, dict[str, Any]] = field(default_factory=dict)
    calls: int = 0
    checked: date = date.min

    # catalogue and customers

    def post(self, path: str, body: dict[str, Any], status: int = 200) -> dict[str, Any]:
        response = self.api.post(path, body)
        assert response.status_code == status, response.content
        return dict(response.json())

    def product(self) -> str:
        return str(self.post("/v1/products", {"name_en": "Cloud", "name_de": "Cloud"}, 201)["id"])

    def plan(self, code: str, fee: str, **terms: Any) -> str:
        body: dict[str, Any] = {
            "code": code,
            "product": self.product(),
            "name_en": code.title(),
            "name_de": code.title(),
            "currency": "EUR",
            "interval": {"unit": "month", "count": 1},
            "anchoring": "calendar",
            "charges": [
                {
                    "code": "base",
                    "name_en": "Base fee",
                    "name_de": "Grundgebühr",
                    "kind": "recurring",
                    "price": {"model": "flat", "amount": fee},
                }
            ],
        }
        body.update(terms)
        return str(self.post("/v1/plans", body, 201)["id"])

    def customer(self, **overrides: Any) -> str:
        body = customer_data(timezone="Europe/Berlin", locale="en", test_clock=self.clock, **overrides)
        customer = str(self.post("/v1/customers", body, 201)["id"])
        self.customers.append(customer)
        return customer

    def subscribe(self, customer: str, plan: str, **extra: Any) -> dict[str, Any]:
        return self.post("/v1/subscriptions", {"customer": customer, "plan": plan, **extra}, 201)

    # time

    def advance_to(self, instant: datetime) -> dict[str, Any]:
        body = self.post(f"/v1/test_clocks/{self.clock}/advance", {"frozen_time": iso(instant)})
        self.calls += 1
        assert parse(body["frozen_time"]) == instant.astimezone(UTC)
        assert body["advance"]["errors"] == 0, body
        self.now = instant
        return body

    def invoices(self, customer: str) -> list[dict[str, Any]]:
        """All of the customer's invoices."""
        response = self.api.get("/v1/invoices", {"customer": customer, "limit": 100})
        assert response.status_code == 200, response.content
        data = response.json()
        assert not data["has_more"]
        return list(data["data"])

    def new_invoices(self, customer: str) -> list[dict[str, Any]]:
        """The customer's invoices not seen yet: the list is newest first (ids sort by creation time, the
        clock's), so it is read a few at a time until a seen one; ``seen_all`` checks the whole list."""
        new: list[dict[str, Any]] = []
        params: dict[str, Any] = {"customer": customer, "limit": 3}
        while True:
            response = self.api.get("/v1/invoices", params)
            assert response.status_code == 200, response.content
            page = response.json()
            for invoice in page["data"]:
                if invoice["id"] in self.seen:
                    return new
                new.append(invoice)
            if not page["has_more"]:
                return new
            params["starting_after"] = page["data"][-1]["id"]

    def seen_all(self) -> int:
        """Every invoice of the customers was seen (and checked) on its day; their number."""
        found = {invoice["id"] for customer in self.customers for invoice in self.invoices(customer)}
        assert found == set(self.seen)
        return len(found)

    def check_day(self, expected: dict[date, dict[str, list[Expected]]]) -> None:
        """The invoices new since the last look are exactly those expected on the days since then (a
        subscription's first invoice is made by the first billing run, so by the first advance), each
        issued and created on its day and as expected."""
        today = self.now.astimezone(BERLIN).date()
        days = [self.checked + timedelta(days=n) for n in range(1, (today - self.checked).days + 1)]
        for customer in self.customers:
            new = self.new_invoices(customer)
            got = {day: [inv for inv in new if inv["issue_date"] == day.isoformat()] for day in days}
            assert sum(map(len, got.values())) == len(new), (
                f"{today}: {customer}: issued before {days}: {new}"
            )
            for day in days:
                wanted = sorted(expected.get(day, {}).get(customer, []), key=lambda w: w.period)
                found = sorted(got[day], key=lambda invoice: (invoice["period_start"], invoice["id"]))
                assert len(found) == len(wanted), (
                    f"{day}: {customer} got {[(i['period_start'], i['totals']) for i in found]}, "
                    f"expected {wanted}"
                )
                for invoice, want in zip(found, wanted, strict=True):
                    want.check(invoice)
                    created = parse(invoice["created_at"])
                    assert created is not None
                    assert created.astimezone(BERLIN).date() == day
                    self.seen[invoice["id"]] = invoice
        self.checked = today

    def advance_days(
        self, days: int, expected: dict[date, dict[str, list[Expected]]], *, step: int = 1
    ) -> None:
        """Move the clock ``days`` local midnights ahead, ``step`` days per advance (1: day by day),
        checking after each advance that exactly the invoices expected for the days passed appeared, each
        issued on its day."""
        for _ in range(0, days, step):
            today = self.now.astimezone(BERLIN).date()
            target = local(today + timedelta(days=step))
            self.advance_to(target)
            self.check_day(expected)

    def until(
        self,
        day: date,
        expected: dict[date, dict[str, list[Expected]]],
        *,
        quiet_step: int = 1,
        margin: int = 2,
    ) -> None:
        """Advance to local midnight of ``day``: day by day, or, with ``quiet_step`` > 1, day by day only
        within ``margin`` days of an expected invoice day (and of ``day``) and ``quiet_step`` days at a time
        elsewhere; every advance still checks the invoices issued on each day it passed."""
        while (today := self.now.astimezone(BERLIN).date()) < day:
            ahead = [when for when in expected if when > today] + [day]
            step = max(1, min(quiet_step, (min(ahead) - today).days - margin))
            if any(0 <= (today - when).days < margin for when in expected):
                step = 1
            self.advance_days(step, expected, step=step)


def world(api: ApiClient, start: datetime) -> World:
    body = api.post("/v1/test_clocks", {"frozen_time": iso(start), "name": "scenario"})
    assert body.status_code == 201, body.content
    return World(api, str(body.json()["id"]), start, checked=start.date() - timedelta(days=1))


def fee(plan: str, start: date, end: date, net: str) -> Line:
    return Line("recurring", f"Subscription fee: {plan}", "1", net, (start, end))


def vat19(taxable: str, tax: str) -> list[Vat]:
    return [Vat("S", "19", taxable, tax)]


def month_starts(first: date, count: int) -> list[date]:
    days = [first]
    while len(days) < count:
        last = days[-1]
        days.append(date(last.year + last.month // 12, last.month % 12 + 1, 1))
    return days


# --- 1. monthly in advance, calendar, coupon ------------------------------------------------------


def test_monthly_calendar_plan_bills_each_first_and_a_three_period_coupon_only_the_first_three(api):
    w = world(api, local(date(2026, 1, 15)))
    plan = w.plan("pro", "100.00")
    coupon = {"code": "TENOFF", "name": "10 % off", "kind": "percentage", "value": "10"}
    w.post("/v1/coupons", {**coupon, "duration": "repeating", "periods": 3}, 201)
    customer = w.customer()
    subscription = w.subscribe(customer, plan, coupon="TENOFF")
    assert parse(subscription["current_period_end"]) == local(date(2026, 2, 1))

    expected: dict[date, dict[str, list[Expected]]] = {
        # First, partial period 15-31 January: 17 of 31 days; 100.00 x 17/31 = 54.8387 -> 54.84.
        # Coupon 10 % of 54.84 = 5.484 -> 5.48; net 54.84 - 5.48 = 49.36; VAT 19 % x 49.36 = 9.3784 -> 9.38;
        # gross 49.36 + 9.38 = 58.74.
        date(2026, 1, 15): {
            customer: [
                Expected(
                    (date(2026, 1, 15), date(2026, 2, 1)),
                    [fee("Pro", date(2026, 1, 15), date(2026, 2, 1), "54.84")],
                    vat19("49.36", "9.38"),
                    net="49.36",
                    gross="58.74",
                    allowance="5.48",
                )
            ]
        },
    }
    # February and March: the coupon's second and third period: 100.00 - 10.00 = 90.00; VAT 17.10; 107.10.
    for first in month_starts(date(2026, 2, 1), 2):
        end = month_starts(first, 2)[1]
        expected[first] = {
            customer: [
                Expected(
                    (first, end),
                    [fee("Pro", first, end, "100.00")],
                    vat19("90.00", "17.10"),
                    net="90.00",
                    gross="107.10",
                    allowance="10.00",
                )
            ]
        }
    # April 2026 to January 2027: no discount: 100.00; VAT 19.00; 119.00.
    for first in month_starts(date(2026, 4, 1), 10):
        end = month_starts(first, 2)[1]
        expected[first] = {
            customer: [
                Expected(
                    (first, end),
                    [fee("Pro", first, end, "100.00")],
                    vat19("100.00", "19.00"),
                    net="100.00",
                    gross="119.00",
                )
            ]
        }
    # A year day by day took over 20 s, so the quiet weeks mid-month go by in steps of up to 7 days;
    # each 1st is approached and left day by day (two days either side).
    w.until(date(2027, 1, 15), expected, quiet_step=7)
    assert w.seen_all() == 13
    assert w.calls < 365
    allowances = [
        invoice["allowances"] for invoice in sorted(w.seen.values(), key=lambda i: i["period_start"])
    ]
    assert [a[0]["discount"] if a else None for a in allowances[:4]] == ["TENOFF"] * 3 + [None]


# --- 2. yearly in advance, anniversary ------------------------------------------------------------


def test_yearly_anniversary_plan_bills_at_the_start_and_exactly_a_year_later(api):
    w = world(api, local(date(2026, 3, 10)))
    plan = w.plan("annual", "1200.00", interval={"unit": "year", "count": 1}, anchoring="anniversary")
    customer = w.customer()
    w.subscribe(customer, plan)
    # 1200.00 for the year; VAT 19 % x 1200.00 = 228.00; gross 1428.00.
    expected = {
        start: {
            customer: [
                Expected(
                    (start, end),
                    [fee("Annual", start, end, "1200.00")],
                    vat19("1200.00", "228.00"),
                    net="1200.00",
                    gross="1428.00",
                )
            ]
        }
        for start, end in [
            (date(2026, 3, 10), date(2027, 3, 10)),
            (date(2027, 3, 10), date(2028, 3, 10)),
        ]
    }
    # Day by day this took up to 20 s on a busy machine: the quiet weeks go by in steps of up to 7 days,
    # each invoice day is approached and left day by day (two days either side); every advance still
    # checks that nothing was issued on any day it passed.
    w.until(date(2027, 3, 11), expected, quiet_step=7)
    assert w.seen_all() == 2
    assert w.calls < 366


# --- 3. monthly in arrears with a trial ------------------------------------------------------------


def test_an_arrears_plan_with_a_trial_bills_nothing_in_the_trial_then_the_used_part(api):
    w = world(api, local(date(2026, 3, 1)))
    plan = w.plan("metered", "100.00", billing_timing="in_arrears", trial_days=14)
    customer = w.customer()
    subscription = w.subscribe(customer, plan)
    assert (subscription["status"], parse(subscription["trial_end"])) == (
        "trialing",
        local(date(2026, 3, 15)),
    )

    def used(start: date, end: date, net: str) -> Line:
        return Line("used", "Used time: Metered", "1", net, (start, end))

    expected = {
        # Trial 1-14 March; the first paid period is 15-31 March: 17 of 31 days,
        # 100.00 x 17/31 = 54.8387 -> 54.84, billed when it ends; VAT 19 % x 54.84 = 10.4196 -> 10.42;
        # gross 54.84 + 10.42 = 65.26.
        date(2026, 4, 1): {
            customer: [
                Expected(
                    (date(2026, 3, 15), date(2026, 4, 1)),
                    [used(date(2026, 3, 15), date(2026, 4, 1), "54.84")],
                    vat19("54.84", "10.42"),
                    net="54.84",
                    gross="65.26",
                )
            ]
        },
    }
    # April and May, each billed on the 1st after it: 100.00; 19.00; 119.00.
    for start, end in [(date(2026, 4, 1), date(2026, 5, 1)), (date(2026, 5, 1), date(2026, 6, 1))]:
        expected[end] = {
            customer: [
                Expected(
                    (start, end), [used(start, end, "100.00")], vat19("100.00", "19.00"), "100.00", "119.00"
                )
            ]
        }
    w.until(date(2026, 3, 15), expected)
    shown = api.get(f"/v1/subscriptions/{subscription['id']}").json()
    assert shown["status"] == "active"
    w.until(date(2026, 6, 2), expected)
    assert w.seen_all() == 3


# --- 4. upgrade now, downgrade at the period end -------------------------------------------------


def test_an_upgrade_is_prorated_on_the_next_invoice_and_a_downgrade_waits_for_the_period_end(api):
    w = world(api, local(date(2026, 4, 1)))
    basic = w.plan("basic", "50.00")
    pro = w.plan("pro", "100.00")
    customer = w.customer()
    subscription = w.subscribe(customer, basic)["id"]
    expected: dict[date, dict[str, list[Expected]]] = {
        # April (30 days) on Basic: 50.00; VAT 9.50; 59.50.
        date(2026, 4, 1): {
            customer: [
                Expected(
                    (date(2026, 4, 1), date(2026, 5, 1)),
                    [fee("Basic", date(2026, 4, 1), date(2026, 5, 1), "50.00")],
                    vat19("50.00", "9.50"),
                    net="50.00",
                    gross="59.50",
                )
            ]
        },
        # Upgrade on 11 April: the change day belongs to the new plan, so 11-30 April = 20 of 30 days.
        # Credit Basic 50.00 x 20/30 = 33.333 -> -33.33; charge Pro 100.00 x 20/30 = 66.667 -> 66.67;
        # both on the next invoice with May on Pro 100.00: net 100.00 - 33.33 + 66.67 = 133.34;
        # VAT 19 % x 133.34 = 25.3346 -> 25.33; gross 158.67.
        date(2026, 5, 1): {
            customer: [
                Expected(
                    (date(2026, 5, 1), date(2026, 6, 1)),
                    [
                        Line(
                            "proration_credit",
                            "Credit for unused time: Basic",
                            "1",
                            "-33.33",
                            (date(2026, 4, 11), date(2026, 5, 1)),
                        ),
                        Line(
                            "proration_charge",
                            "Remaining time: Pro",
                            "1",
                            "66.67",
                            (date(2026, 4, 11), date(2026, 5, 1)),
                        ),
                        fee("Pro", date(2026, 5, 1), date(2026, 6, 1), "100.00"),
                    ],
                    vat19("133.34", "25.33"),
                    net="133.34",
                    gross="158.67",
                )
            ]
        },
    }
    # The downgrade asked for on 20 May takes effect on 1 June: June and July on Basic, 50.00 each.
    for start, end in [(date(2026, 6, 1), date(2026, 7, 1)), (date(2026, 7, 1), date(2026, 8, 1))]:
        expected[start] = {
            customer: [
                Expected(
                    (start, end),
                    [fee("Basic", start, end, "50.00")],
                    vat19("50.00", "9.50"),
                    "50.00",
                    "59.50",
                )
            ]
        }
    w.until(date(2026, 4, 11), expected)
    upgrade = w.post(f"/v1/subscriptions/{subscription}/change", {"plan": pro})
    assert (upgrade["direction"], parse(upgrade["effective_at"])) == ("upgrade", local(date(2026, 4, 11)))
    # The change's items, each rounded to cents: -33.33 and 66.67, so 33.34 in all.
    items = [(item["kind"], item["amount"]) for item in upgrade["items"]]
    assert items == [("proration_credit", "-33.33"), ("proration_charge", "66.67")]
    assert upgrade["total"] == {"amount": "33.34", "currency": "EUR"}
    w.until(date(2026, 5, 20), expected)
    downgrade = w.post(f"/v1/subscriptions/{subscription}/change", {"plan": basic})
    assert (downgrade["direction"], parse(downgrade["effective_at"])) == (
        "downgrade",
        local(date(2026, 6, 1)),
    )
    assert downgrade["items"] == []
    w.until(date(2026, 7, 2), expected)
    assert w.seen_all() == 4


# --- 5. pause and resume --------------------------------------------------------------------------


def test_a_month_long_pause_bills_nothing_for_it_and_the_resumed_period_keeps_the_paid_days(api):
    w = world(api, local(date(2026, 3, 1)))
    plan = w.plan("pro", "100.00", anchoring="anniversary", pause_resume="remaining")
    customer = w.customer()
    subscription = w.subscribe(customer, plan)["id"]
    # Billed in advance on the 1st until the pause; paused 16 April, the paid days 16-30 April (15 days)
    # carry over: resumed on 16 May, the period runs 16-30 May (15 days, already paid, no invoice) and the
    # anchor moves to the 31st: 31 May, 30 June (June has no 31st), 31 July, 31 August.
    periods = [
        (date(2026, 3, 1), date(2026, 4, 1)),
        (date(2026, 4, 1), date(2026, 5, 1)),
        (date(2026, 5, 31), date(2026, 6, 30)),
        (date(2026, 6, 30), date(2026, 7, 31)),
        (date(2026, 7, 31), date(2026, 8, 31)),
        (date(2026, 8, 31), date(2026, 9, 30)),
    ]
    expected = {
        start: {
            customer: [
                Expected(
                    (start, end),
                    [fee("Pro", start, end, "100.00")],
                    vat19("100.00", "19.00"),
                    "100.00",
                    "119.00",
                )
            ]
        }
        for start, end in periods
    }
    w.until(date(2026, 4, 16), expected)
    paused = w.post(f"/v1/subscriptions/{subscription}/pause", {})
    assert (paused["status"], paused["current_period_end"]) == ("paused", None)
    w.until(date(2026, 5, 16), expected)
    resumed = w.post(f"/v1/subscriptions/{subscription}/resume", {})
    assert resumed["status"] == "active"
    assert (parse(resumed["current_period_start"]), parse(resumed["current_period_end"])) == (
        local(date(2026, 5, 16)),
        local(date(2026, 5, 31)),
    )
    w.until(date(2026, 9, 1), expected)
    assert w.seen_all() == 6


# --- 6. cancellation with a notice period on a 12-month contract ----------------------------------


def test_a_cancellation_with_three_months_notice_ends_the_contract_after_its_last_invoice(api):
    w = world(api, local(date(2026, 1, 1)))
    contract = {
        "initial_term": {"unit": "month", "count": 12},
        "initial_notice": {"unit": "month", "count": 3},
        "renewal_term": {"unit": "month", "count": 1},
        "renewal_notice": {"unit": "week", "count": 2},
    }
    plan = w.plan("pro", "100.00", contract=contract)
    on_time, late = w.customer(), w.customer(name="Hans Spät")
    first = w.subscribe(on_time, plan)["id"]
    second = w.subscribe(late, plan)
    assert parse(second["contract_end"]) == local(date(2027, 1, 1))
    second = second["id"]

    def monthly(first_day: date, count: int) -> dict[date, list[Expected]]:
        starts = month_starts(first_day, count + 1)
        return {
            start: [
                Expected(
                    (start, end),
                    [fee("Pro", start, end, "100.00")],
                    vat19("100.00", "19.00"),
                    "100.00",
                    "119.00",
                )
            ]
            for start, end in itertools.pairwise(starts)
        }

    # On time (notice on 15 September, before the deadline 1 October = 1 January 2027 less three months):
    # twelve invoices, January to December 2026, 100.00; 19.00; 119.00 each, and none after.
    # Late (notice on 5 October): the contract renews once by its renewal term, one month, so it ends on
    # 1 February 2027 after a thirteenth invoice on 1 January 2027.
    expected: dict[date, dict[str, list[Expected]]] = {}
    for customer, count in ((on_time, 12), (late, 13)):
        for day, invoices in monthly(date(2026, 1, 1), count).items():
            expected.setdefault(day, {})[customer] = invoices
    # Fourteen months day by day took over 20 s: quiet weeks go by in steps of up to 7 days, each 1st is
    # approached and left day by day (two days either side), and so are the notice dates and the ends.
    w.until(date(2026, 9, 15), expected, quiet_step=7)
    shown = api.get(f"/v1/subscriptions/{first}").json()
    assert parse(shown["earliest_cancellation_at"]) == local(date(2027, 1, 1))
    cancelled = w.post(f"/v1/subscriptions/{first}/cancel", {"mode": "contract_end"})
    assert (cancelled["status"], parse(cancelled["cancel_at"])) == ("active", local(date(2027, 1, 1)))
    w.until(date(2026, 10, 5), expected, quiet_step=7)
    shown = api.get(f"/v1/subscriptions/{second}").json()
    assert parse(shown["earliest_cancellation_at"]) == local(date(2027, 2, 1))
    cancelled = w.post(f"/v1/subscriptions/{second}/cancel", {"mode": "contract_end"})
    assert parse(cancelled["cancel_at"]) == local(date(2027, 2, 1))
    w.until(date(2027, 3, 2), expected, quiet_step=7)
    assert w.seen_all() == 12 + 13
    # A scheduled end is "ended" (a cancellation "now" would be "cancelled").
    for subscription, noticed, end in (
        (first, date(2026, 9, 15), date(2027, 1, 1)),
        (second, date(2026, 10, 5), date(2027, 2, 1)),
    ):
        ended = api.get(f"/v1/subscriptions/{subscription}").json()
        assert (ended["status"], parse(ended["ended_at"])) == ("ended", local(end))
        assert parse(ended["cancelled_at"]) == local(noticed)


# --- 7. usage in two metrics, billed in arrears on an in-advance plan ----------------------------


def test_usage_of_a_count_and_a_sum_metric_is_billed_graduated_on_the_next_invoice(api):
    w = world(api, local(date(2026, 3, 1)))
    calls = w.post("/v1/billable_metrics", {"code": "calls", "name_en": "Calls", "aggregation": "count"}, 201)
    storage = w.post(
        "/v1/billable_metrics",
        {"code": "storage", "name_en": "Storage", "aggregation": "sum", "property": "gb"},
        201,
    )
    metered = [
        {
            "code": "calls",
            "name_en": "API calls",
            "kind": "metered",
            "metric": calls["id"],
            "price": {
                "model": "graduated",
                "tiers": [{"up_to": "100", "unit_price": "0"}, {"up_to": None, "unit_price": "0.10"}],
            },
        },
        {
            "code": "storage",
            "name_en": "Storage",
            "kind": "metered",
            "metric": storage["id"],
            "price": {
                "model": "graduated",
                "tiers": [{"up_to": "10", "unit_price": "1.00"}, {"up_to": None, "unit_price": "0.50"}],
            },
        },
    ]
    base = {
        "code": "base",
        "name_en": "Base fee",
        "kind": "recurring",
        "price": {"model": "flat", "amount": "20.00"},
    }
    plan = w.plan("usage", "20.00", charges=[base, *metered])
    customer = w.customer()
    subscription = w.subscribe(customer, plan)["id"]
    sent = 0

    def send(metric: str, count: int = 1, **properties: str) -> None:
        nonlocal sent
        events = []
        for _ in range(count):
            sent += 1
            events.append(
                {
                    "transaction_id": f"ev-{sent}",
                    "subscription": subscription,
                    "metric": metric,
                    "properties": properties,
                }
            )
        body = w.post("/v1/events/batch", {"events": events})
        assert body["created"] == count, body

    def usage(name: str, quantity: str, net: str, start: date, end: date) -> Line:
        return Line("usage", f"Usage: {name}", quantity, net, (start, end))

    march, april, may, june = date(2026, 3, 1), date(2026, 4, 1), date(2026, 5, 1), date(2026, 6, 1)
    expected = {
        # No usage before the start: 20.00; VAT 3.80; 23.80.
        march: {
            customer: [
                Expected(
                    (march, april),
                    [fee("Usage", march, april, "20.00")],
                    vat19("20.00", "3.80"),
                    "20.00",
                    "23.80",
                    usage=None,
                )
            ]
        },
        # March's usage: calls 60 + 70 + 1 = 131: 100 free, 31 x 0.10 = 3.10;
        # storage 4.5 + 8 + 1 = 13.5 GB: 10 x 1.00 + 3.5 x 0.50 = 11.75.
        # Net 20.00 + 3.10 + 11.75 = 34.85; VAT 19 % x 34.85 = 6.6215 -> 6.62; gross 41.47.
        april: {
            customer: [
                Expected(
                    (april, may),
                    [
                        fee("Usage", april, may, "20.00"),
                        usage("API calls", "131", "3.10", march, april),
                        usage("Storage", "13.5", "11.75", march, april),
                    ],
                    vat19("34.85", "6.62"),
                    "34.85",
                    "41.47",
                    usage=(march, april),
                )
            ]
        },
        # April's usage: calls 5 + 150 = 155: 55 x 0.10 = 5.50; no storage (no line).
        # Net 25.50; VAT 19 % x 25.50 = 4.845 -> 4.85 (half up); gross 30.35.
        may: {
            customer: [
                Expected(
                    (may, june),
                    [fee("Usage", may, june, "20.00"), usage("API calls", "155", "5.50", april, may)],
                    vat19("25.50", "4.85"),
                    "25.50",
                    "30.35",
                    usage=(april, may),
                )
            ]
        },
    }
    w.until(date(2026, 3, 3), expected)
    send("calls", 60)
    send("storage", gb="4.5")
    w.until(date(2026, 3, 17), expected)
    send("calls", 70)
    w.until(date(2026, 3, 20), expected)
    send("storage", gb="8")
    w.until(date(2026, 3, 31), expected)
    w.advance_to(local(date(2026, 3, 31), 23, 30))  # the last half hour of March
    w.check_day(expected)
    send("calls")
    send("storage", gb="1")
    w.until(april, expected)
    w.advance_to(local(april, 0, 30))  # April's first half hour: billed with April
    w.check_day(expected)
    send("calls", 5)
    w.until(date(2026, 4, 10), expected)
    send("calls", 150)
    w.until(date(2026, 5, 2), expected)
    assert w.seen_all() == 3


# --- 8. reverse charge and OSS --------------------------------------------------------------------


def test_an_austrian_business_is_reverse_charged_and_a_french_consumer_pays_french_vat(api):
    w = world(api, local(date(2026, 3, 1)))
    plan = w.plan("pro", "100.00")
    austrian = w.customer(
        name="Max Muster",
        company="Muster Handels GmbH",
        vat_id="ATU13585627",
        address_line1="Kärntner Straße 1",
        postal_code="1010",
        city="Wien",
        country="AT",
    )
    french = w.customer(
        name="Marie Dupont", address_line1="1 rue de Rivoli", postal_code="75001", city="Paris", country="FR"
    )
    w.subscribe(austrian, plan)
    w.subscribe(french, plan)
    reverse_charge = "Reverse charge: the recipient is liable for the VAT."
    expected: dict[date, dict[str, list[Expected]]] = {}
    months = month_starts(date(2026, 3, 1), 4)
    for start, end in itertools.pairwise(months):
        expected[start] = {
            # EU business with a VAT id of another member state: reverse charge, AE, 0 %: gross = net 100.00.
            austrian: [
                Expected(
                    (start, end),
                    [fee("Pro", start, end, "100.00")],
                    [Vat("AE", "0", "100.00", "0.00", reverse_charge)],
                    "100.00",
                    "100.00",
                )
            ],
            # EU consumer in France, taxed where they live (OSS): French 20 % x 100.00 = 20.00.
            french: [
                Expected(
                    (start, end),
                    [fee("Pro", start, end, "100.00")],
                    [Vat("S", "20", "100.00", "20.00")],
                    "100.00",
                    "120.00",
                )
            ],
        }
    w.until(date(2026, 5, 2), expected)
    assert w.seen_all() == 6
    for invoice in w.seen.values():
        line = invoice["lines"][0]
        if invoice["customer"] == austrian:
            assert (line["vat_category"], line["vat_rate"], line["vat_exemption_reason"]) == (
                "AE",
                "0",
                "VATEX-EU-AE",
            )
            assert invoice["vat_breakdown"][0]["exemption_reason"] == "VATEX-EU-AE"
            assert invoice["recipient"]["vat_id"] == "ATU13585627"
        else:
            assert (line["vat_category"], line["vat_rate"], line["vat_exemption_reason"]) == ("S", "20", None)


# --- 9. a one-off charge ---------------------------------------------------------------------------


def test_a_one_off_charge_added_mid_month_lands_on_the_next_invoice_exactly_once(api):
    w = world(api, local(date(2026, 3, 1)))
    plan = w.plan("pro", "100.00")
    customer = w.customer()
    w.subscribe(customer, plan)
    periods = [
        (date(2026, 3, 1), date(2026, 4, 1)),
        (date(2026, 4, 1), date(2026, 5, 1)),
        (date(2026, 5, 1), date(2026, 6, 1)),
        (date(2026, 6, 1), date(2026, 7, 1)),
    ]
    expected = {
        start: {
            customer: [
                Expected(
                    (start, end),
                    [fee("Pro", start, end, "100.00")],
                    vat19("100.00", "19.00"),
                    "100.00",
                    "119.00",
                )
            ]
        }
        for start, end in periods
    }
    # The workshop charged on 10 March (2 x 250.00 = 500.00) rides with April's fee:
    # net 100.00 + 500.00 = 600.00; VAT 19 % x 600.00 = 114.00; gross 714.00.
    april, may = periods[1]
    expected[april] = {
        customer: [
            Expected(
                (april, may),
                [fee("Pro", april, may, "100.00"), Line("one_off", "Onboarding workshop", "2", "500.00")],
                vat19("600.00", "114.00"),
                "600.00",
                "714.00",
            )
        ]
    }
    w.until(date(2026, 3, 10), expected)
    charge = w.post(
        f"/v1/customers/{customer}/charges",
        {"description": "Onboarding workshop", "amount": "250.00", "quantity": 2},
        201,
    )
    assert (charge["status"], charge["invoice"], parse(charge["created_at"])) == (
        "pending",
        None,
        local(date(2026, 3, 10)),
    )
    w.until(date(2026, 6, 2), expected)
    assert w.seen_all() == 4
    billed = api.get(f"/v1/customer_charges/{charge['id']}").json()
    april_invoice = next(i for i in w.seen.values() if parse(i["period_start"]) == local(april))
    assert (billed["status"], billed["invoice"]) == ("invoiced", april_invoice["id"])


# --- 10. a plan without a base fee: seats only, cancelled now -------------------------------------


def test_a_per_seat_plan_without_a_base_fee_bills_its_seats_and_a_cancellation_credits_the_unused_ones(api):
    w = world(api, local(date(2026, 5, 1)))
    seats = {
        "code": "seats",
        "name_en": "Seats",
        "name_de": "Plätze",
        "kind": "quantity",
        "price": {"model": "per_unit", "unit_price": "10.00"},
    }
    terms = {"credit_unused_on_cancel": True}
    charges = [
        {
            "code": "base",
            "name_en": "Base fee",
            "name_de": "Grundgebühr",
            "kind": "recurring",
            "price": {"model": "flat", "amount": "0.00"},
        },
        seats,
    ]
    ahead = w.plan("team", "0.00", charges=charges, **terms)
    behind = w.plan("later", "0.00", charges=charges, billing_timing="in_arrears", **terms)
    prepaying, paying_after = w.customer(), w.customer(name="Hans Später")
    first = w.subscribe(prepaying, ahead, quantities={"seats": 5})["id"]
    second = w.subscribe(paying_after, behind, quantities={"seats": 5})["id"]

    def seats_line(start: date, end: date, net: str) -> Line:
        return Line("component", "Seats × 5", "5", net, (start, end))

    def month(start: date, end: date) -> Expected:
        # 5 seats x 10.00 = 50.00 a month; VAT 19 % 9.50; 59.50. The 0.00 base fee makes no line.
        return Expected(
            (start, end), [seats_line(start, end, "50.00")], vat19("50.00", "9.50"), "50.00", "59.50"
        )

    may, june, july, june_11 = date(2026, 5, 1), date(2026, 6, 1), date(2026, 7, 1), date(2026, 6, 11)
    expected = {
        may: {prepaying: [month(may, june)]},
        june: {prepaying: [month(june, july)], paying_after: [month(may, june)]},
        # Both cancelled now at midnight starting 11 June: 20 of June's 30 days are unused.
        june_11: {
            # In advance, the closing invoice credits 50.00 x 20/30 = 33.333 -> -33.33; VAT -6.33. It shows
            # the span of its lines and of the usage window it closed (1-11 June).
            prepaying: [
                Expected(
                    (june, july),
                    [
                        Line(
                            "proration_credit",
                            "Credit for unused time: Team (Seats × 5)",
                            "5",
                            "-33.33",
                            (june_11, july),
                        )
                    ],
                    vat19("-33.33", "-6.33"),
                    "-33.33",
                    "-39.66",
                )
            ],
            # In arrears, June's invoice comes at once and bills the used 10 days: 50.00 - 33.33 = 16.67
            # (its line covers 1-10 June); VAT 19 % x 16.67 = 3.1673 -> 3.17; 19.84.
            paying_after: [
                Expected(
                    (june, july),
                    [seats_line(june, june_11, "16.67")],
                    vat19("16.67", "3.17"),
                    "16.67",
                    "19.84",
                )
            ],
        },
    }
    # The last look is on 10 June: the run the cancellations make due (at their instant, 11 June 00:00)
    # belongs to the next advance, which checks 11 June.
    w.until(date(2026, 6, 10), expected)
    w.advance_to(local(june_11))
    for subscription in (first, second):
        cancelled = w.post(f"/v1/subscriptions/{subscription}/cancel", {"mode": "now"})
        assert (cancelled["status"], parse(cancelled["ended_at"])) == ("cancelled", local(june_11))
    w.until(date(2026, 7, 3), expected)
    assert w.seen_all() == 5
