"""/v1 routes of the customers app."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from ninja import Query, Router, Status

from turnus.apps.customers import queries, services
from turnus.apps.customers.clocks import customer_named, customer_time
from turnus.apps.customers.models import Customer
from turnus.apps.customers.schemas import (
    CustomerDeletedOut,
    CustomerFilters,
    CustomerIn,
    CustomerOut,
    CustomerUpdate,
)
from turnus.core.api import ListResponse, scope_of
from turnus.core.pagination import paginate

router = Router(tags=["customers"])


@router.post("/customers", response={201: CustomerOut}, operation_id="create_customer")
def create_customer(request: HttpRequest, payload: CustomerIn) -> Status[Customer]:
    customer = services.create_customer(scope_of(request), payload.model_dump(exclude_unset=True))
    return Status(201, customer)


@router.get("/customers", response=ListResponse[CustomerOut], operation_id="list_customers")
def list_customers(request: HttpRequest, filters: Query[CustomerFilters]) -> dict[str, Any]:
    customers = queries.filter_customers(
        scope_of(request),
        email=filters.email,
        external_id=filters.external_id,
        created_gte=filters.created_gte,
        created_lte=filters.created_lte,
    )
    page = paginate(customers, limit=filters.limit, starting_after=filters.starting_after)
    return {"data": page.items, "has_more": page.has_more}


@router.get("/customers/{customer_id}", response=CustomerOut, operation_id="retrieve_customer")
def retrieve_customer(request: HttpRequest, customer_id: str) -> Customer:
    return services.get_customer(scope_of(request), customer_id)


@router.post("/customers/{customer_id}", response=CustomerOut, operation_id="update_customer")
def update_customer(request: HttpRequest, customer_id: str, payload: CustomerUpdate) -> Customer:
    scope = scope_of(request)
    with customer_time(scope, customer_named(scope, customer_id)):
        return services.update_customer(scope, customer_id, payload.model_dump(exclude_unset=True))


@router.delete("/customers/{customer_id}", response=CustomerDeletedOut, operation_id="delete_customer")
def delete_customer(request: HttpRequest, customer_id: str) -> Customer:
    scope = scope_of(request)
    with customer_time(scope, customer_named(scope, customer_id)):
        return services.delete_customer(scope, customer_id)
