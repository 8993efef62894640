"""The billing run at scale: one sweep over 100,000 subscriptions at a period boundary, without documents.

Sets up a fresh database in-process: a tenant, the catalogue (a flat plan, a dearer flat plan and a plan
with a base fee and two metered charges), and per kind of subscription a few customers and subscriptions
through the real services. They are created on 1 January (Berlin), January is invoiced by a real sweep,
and a tenth upgrade to the dearer plan on 15 January (proration credit and charge). The rest are cloned
from those service-made ones in bulk: every row the services stored (customer, subscription, pending
charges, the January invoice with its lines, VAT breakdown, invoiced charges and billed periods, billing
schedule, usage watermark, audit and outbox events) is copied with fresh ids and the next invoice numbers.
A clone is compared with a service-made subscription of its kind before and after the run. Usage goes
through the metering service's batch ingestion: ``--events-per-charge`` events per metered charge in
January.

Mix: 60 % flat monthly, 30 % metered (two metered charges), 10 % with a mid-period change.

Then the run on 1 February 01:00 (Berlin) renews every subscription and makes and finalizes its February
invoice (fee, January's usage, prorations). Prints invoices per second and the time of a second sweep a
minute later, which must create nothing. SQLite runs one worker; PostgreSQL two processes that share the
work (``FOR UPDATE SKIP LOCKED``). Target on PostgreSQL: the whole sweep in <= 50 s (>= 2,000 invoices/s)
for 100,000 subscriptions, the idle second sweep < 5 s.

    .venv/bin/python benchmarks/billing_run.py [--subscriptions 100000] [--database sqlite|postgres]
        [--workers N] [--events-per-charge 20] [--postgres URL]
        [--count-queries] [--profile FILE]

``--count-queries`` (one worker) counts the SQL statements per invoice and prints the commonest shapes;
``--profile FILE`` (one worker) runs the sweep under cProfile, writes the stats and prints the top.
Before the run an idle sweep an hour before the period ends finds nothing due; it costs what the idle
second sweep costs, so ``--idle-only`` checks that target at full size without the long run.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import multiprocessing
import os
import pstats
import re
import resource
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

DEFAULT_POSTGRES = "postgresql://postgres@127.0.0.1:5432/turnus_bench_billing"
#: Midnight of 1 January / 15 January noon / 1 February 2026 in Berlin.
JANUARY = datetime(2025, 12, 31, 23, 0, tzinfo=UTC)
CHANGE_AT = datetime(2026, 1, 15, 11, 0, tzinfo=UTC)
FEBRUARY = datetime(2026, 1, 31, 23, 0, tzinfo=UTC)
RUN_AT = FEBRUARY + timedelta(hours=1)
#: Per ten subscriptions: six flat, three metered, one changed mid-period.
PATTERN = ("flat", "metered", "flat", "flat", "changed", "flat", "metered", "flat", "flat", "metered")
KINDS = ("flat", "metered", "changed")
CLONE_CHUNK = 1000
_ID = re.compile(r"\b(?:cus|sub|sch|inv|aud|evt)_[0-9A-Z]{26}\b")
_NUMBER = re.compile(r"\bRE-\d{4}-\d+\b")
#: Request ids correlate the rows one call wrote; a clone keeps its template's.
_REQUEST = re.compile(r"\breq_[0-9a-f]+\b")


def _setup_django(database: str, postgres: str, var: Path) -> None:
    if database == "postgres":
        import psycopg

        base, _, name = postgres.rpartition("/")
        with psycopg.connect(f"{base}/postgres", autocommit=True) as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            connection.execute(f'CREATE DATABASE "{name}"')
        os.environ["TURNUS_DATABASE_URL"] = postgres
    else:
        os.environ["TURNUS_DATABASE_URL"] = f"sqlite:///{var / 'billing.sqlite3'}"
    os.environ["TURNUS_VAR_DIR"] = str(var)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "turnus.project.settings")
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


@contextmanager
def _at(instant: datetime) -> Iterator[None]:
    from turnus.core.clock import FrozenClock, use_clock

    with use_clock(FrozenClock(instant)):
        yield


# --- the catalogue and the service-made subscriptions ---------------------------------------------


def _catalogue(scope: Any) -> dict[str, str]:
    from turnus.apps.catalog import services as catalog

    calls = catalog.create_billable_metric(
        scope, {"code": "calls", "name_en": "API calls", "name_de": "API-Aufrufe", "aggregation": "count"}
    ).public_id
    tokens = catalog.create_billable_metric(
        scope,
        {"code": "tokens", "name_en": "Tokens", "aggregation": "sum", "property": "tokens"},
    ).public_id
    product = catalog.create_product(scope, {"name_en": "Cloud", "name_de": "Cloud"}).public_id

    def plan(code: str, fee: str, metered: bool = False) -> str:
        charges: list[dict[str, Any]] = [
            {
                "code": "base",
                "name_en": "Base fee",
                "name_de": "Grundgebühr",
                "kind": "recurring",
                "price": {"model": "flat", "amount": fee},
            }
        ]
        if metered:
            charges += [
                {
                    "code": "calls",
                    "name_en": "API calls",
                    "name_de": "API-Aufrufe",
                    "kind": "metered",
                    "metric": calls,
                    "price": {"model": "per_unit", "unit_price": "0.01"},
                },
                {
                    "code": "tokens",
                    "name_en": "Tokens",
                    "name_de": "Tokens",
                    "kind": "metered",
                    "metric": tokens,
                    "price": {
                        "model": "graduated",
                        "tiers": [
                            {"up_to": "10000", "unit_price": "0"},
                            {"up_to": None, "unit_price": "0.0001"},
                        ],
                    },
                },
            ]
        data = {
            "code": code,
            "product": product,
            "name_en": code.title(),
            "name_de": code.title(),
            "currency": "EUR",
            "interval": {"unit": "month", "count": 1},
            "anchoring": "calendar",
            "charges": charges,
        }
        return catalog.create_plan(scope, data).public_id

    return {
        "flat": plan("basic", "10.00"),
        "pro": plan("pro", "30.00"),
        "metered": plan("usage", "20.00", True),
    }


def _customer_data() -> dict[str, Any]:
    return {
        "name": "Erika Mustermann",
        "email": "erika@example.com",
        "address_line1": "Heidestraße 17",
        "postal_code": "51147",
        "city": "Köln",
        "country": "DE",
        "timezone": "Europe/Berlin",
    }


def _service_made(scope: Any, plans: dict[str, str], tenant: Any) -> dict[str, list[str]]:
    """Two subscriptions per kind through the services: created on 1 January, January invoiced by a
    real sweep, the changed ones upgraded on 15 January. The first of each kind is cloned, the second
    kept to compare clones with."""
    from turnus.apps.billing.sweep import run_sweep
    from turnus.apps.customers import services as customers
    from turnus.apps.subscriptions import services as subscriptions

    made: dict[str, list[str]] = {kind: [] for kind in KINDS}
    with _at(JANUARY):
        for _ in range(2):
            for kind in KINDS:
                owner = customers.create_customer(scope, _customer_data())
                plan = plans["metered" if kind == "metered" else "flat"]
                created = subscriptions.create_subscription(scope, customer=owner.public_id, plan=plan)
                made[kind].append(created.public_id)
    january = run_sweep(JANUARY + timedelta(hours=1), tenant=tenant)
    assert january.invoices_created == 6, january
    assert not january.errors, january
    with _at(CHANGE_AT):
        for public_id in made["changed"]:
            subscriptions.change_subscription(scope, public_id, plan=plans["pro"], effective="now")
    return made


# --- cloning --------------------------------------------------------------------------------------


class Bundle:
    """Every row the services stored for one subscription (and its customer)."""

    def __init__(self, public_id: str) -> None:
        from turnus.apps.billing.models import (
            BilledPeriod,
            BillingSchedule,
            Invoice,
            InvoiceAllowance,
            InvoicedCharge,
            InvoiceLine,
            InvoiceVatBreakdown,
        )
        from turnus.apps.metering.models import UsageWatermark
        from turnus.apps.subscriptions.models import Subscription, SubscriptionAddOn, SubscriptionCharge
        from turnus.core.models import AuditEvent, OutboxEvent

        self.subscription = Subscription.objects.get(public_id=public_id)
        self.customer = self.subscription.customer
        assert not SubscriptionAddOn.objects.filter(subscription=self.subscription).exists()
        self.charges = list(SubscriptionCharge.objects.filter(subscription=self.subscription).order_by("pk"))
        self.invoices = list(Invoice.objects.filter(subscription=self.subscription).order_by("pk"))
        invoices = [invoice.pk for invoice in self.invoices]
        self.parts = [
            list(model.objects.filter(invoice_id__in=invoices).order_by("pk"))
            for model in (InvoiceLine, InvoiceVatBreakdown, InvoiceAllowance)
        ]
        self.invoiced = list(InvoicedCharge.objects.filter(invoice_id__in=invoices).order_by("pk"))
        self.billed = list(BilledPeriod.objects.filter(invoice_id__in=invoices).order_by("pk"))
        self.schedules = list(BillingSchedule.objects.filter(subscription=self.subscription))
        self.watermarks = list(UsageWatermark.objects.filter(subscription=self.subscription))
        objects = [self.customer.public_id, public_id, *(invoice.public_id for invoice in self.invoices)]
        self.audit = list(AuditEvent.objects.filter(object_id__in=objects).order_by("public_id"))
        self.outbox = list(OutboxEvent.objects.filter(object_id__in=objects).order_by("public_id"))


def _fields(row: Any) -> dict[str, Any]:
    return {f.attname: getattr(row, f.attname) for f in row._meta.concrete_fields if not f.primary_key}


def _swapper(mapping: dict[str, str]) -> Any:
    pattern = re.compile("|".join(re.escape(key) for key in sorted(mapping, key=len, reverse=True)))

    def swap(value: Any) -> Any:
        if isinstance(value, str):
            return pattern.sub(lambda match: mapping[match.group(0)], value)
        if isinstance(value, dict):
            return {swap(key): swap(item) for key, item in value.items()}
        if isinstance(value, list):
            return [swap(item) for item in value]
        return value

    return swap


def _copy(row: Any, swap: Any, **changes: Any) -> Any:
    data = {name: swap(value) for name, value in _fields(row).items()}
    data.update(changes)
    return type(row)(**data)


def _clone(bundles: list[Bundle], first_number: int, template: str) -> int:
    """One copy of each bundle in ``bundles`` (in order); returns the next free invoice number."""
    from turnus.apps.billing.models import (
        BilledPeriod,
        BillingSchedule,
        Invoice,
        InvoiceAllowance,
        InvoicedCharge,
        InvoiceLine,
        InvoiceVatBreakdown,
    )
    from turnus.apps.billing.services import format_number
    from turnus.apps.customers.models import Customer
    from turnus.apps.metering.models import UsageWatermark
    from turnus.apps.subscriptions.models import Subscription, SubscriptionCharge
    from turnus.core.ids import new_id
    from turnus.core.models import AuditEvent, OutboxEvent

    number = first_number
    swaps = []
    for bundle in bundles:
        mapping = {
            bundle.customer.public_id: new_id("cus", at=bundle.customer.created_at),
            bundle.subscription.public_id: new_id("sub", at=bundle.subscription.created_at),
        }
        for charge in bundle.charges:
            mapping[charge.public_id] = new_id("sch", at=charge.created_at)
        for invoice in bundle.invoices:
            mapping[invoice.public_id] = new_id("inv", at=invoice.created_at)
            if invoice.number is not None:
                mapping[invoice.number] = format_number(template, year=invoice.issue_date.year, seq=number)
                number += 1
        for event in bundle.audit:
            mapping[event.public_id] = new_id("aud", at=event.created_at)
        for event in bundle.outbox:
            mapping[event.public_id] = new_id("evt", at=event.created_at)
        swaps.append(_swapper(mapping))
    customers = Customer.objects.bulk_create(
        _copy(bundle.customer, swap) for bundle, swap in zip(bundles, swaps, strict=True)
    )
    subscriptions = Subscription.objects.bulk_create(
        _copy(bundle.subscription, swap, customer_id=customer.pk)
        for bundle, swap, customer in zip(bundles, swaps, customers, strict=True)
    )
    charges = SubscriptionCharge.objects.bulk_create(
        _copy(charge, swap, subscription_id=subscription.pk)
        for bundle, swap, subscription in zip(bundles, swaps, subscriptions, strict=True)
        for charge in bundle.charges
    )
    # As the services do: the parts go into a draft, which is then issued (PostgreSQL's triggers refuse
    # parts of an issued invoice).
    invoices = Invoice.objects.bulk_create(
        _copy(invoice, swap, customer_id=customer.pk, subscription_id=subscription.pk, status="draft")
        for bundle, swap, customer, subscription in zip(bundles, swaps, customers, subscriptions, strict=True)
        for invoice in bundle.invoices
    )
    statuses = [invoice.status for bundle in bundles for invoice in bundle.invoices]
    charge_pk: dict[tuple[int, int], int] = {}
    invoice_pk: dict[tuple[int, int], int] = {}
    charge_iter, invoice_iter = iter(charges), iter(invoices)
    for index, bundle in enumerate(bundles):
        for charge in bundle.charges:
            charge_pk[(index, charge.pk)] = next(charge_iter).pk
        for invoice in bundle.invoices:
            invoice_pk[(index, invoice.pk)] = next(invoice_iter).pk
    for model, position in ((InvoiceLine, 0), (InvoiceVatBreakdown, 1), (InvoiceAllowance, 2)):
        model.objects.bulk_create(
            _copy(part, swap, invoice_id=invoice_pk[(index, part.invoice_id)])
            for index, (bundle, swap) in enumerate(zip(bundles, swaps, strict=True))
            for part in bundle.parts[position]
        )
    issued: dict[str, list[int]] = {}
    for invoice, status in zip(invoices, statuses, strict=True):
        issued.setdefault(status, []).append(invoice.pk)
    for status, keys in issued.items():
        if status != "draft":
            Invoice.objects.filter(pk__in=keys).update(status=status)
    InvoicedCharge.objects.bulk_create(
        _copy(
            row,
            swap,
            charge_id=charge_pk[(index, row.charge_id)],
            invoice_id=invoice_pk[(index, row.invoice_id)],
        )
        for index, (bundle, swap) in enumerate(zip(bundles, swaps, strict=True))
        for row in bundle.invoiced
    )
    BilledPeriod.objects.bulk_create(
        _copy(row, swap, subscription_id=subscription.pk, invoice_id=invoice_pk[(index, row.invoice_id)])
        for index, (bundle, swap, subscription) in enumerate(zip(bundles, swaps, subscriptions, strict=True))
        for row in bundle.billed
    )
    for model, attribute in ((BillingSchedule, "schedules"), (UsageWatermark, "watermarks")):
        model.objects.bulk_create(
            _copy(row, swap, subscription_id=subscription.pk)
            for bundle, swap, subscription in zip(bundles, swaps, subscriptions, strict=True)
            for row in getattr(bundle, attribute)
        )
    for model, attribute in ((AuditEvent, "audit"), (OutboxEvent, "outbox")):
        model.objects.bulk_create(
            _copy(row, swap)
            for bundle, swap in zip(bundles, swaps, strict=True)
            for row in getattr(bundle, attribute)
        )
    return number


def _clone_all(templates: dict[str, Bundle], total: int, scope: Any) -> list[str]:
    """Clone the templates up to ``total`` subscriptions in the order of ``PATTERN``; the kinds of
    all subscriptions, in primary-key order of the clones."""
    from django.db import transaction

    from turnus.apps.billing.models import Invoice, NumberSeries
    from turnus.apps.tenants.models import Tenant

    template = Tenant.objects.get(pk=scope.tenant_id).invoice_number_format
    number = Invoice.objects.exclude(number=None).count() + 1
    kinds = [PATTERN[index % len(PATTERN)] for index in range(total)]
    for start in range(0, total, CLONE_CHUNK):
        chunk = kinds[start : start + CLONE_CHUNK]
        with transaction.atomic():
            number = _clone([templates[kind] for kind in chunk], number, template)
    year = next(iter(templates.values())).invoices[0].issue_date.year
    series = NumberSeries.objects.get(tenant_id=scope.tenant_id, livemode=scope.livemode, kind="invoice")
    assert series.year in (0, year)
    NumberSeries.objects.filter(pk=series.pk).update(counter=number - 1)
    return kinds


# --- usage ----------------------------------------------------------------------------------------


def _ingest_usage(scope: Any, plans: dict[str, str], per_charge: int) -> int:
    from turnus.apps.catalog.models import Plan
    from turnus.apps.metering import services as metering
    from turnus.apps.subscriptions.models import Subscription

    plan = Plan.objects.get(public_id=plans["metered"])
    metered = Subscription.objects.filter(plan=plan).order_by("pk").values_list("public_id", flat=True)
    step = (FEBRUARY - JANUARY - timedelta(days=2)) / max(per_charge, 1)
    sent = 0
    batch: list[dict[str, Any]] = []

    def flush() -> None:
        results = metering.ingest(scope, batch)
        refused = [result.error for result in results if result.error is not None]
        assert not refused, refused[:1]
        batch.clear()

    with _at(FEBRUARY - timedelta(minutes=10)):
        for public_id in metered.iterator(chunk_size=2000):
            for index in range(per_charge):
                at = (JANUARY + timedelta(days=1) + step * index).isoformat()
                batch.append(
                    {"transaction_id": f"{public_id}-c{index}", "subscription": public_id, "metric": "calls",
                     "timestamp": at}
                )  # fmt: skip
                batch.append(
                    {"transaction_id": f"{public_id}-t{index}", "subscription": public_id, "metric": "tokens",
                     "timestamp": at, "properties": {"tokens": 1000 * (index + 1)}}
                )  # fmt: skip
                if len(batch) >= metering.MAX_BATCH:
                    flush()
                sent += 2
        if batch:
            flush()
    return sent


# --- comparing a clone with a service-made subscription -------------------------------------------


def fingerprint(public_id: str) -> dict[str, list[dict[str, Any]]]:
    """Every stored row of the subscription, without keys; ids and invoice numbers replaced by roles."""
    bundle = Bundle(public_id)
    roles: dict[str, str] = {}

    def role(match: re.Match[str]) -> str:
        return roles.setdefault(match.group(0), f"<{match.group(0)[:3]}{len(roles)}>")

    def plain(row: Any) -> dict[str, Any]:
        drop = {"customer_id", "subscription_id", "invoice_id", "charge_id", "credit_note_for_id"}
        data = {name: value for name, value in _fields(row).items() if name not in drop}
        text = json.dumps(data, sort_keys=True, default=str)
        return json.loads(_REQUEST.sub("<request>", _NUMBER.sub("<number>", _ID.sub(role, text))))

    rows: dict[str, list[Any]] = {
        "customer": [bundle.customer],
        "subscription": [bundle.subscription],
        "charges": bundle.charges,
        "invoices": bundle.invoices,
        "lines": bundle.parts[0],
        "vat": bundle.parts[1],
        "allowances": bundle.parts[2],
        "invoiced": bundle.invoiced,
        "schedule": bundle.schedules,
        "watermark": bundle.watermarks,
        "audit": bundle.audit,
        "outbox": bundle.outbox,
    }
    return {name: [plain(row) for row in found] for name, found in rows.items()}


def _compare(reference: str, clone: str, when: str) -> None:
    expected, found = fingerprint(reference), fingerprint(clone)
    for name in expected:
        if expected[name] != found[name]:
            raise SystemExit(
                f"{when}: clone {clone} differs from service-made {reference} in {name}:\n"
                f"  service-made: {expected[name]}\n  clone:        {found[name]}"
            )


# --- the run --------------------------------------------------------------------------------------


def _server_cpu() -> tuple[int, float] | None:
    """(backend pid, CPU seconds) of the PostgreSQL backend serving this process's connection, when the
    server runs on this machine (``/proc``); None otherwise."""
    from django.db import connection

    if connection.vendor != "postgresql":
        return None
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        pid = cursor.fetchone()[0]
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return pid, (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _server_spent(before: tuple[int, float] | None) -> float | None:
    after = _server_cpu()
    if before is None or after is None or before[0] != after[0]:
        return None
    return after[1] - before[1]


def _worker(now: datetime, queue: Any) -> None:
    from django.db import connections

    from turnus.apps.billing.sweep import run_sweep

    try:
        server = _server_cpu()
        summary = run_sweep(now)
        spent = _server_spent(server)
        queue.put(
            (summary.subscriptions, summary.invoices_created, summary.finalized, len(summary.errors), spent)
        )
    finally:
        connections.close_all()


#: CPU seconds the sweep processes used in the last ``sweep`` (the machine may be shared: compare with
#: the wall time).
cpu_spent = [0.0]


#: CPU seconds the whole machine (the database server included) spent in the last ``sweep``, if known.
machine_spent: list[float | None] = [None]
#: CPU seconds the database server's backends spent for the last ``sweep``, if known (a local server).
server_spent: list[float | None] = [None]


def _machine_cpu() -> float | None:
    """Busy CPU seconds of the whole machine since boot (Linux ``/proc/stat``), or None elsewhere."""
    try:
        fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    except OSError:
        return None
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(value) for value in fields[:8])
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def sweep(now: datetime, workers: int) -> tuple[float, tuple[int, int, int, int]]:
    """Run the sweep at ``now`` in ``workers`` processes (in this one for 1); seconds and totals."""
    from django.db import connections

    from turnus.apps.billing.sweep import run_sweep

    machine = _machine_cpu()
    if workers == 1:
        started, cpu, server = time.perf_counter(), time.process_time(), _server_cpu()
        summary = run_sweep(now)
        spent = time.perf_counter() - started
        cpu_spent[0] = time.process_time() - cpu
        server_spent[0] = _server_spent(server)
        _machine_spent(machine)
        return spent, (
            summary.subscriptions,
            summary.invoices_created,
            summary.finalized,
            len(summary.errors),
        )
    cpu = _children_cpu()
    connections.close_all()
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    processes = [context.Process(target=_worker, args=(now, queue)) for _ in range(workers)]
    started = time.perf_counter()
    for process in processes:
        process.start()
    results = [queue.get() for _ in processes]
    for process in processes:
        process.join()
    spent = time.perf_counter() - started
    cpu_spent[0] = _children_cpu() - cpu
    _machine_spent(machine)
    assert all(process.exitcode == 0 for process in processes)
    totals = tuple(sum(column) for column in zip(*(result[:4] for result in results), strict=True))
    servers = [result[4] for result in results]
    server_spent[0] = None if None in servers else sum(servers)
    return spent, (totals[0], totals[1], totals[2], totals[3])


def _machine_spent(before: float | None) -> None:
    after = _machine_cpu()
    machine_spent[0] = None if before is None or after is None else after - before


def _shape(sql: str) -> str:
    sql = re.sub(r'"s\d+_x\d+"', "?", sql)
    sql = re.sub(r"%s", "?", sql)
    sql = re.sub(r"\((?:\?, )+\?\)(?:, \((?:\?, )+\?\))*", "(?...)", sql)
    sql = re.sub(r'SELECT .*? FROM "', 'SELECT … FROM "', sql)
    return sql[:170]


def counted_sweep(now: datetime) -> tuple[float, tuple[int, int, int, int]]:
    """The sweep with every SQL statement counted by its shape (savepoints included)."""
    from django.db import connection

    statements: Counter[str] = Counter()

    def count(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        statements[_shape(sql)] += 1
        return execute(sql, params, many, context)

    with connection.execute_wrapper(count):
        spent, totals = sweep(now, 1)
    invoices = max(totals[1], 1)
    total = sum(statements.values())
    print(f"SQL statements: {total:,} ({total / invoices:.1f} per invoice)")
    for shape, number in statements.most_common(45):
        print(f"  {number / invoices:6.2f}/invoice  {shape}")
    return spent, totals


def profiled_sweep(now: datetime, path: str) -> tuple[float, tuple[int, int, int, int]]:
    profiler = cProfile.Profile()
    profiler.enable()
    try:
        result = sweep(now, 1)
    finally:
        profiler.disable()
    profiler.dump_stats(path)
    stats = pstats.Stats(path)
    stats.sort_stats("cumulative").print_stats(45)
    stats.sort_stats("tottime").print_stats(30)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--subscriptions", type=int, default=100_000)
    parser.add_argument("--database", choices=("sqlite", "postgres"), default="postgres")
    parser.add_argument(
        "--postgres", default=DEFAULT_POSTGRES, help="URL of a PostgreSQL database to recreate"
    )
    parser.add_argument("--workers", type=int, help="sweep processes (default: 1 on SQLite, 2 on PostgreSQL)")
    parser.add_argument("--events-per-charge", type=int, default=20)
    parser.add_argument("--count-queries", action="store_true")
    parser.add_argument("--profile", metavar="FILE")
    parser.add_argument(
        "--idle-only", action="store_true", help="stop after the idle sweep before the period ends"
    )
    args = parser.parse_args()
    workers = args.workers or (2 if args.database == "postgres" else 1)
    if args.database == "sqlite" and workers != 1:
        parser.error("SQLite serialises writers: run it with one worker")
    if (args.count_queries or args.profile) and workers != 1:
        parser.error("--count-queries and --profile need --workers 1")
    if args.subscriptions < 6:
        parser.error("at least 6 subscriptions (the service-made ones)")

    var = Path(tempfile.mkdtemp(prefix="turnus-bench-billing-"))
    began = time.perf_counter()
    _setup_django(args.database, args.postgres, var)

    from turnus.apps.billing.models import Invoice
    from turnus.apps.tenants import services as tenants
    from turnus.core.scope import Actor, ActorKind, Scope

    actor = Actor(ActorKind.CLI, "billing benchmark")
    with _at(JANUARY - timedelta(days=1)):
        tenant = tenants.create_tenant(
            {
                "slug": "bench",
                "legal_name": "Beispiel Shop GmbH",
                "address_line1": "Hauptstraße 1",
                "postal_code": "10115",
                "city": "Berlin",
                "country": "DE",
                "vat_id": "DE136695976",
                "default_currency": "EUR",
                "timezone": "Europe/Berlin",
                "locale": "de",
            },
            actor=actor,
        )
    scope = Scope(tenant.pk, False, actor)
    with _at(JANUARY - timedelta(hours=1)):
        plans = _catalogue(scope)
    made = _service_made(scope, plans, tenant)
    templates = {kind: Bundle(ids[0]) for kind, ids in made.items()}
    kinds = _clone_all(templates, args.subscriptions - 6, scope)
    from turnus.apps.subscriptions.models import Subscription

    clones = list(Subscription.objects.order_by("-pk").values_list("public_id", flat=True)[: len(PATTERN)])
    sample = dict(zip(reversed(kinds[-len(clones) :]), clones, strict=True))
    for kind in KINDS:
        _compare(made[kind][1], sample[kind], "before the run")
    events = _ingest_usage(scope, plans, args.events_per_charge)
    counts = Counter(kinds)
    for kind in KINDS:
        counts[kind] += 2
    from django.db import connection

    with connection.cursor() as cursor:  # the statistics autovacuum would have gathered by the run
        cursor.execute("ANALYZE")
    setup = time.perf_counter() - began
    print(
        f"setup: {args.subscriptions:,} subscriptions ({counts['flat']:,} flat, "
        f"{counts['metered']:,} metered, "
        f"{counts['changed']:,} changed mid-period), {events:,} events, {setup:.0f} s"
    )
    database = "PostgreSQL" if args.database == "postgres" else "SQLite"
    already = Invoice.objects.count()
    idle, (_, early, _, _) = sweep(FEBRUARY - timedelta(hours=1), workers)
    print(f"idle sweep an hour before the period ends: {idle:.2f} s, {early} invoices created")
    if early or args.idle_only:
        sys.exit(1 if early else 0)

    if args.count_queries:
        spent, (subscriptions, created, finalized, errors) = counted_sweep(RUN_AT)
    elif args.profile:
        spent, (subscriptions, created, finalized, errors) = profiled_sweep(RUN_AT, args.profile)
    else:
        spent, (subscriptions, created, finalized, errors) = sweep(RUN_AT, workers)
    assert Invoice.objects.count() == already + created
    print(f"database: {database}; workers: {workers}")
    print(
        f"sweep: {subscriptions:,} subscriptions, {created:,} invoices ({finalized:,} finalized), "
        f"{errors} errors in {spent:.1f} s = {created / spent:,.0f} invoices/s "
        f"({cpu_spent[0]:.1f} CPU s in the sweep processes; load average {os.getloadavg()[0]:.1f})"
    )
    if server_spent[0] is not None:
        print(
            f"CPU of the database server for the sweep: {server_spent[0]:.1f} s "
            f"= {server_spent[0] * 1000 / max(created, 1):.2f} ms per invoice"
        )
    if machine_spent[0] is not None:
        print(
            f"CPU of the whole machine during the sweep (database server included): {machine_spent[0]:.1f} s "
            f"= {machine_spent[0] * 1000 / max(created, 1):.2f} ms per invoice"
        )
    for kind in KINDS:
        _compare(made[kind][1], sample[kind], "after the run")
    idle, (_, again, _, idle_errors) = sweep(RUN_AT + timedelta(minutes=1), workers)
    print(f"second sweep: {idle:.2f} s, {again} invoices created, {idle_errors} errors")
    if created != args.subscriptions or errors or again:
        sys.exit("the run did not make exactly one invoice per subscription, or the second one made more")
    print(
        "target (PostgreSQL, 100,000 subscriptions): sweep <= 50 s (>= 2,000 invoices/s), second sweep < 5 s"
    )


if __name__ == "__main__":
    main()
