"""Billing's periodic jobs."""

from __future__ import annotations

from huey import crontab

from turnus.apps.billing.sweep import SweepSummary, run_sweep
from turnus.core import clock
from turnus.core.jobs import periodic


@periodic(crontab(minute="*"), name="billing.sweep")
def billing_sweep() -> SweepSummary:
    return run_sweep(clock.now())
