"""What billing does when a subscription changes (``subscriptions.signals.subscription_changed``).

A change can make something due at once: a cancellation now ends the subscription, and its closing
invoice (the usage since the last invoice, the credit for the unused time) is due now, not when the
interrupted period would have ended. The billing run only looks at a subscription when its
``BillingSchedule`` says so, so a change makes the subscription due at the time of the change; the next
run then bills whatever fell due (often nothing) and sets the schedule as usual. A test clock's customers
have no regular run: their clock's run follows the change at once, so on a test clock the first invoice
of a new subscription and the closing invoice of a cancellation come right away, as they do on Stripe.
"""

from __future__ import annotations

from datetime import datetime
from functools import partial
from typing import Any

from django.db import transaction
from django.db.models import Q

from turnus.apps.billing import test_clocks
from turnus.apps.billing.models import BillingSchedule
from turnus.apps.customers.models import TestClock
from turnus.apps.subscriptions.models import Subscription


def due_at(subscription: Subscription, at: datetime) -> datetime:
    """When the run is to look at ``subscription`` after a change at ``at``: then, or for a customer on a
    test clock no later than the clock's time (a test clock's run only sees its own time; a change made
    at the real time, as a plan migration is, would otherwise wait for the clock to get there)."""
    clock_id = subscription.customer.test_clock_id
    if clock_id is None:
        return at
    frozen: datetime | None = (
        TestClock.objects.filter(pk=clock_id).values_list("frozen_time", flat=True).first()
    )
    return at if frozen is None else min(at, frozen)


def make_due(subscription: Subscription, at: datetime) -> None:
    """Bring the subscription's ``next_billing_at`` forward to ``at`` (never back), in one statement. A
    subscription without a schedule is left without: the run has not looked at it yet, so it is due at
    once anyway (``sweep.due_subscriptions``), and a missing schedule keeps saying so."""
    earlier = Q(next_billing_at__isnull=True) | Q(next_billing_at__gt=at)
    BillingSchedule.objects.filter(subscription_id=subscription.pk).filter(earlier).update(next_billing_at=at)


def on_subscription_changed(sender: Any, *, subscription: Subscription, at: datetime, **kwargs: Any) -> None:
    """``subscription_changed`` (inside the change's transaction): make the subscription due now. For a
    customer on a test clock, whose billing runs only when the clock moves, the clock's run at its time
    follows the commit (``test_clocks.bill_now``), unless the change comes from such a run."""
    make_due(subscription, due_at(subscription, at))
    clock_id = subscription.customer.test_clock_id
    if clock_id is not None and not test_clocks.in_clock_run():
        transaction.on_commit(partial(test_clocks.bill_now, clock_id), robust=True)
