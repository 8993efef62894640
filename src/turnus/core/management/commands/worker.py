"""``turnus worker``: run the job queue's consumer with its periodic jobs (the billing run …)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser


class Command(BaseCommand):
    help = "Run the background worker: queued jobs and the periodic ones (e.g. the billing run every minute)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--workers", type=int, default=1)
        parser.add_argument("--once", action="store_true", help="run every periodic job once, then exit")

    def handle(self, *args: Any, **options: Any) -> None:
        from turnus.core import jobs

        if options["once"]:
            for name in jobs.run_periodic_once():
                self.stdout.write(f"ran {name}")
            return
        jobs.load_jobs()
        self.stdout.write(f"Turnus worker with {options['workers']} thread(s)")
        jobs.huey.create_consumer(workers=options["workers"], worker_type="thread", periodic=True).run()
