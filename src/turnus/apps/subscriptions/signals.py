"""Signals of the subscriptions app, for the apps above it (subscriptions knows none of them)."""

from __future__ import annotations

from django.dispatch import Signal

#: Sent when a use case has stored a subscription's new state (created, cancelled, paused, resumed,
#: changed, migrated, its lifecycle advanced), inside the transaction that wrote it, so a receiver's
#: writes commit or roll back with the change. Arguments: ``subscription`` (the saved ``Subscription``)
#: and ``at`` (the time of the change by ``turnus.core.clock``). Not sent by previews, which write nothing.
subscription_changed = Signal()
