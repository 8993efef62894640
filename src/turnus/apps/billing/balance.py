"""A customer's credit balance per currency, the refunds credit notes make due, and how credit notes settle.

Sign: a positive balance is credit the tenant owes the customer. Every change is a ``BalanceTransaction``
(positive credits the customer, negative uses or debits the credit) written in the same transaction as
the ``CustomerBalance`` row it updates; that row is locked first, so concurrent users of one balance
(two invoices finalized at once) wait for each other and never spend the same credit twice.

Finalizing an invoice applies the credit in its currency: the prepaid amount (EN 16931 BT-113) becomes
the credit used, at most the amount payable, and the amount due (BT-115) drops by as much.

A credit note settles (``settlement``):
- ``auto``: on a paid invoice the money paid for it is due back as a refund, on an unpaid (finalized)
  invoice it reduces what is still owed; the part beyond that goes to the customer's balance;
- ``balance``: it all goes to the customer's balance;
- ``refund``: it is all due back as a refund, at most what was paid for the invoice.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.db import transaction
from django.db.models import QuerySet, Sum

from turnus.apps.billing.models import (
    BalanceTransaction,
    BalanceTransactionKind,
    CustomerBalance,
    DocumentKind,
    Invoice,
    InvoiceStatus,
    Refund,
    RefundStatus,
)
from turnus.apps.customers.models import Customer
from turnus.apps.customers.services import get_customer
from turnus.apps.tenants.models import Tenant
from turnus.core import clock, validation
from turnus.core.audit import record
from turnus.core.errors import Conflict, NotFound, ValidationFailed
from turnus.core.ids import new_id
from turnus.core.scope import Scope
from turnus.engine.money import currency_digits, decimal_places, round_half_up

SETTLEMENTS = ("auto", "balance", "refund")
MAX_AMOUNT = Decimal(10) ** 15
ZERO = Decimal(0)


class RefundState(Conflict):
    """The refund was already marked as paid out. Nothing changed."""

    code = "refund_state"


# --- the ledger ----------------------------------------------------------------------------------------


def _locked_balance(scope: Scope, customer: Customer, currency: str) -> CustomerBalance:
    """The customer's balance row in ``currency``, made if missing, locked for this transaction."""
    key = {"customer": customer, "currency": currency}
    CustomerBalance.objects.get_or_create(
        **key, defaults={"tenant_id": scope.tenant_id, "livemode": scope.livemode, "updated_at": clock.now()}
    )
    return CustomerBalance.objects.select_for_update().get(**key)


def _locked_existing_balance(customer: Customer, currency: str) -> CustomerBalance | None:
    return CustomerBalance.objects.select_for_update().filter(customer=customer, currency=currency).first()


def available_credit(customer: Customer, currency: str) -> Decimal:
    found = CustomerBalance.objects.filter(customer=customer, currency=currency).values_list(
        "amount", flat=True
    )
    return max(Decimal(next(iter(found), ZERO)), ZERO)


def _post(
    scope: Scope,
    row: CustomerBalance,
    amount: Decimal,
    kind: str,
    description: str,
    *,
    invoice: Invoice | None = None,
    credit_note: Invoice | None = None,
) -> BalanceTransaction:
    """Add ``amount`` to the locked ``row`` and write the transaction; call inside a transaction."""
    now = clock.now()
    row.amount = Decimal(row.amount) + amount
    row.updated_at = now
    row.save(update_fields=("amount", "updated_at"))
    entry = BalanceTransaction.objects.create(
        public_id=new_id("cbtxn", at=now),
        tenant_id=scope.tenant_id,
        livemode=scope.livemode,
        created_at=now,
        customer_id=row.customer_id,
        amount=amount,
        currency=row.currency,
        ending_balance=row.amount,
        kind=kind,
        invoice=invoice,
        credit_note=credit_note,
        description=description[:500],
    )
    record(
        scope,
        "customer_balance_transaction.created",
        "customer_balance_transaction",
        entry.public_id,
        after=transaction_snapshot(entry, customer=_customer_id(row)),
    )
    return entry


def _customer_id(row: CustomerBalance) -> str:
    return str(Customer.objects.values_list("public_id", flat=True).get(pk=row.customer_id))


def transaction_snapshot(entry: BalanceTransaction, *, customer: str) -> dict[str, Any]:
    return {
        "id": entry.public_id,
        "customer": customer,
        "kind": entry.kind,
        "amount": format(Decimal(entry.amount), "f"),
        "currency": entry.currency,
        "ending_balance": format(Decimal(entry.ending_balance), "f"),
    }


def _amount(value: Any, currency: str, *, field: str = "amount") -> Decimal:
    if not isinstance(value, Decimal) or not value.is_finite():
        raise ValidationFailed("give the amount as a decimal string", field=field)
    if decimal_places(value) > currency_digits(currency):
        raise ValidationFailed(
            f"{currency} amounts have at most {currency_digits(currency)} decimal places", field=field
        )
    if abs(value) >= MAX_AMOUNT:
        raise ValidationFailed("the amount is too large", field=field)
    return value


