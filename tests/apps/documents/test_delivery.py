"""Issued invoices and credit notes are e-mailed to their customers through a real SMTP server (aiosmtpd,
started here): once, in the customer's language, with the stored PDF (and XRechnung XML) attached;
temporary failures are retried with back-off by the periodic job, a permanent refusal (5xx) fails the
delivery at once with the server's reason, and the API and the admin resend."""

from __future__ import annotations

import email
import socket
from datetime import timedelta
from email.message import EmailMessage
from email.policy import default as default_policy

import pytest
from aiosmtpd.controller import Controller
from django.contrib.auth import get_user_model
from django.test import Client

from tests.apps.billing.support import subscribe
from tests.apps.documents.support import DOMESTIC_BUSINESS, FRENCH_CONSUMER, START, issued_invoice
from tests.support import ApiClient
from turnus.apps.billing import services as billing
from turnus.apps.customers.models import Customer
from turnus.apps.documents import delivery, services, tasks
from turnus.apps.documents.models import Delivery, DeliveryStatus, Document, DocumentFormat
from turnus.core.models import AuditEvent

pytestmark = pytest.mark.django_db

TENANT_EMAIL = "rechnung@beispiel-shop.de"


TEMPORARY_REFUSAL = "451 4.3.0 Mailbox temporarily unavailable"
UNKNOWN_USER = "550 5.1.1 <erika@example.com>: Recipient address rejected: User unknown"
GREYLISTED = "451 4.7.1 <erika@example.com>: Recipient address rejected: Greylisted, try again later"
SPAM = "554 5.7.1 Message rejected as spam"


class Mailbox:
    """An aiosmtpd handler that keeps what it accepts; while ``refusing`` (or ``refused_sender``) holds a
    reply it answers every message (or sender) with it, and it answers a recipient listed in
    ``refused_recipients`` with that one's reply."""

    def __init__(self) -> None:
        self.messages: list[tuple[list[str], EmailMessage]] = []
        self.refusing = ""
        self.refused_recipients: dict[str, str] = {}
        self.refused_sender = ""

    async def handle_MAIL(self, server, session, envelope, address, mail_options) -> str:
        if self.refused_sender:
            return self.refused_sender
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options) -> str:
        if address in self.refused_recipients:
            return self.refused_recipients[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope) -> str:
        if self.refusing:
            return self.refusing
        parsed = email.message_from_bytes(envelope.content, policy=default_policy)
        self.messages.append((list(envelope.rcpt_tos), parsed))
        return "250 Message accepted for delivery"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def smtp(settings):
    mailbox = Mailbox()
    controller = Controller(mailbox, hostname="127.0.0.1", port=_free_port())
    controller.start()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", controller.port
    settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False
    settings.EMAIL_HOST_USER = settings.EMAIL_HOST_PASSWORD = ""
    settings.EMAIL_TIMEOUT = 5
    settings.TURNUS_EMAIL_FROM = ""
    mailbox.controller = controller  # type: ignore[attr-defined]
    try:
        yield mailbox
    finally:
        if controller.loop.is_running():
            controller.stop()


@pytest.fixture
def tenant(make_tenant):
    return make_tenant(email=TENANT_EMAIL)


def _finalized(scope, capture, customer=DOMESTIC_BUSINESS):
    """A draft finalized with its commit's jobs run: documents rendered, then the e-mail sent."""
    billed = subscribe(scope, customer=customer)
    draft = billing.create_draft(scope, billed.subscription).invoice
    with capture(execute=True):
        invoice = billing.finalize(scope, draft.public_id)
    return invoice


def _attachments(message: EmailMessage) -> dict[str, bytes]:
    return {part.get_filename(): part.get_content() for part in message.iter_attachments()}


def _stored(invoice, kind: DocumentFormat) -> bytes:
    return services.content(Document.objects.get(invoice=invoice, format=kind))


