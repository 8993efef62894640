"""E-mailing issued invoices and credit notes to their customers, through Django's e-mail backend.

Each ``Delivery`` is one message and the attempts to send it:

- the automatic one, made once per invoice (unique on invoice + kind ``auto``) when its documents are
  rendered (``tasks.render_invoice`` queues ``tasks.deliver_invoice``), or by the periodic catch-up;
- one per resend (``POST /v1/invoices/{id}/send``, the admin's resend action).

An attempt first claims the delivery with one conditional UPDATE (``pending`` and due, ``next_attempt_at``
moved a lease ahead), so a second worker or a job run twice never sends it again; then it sends outside
any lock and records the outcome. A temporary failure (a 4xx reply, no connection, a timeout) is retried
after ``BACKOFF`` (1 min, 5 min, 30 min, 2 h, 12 h) by the periodic ``documents.send_due_deliveries``;
after the last it is ``failed``. A permanent refusal of the recipient or of the message (a 5xx reply to
RCPT or DATA) fails the delivery at once with the server's reply: sending it again would be refused again.
A refused sender or login is the mail setup's fault, not the message's: it is retried, so that fixing the
setup delivers what waits. A customer without an e-mail address gets a ``skipped`` delivery with the
reason.

The message is written in the invoice's language (German or English templates under
``documents/email/<language>/``), From ``settings.TURNUS_EMAIL_FROM`` (else the tenant's e-mail, else
``DEFAULT_FROM_EMAIL``) with the tenant's name, Reply-To the tenant's e-mail, and carries the Factur-X PDF
(or the plain PDF) as ``<number>.pdf`` and the XRechnung XML as ``<number>.xml`` where one is rendered.
"""

from __future__ import annotations

import logging
import smtplib
from datetime import datetime, timedelta
from decimal import Decimal
from email.utils import formataddr
from typing import Any

from babel.dates import format_date
from babel.numbers import format_currency
from django.conf import settings
from django.core import checks
from django.core.mail import EmailMultiAlternatives, make_msgid
from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.template.loader import render_to_string

from turnus.apps.billing import services as billing
from turnus.apps.billing.models import DocumentKind, Invoice, InvoiceStatus
from turnus.apps.documents import pdf, services
from turnus.apps.documents.models import Delivery, DeliveryKind, DeliveryStatus, Document, DocumentFormat
from turnus.apps.tenants.models import Tenant
from turnus.core import clock
from turnus.core.audit import record
from turnus.core.errors import Conflict, NotFound
from turnus.core.ids import new_id
from turnus.core.scope import Actor, ActorKind, Scope

logger = logging.getLogger(__name__)

SENDER = Actor(ActorKind.SYSTEM, "delivery")
#: How long to wait after the 1st, 2nd, ... failed attempt; the attempt after the last wait is the last.
BACKOFF = (
    timedelta(minutes=1),
    timedelta(minutes=5),
    timedelta(minutes=30),
    timedelta(hours=2),
    timedelta(hours=12),
)
MAX_ATTEMPTS = len(BACKOFF) + 1
#: An attempt in progress holds its delivery this long; a worker that died mid-send is retried after it.
LEASE = timedelta(minutes=10)
#: The catch-up sends the automatic e-mail of invoices whose PDF was stored this recently and have none
#: (a lost queue entry); older invoices (e.g. from before delivery was configured) are never e-mailed by it.
CATCH_UP_WINDOW = timedelta(days=1)
MAX_ERROR_LENGTH = 2000
NO_ADDRESS = "the customer has no e-mail address"
#: The PDF attached, best first; the XRechnung XML is attached besides where one is rendered.
PDF_FORMATS = services.PDF_FORMATS


def snapshot(delivery: Delivery) -> dict[str, Any]:
    return {
        "id": delivery.public_id,
        "invoice": delivery.invoice.public_id,
        "kind": delivery.kind,
        "status": delivery.status,
        "recipient": delivery.recipient,
        "attempts": delivery.attempts,
        "last_error": delivery.last_error,
        "message_id": delivery.message_id,
    }


def recipient_of(invoice: Invoice) -> str:
    """The address the invoice went to (its recipient copy), else the customer's current one."""
    copied = str((invoice.recipient or {}).get("email") or "").strip()
    return copied or invoice.customer.email.strip()


def _sender_address(tenant: Tenant) -> str:
    configured: str = getattr(settings, "TURNUS_EMAIL_FROM", "")
    return configured or tenant.email or settings.DEFAULT_FROM_EMAIL


