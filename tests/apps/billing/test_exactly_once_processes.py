"""Exactly once across processes: ``turnus bill`` run twice at once, or killed mid-run, on PostgreSQL.

The thread tests in test_sweep.py share one Python process. These start the real commands as separate
processes against the test database, so row locks, commits and a connection that dies with its process
are PostgreSQL's own. Each subscription starts months in the past and is due for ``PERIODS`` monthly
periods; the data is committed (transactional test) so the processes see it.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from itertools import pairwise
from pathlib import Path
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

import pytest
from django.db import connection, transaction

from tests.apps.billing.support import plan, scope_of
from tests.apps.customers.support import customer_data
from tests.support import TEST_ACTOR, tenant_data
from turnus.apps.billing import sweep
from turnus.apps.billing.models import BillingSchedule, Invoice, InvoiceStatus, NumberSeries
from turnus.apps.customers import services as customers
from turnus.apps.subscriptions import services as subscriptions
from turnus.apps.tenants import services as tenants
from turnus.apps.tenants.models import Tenant
from turnus.core import clock
from turnus.core.clock import FrozenClock, use_clock

pytestmark = pytest.mark.django_db(transaction=True)

BERLIN = ZoneInfo("Europe/Berlin")
#: Monthly periods each subscription is due for.
PERIODS = 3
#: Subscriptions for the two-worker run (three batches of the sweep: one each at the start, one contended)
#: and for the run that is killed (two batches: killed in the second, once the first is committed).
#: The processes bill in batches of this many subscriptions (``turnus bill --batch``).
BATCH = 50
WORKERS_SUBSCRIPTIONS = 3 * BATCH
KILL_SUBSCRIPTIONS = 2 * BATCH
#: Seconds a process may take before the test gives up on it (generous: a loaded machine is slow).
TIMEOUT = 300
APP_PREFIX = "turnus-exactly-once"


@pytest.fixture(autouse=True)
def _postgresql_only() -> None:
    if connection.vendor != "postgresql":
        pytest.skip(
            "SQLite serialises writers; concurrent and killed billing processes are a PostgreSQL concern"
        )


_started: list[subprocess.Popen[bytes]] = []


@pytest.fixture(autouse=True)
def _no_process_left_behind() -> Iterator[None]:
    """A failed test ends the processes it started (by their id), so the test database can be dropped."""
    yield
    while _started:
        process = _started.pop()
        if process.poll() is None:
            os.kill(process.pid, signal.SIGKILL)
            process.wait()


@dataclass
class Prepared:
    tenant: Tenant
    until: datetime
    periods: list[tuple[datetime, datetime]]
    subscriptions: list[str]

    @property
    def due(self) -> set[tuple[str, datetime, datetime]]:
        return {(sub, start, end) for sub in self.subscriptions for start, end in self.periods}


def _month_starts(moment: datetime) -> list[datetime]:
    """Midnight (Berlin) of the 1st of the ``PERIODS`` months up to ``moment``'s, and of the month after."""
    local = moment.astimezone(BERLIN)
    starts = []
    for offset in range(1 - PERIODS, 2):
        years, month = divmod(local.month - 1 + offset, 12)
        starts.append(datetime(local.year + years, month + 1, 1, tzinfo=BERLIN).astimezone(UTC))
    return starts


def _prepare(count: int) -> Prepared:
    """A tenant with ``count`` monthly subscriptions begun ``PERIODS - 1`` months ago, committed."""
    # ``turnus bill`` refuses an --until in the past: bill as of a moment just ahead of the wall clock.
    until = clock.now() + timedelta(minutes=10)
    starts = _month_starts(until)
    with use_clock(FrozenClock(starts[0] + timedelta(hours=9))):
        tenant = tenants.create_tenant(tenant_data(), actor=TEST_ACTOR)
        scope = scope_of(tenant)
        plan_id = plan(scope)
        made = []
        with transaction.atomic():
            for index in range(count):
                owner = customers.create_customer(
                    scope, customer_data(timezone="Europe/Berlin", email=f"kunde{index}@example.com")
                )
                made.append(
                    subscriptions.create_subscription(scope, customer=owner.public_id, plan=plan_id).public_id
                )
    return Prepared(tenant, until, list(pairwise(starts)), made)