def test_a_finalized_invoice_is_e_mailed_once_in_german_with_its_zugferd_pdf(
    scope, tenant, clock, smtp, django_capture_on_commit_callbacks
):
    invoice = _finalized(scope, django_capture_on_commit_callbacks)
    assert len(smtp.messages) == 1
    recipients, message = smtp.messages[0]
    assert recipients == ["erika@example.com"]
    assert message["Subject"] == f"Rechnung {invoice.number} von {tenant.legal_name}"
    assert message["To"] == "erika@example.com"
    assert message["Reply-To"] == TENANT_EMAIL
    assert message["From"].addresses[0].addr_spec == TENANT_EMAIL
    assert message["From"].addresses[0].display_name == tenant.legal_name
    text = message.get_body(("plain",)).get_content()
    html = message.get_body(("html",)).get_content()
    assert f"anbei erhalten Sie unsere Rechnung {invoice.number}" in text
    assert "119,00" in text, "amounts are written the German way"
    assert f"<strong>{invoice.number}</strong>" in html
    assert _attachments(message) == {f"{invoice.number}.pdf": _stored(invoice, DocumentFormat.FACTURX_PDF)}
    sent = Delivery.objects.get(invoice=invoice)
    assert (sent.kind, sent.status, sent.attempts, sent.recipient) == ("auto", "sent", 1, "erika@example.com")
    assert (sent.sent_at, sent.next_attempt_at, sent.last_error) == (START, None, "")
    assert message["Message-ID"] == sent.message_id


def test_an_english_customer_gets_it_in_english(
    scope, tenant, clock, smtp, django_capture_on_commit_callbacks
):
    invoice = _finalized(scope, django_capture_on_commit_callbacks, customer=FRENCH_CONSUMER)
    (_, message), *others = smtp.messages
    assert not others
    assert message["Subject"] == f"Invoice {invoice.number} from {tenant.legal_name}"
    assert f"please find attached our invoice {invoice.number}" in message.get_body(("plain",)).get_content()
    assert message["Content-Language"] == "en"


def test_a_credit_note_is_e_mailed_too(scope, tenant, clock, smtp, django_capture_on_commit_callbacks):
    invoice = _finalized(scope, django_capture_on_commit_callbacks)
    with django_capture_on_commit_callbacks(execute=True):
        note = billing.create_credit_note(scope, invoice.public_id)
    assert len(smtp.messages) == 2
    message = smtp.messages[1][1]
    assert message["Subject"] == f"Rechnungskorrektur {note.number} von {tenant.legal_name}"
    assert f"zur Rechnung {invoice.number}" in message.get_body(("plain",)).get_content()
    assert _attachments(message) == {f"{note.number}.pdf": _stored(note, DocumentFormat.FACTURX_PDF)}


def test_the_xrechnung_xml_is_attached_where_one_is_stored(scope, clock, smtp):
    invoice = issued_invoice(scope, customer=DOMESTIC_BUSINESS)  # its jobs have not run
    services.render_documents(invoice.public_id)
    if not Document.objects.filter(invoice=invoice, format=DocumentFormat.XRECHNUNG_XML).exists():
        xml = _stored(invoice, DocumentFormat.CII_XML)
        services._store(invoice, DocumentFormat.XRECHNUNG_XML, xml)
    assert tasks.deliver_invoice(invoice.public_id).get() == "sent"
    (_, message), *others = smtp.messages
    assert not others
    assert _attachments(message) == {
        f"{invoice.number}.pdf": _stored(invoice, DocumentFormat.FACTURX_PDF),
        f"{invoice.number}.xml": _stored(invoice, DocumentFormat.XRECHNUNG_XML),
    }
    xml_part = next(part for part in message.iter_attachments() if part.get_filename().endswith(".xml"))
    assert xml_part.get_content_type() == "application/xml"


def test_without_a_documents_pdf_nothing_is_sent_until_it_is_rendered(scope, clock, smtp):
    invoice = issued_invoice(scope)
    assert tasks.deliver_invoice(invoice.public_id).get() is None
    assert not Delivery.objects.exists()
    tasks.render_invoice(invoice.public_id)  # renders, then queues the e-mail (run at once in tests)
    assert len(smtp.messages) == 1


def test_the_delivery_jobs_run_twice_send_once(scope, clock, smtp, django_capture_on_commit_callbacks):
    invoice = _finalized(scope, django_capture_on_commit_callbacks)
    tasks.deliver_invoice(invoice.public_id)
    tasks.render_invoice(invoice.public_id)
    clock.advance(timedelta(days=1))
    assert tasks.send_due_deliveries() == 0
    assert len(smtp.messages) == 1
    assert Delivery.objects.filter(invoice=invoice).count() == 1


