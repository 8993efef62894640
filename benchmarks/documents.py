"""Rendering invoice documents: 500 issued invoices, each as PDF/A-3 with its CII XML embedded (ZUGFeRD /
Factur-X EN 16931), stored like the rendering job stores them.

Sets up a fresh SQLite database in a temporary folder, a tenant and a mix of customers (German business,
Austrian business under reverse charge, French consumer under OSS, German and English), and issues the
invoices through the billing services (two lines each: the monthly fee and metered usage on every other
one). Then, in one process (one core), ``documents.services.render_documents`` renders and stores every
invoice's documents, as the job does after finalization. Prints documents (invoices) per second per core;
target >= 16. A second pass over the same invoices times each stage on its own (loading, CII XML,
template, layout, PDF writing: the plain PDF and, from the same layout, the Factur-X PDF) without storing.

    .venv/bin/python benchmarks/documents.py [--invoices 500] [--profile FILE]

``--profile FILE`` runs the timed pass under cProfile, writes the stats and prints the top functions.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import os
import pstats
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

#: 1 March 2026, 10:00 in Berlin.
ISSUED_AT = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
CUSTOMERS: tuple[dict[str, str], ...] = (
    {"company": "Muster Software GmbH", "vat_id": "DE811907980", "locale": "de"},
    {
        "company": "Alpen Daten GmbH",
        "address_line1": "Mariahilfer Straße 1",
        "postal_code": "1060",
        "city": "Wien",
        "country": "AT",
        "vat_id": "ATU13585627",
        "locale": "de",
    },
    {
        "address_line1": "12 rue de Rivoli",
        "postal_code": "75004",
        "city": "Paris",
        "country": "FR",
        "locale": "en",
    },
    {"company": "Nordlicht Handel KG", "locale": "en"},
)


def _setup_django(var: Path) -> None:
    os.environ["TURNUS_DATABASE_URL"] = f"sqlite:///{var / 'documents.sqlite3'}"
    os.environ["TURNUS_VAR_DIR"] = str(var)
    os.environ["TURNUS_LOG_LEVEL"] = "WARNING"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "turnus.project.settings")
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def _issue(count: int) -> list[str]:
    """``count`` finalized invoices of distinct subscriptions; their public ids."""
    from tests.apps.billing.support import Billed, calls, plan
    from tests.support import TEST_ACTOR, tenant_data

    from turnus.apps.billing import services as billing
    from turnus.apps.customers import services as customers
    from turnus.apps.subscriptions import services as subscriptions
    from turnus.apps.tenants import services as tenants
    from turnus.core.clock import FrozenClock, use_clock
    from turnus.core.scope import Scope

    clock = FrozenClock(ISSUED_AT - timedelta(days=30))
    issued = []
    with use_clock(clock):
        tenant = tenants.create_tenant(tenant_data(slug="bench-documents"), actor=TEST_ACTOR)
        scope = Scope(tenant.pk, False, TEST_ACTOR)
        plan_id = plan(scope)
        for index in range(count):
            data = {
                "name": f"Kundin {index}",
                "email": f"kundin{index}@example.com",
                "address_line1": "Heidestraße 17",
                "postal_code": "51147",
                "city": "Köln",
                "country": "DE",
                "timezone": "Europe/Berlin",
                **CUSTOMERS[index % len(CUSTOMERS)],
            }
            owner = customers.create_customer(scope, data)
            subscription = subscriptions.create_subscription(scope, customer=owner.public_id, plan=plan_id)
            if index % 2:
                billed = Billed(scope, owner.public_id, plan_id, subscription.public_id)
                calls(billed, 150 + index, clock.now() + timedelta(minutes=1), prefix=f"c{index}")
        clock.set(ISSUED_AT)
        for invoice in _drafts(scope, billing):
            issued.append(billing.finalize(scope, invoice).public_id)
    return issued


def _drafts(scope: Any, billing: Any) -> list[str]:
    from turnus.apps.subscriptions.models import Subscription

    ids = (
        Subscription.objects.filter(tenant_id=scope.tenant_id)
        .order_by("pk")
        .values_list("public_id", flat=True)
    )
    return [billing.create_draft(scope, public_id).invoice.public_id for public_id in ids]


def _stages(invoices: list[str]) -> dict[str, float]:
    """CPU seconds per stage over ``invoices``, each stage timed on its own."""
    from turnus.apps.documents import cii, facturx, pdf

    renderer = pdf._thread_renderer()
    totals = dict.fromkeys(("load", "cii_xml", "template", "layout", "pdfs"), 0.0)

    def timed(stage: str, work: Callable[[], Any]) -> Any:
        started = time.process_time()
        result = work()
        totals[stage] += time.process_time() - started
        return result

    for public_id in invoices:
        invoice = timed("load", lambda public_id=public_id: pdf.load(public_id))
        xml = timed("cii_xml", lambda invoice=invoice: cii.invoice_xml(invoice))
        page = timed("template", lambda invoice=invoice: pdf.html(invoice))
        document = timed("layout", lambda page=page: renderer._layout(page))

        def factur_x(made: Any, xml: bytes = xml, moment: Any = invoice.finalized_at) -> None:
            facturx.attach(made, xml, moment=moment)

        # Both PDFs, as render_invoice_pdfs writes them (the plain one is dropped here: ``len``).
        timed("pdfs", lambda document=document, extend=factur_x: pdf._write(document, len, extend))
    return totals


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--invoices", type=int, default=500)
    parser.add_argument("--profile", metavar="FILE")
    parser.add_argument("--freeze", action="store_true", help="gc.freeze() before rendering")
    options = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="turnus-bench-documents-") as folder:
        var = Path(folder)
        _setup_django(var)
        import logging

        logging.getLogger("factur-x").setLevel(logging.WARNING)
        started = time.perf_counter()
        invoices = _issue(options.invoices)
        print(f"issued {len(invoices)} invoices in {time.perf_counter() - started:.1f} s")

        from turnus.apps.documents import pdf, services
        from turnus.apps.documents.models import Document

        pdf._thread_renderer()  # font configuration and stylesheet, once per worker thread
        if options.freeze:
            gc.collect()
            gc.freeze()  # what a worker may do once it has started: the collector skips startup objects
        profiler = cProfile.Profile() if options.profile else None
        wall, cpu = time.perf_counter(), time.process_time()
        if profiler:
            profiler.enable()
        for public_id in invoices:
            services.render_documents(public_id)
        if profiler:
            profiler.disable()
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        formats = sorted(set(Document.objects.values_list("format", flat=True)))
        count = len(invoices)
        print(f"rendered and stored {count} invoices ({', '.join(formats)}) in {wall:.1f} s, cpu {cpu:.1f} s")
        print(
            f"documents per second per core: {count / cpu:.1f} by CPU time, {count / wall:.1f} by wall time"
        )
        print("(target >= 16; on a busy machine the CPU-time figure is the one that counts)")
        sizes = Document.objects.filter(format="facturx_pdf").values_list("size", flat=True)
        if sizes:
            print(f"Factur-X PDF size: {sum(sizes) / len(sizes) / 1024:.1f} KiB on average")

        stages = _stages(invoices)
        total = sum(stages.values())
        print("per invoice, stage by stage (CPU time):")
        for stage, seconds in stages.items():
            print(f"  {stage:<9} {seconds / count * 1000:6.1f} ms  {seconds / total:5.1%}")
        print(f"  {'total':<9} {total / count * 1000:6.1f} ms  ({count / total:.1f} per second)")

        if profiler and options.profile:
            profiler.dump_stats(options.profile)
            stats = pstats.Stats(options.profile)
            stats.sort_stats("tottime").print_stats(25)
            stats.sort_stats("cumulative").print_stats(30)


if __name__ == "__main__":
    main()
