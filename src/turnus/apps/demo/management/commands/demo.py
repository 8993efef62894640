"""``turnus demo load``: a demo merchant to look around in, with its test-mode key."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from turnus.apps.demo.loader import load_demo


class Command(BaseCommand):
    help = "Load the demo merchant (once) and print its test-mode secret key and back-office login."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        sub.add_parser("load", help="create the demo merchant if missing and print how to get in")

    def handle(self, *args: Any, **options: Any) -> None:
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
