"""``turnus serve``: serve Turnus with a production server (granian, WSGI) and an embedded worker."""

from __future__ import annotations

import multiprocessing
from typing import Any

from django.core.management.base import BaseCommand, CommandParser


class Command(BaseCommand):
    help = "Serve the API, the back-office and the pages with a production WSGI server."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8000)
        parser.add_argument("--workers", type=int, default=1)
        parser.add_argument(
            "--threads",
            type=int,
            default=2,
            help="blocking threads per worker; two overlap one request's database wait with another's "
            "Python, more only queue for the interpreter lock (raise --workers instead)",
        )
        parser.add_argument(
            "--no-worker",
            action="store_true",
            help="do not run the background worker in this process (run `turnus worker` instead)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        from granian import Granian
        from granian.constants import Interfaces

        if not options["no_worker"]:
            from turnus.core.jobs import start_embedded_worker

            # Forking a process whose worker threads hold locks can deadlock the child: spawn instead.
            multiprocessing.set_start_method("spawn", force=True)
            start_embedded_worker()
            self.stdout.write("Turnus worker running in this process")
        self.stdout.write(f"Turnus serving on http://{options['host']}:{options['port']}")
        Granian(
            "turnus.project.wsgi:application",
            address=options["host"],
            port=options["port"],
            interface=Interfaces.WSGI,
            workers=options["workers"],
            blocking_threads=options["threads"],
        ).serve()
