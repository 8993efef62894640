"""What a customer's pending one-off charges put on an invoice, and how an invoice takes them exactly once.

A pending charge is billed by the next invoice of its customer in its currency: the named
subscription's, any subscription's when it names none, or a standalone invoice made at once. The
invoice takes it by setting the charge's ``invoice`` in the transaction that stores the invoice, and
only while the charge is still pending (the rows are locked on PostgreSQL when they are read, and the
update re-checks ``status``), so two invoices never bill one charge.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from decimal import Decimal

from django.db.models import Q

from turnus.apps.billing.models import ChargeStatus, CustomerCharge, Invoice
from turnus.apps.customers.models import Customer
from turnus.apps.subscriptions.models import Subscription
from turnus.core.errors import Conflict
from turnus.engine.invoice import LineInput
from turnus.engine.money import MAX_UNIT_PRICE_DECIMALS, round_half_up
from turnus.engine.tax import TaxDecision

LINE_KIND = "one_off"
_HUNDRED = Decimal(100)


class ChargeTaken(Conflict):
    """Another invoice billed one of these one-off charges at the same moment. Nothing was stored; retry."""

    code = "charge_taken"


def pending_charges(
    customer: Customer, currency: str, *, subscription: Subscription | None
) -> list[CustomerCharge]:
    """The customer's pending charges in ``currency`` an invoice of ``subscription`` takes (``None``: a
    standalone invoice, which takes the charges that name no subscription), oldest first, locked."""
    wanted = Q(subscription__isnull=True)
    if subscription is not None:
        wanted |= Q(subscription=subscription)
    return list(
        CustomerCharge.objects.select_for_update(of=("self",))
        .filter(wanted, customer=customer, currency=currency, status=ChargeStatus.PENDING)
        .order_by("public_id")
    )


def pending_charges_of(
    customer: Customer, currency: str, subscriptions: Sequence[Subscription]
) -> list[CustomerCharge]:
    """The customer's pending charges in ``currency`` a consolidated invoice of ``subscriptions`` takes:
    those naming one of them or none, oldest first, locked."""
    return list(
        CustomerCharge.objects.select_for_update(of=("self",))
        .filter(
            Q(subscription__isnull=True) | Q(subscription__in=[item.pk for item in subscriptions]),
            customer=customer,
            currency=currency,
            status=ChargeStatus.PENDING,
        )
        .order_by("public_id")
    )


def charge_line(charge: CustomerCharge, tax: TaxDecision, *, prices_include_tax: bool) -> LineInput:
    """The invoice line of ``charge``. On an invoice priced the other way (net against gross) the amount
    is converted at the line's VAT rate, exactly, and rounded to the currency by the engine."""
    quantity = Decimal(charge.quantity)
    unit_amount = Decimal(charge.unit_amount)
    amount = None
    unit_price = unit_amount
    if charge.prices_include_tax != prices_include_tax:
        total = unit_amount * quantity
        factor = (_HUNDRED + tax.rate) / _HUNDRED
        amount = round_half_up(total / factor if charge.prices_include_tax else total * factor, 12)
        unit_price = round_half_up(amount / quantity, MAX_UNIT_PRICE_DECIMALS)
    return LineInput(
        description=charge.description,
        quantity=quantity,
        unit_price=unit_price,
        tax=tax,
        amount=amount,
        kind=LINE_KIND,
        discountable=False,
        metadata={"customer_charge": charge.public_id},
    )


def charge_lines(
    charges: Sequence[CustomerCharge], tax_for: Callable[[str], TaxDecision], *, prices_include_tax: bool
) -> list[LineInput]:
    """The lines of ``charges``; ``tax_for`` decides the VAT of a tax category (standard, reduced …)."""
    return [
        charge_line(charge, tax_for(charge.tax_category), prices_include_tax=prices_include_tax)
        for charge in charges
    ]


def attach(invoice: Invoice, charges: Sequence[CustomerCharge]) -> None:
    """Mark ``charges`` billed by ``invoice``; call in the transaction that stores the invoice."""
    if not charges:
        return
    taken = CustomerCharge.objects.filter(
        pk__in=[charge.pk for charge in charges], status=ChargeStatus.PENDING, invoice__isnull=True
    ).update(status=ChargeStatus.INVOICED, invoice=invoice)
    if taken != len(charges):
        raise ChargeTaken(f"a one-off charge of invoice {invoice.public_id} was billed elsewhere", field="id")


def release(invoice: Invoice) -> int:
    """Make the charges of a voided draft pending again, for the customer's next invoice."""
    return CustomerCharge.objects.filter(invoice=invoice, status=ChargeStatus.INVOICED).update(
        status=ChargeStatus.PENDING, invoice=None
    )
