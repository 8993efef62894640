"""Multi-row writes: what ``insert_rows``, ``insert_objects`` and ``update_rows`` store is what the ORM
would have stored, on SQLite and PostgreSQL alike (nulls, JSON, decimals, instants, dates)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest

from turnus.apps.billing.models import Invoice, InvoiceLine
from turnus.apps.tenants.models import Tenant
from turnus.core import bulk
from turnus.core.models import OutboxEvent

AT = datetime(2026, 3, 1, 9, 30, 15, 123456, tzinfo=UTC)
COLUMNS = ("public_id", "tenant_id", "livemode", "type", "object_id", "payload", "created_at")


@pytest.mark.django_db
def test_insert_rows_stores_what_the_orm_stores(tenant):
    payloads = [{"amount": "12.50", "nested": {"ok": True}}, {"list": [1, 2]}, {}]
    rows = [
        (
            f"evt_{index:026d}",
            tenant.pk,
            False,
            "invoice.created",
            f"inv_{index}",
            payload,
            AT + timedelta(hours=index),
        )
        for index, payload in enumerate(payloads)
    ]
    bulk.insert_rows(OutboxEvent, COLUMNS, rows)
    stored = list(OutboxEvent.objects.filter(object_id__startswith="inv_").order_by("public_id"))
    assert [(event.payload, event.created_at, event.tenant_id) for event in stored] == [
        (payload, AT + timedelta(hours=index), tenant.pk) for index, payload in enumerate(payloads)
    ]


@pytest.mark.django_db
def test_serialised_json_is_stored_once_serialised(tenant):
    text = bulk.json_text({"a": 1})
    bulk.insert_rows(
        OutboxEvent,
        COLUMNS,
        [("evt_X", tenant.pk, False, "t", "x", text, AT)],
    )
    assert OutboxEvent.objects.get(public_id="evt_X").payload == {"a": 1}


def _invoice(tenant: Tenant, customer, number: int) -> Invoice:
    return Invoice(
        public_id=f"inv_{number:026d}",
        tenant_id=tenant.pk,
        livemode=False,
        created_at=AT,
        customer=customer,
        kind="invoice",
        status="draft",
        currency="EUR",
        locale="de",
        supplier={"name": "Shop"},
        recipient={"name": "Erika"},
        line_total=Decimal("10.00"),
        allowance_total=Decimal(0),
        tax_exclusive=Decimal("10.00"),
        tax_total=Decimal("1.90"),
        grand_total=Decimal("11.90"),
        rounding_amount=Decimal(0),
        prepaid=Decimal(0),
        amount_due=Decimal("11.90"),
    )


@pytest.mark.django_db
def test_insert_objects_sets_keys_and_resolves_objects_saved_after_assignment(tenant):
    from tests.apps.billing.support import scope_of
    from tests.apps.customers.support import customer_data
    from turnus.apps.customers import services as customers

    customer = customers.create_customer(scope_of(tenant), customer_data())
    invoices = [_invoice(tenant, customer, number) for number in range(3)]
    lines = [
        InvoiceLine(
            invoice=invoice,  # assigned before the invoice has a key
            position=1,
            description="Cloud",
            quantity=Decimal(2),
            unit_price=Decimal("5.123456789"),
            net_amount=Decimal("10.00"),
            gross_amount=None,
            vat_category="S",
            vat_rate=Decimal(19),
            kind="recurring",
            period_start=AT,
            period_end=None,
            metadata={"charge": "base"},
        )
        for invoice in invoices
    ]
    bulk.insert_objects(invoices)
    assert all(invoice.pk is not None and not invoice._state.adding for invoice in invoices)
    assert [Invoice.objects.get(pk=invoice.pk).public_id for invoice in invoices] == [
        invoice.public_id for invoice in invoices
    ]
    bulk.insert_objects(lines)
    stored = InvoiceLine.objects.filter(invoice__in=invoices).order_by("invoice_id")
    assert [
        (line.invoice_id, Decimal(line.unit_price), line.gross_amount, line.period_end, line.metadata)
        for line in stored
    ] == [(invoice.pk, Decimal("5.123456789"), None, None, {"charge": "base"}) for invoice in invoices]
    bulk.insert_objects([])  # nothing to do


@pytest.mark.django_db
def test_update_rows_sets_the_columns_of_each_row_and_nothing_else(tenant):
    from tests.apps.billing.support import scope_of
    from tests.apps.customers.support import customer_data
    from turnus.apps.customers import services as customers

    customer = customers.create_customer(scope_of(tenant), customer_data())
    invoices = [_invoice(tenant, customer, number) for number in range(3)]
    bulk.insert_objects(invoices)
    issued = date(2026, 3, 2)
    bulk.update_rows(
        Invoice,
        ("status", "number", "issue_date", "finalized_at"),
        [
            (invoices[0].pk, "finalized", "RE-1", issued, AT),
            (invoices[2].pk, "void", None, None, None),
        ],
    )
    stored = {invoice.pk: invoice for invoice in Invoice.objects.filter(pk__in=[i.pk for i in invoices])}
    assert (stored[invoices[0].pk].status, stored[invoices[0].pk].number) == ("finalized", "RE-1")
    assert (stored[invoices[0].pk].issue_date, stored[invoices[0].pk].finalized_at) == (issued, AT)
    assert (stored[invoices[1].pk].status, stored[invoices[1].pk].number) == ("draft", None)
    assert (stored[invoices[2].pk].status, stored[invoices[2].pk].number) == ("void", None)
    assert (stored[invoices[2].pk].issue_date, stored[invoices[2].pk].finalized_at) == (None, None)
    assert stored[invoices[2].pk].grand_total == Decimal("11.90")
