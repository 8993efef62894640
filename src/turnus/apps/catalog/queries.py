"""Read side of the catalog: scoped lookups by public id and list filters."""

from __future__ import annotations

from typing import TypeVar

from django.db.models import Prefetch, QuerySet

from turnus.apps.catalog.models import (
    AddOn,
    BillableMetric,
    Coupon,
    Plan,
    PlanCharge,
    PlanVersion,
    Product,
    TenantOwned,
)
from turnus.core.errors import NotFound
from turnus.core.scope import Scope

M = TypeVar("M", bound=TenantOwned)


def in_scope(model: type[M], scope: Scope) -> QuerySet[M]:
    queryset: QuerySet[M] = model._default_manager.filter(tenant_id=scope.tenant_id, livemode=scope.livemode)
    return queryset


def get_in_scope(model: type[M], scope: Scope, public_id: str, *, for_update: bool = False) -> M:
    """The object ``public_id`` of this tenant and mode; ``NotFound`` for anything else."""
    queryset = in_scope(model, scope)
    if for_update:
        queryset = queryset.select_for_update()
    found = queryset.filter(public_id=public_id).first()
    if found is None:
        raise NotFound(f"no {model._meta.model_name} {public_id}", field="id")
    return found


def versions_with_charges() -> Prefetch:  # type: ignore[type-arg]
    charges = Prefetch("charges", queryset=PlanCharge.objects.select_related("metric").order_by("position"))
    return Prefetch(
        "versions",
        queryset=PlanVersion.objects.order_by("-number").prefetch_related(charges),
    )


def plans(scope: Scope, *, active: bool | None = None, product_id: str | None = None) -> QuerySet[Plan]:
    queryset = in_scope(Plan, scope).select_related("product").prefetch_related(versions_with_charges())
    if active is not None:
        queryset = queryset.filter(active=active)
    if product_id:
        queryset = queryset.filter(product__public_id=product_id)
    return queryset


def get_plan(scope: Scope, plan_id: str) -> Plan:
    found = plans(scope).filter(public_id=plan_id).first()
    if found is None:
        raise NotFound(f"no plan {plan_id}", field="id")
    return found


def current_version(plan: Plan) -> PlanVersion:
    """The newest version; uses prefetched versions when the plan came from ``plans``."""
    return max(plan.versions.all(), key=lambda version: version.number)


def plan_versions(plan: Plan) -> QuerySet[PlanVersion]:
    charges = Prefetch("charges", queryset=PlanCharge.objects.select_related("metric").order_by("position"))
    return plan.versions.select_related("plan").prefetch_related(charges)


def products(scope: Scope, *, active: bool | None = None) -> QuerySet[Product]:
    queryset = in_scope(Product, scope)
    return queryset if active is None else queryset.filter(active=active)


def billable_metrics(scope: Scope, *, code: str | None = None) -> QuerySet[BillableMetric]:
    queryset = in_scope(BillableMetric, scope)
    return queryset if not code else queryset.filter(code=code)


def addons(scope: Scope, *, active: bool | None = None) -> QuerySet[AddOn]:
    queryset = in_scope(AddOn, scope)
    return queryset if active is None else queryset.filter(active=active)


def coupons(scope: Scope, *, active: bool | None = None, code: str | None = None) -> QuerySet[Coupon]:
    queryset = in_scope(Coupon, scope)
    if active is not None:
        queryset = queryset.filter(active=active)
    return queryset if not code else queryset.filter(code=code)