def _database_url() -> str:
    """The URL of the test database, as ``TURNUS_DATABASE_URL`` takes it."""
    settings = connection.settings_dict
    credentials = quote(settings["USER"] or "", safe="")
    if settings["PASSWORD"]:
        credentials += ":" + quote(settings["PASSWORD"], safe="")
    host = settings["HOST"] or ""
    port = f":{settings['PORT']}" if settings["PORT"] else ""
    at = f"{credentials}@" if credentials else ""
    return f"postgresql://{at}{host}{port}/{quote(settings['NAME'], safe='')}"


@dataclass
class Run:
    name: str
    process: subprocess.Popen[bytes]
    stdout: Path
    stderr: Path

    def output(self) -> str:
        return self.stdout.read_text() + self.stderr.read_text()

    def finish(self) -> str:
        """Wait for the process; its output, which must show it succeeded."""
        try:
            self.process.wait(timeout=TIMEOUT)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            pytest.fail(f"{self.name} did not finish in {TIMEOUT} s:\n{self.output()}")
        assert self.process.returncode == 0, self.output()
        return self.stdout.read_text()


def _start(directory: Path, name: str, *command: str) -> Run:
    """``turnus <command>`` in a process of its own, on the test database, known to it as ``name``."""
    environment = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "turnus.project.settings",
        "TURNUS_DATABASE_URL": _database_url(),
        "TURNUS_VAR_DIR": str(directory),
        "TURNUS_SECRET_KEY": "exactly-once-test",
        "TURNUS_LOG_LEVEL": "WARNING",
        # libpq reports it in pg_stat_activity: the test finds each process's database session by it.
        "PGAPPNAME": f"{APP_PREFIX}-{name}",
    }
    stdout, stderr = directory / f"{name}.out", directory / f"{name}.err"
    with stdout.open("wb") as out, stderr.open("wb") as err:
        process = subprocess.Popen(
            [sys.executable, "-m", "turnus.cli", *command], env=environment, stdout=out, stderr=err
        )
    _started.append(process)
    return Run(name, process, stdout, stderr)


def _bill(directory: Path, name: str, prepared: Prepared, *, tenant: bool = True) -> Run:
    only = ["--tenant", prepared.tenant.slug] if tenant else []
    return _start(
        directory, name, "bill", *only, "--until", prepared.until.isoformat(), "--batch", str(BATCH)
    )


def _summary(output: str) -> tuple[int, int, int]:
    """Invoices created, finalized, and errors as ``turnus bill`` printed them."""
    created = re.search(r"Invoices created: (\d+) \((\d+) finalized\)", output)
    errors = re.search(r"^Errors: (\d+)$", output, re.MULTILINE)
    assert created is not None, output
    assert errors is not None, output
    return int(created[1]), int(created[2]), int(errors[1])


