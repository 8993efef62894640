"""Documents' jobs: render an issued invoice's documents once its transaction has committed and then e-mail
them (``delivery``), a periodic catch-up that renders whatever an interrupted worker or a lost queue entry
left unrendered, and a periodic job that sends due delivery retries."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from django.db import close_old_connections, connection
from huey import crontab

from turnus.apps.documents import delivery, services
from turnus.apps.documents.models import DeliveryStatus
from turnus.core.jobs import huey, periodic

logger = logging.getLogger(__name__)

#: How many invoices one catch-up run renders at most (the next run takes the rest).
CATCH_UP_BATCH = 200


@huey.task(retries=3, retry_delay=30, name="documents.render_invoice")  # type: ignore[untyped-decorator]
def render_invoice(invoice: str) -> list[str]:
    """Render every document of the issued invoice or credit note ``invoice`` (public id) that is not
    stored yet; the formats made now."""
    outside = not connection.in_atomic_block
    if outside:
        close_old_connections()
    try:
        made = [str(document.format) for document in services.render_documents(invoice)]
    finally:
        if outside:
            close_old_connections()
    deliver_invoice(invoice)
    return made


@huey.task(name="documents.deliver_invoice")  # type: ignore[untyped-decorator]
def deliver_invoice(invoice: str) -> str | None:
    """E-mail the issued invoice or credit note ``invoice`` (public id) to its customer once (its automatic
    delivery; a failed attempt is retried by ``send_due_deliveries``); the delivery's status."""
    with _connections():
        found = delivery.deliver_invoice(invoice)
    return None if found is None else str(found.status)


@huey.task(name="documents.send_delivery")  # type: ignore[untyped-decorator]
def send_delivery(public_id: str) -> str:
    """One attempt at the delivery ``public_id`` if it is pending and due; its status after."""
    with _connections():
        return str(delivery.send(public_id).status)


@contextmanager
def _connections() -> Iterator[None]:
    outside = not connection.in_atomic_block
    if outside:
        close_old_connections()
    try:
        yield
    finally:
        if outside:
            close_old_connections()


@huey.task(name="documents.render_invoices")  # type: ignore[untyped-decorator]
def render_invoices(invoices: list[str]) -> int:
    """Queue the rendering job of each of ``invoices`` (public ids); how many. A billing run issues
    hundreds of invoices per commit and queues this one job for them, not hundreds."""
    for invoice in invoices:
        render_invoice(invoice)
    return len(invoices)


def on_invoice_issued(sender: Any, *, invoices: list[str], **kwargs: Any) -> None:
    """``billing.services.invoice_issued`` (after commit): queue the rendering job(s)."""
    if len(invoices) == 1:
        render_invoice(invoices[0])
    else:
        render_invoices(invoices)


@periodic(crontab(minute="*/5"), name="documents.render_missing")
def render_missing() -> int:
    rendered = 0
    for invoice in services.unrendered_invoices(limit=CATCH_UP_BATCH):
        try:
            services.render_documents(invoice)
        except Exception:
            logger.exception("could not render the documents of %s", invoice)
        else:
            rendered += 1
    return rendered


@periodic(crontab(minute="*"), name="documents.send_due_deliveries")
def send_due_deliveries() -> int:
    """Send the deliveries whose next attempt is due (retries after a failure, attempts whose worker died)
    and the automatic e-mail of recently rendered invoices that have none (a lost queue entry); how many
    were sent."""
    sent = 0
    for invoice in delivery.undelivered_invoices(limit=CATCH_UP_BATCH):
        delivery.schedule_automatic(invoice)
    for public_id in delivery.due_deliveries(limit=CATCH_UP_BATCH):
        try:
            sent += delivery.send(public_id).status == DeliveryStatus.SENT
        except Exception:
            logger.exception("could not attempt the delivery %s", public_id)
    return sent
