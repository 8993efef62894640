"""``turnus demo load``: a demo merchant to look around in, with its test-mode key.
``turnus demo simulate``: a new demo tenant whose months of billing run on a test clock."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from turnus.apps.demo import simulation
from turnus.apps.demo.loader import load_demo
from turnus.core.errors import ValidationFailed


def _months(value: str) -> int:
    try:
        months = int(value)
    except ValueError:
        raise CommandError(f"--months {value!r} is not a whole number") from None
    if not simulation.MIN_MONTHS <= months <= simulation.MAX_MONTHS:
        raise CommandError(f"--months must be {simulation.MIN_MONTHS} to {simulation.MAX_MONTHS}")
    return months


def _start(value: str) -> datetime:
    match = re.fullmatch(r"(\d{4})-(\d{2})", value)
    if match is None or not 1 <= int(match.group(2)) <= 12 or not 2000 <= int(match.group(1)) < 2098:
        raise CommandError(f"--start {value!r} is not a month like 2026-01 (years 2000 to 2097)")
    return simulation.first_of_month(datetime(int(match.group(1)), int(match.group(2)), 15, tzinfo=UTC))


class Command(BaseCommand):
    help = "Demo data: load the demo merchant, or simulate months of billing for a new demo tenant."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        sub.add_parser("load", help="create the demo merchant if missing and print how to get in")
        simulate = sub.add_parser(
            "simulate",
            help="create a new demo tenant, run months of its billing on a test clock, print the invoices",
        )
        simulate.add_argument(
            "--months", type=_months, default=12, help="months to simulate, 1 to 24 (default 12)"
        )
        simulate.add_argument(
            "--seed",
            type=int,
            default=simulation.DEFAULT_SEED,
            help=f"seed of the usage figures (default {simulation.DEFAULT_SEED}: the same run every time)",
        )
        simulate.add_argument("--tenant-slug", help="slug of the new tenant (default demo-sim-<n>)")
        simulate.add_argument(
            "--start", type=_start, help="first simulated month, e.g. 2026-01 (default: the current month)"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if options["action"] == "simulate":
            self._simulate(options)
            return
        access = load_demo()
        state = "created" if access.created else "already there"
        self.stdout.write(f"Demo merchant {access.tenant.legal_name} ({state}).")
        self.stdout.write(f"  Test-mode secret key:  {access.secret_key}")
        if access.admin_user:
            self.stdout.write(f"  Back-office login:     {access.admin_user} / {access.admin_password}")
        else:
            self.stdout.write(
                "  Back-office login:     your existing 'admin' user (its password was left alone)"
            )
        self.stdout.write(
            "  Try: curl -H 'Authorization: Bearer "
            + access.secret_key
            + "' http://127.0.0.1:8000/v1/subscriptions"
        )

    def _simulate(self, options: dict[str, Any]) -> None:
        try:
            result = simulation.simulate(
                months=options["months"],
                seed=options["seed"],
                slug=options["tenant_slug"],
                start=options["start"],
            )
        except ValidationFailed as error:
            raise CommandError(error.message) from None
        for line in simulation.report(result):
            self.stdout.write(line)