def _create(scope: Scope, invoice: Invoice, kind: DeliveryKind, recipient: str) -> Delivery:
    now = clock.now()
    tenant = Tenant.objects.get(pk=invoice.tenant_id)
    domain = _sender_address(tenant).rpartition("@")[2] or "localhost"
    delivery = Delivery.objects.create(
        public_id=new_id("dlv", at=now),
        tenant_id=invoice.tenant_id,
        livemode=invoice.livemode,
        created_at=now,
        invoice=invoice,
        kind=kind,
        status=DeliveryStatus.PENDING if recipient else DeliveryStatus.SKIPPED,
        recipient=recipient,
        last_error="" if recipient else NO_ADDRESS,
        next_attempt_at=now if recipient else None,
        message_id=make_msgid(domain=domain),
    )
    record(scope, "delivery.created", "delivery", delivery.public_id, after=snapshot(delivery))
    return delivery


def _pdf_document(invoice: Invoice) -> Document | None:
    found = {d.format: d for d in Document.objects.filter(invoice=invoice, format__in=PDF_FORMATS)}
    return next((found[wanted] for wanted in PDF_FORMATS if wanted in found), None)


def schedule_automatic(invoice_id: str) -> Delivery | None:
    """The automatic delivery of the issued invoice or credit note ``invoice_id`` (public id), made now
    unless it exists; ``None`` while it is a draft or void, or its PDF is not rendered yet."""
    invoice = Invoice.objects.select_related("customer").filter(public_id=invoice_id).first()
    if invoice is None or invoice.number is None or invoice.status == InvoiceStatus.VOID:
        return None
    existing = Delivery.objects.filter(invoice=invoice, kind=DeliveryKind.AUTO).first()
    if existing is not None:
        return existing
    if _pdf_document(invoice) is None:
        return None
    scope = Scope(invoice.tenant_id, invoice.livemode, SENDER)
    try:
        with transaction.atomic():
            return _create(scope, invoice, DeliveryKind.AUTO, recipient_of(invoice))
    except IntegrityError:
        return Delivery.objects.get(invoice=invoice, kind=DeliveryKind.AUTO)


def resend(scope: Scope, invoice_id: str, kind: str = DocumentKind.INVOICE, to: str = "") -> Delivery:
    """A new delivery of the issued invoice or credit note ``invoice_id`` to ``to`` (default: its
    customer), due now; the caller queues the attempt (``tasks.send_delivery``) once this commits."""
    with transaction.atomic():
        invoice = billing.get_invoice(scope, invoice_id, kind=kind)
        noun = "credit note" if kind == DocumentKind.CREDIT_NOTE else "invoice"
        if invoice.status in (InvoiceStatus.DRAFT, InvoiceStatus.VOID) or invoice.number is None:
            raise Conflict(f"{noun} {invoice_id} is {invoice.status}; only issued ones are sent", field="id")
        if _pdf_document(invoice) is None:
            raise Conflict(f"the documents of {noun} {invoice_id} are not rendered yet; try again shortly")
        recipient = to.strip() or recipient_of(invoice)
        if not recipient:
            raise Conflict(f"{noun} {invoice_id} cannot be sent: {NO_ADDRESS}", field="id")
        return _create(scope, invoice, DeliveryKind.MANUAL, recipient)


def deliveries_of(scope: Scope, invoice_id: str, kind: str = DocumentKind.INVOICE) -> list[Delivery]:
    invoice = billing.get_invoice(scope, invoice_id, kind=kind)
    found = list(Delivery.objects.filter(invoice=invoice).order_by("-public_id"))
    for delivery in found:
        delivery.invoice = invoice
    return found


def get_delivery(scope: Scope, public_id: str) -> Delivery:
    found = (
        Delivery.objects.select_related("invoice")
        .filter(tenant_id=scope.tenant_id, livemode=scope.livemode, public_id=public_id)
        .first()
    )
    if found is None:
        raise NotFound(f"no delivery {public_id}", field="id")
    return found


# --- the message -------------------------------------------------------------------------------------


def _money(amount: Decimal, currency: str, locale: str) -> str:
    return str(format_currency(Decimal(amount), currency, locale=locale))


