import threading
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection, transaction
from django.db.utils import DatabaseError

from tests.apps.billing.support import APRIL, MARCH, scope_of, subscribe
from turnus.apps.billing import services
from turnus.apps.billing.models import ImmutableInvoice, Invoice, InvoiceLine
from turnus.core.clock import FrozenClock, use_clock
from turnus.core.errors import ValidationFailed

START = MARCH + timedelta(hours=9)


@pytest.fixture
def clock():
    frozen = FrozenClock(START)
    with use_clock(frozen):
        yield frozen


@pytest.fixture
def scope(tenant):
    return scope_of(tenant)


def _finalized(scope, **overrides):
    billed = subscribe(scope, **overrides)
    draft = services.create_draft(scope, billed.subscription).invoice
    return services.finalize(scope, draft.public_id)


@pytest.mark.django_db
def test_finalizing_numbers_invoices_without_gaps_in_the_tenants_format(scope, clock):
    numbers = [_finalized(scope, code=f"plan{index}").number for index in range(3)]
    assert numbers == ["RE-2026-000001", "RE-2026-000002", "RE-2026-000003"]


@pytest.mark.django_db
def test_finalizing_sets_the_issue_and_due_dates(scope, clock):
    invoice = _finalized(scope)
    assert (invoice.status, str(invoice.issue_date), str(invoice.due_date)) == (
        "finalized",
        "2026-03-01",
        "2026-03-15",
    )


@pytest.mark.django_db
def test_only_a_draft_can_be_finalized(scope, clock):
    invoice = _finalized(scope)
    with pytest.raises(services.InvoiceState):
        services.finalize(scope, invoice.public_id)


@pytest.mark.django_db
def test_a_finalized_invoice_moves_only_to_paid_or_void(scope, clock):
    invoice = _finalized(scope)
    paid = services.mark_paid(scope, invoice.public_id)
    assert (paid.status, paid.paid_at) == ("paid", START)
    with pytest.raises(services.InvoiceState):
        services.void(scope, invoice.public_id)


@pytest.mark.django_db
def test_a_finalized_invoice_and_its_lines_refuse_changes_in_the_model_layer(scope, clock):
    invoice = Invoice.objects.get(pk=_finalized(scope).pk)
    invoice.grand_total = Decimal(1)
    with pytest.raises(ImmutableInvoice):
        invoice.save()
    with pytest.raises(ImmutableInvoice):
        Invoice.objects.get(pk=invoice.pk).delete()
    line = InvoiceLine.objects.filter(invoice=invoice).first()
    line.description = "changed"
    with pytest.raises(ImmutableInvoice):
        line.save()
    with pytest.raises(ImmutableInvoice):
        line.delete()
    assert Invoice.objects.get(pk=invoice.pk).grand_total == Decimal(119)


@pytest.mark.django_db
def test_postgresql_refuses_updates_and_deletes_of_finalized_invoices_behind_the_orms_back(scope, clock):
    if connection.vendor != "postgresql":
        pytest.skip("the immutability trigger exists on PostgreSQL only")
    invoice = _finalized(scope)
    for change in (
        lambda: Invoice.objects.filter(pk=invoice.pk).update(grand_total=Decimal(1)),
        lambda: Invoice.objects.filter(pk=invoice.pk).update(status="draft"),
        lambda: Invoice.objects.filter(pk=invoice.pk)._raw_delete(connection.alias),
        lambda: InvoiceLine.objects.filter(invoice=invoice).update(description="changed"),
        lambda: InvoiceLine.objects.filter(invoice=invoice)._raw_delete(connection.alias),
    ):
        with pytest.raises(DatabaseError), transaction.atomic():
            change()
    Invoice.objects.filter(pk=invoice.pk).update(status="paid", paid_at=START)
    assert Invoice.objects.get(pk=invoice.pk).status == "paid"


@pytest.mark.django_db
def test_a_full_credit_note_negates_the_invoice_with_its_own_number_series(scope, clock):
    invoice = _finalized(scope)
    note = services.create_credit_note(scope, invoice.public_id, reason="cancelled order")
    assert (note.kind, note.status, note.number) == ("credit_note", "finalized", "GS-2026-000001")
    assert note.credit_note_for == invoice
    assert (note.tax_exclusive, note.tax_total, note.grand_total) == (
        Decimal(-100),
        Decimal(-19),
        Decimal(-119),
    )
    assert _finalized(scope, code="next").number == "RE-2026-000002"


@pytest.mark.django_db
def test_partial_credit_notes_never_credit_more_than_is_left(scope, clock):
    invoice = _finalized(scope)
    first = services.create_credit_note(scope, invoice.public_id, [services.CreditLine(1, Decimal(60))])
    assert (first.tax_exclusive, first.tax_total) == (Decimal(-60), Decimal("-11.40"))
    with pytest.raises(ValidationFailed):
        services.create_credit_note(scope, invoice.public_id, [services.CreditLine(1, Decimal(41))])
    with pytest.raises(services.InvoiceState):
        services.create_credit_note(scope, invoice.public_id)
    rest = services.create_credit_note(scope, invoice.public_id, [services.CreditLine(1, Decimal(40))])
    assert rest.number == "GS-2026-000002"


@pytest.mark.django_db
def test_a_draft_cannot_be_credited(scope, clock):
    billed = subscribe(scope)
    draft = services.create_draft(scope, billed.subscription).invoice
    with pytest.raises(services.InvoiceState):
        services.create_credit_note(scope, draft.public_id)


@pytest.mark.django_db(transaction=True)
def test_concurrent_finalization_gives_distinct_consecutive_numbers(tenant):
    if connection.vendor != "postgresql":
        pytest.skip("SQLite serialises writers; concurrent finalization is a PostgreSQL concern")
    scope = scope_of(tenant)
    with use_clock(FrozenClock(START)):
        drafts = [
            services.create_draft(scope, subscribe(scope, code=f"plan{index}").subscription).invoice.public_id
            for index in range(8)
        ]
    barrier = threading.Barrier(len(drafts))
    errors: list[BaseException] = []

    def finalize(public_id: str) -> None:
        try:
            with use_clock(FrozenClock(APRIL)):
                barrier.wait()
                services.finalize(scope, public_id)
        except BaseException as error:
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=finalize, args=(public_id,)) for public_id in drafts]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    numbers = sorted(Invoice.objects.values_list("number", flat=True))
    assert numbers == [f"RE-2026-{index:06}" for index in range(1, 9)]