def test_a_delivery_another_worker_holds_is_not_sent_again(scope, clock, smtp):
    invoice = issued_invoice(scope)
    services.render_documents(invoice.public_id)
    pending = delivery.schedule_automatic(invoice.public_id)
    assert pending is not None
    assert pending.status == "pending"
    assert delivery._claim(pending.public_id, clock.now())  # a worker took it and is sending
    assert delivery.send(pending.public_id).status == "pending"
    assert tasks.send_due_deliveries() == 0
    assert smtp.messages == []
    clock.advance(delivery.LEASE)  # that worker died: the next run sends it
    assert tasks.send_due_deliveries() == 1
    assert len(smtp.messages) == 1
    assert Delivery.objects.get(pk=pending.pk).attempts == 2


def test_a_refused_message_is_retried_with_back_off_by_the_periodic_job(
    scope, clock, smtp, django_capture_on_commit_callbacks
):
    smtp.refusing = TEMPORARY_REFUSAL
    invoice = _finalized(scope, django_capture_on_commit_callbacks)
    failed = Delivery.objects.get(invoice=invoice)
    assert (failed.status, failed.attempts) == ("pending", 1)
    assert "451" in failed.last_error
    assert failed.next_attempt_at == START + timedelta(minutes=1)
    smtp.refusing = ""
    clock.advance(timedelta(seconds=59))
    assert tasks.send_due_deliveries() == 0, "not due yet"
    assert smtp.messages == []
    clock.advance(timedelta(seconds=1))
    assert tasks.send_due_deliveries() == 1
    sent = Delivery.objects.get(pk=failed.pk)
    assert (sent.status, sent.attempts, sent.last_error, sent.sent_at) == ("sent", 2, "", clock.now())
    (_, message), *others = smtp.messages
    assert not others
    assert message["Message-ID"] == sent.message_id


def test_a_server_that_is_down_fails_the_delivery_after_the_last_retry(
    scope, clock, smtp, django_capture_on_commit_callbacks
):
    smtp.controller.stop()
    invoice = _finalized(scope, django_capture_on_commit_callbacks)
    found = Delivery.objects.get(invoice=invoice)
    assert _retried_until_failed(found, clock) == list(delivery.BACKOFF)
    assert (found.status, found.attempts, found.next_attempt_at) == ("failed", 6, None)
    assert "Connection refused" in found.last_error or "Errno" in found.last_error
    clock.advance(timedelta(days=2))
    assert tasks.send_due_deliveries() == 0


def _retried_until_failed(found: Delivery, clock) -> list[timedelta]:
    """Run the periodic job at every retry of ``found`` until it is no longer pending; the waits."""
    waits = []
    while found.status == DeliveryStatus.PENDING:
        assert found.next_attempt_at is not None
        waits.append(found.next_attempt_at - clock.now())
        clock.set(found.next_attempt_at)
        tasks.send_due_deliveries()
        found.refresh_from_db()
    return waits


def test_a_recipient_refused_for_good_fails_the_delivery_at_once_with_the_servers_reason(
    api, scope, clock, smtp, django_capture_on_commit_callbacks
):
    smtp.refused_recipients["erika@example.com"] = UNKNOWN_USER
    invoice = _finalized(scope, django_capture_on_commit_callbacks)
    failed = Delivery.objects.get(invoice=invoice)
    assert (failed.status, failed.attempts, failed.next_attempt_at) == ("failed", 1, None)
    assert failed.last_error == (
        f"{UNKNOWN_USER} (the mail server refused the recipient erika@example.com permanently)"
    )
    assert smtp.messages == []
    event = AuditEvent.objects.filter(object_id=failed.public_id).latest("pk")
    assert (event.action, event.after["status"]) == ("delivery.failed", "failed")
    listed = api.get(f"/v1/invoices/{invoice.public_id}/deliveries").json()
    assert [(d["status"], d["last_error"], d["next_attempt_at"]) for d in listed] == [
        ("failed", failed.last_error, None)
    ]
    clock.advance(timedelta(days=2))
    assert tasks.send_due_deliveries() == 0, "a permanent refusal is not retried"
    assert Delivery.objects.get(pk=failed.pk).attempts == 1