def _context(invoice: Invoice, attachments: list[tuple[str, bytes, str]]) -> dict[str, Any]:
    locale = pdf.BABEL_LOCALES[pdf.language_of(invoice)]
    supplier = invoice.supplier or {}
    recipient = invoice.recipient or {}
    city = " ".join(part for part in (supplier.get("postal_code"), supplier.get("city")) if part)
    address = [line for line in (supplier.get("address_line1"), supplier.get("address_line2"), city) if line]
    xml = next((name for name, _, media_type in attachments if media_type == "application/xml"), "")
    return {
        "number": invoice.number,
        "credit_note": invoice.kind == DocumentKind.CREDIT_NOTE,
        "corrected": invoice.credit_note_for.number if invoice.credit_note_for is not None else "",
        "supplier": supplier.get("name", ""),
        "supplier_address": address,
        "supplier_email": supplier.get("email", ""),
        "recipient_name": recipient.get("name") or recipient.get("company") or "",
        "issue_date": format_date(invoice.issue_date, format="long", locale=locale)
        if invoice.issue_date
        else "",
        "due_date": format_date(invoice.due_date, format="long", locale=locale) if invoice.due_date else "",
        "total": _money(invoice.grand_total, invoice.currency, locale),
        "amount_due": _money(invoice.amount_due, invoice.currency, locale),
        "amount_due_positive": Decimal(invoice.amount_due) > 0,
        "facturx": Document.objects.filter(invoice=invoice, format=DocumentFormat.FACTURX_PDF).exists(),
        "xml": xml,
    }


def attachments_of(invoice: Invoice) -> list[tuple[str, bytes, str]]:
    """(file name, bytes, media type) of what the e-mail carries: the PDF and any XRechnung XML."""
    found: list[tuple[str, bytes, str]] = []
    page = _pdf_document(invoice)
    if page is not None:
        page.invoice = invoice
        found.append((services.download_name(page), services.content(page), page.media_type))
    xrechnung = Document.objects.filter(invoice=invoice, format=DocumentFormat.XRECHNUNG_XML).first()
    if xrechnung is not None:
        xrechnung.invoice = invoice
        found.append((services.download_name(xrechnung), services.content(xrechnung), xrechnung.media_type))
    return found


def message(delivery: Delivery, invoice: Invoice) -> EmailMultiAlternatives:
    """The e-mail of ``delivery``, in the invoice's language, with its documents attached."""
    tenant = invoice.tenant
    language = pdf.language_of(invoice)
    attachments = attachments_of(invoice)
    context = _context(invoice, attachments)
    subject = " ".join(render_to_string(f"documents/email/{language}/subject.txt", context).split())
    text = render_to_string(f"documents/email/{language}/body.txt", context)
    html = render_to_string(f"documents/email/{language}/body.html", context)
    sender = formataddr((str(context["supplier"] or tenant.legal_name), _sender_address(tenant)))
    email = EmailMultiAlternatives(
        subject=subject,
        body=text,
        from_email=sender,
        to=[delivery.recipient],
        reply_to=[tenant.email] if tenant.email else None,
        headers={"Message-ID": delivery.message_id, "Content-Language": language},
    )
    email.attach_alternative(html, "text/html")
    for name, data, media_type in attachments:
        email.attach(name, data, media_type)
    return email


# --- sending -----------------------------------------------------------------------------------------


def _claim(public_id: str, now: datetime) -> bool:
    """Take the pending, due delivery ``public_id`` for one attempt; False when it is not to be sent now
    (sent, failed, skipped, not due yet, or another worker holds it)."""
    claimed = Delivery.objects.filter(
        public_id=public_id, status=DeliveryStatus.PENDING, next_attempt_at__lte=now
    ).update(attempts=F("attempts") + 1, last_attempt_at=now, next_attempt_at=now + LEASE)
    return claimed == 1


def _finish(delivery: Delivery, action: str, **changes: Any) -> Delivery:
    before = snapshot(delivery)
    for name, value in changes.items():
        setattr(delivery, name, value)
    with transaction.atomic():
        delivery.save(update_fields=[*changes])
        scope = Scope(delivery.tenant_id, delivery.livemode, SENDER)
        record(scope, action, "delivery", delivery.public_id, before=before, after=snapshot(delivery))
    return delivery


def _reply(code: int, text: bytes | str) -> str:
    """An SMTP reply as the server wrote it, on one line: ``550 5.1.1 User unknown``."""
    decoded = text.decode("utf-8", "replace") if isinstance(text, bytes) else str(text)
    return " ".join([str(code), *decoded.split()])


def _is_permanent(code: int) -> bool:
    return 500 <= code <= 599


