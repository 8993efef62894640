"""Rate a typical subscription period with the pure engine, in a loop, on one core.

A period: a flat monthly fee, one graduated usage charge aggregated from 50 usage events, a 10%
coupon and German VAT. Prints periods rated per second. Target: >= 20,000 per second.

    .venv/bin/python benchmarks/engine_rating.py [--seconds 5]
"""

from __future__ import annotations

import argparse
import time
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from turnus.engine.aggregation import Aggregation, Metric, UsageRecord, aggregate
from turnus.engine.discounts import Discount, DiscountDuration, DiscountKind
from turnus.engine.invoice import ComposedInvoice, LineInput, check_en16931_totals, compose_invoice
from turnus.engine.periods import Period
from turnus.engine.pricing import FlatPrice, GraduatedPrice, Tier, rate
from turnus.engine.tax import TaxCategory, determine_vat

PERIOD = Period(datetime(2026, 10, 31, 23, tzinfo=UTC), datetime(2026, 11, 30, 23, tzinfo=UTC))
METRIC = Metric(code="api_calls", aggregation=Aggregation.SUM, property="calls")
EVENTS = tuple(
    UsageRecord(
        timestamp=PERIOD.start + timedelta(hours=13 * n + 1),
        properties={"calls": 100 + 37 * n},
        transaction_id=f"tx-{n}",
    )
    for n in range(50)
)
BASE_FEE = FlatPrice(amount=Decimal("49.00"))
USAGE_PRICE = GraduatedPrice(
    tiers=(
        Tier(up_to=Decimal(1000), unit_price=Decimal(0)),
        Tier(up_to=Decimal(10000), unit_price=Decimal("0.002")),
        Tier(up_to=None, unit_price=Decimal("0.0015"), flat_fee=Decimal("5")),
    )
)
COUPON = Discount(
    code="WELCOME10", kind=DiscountKind.PERCENTAGE, value=Decimal(10), duration=DiscountDuration.FOREVER
)


def rate_period() -> ComposedInvoice:
    tax = determine_vat(
        seller_country="DE",
        buyer_country="DE",
        buyer_vat_id=None,
        buyer_is_business=False,
        tax_category=TaxCategory.STANDARD,
        supply_date=date(2026, 11, 30),
    )
    calls = aggregate(METRIC, EVENTS, PERIOD)[None]
    fee = rate(BASE_FEE, Decimal(1), "EUR")
    usage = rate(USAGE_PRICE, calls, "EUR")
    lines = [
        LineInput("Pro plan", Decimal(1), fee.amount.amount, tax, period=(PERIOD.start, PERIOD.end)),
        LineInput(
            "API calls",
            calls,
            Decimal(0),
            tax,
            amount=usage.amount.amount,
            kind="usage",
            period=(PERIOD.start, PERIOD.end),
        ),
    ]
    return compose_invoice("EUR", lines, discounts=[COUPON])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=5.0)
    args = parser.parse_args()

    invoice = rate_period()
    if check_en16931_totals(invoice):
        raise SystemExit(f"invoice breaks EN 16931: {check_en16931_totals(invoice)}")
    for _ in range(200):
        rate_period()

    count = 0
    started = time.perf_counter()
    deadline = started + args.seconds
    while time.perf_counter() < deadline:
        for _ in range(100):
            rate_period()
        count += 100
    elapsed = time.perf_counter() - started

    totals = invoice.totals
    print(f"invoice: net {totals.tax_exclusive} + VAT {totals.tax_total} = {totals.grand_total}")
    print(f"periods rated: {count} in {elapsed:.2f} s on one core")
    print(f"periods per second: {count / elapsed:,.0f} (target >= 20,000)")


if __name__ == "__main__":
    main()