def test_a_message_refused_for_good_fails_at_once_too(scope, clock, smtp, django_capture_on_commit_callbacks):
    smtp.refusing = SPAM
    invoice = _finalized(scope, django_capture_on_commit_callbacks)
    failed = Delivery.objects.get(invoice=invoice)
    assert (failed.status, failed.attempts, failed.next_attempt_at) == ("failed", 1, None)
    assert failed.last_error == f"{SPAM} (the mail server refused the message permanently)"


def test_a_recipient_refused_for_now_is_retried_on_the_usual_schedule(
    scope, clock, smtp, django_capture_on_commit_callbacks
):
    smtp.refused_recipients["erika@example.com"] = GREYLISTED
    invoice = _finalized(scope, django_capture_on_commit_callbacks)
    found = Delivery.objects.get(invoice=invoice)
    assert (found.status, found.attempts, found.next_attempt_at) == (
        "pending",
        1,
        START + delivery.BACKOFF[0],
    )
    assert "451" in found.last_error
    assert _retried_until_failed(found, clock) == list(delivery.BACKOFF)
    assert (found.status, found.attempts) == ("failed", delivery.MAX_ATTEMPTS)
    assert "Greylisted" in found.last_error


def test_a_sender_refused_for_good_is_a_setup_fault_and_is_retried(
    scope, clock, smtp, django_capture_on_commit_callbacks
):
    smtp.refused_sender = "553 5.7.1 Sender address rejected: not owned by user"
    invoice = _finalized(scope, django_capture_on_commit_callbacks)
    found = Delivery.objects.get(invoice=invoice)
    assert (found.status, found.next_attempt_at) == ("pending", START + delivery.BACKOFF[0])
    assert "553" in found.last_error
    smtp.refused_sender = ""
    clock.advance(delivery.BACKOFF[0])
    assert tasks.send_due_deliveries() == 1
    assert Delivery.objects.get(pk=found.pk).status == "sent"


def test_a_temporary_refusal_that_clears_is_sent_at_the_next_retry(
    scope, clock, smtp, django_capture_on_commit_callbacks
):
    smtp.refused_recipients["erika@example.com"] = GREYLISTED
    invoice = _finalized(scope, django_capture_on_commit_callbacks)
    smtp.refused_recipients.clear()
    clock.advance(delivery.BACKOFF[0])
    assert tasks.send_due_deliveries() == 1
    sent = Delivery.objects.get(invoice=invoice)
    assert (sent.status, sent.attempts, sent.last_error) == ("sent", 2, "")
    assert [recipients for recipients, _ in smtp.messages] == [["erika@example.com"]]


def test_the_admin_shows_the_reason_of_a_permanent_refusal(
    scope, clock, smtp, django_capture_on_commit_callbacks
):
    smtp.refused_recipients["erika@example.com"] = UNKNOWN_USER
    _finalized(scope, django_capture_on_commit_callbacks)
    admin = Client()
    admin.force_login(get_user_model().objects.create_superuser("root", "root@example.com", "pw"))
    page = admin.get("/admin/documents/delivery/").content.decode()
    assert "550 5.1.1 &lt;erika@example.com&gt;: Recipient address rejected: User unknown" in page


def test_a_customer_without_an_e_mail_address_is_skipped_with_the_reason(scope, clock, smtp):
    billed = subscribe(scope)
    Customer.objects.filter(public_id=billed.customer).update(email="")
    draft = billing.create_draft(scope, billed.subscription).invoice
    invoice = billing.finalize(scope, draft.public_id)
    tasks.render_invoice(invoice.public_id)
    skipped = Delivery.objects.get(invoice=invoice)
    assert (skipped.status, skipped.last_error, skipped.attempts) == ("skipped", delivery.NO_ADDRESS, 0)
    assert tasks.send_due_deliveries() == 0
    assert smtp.messages == []
    response = ApiClient(scope_tenant(scope)).post(f"/v1/invoices/{invoice.public_id}/send")
    assert response.status_code == 409
    assert "no e-mail address" in response.json()["detail"]


def scope_tenant(scope):
    from turnus.apps.tenants.models import Tenant

    return Tenant.objects.get(pk=scope.tenant_id)


def test_the_catch_up_sends_recent_invoices_that_were_never_queued_but_not_old_ones(scope, clock, smtp):
    old = issued_invoice(scope)
    services.render_documents(old.public_id)
    clock.advance(delivery.CATCH_UP_WINDOW + timedelta(minutes=1))
    recent = issued_invoice(scope, code="later")
    services.render_documents(recent.public_id)
    assert tasks.send_due_deliveries() == 1
    assert [d.invoice_id for d in Delivery.objects.all()] == [recent.pk]
    assert len(smtp.messages) == 1