def permanent_refusal(error: Exception) -> str | None:
    """The server's reply, and what it refused, when it refused the message for good (a 5xx reply to every
    recipient or to the message itself); ``None`` for anything worth retrying."""
    if isinstance(error, smtplib.SMTPRecipientsRefused):
        replies = list(error.recipients.items())
        if not replies or not all(_is_permanent(code) for _, (code, _text) in replies):
            return None
        return "; ".join(
            f"{_reply(code, text)} (the mail server refused the recipient {address} permanently)"
            for address, (code, text) in replies
        )
    if isinstance(error, smtplib.SMTPDataError) and _is_permanent(error.smtp_code):
        return (
            f"{_reply(error.smtp_code, error.smtp_error)} (the mail server refused the message permanently)"
        )
    return None


def send(public_id: str) -> Delivery:
    """One attempt at the delivery ``public_id`` if it is pending and due; the delivery as it is after."""
    now = clock.now()
    if not _claim(public_id, now):
        return Delivery.objects.select_related("invoice").get(public_id=public_id)
    delivery = Delivery.objects.get(public_id=public_id)
    invoice = pdf.load(delivery.invoice.public_id)
    delivery.invoice = invoice
    if invoice.status == InvoiceStatus.VOID and delivery.kind == DeliveryKind.AUTO:
        return _finish(
            delivery, "delivery.skipped", status=DeliveryStatus.SKIPPED, next_attempt_at=None,
            last_error="the invoice was voided before it was sent",
        )  # fmt: skip
    try:
        email = message(delivery, invoice)
        email.send(fail_silently=False)
    except Exception as error:
        refusal = permanent_refusal(error)
        reason = (refusal or f"{type(error).__name__}: {error}")[:MAX_ERROR_LENGTH]
        logger.warning("could not e-mail %s to %s: %s", invoice, delivery.recipient, reason)
        if refusal is not None or delivery.attempts >= MAX_ATTEMPTS:
            return _finish(
                delivery, "delivery.failed", status=DeliveryStatus.FAILED, last_error=reason,
                next_attempt_at=None,
            )  # fmt: skip
        wait = BACKOFF[delivery.attempts - 1]
        return _finish(delivery, "delivery.retrying", last_error=reason, next_attempt_at=now + wait)
    return _finish(
        delivery, "delivery.sent", status=DeliveryStatus.SENT, sent_at=now, next_attempt_at=None,
        last_error="",
    )  # fmt: skip


def due_deliveries(*, limit: int) -> list[str]:
    """Pending deliveries whose next attempt is due (including ones whose worker died), oldest first."""
    found = (
        Delivery.objects.filter(status=DeliveryStatus.PENDING, next_attempt_at__lte=clock.now())
        .order_by("next_attempt_at", "pk")
        .values_list("public_id", flat=True)[:limit]
    )
    return list(found)


def undelivered_invoices(*, limit: int) -> list[str]:
    """Issued invoices whose PDF was stored within ``CATCH_UP_WINDOW`` and that have no automatic delivery."""
    since = clock.now() - CATCH_UP_WINDOW
    found = (
        Invoice.objects.filter(
            number__isnull=False,
            documents__format__in=PDF_FORMATS,
            documents__created_at__gte=since,
        )
        .exclude(status=InvoiceStatus.VOID)
        .exclude(Q(deliveries__kind=DeliveryKind.AUTO))
        .order_by("pk")
        .values_list("public_id", flat=True)
        .distinct()[:limit]
    )
    return list(found)


def deliver_invoice(invoice_id: str) -> Delivery | None:
    """Make the automatic delivery of ``invoice_id`` if it has none, and send it if it is due."""
    delivery = schedule_automatic(invoice_id)
    if delivery is None or delivery.status != DeliveryStatus.PENDING:
        return delivery
    return send(delivery.public_id)


@checks.register(checks.Tags.compatibility, deploy=True)
def check_mail_is_sent(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """``turnus check --deploy``: warn when invoice e-mails would only be written to files."""
    if settings.EMAIL_BACKEND != "django.core.mail.backends.filebased.EmailBackend":
        return []
    return [
        checks.Warning(
            f"invoice e-mails are written to files in {getattr(settings, 'EMAIL_FILE_PATH', '')}, not sent",
            hint="set TURNUS_EMAIL_URL (e.g. smtp://user:password@host:587?tls=1) or TURNUS_SMTP_HOST",
            id="turnus.W010",
        )
    ]