@transaction.atomic
def adjust(
    scope: Scope, customer_id: str, *, amount: Decimal, currency: str | None, description: str
) -> BalanceTransaction:
    """The merchant's own change of the balance: positive credits the customer, negative takes credit
    back (never more than the customer has: bill a debt with a one-off charge instead)."""
    customer = get_customer(scope, customer_id)
    if currency is None:
        currency = Tenant.objects.values_list("default_currency", flat=True).get(pk=scope.tenant_id)
    else:
        currency = validation.currency(currency)
    amount = _amount(amount, currency)
    if not amount:
        raise ValidationFailed("the amount cannot be zero", field="amount")
    description = description.strip()
    if not description:
        raise ValidationFailed("say why the balance changes", field="description")
    row = _locked_balance(scope, customer, currency)
    if Decimal(row.amount) + amount < 0:
        raise ValidationFailed(
            f"the customer has only {row.amount} {currency} of credit to take back", field="amount"
        )
    return _post(scope, row, amount, BalanceTransactionKind.ADJUSTMENT, description)


def balances(scope: Scope, customer_id: str) -> tuple[Customer, list[CustomerBalance]]:
    customer = get_customer(scope, customer_id)
    return customer, list(CustomerBalance.objects.filter(customer=customer).order_by("currency"))


# --- invoices -----------------------------------------------------------------------------------------


def apply_credit(scope: Scope, invoice: Invoice) -> Decimal:
    """Use the customer's credit in the invoice's currency for the draft ``invoice`` being finalized:
    set its prepaid amount and amount due and write the transaction. Returns the credit used."""
    if invoice.kind != DocumentKind.INVOICE or invoice.status != InvoiceStatus.DRAFT:
        return ZERO
    payable = Decimal(invoice.grand_total) + Decimal(invoice.rounding_amount) - Decimal(invoice.prepaid)
    if payable <= 0:
        return ZERO
    row = _locked_existing_balance(invoice.customer, invoice.currency)
    if row is None or Decimal(row.amount) <= 0:
        return ZERO
    used = round_half_up(min(Decimal(row.amount), payable), currency_digits(invoice.currency))
    if used <= 0:
        return ZERO
    invoice.prepaid = Decimal(invoice.prepaid) + used
    invoice.amount_due = payable - used
    _post(
        scope,
        row,
        -used,
        BalanceTransactionKind.APPLIED_TO_INVOICE,
        f"applied to invoice {invoice.public_id}",
        invoice=invoice,
    )
    return used


def restore_credit(scope: Scope, invoice: Invoice) -> Decimal:
    """Give back the credit a finalized invoice used, when it is voided."""
    used = -(
        BalanceTransaction.objects.filter(
            invoice=invoice,
            kind__in=(BalanceTransactionKind.APPLIED_TO_INVOICE, BalanceTransactionKind.INVOICE_VOIDED),
        ).aggregate(total=Sum("amount"))["total"]
        or ZERO
    )
    if used <= 0:
        return ZERO
    row = _locked_balance(scope, invoice.customer, invoice.currency)
    _post(
        scope,
        row,
        used,
        BalanceTransactionKind.INVOICE_VOIDED,
        f"invoice {invoice.number or invoice.public_id} voided",
        invoice=invoice,
    )
    return used


# --- what is still owed on an invoice ---------------------------------------------------------------


@dataclass(frozen=True)
class Settlement:
    """Where a credit note's amount went: off the invoice's remaining amount, to the balance, refunded."""

    to_invoice: Decimal
    to_balance: Decimal
    to_refund: Decimal
    refund: Refund | None = None


def _credited(note: Invoice) -> Decimal:
    """The amount a credit note credits (positive)."""
    return -Decimal(note.amount_due)


def _notes_of(invoice: Invoice) -> Any:
    return Invoice.objects.filter(credit_note_for=invoice, kind=DocumentKind.CREDIT_NOTE).exclude(
        status=InvoiceStatus.VOID
    )


def _credited_to_invoice(invoice: Invoice) -> tuple[Decimal, Decimal]:
    """What the invoice's credit notes took off its remaining amount, and what they refunded."""
    notes = _notes_of(invoice)
    total = -(notes.aggregate(total=Sum("amount_due"))["total"] or ZERO)
    if not total:
        return ZERO, ZERO
    to_balance = (
        BalanceTransaction.objects.filter(
            credit_note__in=notes, kind=BalanceTransactionKind.CREDIT_NOTE
        ).aggregate(total=Sum("amount"))["total"]
        or ZERO
    )
    refunded = Refund.objects.filter(credit_note__in=notes).aggregate(total=Sum("amount"))["total"] or ZERO
    return Decimal(total) - Decimal(to_balance) - Decimal(refunded), Decimal(refunded)


def amount_remaining(invoice: Invoice) -> Decimal:
    """What the customer still owes on the invoice: amount due less what credit notes took off, or 0
    once it is paid or void."""
    if invoice.status in (InvoiceStatus.PAID, InvoiceStatus.VOID):
        return ZERO
    if invoice.status == InvoiceStatus.DRAFT:
        return Decimal(invoice.amount_due)
    credited, _refunded = _credited_to_invoice(invoice)
    return max(Decimal(invoice.amount_due) - credited, ZERO)


