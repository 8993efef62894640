"""``turnus bill``: run the billing now (or as of ``--until``) and print what it did."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from turnus.apps.billing.sweep import BATCH, SweepSummary, count_due, run_sweep
from turnus.apps.tenants.models import Tenant
from turnus.core import clock
from turnus.engine.money import Money


def _instant(value: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise CommandError(f"--until {value!r} is not an ISO 8601 date or time") from None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def progress_bar(done: int, total: int, width: int = 30) -> str:
    """``[#########.....................]``: ``done`` of ``total`` (full when nothing is due or more is)."""
    filled = width if total <= 0 else min(width, done * width // total)
    return "[" + "#" * filled + "." * (width - filled) + "]"


class Command(BaseCommand):
    _total = 0

    help = "Invoice every subscription that is due now (or by --until) and print a summary."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--tenant", help="the tenant's slug (default: every tenant)")
        parser.add_argument("--until", help="bill as of this instant, e.g. 2026-05-01T00:00:00+02:00")
        parser.add_argument(
            "--batch",
            type=int,
            default=BATCH,
            help=f"subscriptions per transaction (default {BATCH}; smaller batches hold their locks shorter)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        tenant = None
        if options["tenant"]:
            tenant = Tenant.objects.filter(slug=options["tenant"]).first()
            if tenant is None:
                raise CommandError(f"no tenant {options['tenant']!r}")
        now = _instant(options["until"]) if options["until"] else clock.now()
        if now < clock.now() and options["until"]:
            raise CommandError("--until must not lie in the past")
        self.stdout.write(f"Billing as of {now.isoformat()} for {tenant.slug if tenant else 'every tenant'}")
        self._total = count_due(now, tenant=tenant)
        if options["batch"] < 1:
            raise CommandError("--batch must be at least 1")
        summary = run_sweep(now, tenant=tenant, progress=self._progress, batch=options["batch"])
        self.stdout.write("")
        self._summary(summary)

    def _progress(self, summary: SweepSummary) -> None:
        self.stdout.write(
            f"\r{progress_bar(summary.subscriptions, self._total)} {summary.subscriptions}/{self._total} "
            f"subscriptions, {summary.invoices_created} invoices, {len(summary.errors)} errors",
            ending="",
        )
        self.stdout.flush()

    def _summary(self, summary: SweepSummary) -> None:
        self.stdout.write(f"Invoices created: {summary.invoices_created} ({summary.finalized} finalized)")
        for currency, amount in sorted(summary.amounts.items()):
            self.stdout.write(f"  {currency} {Money(amount, currency).rounded().amount}")
        self.stdout.write(f"Skipped (nothing due): {summary.skipped}")
        self.stdout.write(f"Errors: {len(summary.errors)}")
        for subscription, reason in summary.errors:
            self.stdout.write(f"  {subscription}: {reason}")
