"""Read side: the customers of a scope, filtered for listing."""

from __future__ import annotations

from datetime import datetime

from django.db.models import QuerySet

from turnus.apps.customers.models import Customer
from turnus.core.scope import Scope


def live_customers(scope: Scope) -> QuerySet[Customer]:
    """This scope's customers that are not deleted."""
    customers: QuerySet[Customer] = Customer.objects.in_scope(scope.tenant_id, scope.livemode)
    return customers.filter(deleted_at__isnull=True)


def filter_customers(
    scope: Scope,
    *,
    email: str | None = None,
    external_id: str | None = None,
    created_gte: datetime | None = None,
    created_lte: datetime | None = None,
) -> QuerySet[Customer]:
    customers = live_customers(scope).select_related("test_clock")
    if email:
        customers = customers.filter(email__iexact=email.strip())
    if external_id:
        customers = customers.filter(external_id=external_id)
    if created_gte is not None:
        customers = customers.filter(created_at__gte=created_gte)
    if created_lte is not None:
        customers = customers.filter(created_at__lte=created_lte)
    return customers
