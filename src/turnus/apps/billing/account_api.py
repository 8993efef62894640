"""/v1 routes of a customer's account: one-off charges, the credit balance and its transactions, refunds."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from ninja import Query, Router, Status

from turnus.apps.billing import balance, charges
from turnus.apps.billing.account_schemas import (
    BalanceTransactionFilters,
    BalanceTransactionIn,
    BalanceTransactionOut,
    ChargeFilters,
    CustomerBalanceOut,
    CustomerChargeIn,
    CustomerChargeOut,
    RefundFilters,
    RefundOut,
    balance_out,
    balance_transaction_out,
    charge_out,
    refund_out,
)
from turnus.apps.billing.models import BalanceTransaction, CustomerCharge, Refund
from turnus.apps.customers.clocks import customer_named, customer_time, owner_of
from turnus.apps.customers.services import get_customer
from turnus.core.api import ListResponse, scope_of
from turnus.core.pagination import paginate

router = Router(tags=["customer account"])


@router.post(
    "/customers/{customer_id}/charges",
    response={201: CustomerChargeOut},
    operation_id="create_customer_charge",
    summary="Add a one-off charge to the customer's next invoice, or invoice it now",
)
def create_customer_charge(
    request: HttpRequest, customer_id: str, payload: CustomerChargeIn
) -> Status[CustomerChargeOut]:
    scope = scope_of(request)
    new = charges.NewCharge(**dict(payload))
    with customer_time(scope, customer_named(scope, customer_id)):
        charge = charges.create_charge(scope, customer_id, new)
    return Status(201, charge_out(charges.get_charge(scope, charge.public_id)))


@router.get(
    "/customers/{customer_id}/charges",
    response=ListResponse[CustomerChargeOut],
    operation_id="list_customer_charges",
)
def list_customer_charges(
    request: HttpRequest, customer_id: str, filters: Query[ChargeFilters]
) -> dict[str, Any]:
    scope = scope_of(request)
    customer = get_customer(scope, customer_id)
    queryset = charges.charges_of(scope).filter(customer=customer)
    if filters.status:
        queryset = queryset.filter(status=filters.status)
    page = paginate(queryset, limit=filters.limit, starting_after=filters.starting_after)
    return {"data": [charge_out(charge) for charge in page.items], "has_more": page.has_more}


@router.get("/customer_charges/{id}", response=CustomerChargeOut, operation_id="retrieve_customer_charge")
def retrieve_customer_charge(request: HttpRequest, id: str) -> CustomerChargeOut:
    return charge_out(charges.get_charge(scope_of(request), id))


@router.post(
    "/customer_charges/{id}/void",
    response=CustomerChargeOut,
    operation_id="void_customer_charge",
    summary="Cancel a pending one-off charge (an invoiced one is a 409: credit its invoice instead)",
)
def void_customer_charge(request: HttpRequest, id: str) -> CustomerChargeOut:
    scope = scope_of(request)
    with customer_time(scope, owner_of(CustomerCharge, scope, id)):
        charges.void_charge(scope, id)
    return charge_out(charges.get_charge(scope, id))


@router.get(
    "/customers/{customer_id}/balance",
    response=CustomerBalanceOut,
    operation_id="retrieve_customer_balance",
    summary="The customer's credit balance in each currency (positive: credit for the next invoices)",
)
def retrieve_customer_balance(request: HttpRequest, customer_id: str) -> CustomerBalanceOut:
    scope = scope_of(request)
    customer, rows = balance.balances(scope, customer_id)
    return balance_out(customer.public_id, scope.livemode, rows)


@router.get(
    "/customers/{customer_id}/balance_transactions",
    response=ListResponse[BalanceTransactionOut],
    operation_id="list_balance_transactions",
)
def list_balance_transactions(
    request: HttpRequest, customer_id: str, filters: Query[BalanceTransactionFilters]
) -> dict[str, Any]:
    scope = scope_of(request)
    customer = get_customer(scope, customer_id)
    queryset = BalanceTransaction.objects.filter(
        tenant_id=scope.tenant_id, livemode=scope.livemode, customer=customer
    ).select_related("customer", "invoice", "credit_note")
    if filters.currency:
        queryset = queryset.filter(currency=filters.currency.upper())
    page = paginate(queryset, limit=filters.limit, starting_after=filters.starting_after)
    return {"data": [balance_transaction_out(entry) for entry in page.items], "has_more": page.has_more}


@router.post(
    "/customers/{customer_id}/balance_transactions",
    response={201: BalanceTransactionOut},
    operation_id="create_balance_transaction",
    summary="Adjust the customer's credit balance (positive credits, negative takes credit back)",
)
def create_balance_transaction(
    request: HttpRequest, customer_id: str, payload: BalanceTransactionIn
) -> Status[BalanceTransactionOut]:
    scope = scope_of(request)
    with customer_time(scope, customer_named(scope, customer_id)):
        entry = balance.adjust(
            scope,
            customer_id,
            amount=payload.amount,
            currency=payload.currency,
            description=payload.description,
        )
    entry = BalanceTransaction.objects.select_related("customer", "invoice", "credit_note").get(pk=entry.pk)
    return Status(201, balance_transaction_out(entry))


@router.get("/refunds", response=ListResponse[RefundOut], operation_id="list_refunds")
def list_refunds(request: HttpRequest, filters: Query[RefundFilters]) -> dict[str, Any]:
    queryset = balance.refunds(scope_of(request))
    if filters.customer:
        queryset = queryset.filter(customer__public_id=filters.customer)
    if filters.status:
        queryset = queryset.filter(status=filters.status)
    if filters.credit_note:
        queryset = queryset.filter(credit_note__public_id=filters.credit_note)
    page = paginate(queryset, limit=filters.limit, starting_after=filters.starting_after)
    return {"data": [refund_out(refund) for refund in page.items], "has_more": page.has_more}


@router.get("/refunds/{id}", response=RefundOut, operation_id="retrieve_refund")
def retrieve_refund(request: HttpRequest, id: str) -> RefundOut:
    return refund_out(balance.get_refund(scope_of(request), id))


@router.post(
    "/refunds/{id}/mark_refunded",
    response=RefundOut,
    operation_id="mark_refund_refunded",
    summary="Record that the refund was paid out to the customer",
)
def mark_refund_refunded(request: HttpRequest, id: str) -> RefundOut:
    scope = scope_of(request)
    with customer_time(scope, owner_of(Refund, scope, id)):
        balance.mark_refunded(scope, id)
    return refund_out(balance.get_refund(scope, id))
