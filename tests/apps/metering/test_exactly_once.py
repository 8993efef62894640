"""Exactly once under concurrency: the same batch sent at once over separate connections is stored once."""

import threading
from datetime import timedelta

import pytest
from django.db import connection, connections

from tests.apps.metering.support import START, metered_subscription
from turnus.apps.metering import services
from turnus.apps.metering.models import EventTransaction, UsageEvent
from turnus.core.clock import FrozenClock, use_clock
from turnus.core.scope import Actor, ActorKind, Scope

THREADS = 6


@pytest.mark.django_db(transaction=True)
def test_concurrent_duplicate_batches_store_each_event_exactly_once(api):
    if connection.vendor != "postgresql":
        pytest.skip("SQLite serialises writers; concurrent connections are a PostgreSQL concern")
    clock = FrozenClock(START)
    with use_clock(clock):
        metered = metered_subscription(api)
    clock.set(START + timedelta(hours=1))
    scope = Scope(api.tenant.pk, False, Actor(ActorKind.SYSTEM, "tests"))
    batch = [
        {"transaction_id": f"tx-{n}", "subscription": metered.subscription, "metric": "calls"}
        for n in range(300)
    ]
    outcomes: list[list[services.EventResult]] = []
    failures: list[BaseException] = []
    barrier = threading.Barrier(THREADS)

    def send(order: int) -> None:
        try:
            with use_clock(clock):
                barrier.wait()
                events = batch if order % 2 else list(reversed(batch))
                outcomes.append(services.ingest(scope, events))
        except BaseException as error:
            failures.append(error)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=send, args=(order,)) for order in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    created = [
        result.transaction_id for results in outcomes for result in results if result.status == "created"
    ]
    assert sorted(created) == sorted(event["transaction_id"] for event in batch)
    assert all(result.status in ("created", "duplicate") for results in outcomes for result in results)
    assert UsageEvent.objects.count() == EventTransaction.objects.count() == len(batch)
