"""Request and response bodies of a customer's account: one-off charges, credit balance, refunds."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from ninja import Field, Schema

from turnus.apps.billing.models import BalanceTransaction, CustomerBalance, CustomerCharge, Refund
from turnus.core.api import DecimalString, InputSchema
from turnus.core.pagination import DEFAULT_LIMIT
from turnus.engine.money import Money


def _rounded(amount: Decimal, currency: str) -> Decimal:
    return Money(Decimal(amount), currency).rounded().amount


class CustomerChargeIn(InputSchema):
    description: str = Field(min_length=1, max_length=300)
    amount: DecimalString = Field(description="Per unit; net unless prices_include_tax.")
    quantity: int = Field(default=1, ge=1, le=1_000_000)
    currency: str | None = Field(
        default=None, min_length=3, max_length=3, description="Default: the tenant's."
    )
    prices_include_tax: bool = False
    tax_category: str | None = Field(
        default=None, max_length=12, description="standard (default), reduced, zero or exempt."
    )
    subscription: str | None = Field(
        default=None, max_length=40, description="Bill with this subscription's next invoice."
    )
    invoice_now: bool = Field(default=False, description="Bill at once on a standalone invoice.")


class CustomerChargeOut(Schema):
    id: str
    object: str = "customer_charge"
    livemode: bool
    created_at: datetime
    customer: str
    subscription: str | None
    description: str
    amount: DecimalString
    quantity: int
    currency: str
    prices_include_tax: bool
    tax_category: str
    status: str
    invoice: str | None
    voided_at: datetime | None


class ChargeFilters(Schema):
    limit: int = DEFAULT_LIMIT
    starting_after: str | None = None
    status: str | None = None


def charge_out(charge: CustomerCharge) -> CustomerChargeOut:
    return CustomerChargeOut(
        id=charge.public_id,
        livemode=charge.livemode,
        created_at=charge.created_at,
        customer=charge.customer.public_id,
        subscription=charge.subscription.public_id if charge.subscription else None,
        description=charge.description,
        amount=Decimal(charge.unit_amount).normalize(),
        quantity=charge.quantity,
        currency=charge.currency,
        prices_include_tax=charge.prices_include_tax,
        tax_category=charge.tax_category,
        status=charge.status,
        invoice=charge.invoice.public_id if charge.invoice else None,
        voided_at=charge.voided_at,
    )


class BalanceAmountOut(Schema):
    currency: str
    amount: DecimalString


class CustomerBalanceOut(Schema):
    object: str = "customer_balance"
    livemode: bool
    customer: str
    balances: list[BalanceAmountOut]


def balance_out(customer_id: str, livemode: bool, rows: list[CustomerBalance]) -> CustomerBalanceOut:
    return CustomerBalanceOut(
        livemode=livemode,
        customer=customer_id,
        balances=[
            BalanceAmountOut(currency=row.currency, amount=_rounded(row.amount, row.currency)) for row in rows
        ],
    )


class BalanceTransactionIn(InputSchema):
    amount: DecimalString = Field(description="Positive credits the customer, negative takes credit back.")
    currency: str | None = Field(
        default=None, min_length=3, max_length=3, description="Default: the tenant's."
    )
    description: str = Field(min_length=1, max_length=500)


class BalanceTransactionOut(Schema):
    id: str
    object: str = "customer_balance_transaction"
    livemode: bool
    created_at: datetime
    customer: str
    kind: str
    amount: DecimalString
    currency: str
    ending_balance: DecimalString
    invoice: str | None
    credit_note: str | None
    description: str


class BalanceTransactionFilters(Schema):
    limit: int = DEFAULT_LIMIT
    starting_after: str | None = None
    currency: str | None = None


def balance_transaction_out(entry: BalanceTransaction) -> BalanceTransactionOut:
    return BalanceTransactionOut(
        id=entry.public_id,
        livemode=entry.livemode,
        created_at=entry.created_at,
        customer=entry.customer.public_id,
        kind=entry.kind,
        amount=_rounded(entry.amount, entry.currency),
        currency=entry.currency,
        ending_balance=_rounded(entry.ending_balance, entry.currency),
        invoice=entry.invoice.public_id if entry.invoice else None,
        credit_note=entry.credit_note.public_id if entry.credit_note else None,
        description=entry.description,
    )


class RefundOut(Schema):
    id: str
    object: str = "refund"
    livemode: bool
    created_at: datetime
    customer: str
    credit_note: str
    invoice: str | None
    amount: DecimalString
    currency: str
    status: str
    refunded_at: datetime | None


class RefundFilters(Schema):
    limit: int = DEFAULT_LIMIT
    starting_after: str | None = None
    customer: str | None = None
    status: str | None = None
    credit_note: str | None = None


def refund_out(refund: Refund) -> RefundOut:
    note = refund.credit_note
    return RefundOut(
        id=refund.public_id,
        livemode=refund.livemode,
        created_at=refund.created_at,
        customer=refund.customer.public_id,
        credit_note=note.public_id,
        invoice=note.credit_note_for.public_id if note.credit_note_for else None,
        amount=_rounded(refund.amount, refund.currency),
        currency=refund.currency,
        status=refund.status,
        refunded_at=refund.refunded_at,
    )