# --- the API ----------------------------------------------------------------------------------------


@pytest.fixture
def api(tenant):
    return ApiClient(tenant)


def test_sending_again_through_the_api_e_mails_it_now(
    api, scope, clock, smtp, django_capture_on_commit_callbacks
):
    invoice = _finalized(scope, django_capture_on_commit_callbacks)
    with django_capture_on_commit_callbacks(execute=True):
        response = api.post(f"/v1/invoices/{invoice.public_id}/send")
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["object"] == "delivery"
    assert (body["invoice"], body["kind"], body["recipient"]) == (
        invoice.public_id,
        "manual",
        "erika@example.com",
    )
    assert body["id"].startswith("dlv_")
    assert len(smtp.messages) == 2
    listed = api.get(f"/v1/invoices/{invoice.public_id}/deliveries").json()
    assert [(d["kind"], d["status"]) for d in listed] == [("manual", "sent"), ("auto", "sent")]
    assert listed[0]["id"] == body["id"]


def test_sending_to_another_address(api, scope, clock, smtp, django_capture_on_commit_callbacks):
    invoice = _finalized(scope, django_capture_on_commit_callbacks)
    with django_capture_on_commit_callbacks(execute=True):
        response = api.post(f"/v1/invoices/{invoice.public_id}/send", {"to": "buchhaltung@example.com"})
    assert response.status_code == 201, response.content
    assert smtp.messages[-1][0] == ["buchhaltung@example.com"]


def test_sending_refuses_an_invalid_address_and_writes_nothing(api, scope, clock, smtp):
    invoice = issued_invoice(scope)
    services.render_documents(invoice.public_id)
    for body in ({"to": "not an address"}, {"to": "x@"}, {"cc": "a@example.com"}):
        response = api.post(f"/v1/invoices/{invoice.public_id}/send", body)
        assert response.status_code == 422, (body, response.content)
        assert response.json()["errors"][0]["field"] in {"to", "cc"}
    assert not Delivery.objects.exists()


def test_sending_a_credit_note_again(api, scope, clock, smtp, django_capture_on_commit_callbacks):
    invoice = _finalized(scope, django_capture_on_commit_callbacks)
    with django_capture_on_commit_callbacks(execute=True):
        note = billing.create_credit_note(scope, invoice.public_id)
    with django_capture_on_commit_callbacks(execute=True):
        response = api.post(f"/v1/credit_notes/{note.public_id}/send")
    assert response.status_code == 201, response.content
    assert smtp.messages[-1][1]["Subject"].startswith(f"Rechnungskorrektur {note.number}")
    assert api.post(f"/v1/invoices/{note.public_id}/send").status_code == 404, "a credit note is no invoice"
    assert len(api.get(f"/v1/credit_notes/{note.public_id}/deliveries").json()) == 2


def test_sending_replays_an_idempotency_key(api, scope, clock, smtp, django_capture_on_commit_callbacks):
    invoice = _finalized(scope, django_capture_on_commit_callbacks)
    headers = {"Idempotency-Key": "send-1"}
    path = f"/v1/invoices/{invoice.public_id}/send"
    with django_capture_on_commit_callbacks(execute=True):
        first = api.post(path, headers=headers)
        again = api.post(path, headers=headers)
    assert first.status_code == again.status_code == 201
    assert again["Idempotent-Replayed"] == "true"
    assert again.json() == first.json()
    assert Delivery.objects.filter(invoice=invoice, kind="manual").count() == 1
    assert len(smtp.messages) == 2


def test_sending_a_draft_a_void_or_an_unrendered_invoice_is_a_conflict(api, scope, clock, smtp):
    billed = subscribe(scope)
    draft = billing.create_draft(scope, billed.subscription).invoice
    unrendered = issued_invoice(scope, code="unrendered")
    voided = issued_invoice(scope, code="voided")
    services.render_documents(voided.public_id)
    billing.void(scope, voided.public_id)
    for invoice, says in ((draft, "draft"), (unrendered, "not rendered"), (voided, "void")):
        response = api.post(f"/v1/invoices/{invoice.public_id}/send")
        assert response.status_code == 409, (says, response.content)
        assert says in response.json()["detail"]
    assert not Delivery.objects.exists()
    assert smtp.messages == []