def _wait_until(condition: Callable[[], bool], what: str, runs: list[Run], timeout: float = TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        for run in runs:
            if run.process.poll() is not None and run.process.returncode != 0:
                pytest.fail(f"{run.name} failed while waiting until {what}:\n{run.output()}")
        if time.monotonic() > deadline:
            pytest.fail(f"not {what} after {timeout} s")
        time.sleep(0.01)


def _query(sql: str, *params: Any) -> list[tuple[Any, ...]]:
    with connection.cursor() as cursor:
        # Inside a transaction PostgreSQL keeps showing the first look at pg_stat_activity: take a fresh one.
        cursor.execute("SELECT pg_stat_clear_snapshot()")
        cursor.execute(sql, params)
        rows: list[tuple[Any, ...]] = cursor.fetchall()
        return rows


def _sessions(run: Run) -> list[tuple[Any, ...]]:
    """The database sessions of ``run``'s process: (pid, backend_xid, query)."""
    return _query(
        "SELECT pid, backend_xid, query FROM pg_stat_activity WHERE application_name = %s",
        f"{APP_PREFIX}-{run.name}",
    )


def _waiting_for_invoices(runs: list[Run]) -> int:
    """How many of ``runs`` wait for a lock on the invoice table."""
    [(count,)] = _query(
        "SELECT count(DISTINCT l.pid) FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
        "WHERE l.relation = %s::regclass AND NOT l.granted AND a.application_name = ANY(%s)",
        Invoice._meta.db_table,
        [f"{APP_PREFIX}-{run.name}" for run in runs],
    )
    return int(count)


def _invoices(tenant: Tenant) -> list[Invoice]:
    return list(
        Invoice.objects.filter(tenant=tenant)
        .select_related("subscription")
        .prefetch_related("lines", "vat_breakdown", "allowances", "invoiced_charges")
    )


def _assert_whole(tenant: Tenant) -> list[Invoice]:
    """Every stored invoice of ``tenant`` is whole: lines, VAT breakdown, consistent totals, a number."""
    invoices = _invoices(tenant)
    broken = []
    for invoice in invoices:
        lines, groups = list(invoice.lines.all()), list(invoice.vat_breakdown.all())
        allowances = sum((allowance.amount for allowance in invoice.allowances.all()), Decimal(0))
        problems = [
            ("no lines", not lines),
            ("no VAT breakdown", not groups),
            ("no invoiced charge", not invoice.invoiced_charges.all()),
            ("line total", invoice.line_total != sum((line.net_amount for line in lines), Decimal(0))),
            ("allowance total", invoice.allowance_total != allowances),
            ("tax exclusive", invoice.tax_exclusive != invoice.line_total - invoice.allowance_total),
            ("taxable", invoice.tax_exclusive != sum((group.taxable_amount for group in groups), Decimal(0))),
            ("tax total", invoice.tax_total != sum((group.tax_amount for group in groups), Decimal(0))),
            ("grand total", invoice.grand_total != invoice.tax_exclusive + invoice.tax_total),
            (
                "amount due",
                invoice.amount_due != invoice.grand_total + invoice.rounding_amount - invoice.prepaid,
            ),
            ("not finalized", invoice.status != InvoiceStatus.FINALIZED),
            ("unnumbered", not invoice.number or invoice.issue_date is None or invoice.finalized_at is None),
            ("nothing due", invoice.amount_due <= 0),
        ]
        broken += [(invoice.public_id, problem) for problem, failed in problems if failed]
    assert broken == []
    return invoices


def _assert_gapless(tenant: Tenant, count: int) -> None:
    """The tenant's invoice numbers are one series numbered 1..count, and the series stands at count."""
    numbers = Invoice.objects.filter(tenant=tenant).values_list("number", flat=True)
    parsed = [re.fullmatch(r"(.*?)(\d+)", number or "") for number in numbers]
    assert all(parsed), sorted(map(str, numbers))[:5]
    assert len({match[1] for match in parsed if match}) <= 1, "more than one number series"
    assert sorted(int(match[2]) for match in parsed if match) == list(range(1, count + 1))
    counters = NumberSeries.objects.filter(tenant=tenant, kind="invoice").values_list("counter", flat=True)
    assert sum(counters) == count


def _assert_exactly_once(prepared: Prepared) -> None:
    """Every due (subscription, period) has exactly one invoice, all whole, numbered without gaps."""
    invoices = _assert_whole(prepared.tenant)
    billed = Counter(
        (invoice.subscription.public_id, invoice.period_start, invoice.period_end)
        for invoice in invoices
        if invoice.subscription is not None
    )
    assert [key for key, times in billed.items() if times > 1] == []
    assert set(billed) == prepared.due
    assert len(invoices) == len(prepared.due)
    _assert_gapless(prepared.tenant, len(prepared.due))


def test_two_bill_processes_started_together_invoice_every_due_period_exactly_once(tmp_path: Path) -> None:
    prepared = _prepare(WORKERS_SUBSCRIPTIONS)
    table = connection.ops.quote_name(Invoice._meta.db_table)
    # A start line: while this transaction holds the invoice table, both processes take their first batch
    # of subscriptions and then wait for it; committing releases them at the same instant.
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute(f"LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE")
        runs = [_bill(tmp_path, f"worker{index}", prepared, tenant=False) for index in range(2)]
        _wait_until(lambda: _waiting_for_invoices(runs) == 2, "both processes wait at the start line", runs)
    started = time.monotonic()
    summaries = [_summary(run.finish()) for run in runs]
    elapsed = time.monotonic() - started
    assert [errors for _, _, errors in summaries] == [0, 0]
    assert [created == finalized for created, finalized, _ in summaries] == [True, True]
    assert sum(created for created, _, _ in summaries) == len(prepared.due)
    # Both took part: each had a batch locked before the start line.
    assert all(created > 0 for created, _, _ in summaries), (summaries, elapsed)
    _assert_exactly_once(prepared)
    # Nothing is left to do: another run finds no subscription due.
    again = sweep.run_sweep(prepared.until, tenant=prepared.tenant)
    assert (again.subscriptions, again.invoices_created) == (0, 0)
    _assert_exactly_once(prepared)


def _kill_mid_batch(run: Run, tenant: Tenant, committed_at_least: int) -> int | None:
    """SIGKILL ``run`` once ``committed_at_least`` invoices are committed, while its database session is
    inside a batch that has written and not committed; the invoices committed by then, or ``None`` if the
    run finished first."""
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        if run.process.poll() is not None:
            return None
        if Invoice.objects.filter(tenant=tenant).count() >= committed_at_least:
            os.kill(run.process.pid, signal.SIGSTOP)
            sessions = _sessions(run)
            writing = [xid for _, xid, query in sessions if xid is not None and query != "COMMIT"]
            if run.process.poll() is None and writing:
                os.kill(run.process.pid, signal.SIGKILL)
                run.process.wait(timeout=TIMEOUT)
                return Invoice.objects.filter(tenant=tenant).count()
            os.kill(run.process.pid, signal.SIGCONT)
        time.sleep(0.005)
    pytest.fail(f"{run.name} was still running after {TIMEOUT} s:\n{run.output()}")


def test_a_bill_process_killed_mid_run_leaves_no_partial_invoice_and_a_rerun_bills_the_rest_once(
    tmp_path: Path,
) -> None:
    committed = None
    # Should the run ever finish before it can be killed, try again with three times the load.
    for attempt, count in enumerate((KILL_SUBSCRIPTIONS, 3 * KILL_SUBSCRIPTIONS)):
        prepared = _prepare(count)
        victim = _bill(tmp_path, f"victim{attempt}", prepared)
        committed = _kill_mid_batch(victim, prepared.tenant, BATCH * PERIODS)
        if committed is not None:
            break
        assert _summary(victim.finish())[0] == len(prepared.due)
    assert committed is not None, "the billing run finished every time before it could be killed"
    assert victim.process.returncode == -signal.SIGKILL
    # PostgreSQL rolls back the dead process's open batch when it notices the connection is gone.
    _wait_until(lambda: not _sessions(victim), "the killed process's database session has ended", [])
    invoices = _assert_whole(prepared.tenant)
    assert BATCH * PERIODS <= len(invoices) < len(prepared.due)
    # A subscription's due periods are billed together or not at all, and its schedule with them; the
    # batches are taken in key order and committed whole: the billed ones are the first whole batches.
    per_subscription = Counter(invoice.subscription.public_id for invoice in invoices if invoice.subscription)
    assert set(per_subscription.values()) == {PERIODS}
    assert len(per_subscription) % BATCH == 0
    assert set(per_subscription) == set(prepared.subscriptions[: len(per_subscription)])
    scheduled = BillingSchedule.objects.filter(subscription__tenant=prepared.tenant)
    assert set(scheduled.values_list("subscription__public_id", flat=True)) == set(per_subscription)
    _assert_gapless(prepared.tenant, len(invoices))

    rerun = _bill(tmp_path, f"rerun{attempt}", prepared)
    created, finalized, errors = _summary(rerun.finish())
    assert (created, finalized, errors) == (len(prepared.due) - len(invoices),) * 2 + (0,)
    _assert_exactly_once(prepared)