def _refundable(invoice: Invoice) -> Decimal:
    """The money paid for a paid invoice that is not refunded yet."""
    if invoice.status != InvoiceStatus.PAID:
        return ZERO
    credited, refunded = _credited_to_invoice(invoice)
    return max(Decimal(invoice.amount_due) - credited - refunded, ZERO)


def check_settlement(value: str) -> str:
    if value not in SETTLEMENTS:
        raise ValidationFailed("settlement must be 'auto', 'balance' or 'refund'", field="settlement")
    return value


def plan_settlement(invoice: Invoice, credited: Decimal, mode: str) -> Settlement:
    """How a credit note of ``credited`` on ``invoice`` (locked) settles; nothing is written, so it is
    called before the credit note is stored and refuses what cannot be."""
    check_settlement(mode)
    if mode == "balance":
        return Settlement(ZERO, credited, ZERO)
    if mode == "refund":
        refundable = _refundable(invoice)
        if credited > refundable:
            raise ValidationFailed(
                f"only {refundable} {invoice.currency} paid for invoice {invoice.public_id} can be refunded; "
                "settle this credit note with 'balance' or 'auto'",
                field="settlement",
            )
        return Settlement(ZERO, ZERO, credited)
    if invoice.status == InvoiceStatus.PAID:
        refund = min(credited, _refundable(invoice))
        return Settlement(ZERO, credited - refund, refund)
    to_invoice = min(credited, amount_remaining(invoice))
    return Settlement(to_invoice, credited - to_invoice, ZERO)


def settle(scope: Scope, invoice: Invoice, note: Invoice, planned: Settlement) -> Settlement:
    """Write what ``planned`` says for the stored credit note ``note``."""
    if planned.to_balance > 0:
        row = _locked_balance(scope, invoice.customer, invoice.currency)
        _post(
            scope,
            row,
            planned.to_balance,
            BalanceTransactionKind.CREDIT_NOTE,
            f"credit note {note.number or note.public_id}",
            credit_note=note,
        )
    refund = None
    if planned.to_refund > 0:
        now = clock.now()
        refund = Refund.objects.create(
            public_id=new_id("re", at=now),
            tenant_id=scope.tenant_id,
            livemode=scope.livemode,
            created_at=now,
            customer=invoice.customer,
            credit_note=note,
            amount=planned.to_refund,
            currency=invoice.currency,
            status=RefundStatus.DUE,
        )
        record(scope, "refund.created", "refund", refund.public_id, after=refund_snapshot(refund))
    return Settlement(planned.to_invoice, planned.to_balance, planned.to_refund, refund)


def settlement_of(note: Invoice) -> Settlement:
    """Where a stored credit note's amount went."""
    credited = _credited(note)
    to_balance = (
        BalanceTransaction.objects.filter(
            credit_note=note, kind=BalanceTransactionKind.CREDIT_NOTE
        ).aggregate(total=Sum("amount"))["total"]
        or ZERO
    )
    refund = Refund.objects.filter(credit_note=note).first()
    to_refund = Decimal(refund.amount) if refund is not None else ZERO
    return Settlement(credited - Decimal(to_balance) - to_refund, Decimal(to_balance), to_refund, refund)


# --- refunds ------------------------------------------------------------------------------------------


def refund_snapshot(refund: Refund) -> dict[str, Any]:
    return {
        "id": refund.public_id,
        "status": refund.status,
        "amount": format(Decimal(refund.amount), "f"),
        "currency": refund.currency,
        "credit_note": Invoice.objects.values_list("public_id", flat=True).get(pk=refund.credit_note_id),
    }


def refunds(scope: Scope) -> QuerySet[Refund]:
    return Refund.objects.filter(tenant_id=scope.tenant_id, livemode=scope.livemode).select_related(
        "customer", "credit_note__credit_note_for"
    )


def get_refund(scope: Scope, public_id: str, *, lock: bool = False) -> Refund:
    queryset = refunds(scope)
    if lock:
        queryset = queryset.select_for_update(of=("self",))
    found = queryset.filter(public_id=public_id).first()
    if found is None:
        raise NotFound(f"no refund {public_id}", field="id")
    return found


@transaction.atomic
def mark_refunded(scope: Scope, public_id: str, *, at: datetime | None = None) -> Refund:
    """The tenant paid the refund out (by bank transfer or through its payment provider)."""
    refund = get_refund(scope, public_id, lock=True)
    if refund.status != RefundStatus.DUE:
        raise RefundState(f"refund {public_id} is {refund.status}", field="id")
    before = refund_snapshot(refund)
    refund.status, refund.refunded_at = RefundStatus.REFUNDED, at or clock.now()
    refund.save(update_fields=("status", "refunded_at"))
    record(scope, "refund.refunded", "refund", refund.public_id, before=before, after=refund_snapshot(refund))
    return refund
