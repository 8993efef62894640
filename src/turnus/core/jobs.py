"""The job queue: one huey instance configured by ``settings.HUEY``. Apps declare periodic jobs in their
``tasks`` module with ``periodic``; ``turnus worker`` and ``turnus serve`` run them."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.conf import settings
from django.db import close_old_connections, connection
from django.utils.module_loading import autodiscover_modules, import_string
from huey import Huey
from huey.consumer import Consumer


def _build() -> Huey:
    config = dict(settings.HUEY)
    huey_class = import_string(str(config.pop("huey_class")))
    name = config.pop("name")
    config.setdefault("immediate", False)
    built: Huey = huey_class(name, **config)
    return built


huey = _build()


Job = Callable[[], Any]


def periodic(schedule: Callable[[Any], bool], *, name: str) -> Callable[[Job], Job]:
    """Run the decorated function on ``schedule`` (a ``huey.crontab``) in the worker; the function itself
    is returned unchanged, so tests call it directly."""

    def decorator(function: Job) -> Job:
        @wraps(function)
        def job() -> None:
            outside = not connection.in_atomic_block
            if outside:
                close_old_connections()
            try:
                function()
            finally:
                if outside:
                    close_old_connections()

        huey.periodic_task(schedule, name=name)(job)
        return function

    return decorator


def load_jobs() -> None:
    autodiscover_modules("tasks")


def run_periodic_once() -> list[str]:
    """Run every periodic job once, now, in this thread; the names of the jobs run."""
    load_jobs()
    ran = []
    for task in huey._registry.periodic_tasks:
        task.execute()
        ran.append(task.name)
    return ran


class EmbeddedConsumer(Consumer):  # type: ignore[misc]
    """A consumer that leaves signal handling to the process it runs in (e.g. the web server)."""

    def _set_signal_handlers(self) -> None:
        pass


def start_embedded_worker() -> EmbeddedConsumer:
    """Start one worker thread and the scheduler in this process (daemon threads)."""
    load_jobs()
    consumer = EmbeddedConsumer(huey, workers=1, worker_type="thread", periodic=True)
    consumer.start()
    return consumer