def test_sending_an_unknown_or_anothers_invoice_is_a_404_and_writes_nothing(
    api, scope, clock, smtp, make_tenant
):
    invoice = issued_invoice(scope)
    services.render_documents(invoice.public_id)
    strangers = (ApiClient(make_tenant()), ApiClient(api.tenant, livemode=True))
    assert api.post("/v1/invoices/inv_0000000000000000000000000/send").status_code == 404
    for stranger in strangers:
        assert stranger.post(f"/v1/invoices/{invoice.public_id}/send").status_code == 404
        assert stranger.get(f"/v1/invoices/{invoice.public_id}/deliveries").status_code == 404
    assert not Delivery.objects.exists()
    assert smtp.messages == []


# --- the admin --------------------------------------------------------------------------------------


def test_the_admin_lists_deliveries_with_their_error_and_resends_them(
    scope, tenant, clock, smtp, django_capture_on_commit_callbacks
):
    smtp.refusing = TEMPORARY_REFUSAL
    invoice = _finalized(scope, django_capture_on_commit_callbacks)
    smtp.refusing = ""
    admin = Client()
    admin.force_login(get_user_model().objects.create_superuser("root", "root@example.com", "pw"))
    page = admin.get("/admin/documents/delivery/")
    assert page.status_code == 200
    assert "Mailbox temporarily unavailable" in page.content.decode()
    failed = Delivery.objects.get(invoice=invoice)
    opened = admin.get(f"/admin/documents/delivery/{failed.pk}/change/")
    assert opened.status_code == 200
    with django_capture_on_commit_callbacks(execute=True):
        done = admin.post(
            "/admin/documents/delivery/", {"action": "resend", "_selected_action": [failed.pk]}, follow=True
        )
    assert done.status_code == 200
    assert len(smtp.messages) == 1
    assert Delivery.objects.filter(invoice=invoice, kind="manual", status="sent").count() == 1


# --- configuration ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("environment", "expected"),
    [
        ({}, {"EMAIL_BACKEND": "django.core.mail.backends.filebased.EmailBackend"}),
        (
            {"TURNUS_EMAIL_URL": "smtp://user%40shop:p%2Fw@mail.example.com:587?tls=1"},
            {
                "EMAIL_HOST": "mail.example.com",
                "EMAIL_PORT": 587,
                "EMAIL_HOST_USER": "user@shop",
                "EMAIL_HOST_PASSWORD": "p/w",
                "EMAIL_USE_TLS": True,
                "EMAIL_USE_SSL": False,
            },
        ),
        ({"TURNUS_EMAIL_URL": "smtps://mail.example.com"}, {"EMAIL_PORT": 465, "EMAIL_USE_SSL": True}),
        (
            {"TURNUS_EMAIL_URL": "console://"},
            {"EMAIL_BACKEND": "django.core.mail.backends.console.EmailBackend"},
        ),
        (
            {"TURNUS_SMTP_HOST": "mail.example.com", "TURNUS_SMTP_PORT": "587", "TURNUS_SMTP_USER": "u"},
            {"EMAIL_PORT": 587, "EMAIL_USE_TLS": True, "EMAIL_USE_SSL": False, "EMAIL_HOST_USER": "u"},
        ),
        ({"TURNUS_SMTP_HOST": "relay", "TURNUS_SMTP_TLS": "0"}, {"EMAIL_PORT": 25, "EMAIL_USE_TLS": False}),
    ],
)
def test_e_mail_is_configured_from_the_environment(monkeypatch, environment, expected):
    from turnus.project import settings as project_settings

    for name in ("TURNUS_EMAIL_URL", "TURNUS_SMTP_HOST", "TURNUS_SMTP_PORT", "TURNUS_SMTP_TLS"):
        monkeypatch.delenv(name, raising=False)
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    configured = project_settings._email_settings()
    assert {name: configured[name] for name in expected} == expected


def test_the_deployment_check_warns_when_e_mail_only_goes_to_files(settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.filebased.EmailBackend"
    assert [warning.id for warning in delivery.check_mail_is_sent()] == ["turnus.W010"]
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    assert delivery.check_mail_is_sent() == []
