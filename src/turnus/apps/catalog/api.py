"""/v1 routes of the catalog: products, billable metrics, plans and their versions, add-ons, coupons."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from ninja import Query, Router, Schema, Status

from turnus.apps.catalog import queries, services
from turnus.apps.catalog.models import (
    CONTRACT_TERM_NAMES,
    AddOn,
    BillableMetric,
    Coupon,
    Plan,
    PlanVersion,
    Product,
)
from turnus.apps.catalog.schemas import (
    AddOnIn,
    AddOnOut,
    AddOnUpdate,
    BillableMetricIn,
    BillableMetricOut,
    BillableMetricUpdate,
    CouponIn,
    CouponOut,
    DeletedOut,
    PlanIn,
    PlanOut,
    PlanUpdate,
    PlanVersionOut,
    ProductIn,
    ProductOut,
    ProductUpdate,
    plain_decimal,
)
from turnus.core.api import ListResponse, scope_of
from turnus.core.pagination import DEFAULT_LIMIT, paginate

router = Router()


class ListFilters(Schema):
    limit: int = DEFAULT_LIMIT
    starting_after: str | None = None


class ActiveFilters(ListFilters):
    active: bool | None = None


class PlanFilters(ActiveFilters):
    product: str | None = None


class CodeFilters(ListFilters):
    code: str | None = None


class CouponFilters(ActiveFilters):
    code: str | None = None


def _page(queryset: Any, filters: ListFilters) -> dict[str, Any]:
    page = paginate(queryset, limit=filters.limit, starting_after=filters.starting_after)
    return {"data": page.items, "has_more": page.has_more}


def _interval(unit: str, count: int | None) -> dict[str, Any] | None:
    return {"unit": unit, "count": count} if unit else None


def version_body(version: PlanVersion) -> dict[str, Any]:
    return {
        "id": version.public_id,
        "plan": version.plan.public_id,
        "version": version.number,
        "livemode": version.livemode,
        "created_at": version.created_at,
        "name_en": version.name_en,
        "name_de": version.name_de,
        "description_en": version.description_en,
        "description_de": version.description_de,
        "currency": version.currency,
        "interval": _interval(version.interval_unit, version.interval_count),
        "anchoring": version.anchoring,
        "billing_timing": version.billing_timing,
        "trial_days": version.trial_days,
        "setup_fee": None if version.setup_fee is None else plain_decimal(version.setup_fee),
        "contract": {
            name: _interval(getattr(version, f"{name}_unit"), getattr(version, f"{name}_count"))
            for name in CONTRACT_TERM_NAMES
        },
        "proration_mode": version.proration_mode,
        "credit_unused_on_downgrade": version.credit_unused_on_downgrade,
        "credit_unused_on_cancel": version.credit_unused_on_cancel,
        "allow_downgrade_now": version.allow_downgrade_now,
        "pause_resume": version.pause_resume,
        "prices_include_tax": version.prices_include_tax,
        "charges": [
            {
                "id": charge.public_id,
                "code": charge.code,
                "name_en": charge.name_en,
                "name_de": charge.name_de,
                "kind": charge.kind,
                "price": charge.price,
                "metric": charge.metric.public_id if charge.metric else None,
                "billed_in_arrears": charge.billed_in_arrears,
            }
            for charge in version.ordered_charges()
        ],
        "locked_at": version.locked_at,
    }


def plan_body(plan: Plan) -> dict[str, Any]:
    version = queries.current_version(plan)
    return {
        **version_body(version),
        "id": plan.public_id,
        "code": plan.code,
        "product": plan.product.public_id,
        "active": plan.active,
        "version_id": version.public_id,
        "livemode": plan.livemode,
        "created_at": plan.created_at,
    }


def _plan_response(request: HttpRequest, plan: Plan) -> dict[str, Any]:
    return plan_body(queries.get_plan(scope_of(request), plan.public_id))


# --- products


@router.post("/products", response={201: ProductOut}, operation_id="create_product", tags=["products"])
def create_product(request: HttpRequest, payload: ProductIn) -> Status[Product]:
    return Status(201, services.create_product(scope_of(request), payload.model_dump()))


@router.get("/products", response=ListResponse[ProductOut], operation_id="list_products", tags=["products"])
def list_products(request: HttpRequest, filters: Query[ActiveFilters]) -> dict[str, Any]:
    return _page(queries.products(scope_of(request), active=filters.active), filters)


@router.get("/products/{product_id}", response=ProductOut, operation_id="retrieve_product", tags=["products"])
def retrieve_product(request: HttpRequest, product_id: str) -> Product:
    return queries.get_in_scope(Product, scope_of(request), product_id)


@router.post("/products/{product_id}", response=ProductOut, operation_id="update_product", tags=["products"])
def update_product(request: HttpRequest, product_id: str, payload: ProductUpdate) -> Product:
    changes = payload.model_dump(exclude_unset=True)
    return services.update_product(scope_of(request), product_id, changes)


@router.post(
    "/products/{product_id}/archive", response=ProductOut, operation_id="archive_product", tags=["products"]
)
def archive_product(request: HttpRequest, product_id: str) -> Product:
    return services.archive_product(scope_of(request), product_id)


# --- billable metrics


@router.post(
    "/billable_metrics",
    response={201: BillableMetricOut},
    operation_id="create_billable_metric",
    tags=["billable metrics"],
)
def create_billable_metric(request: HttpRequest, payload: BillableMetricIn) -> Status[BillableMetric]:
    return Status(201, services.create_billable_metric(scope_of(request), payload.model_dump()))


@router.get(
    "/billable_metrics",
    response=ListResponse[BillableMetricOut],
    operation_id="list_billable_metrics",
    tags=["billable metrics"],
)
def list_billable_metrics(request: HttpRequest, filters: Query[CodeFilters]) -> dict[str, Any]:
    return _page(queries.billable_metrics(scope_of(request), code=filters.code), filters)


@router.get(
    "/billable_metrics/{metric_id}",
    response=BillableMetricOut,
    operation_id="retrieve_billable_metric",
    tags=["billable metrics"],
)
def retrieve_billable_metric(request: HttpRequest, metric_id: str) -> BillableMetric:
    return queries.get_in_scope(BillableMetric, scope_of(request), metric_id)


@router.post(
    "/billable_metrics/{metric_id}",
    response=BillableMetricOut,
    operation_id="update_billable_metric",
    tags=["billable metrics"],
)
def update_billable_metric(
    request: HttpRequest, metric_id: str, payload: BillableMetricUpdate
) -> BillableMetric:
    changes = payload.model_dump(exclude_unset=True)
    return services.update_billable_metric(scope_of(request), metric_id, changes)


# --- plans


@router.post("/plans", response={201: PlanOut}, operation_id="create_plan", tags=["plans"])
def create_plan(request: HttpRequest, payload: PlanIn) -> Status[dict[str, Any]]:
    plan = services.create_plan(scope_of(request), payload.model_dump())
    return Status(201, _plan_response(request, plan))


@router.get("/plans", response=ListResponse[PlanOut], operation_id="list_plans", tags=["plans"])
def list_plans(request: HttpRequest, filters: Query[PlanFilters]) -> dict[str, Any]:
    plans = queries.plans(scope_of(request), active=filters.active, product_id=filters.product)
    page = _page(plans, filters)
    return {**page, "data": [plan_body(plan) for plan in page["data"]]}


@router.get("/plans/{plan_id}", response=PlanOut, operation_id="retrieve_plan", tags=["plans"])
def retrieve_plan(request: HttpRequest, plan_id: str) -> dict[str, Any]:
    return plan_body(queries.get_plan(scope_of(request), plan_id))


@router.post("/plans/{plan_id}", response=PlanOut, operation_id="update_plan", tags=["plans"])
def update_plan(request: HttpRequest, plan_id: str, payload: PlanUpdate) -> dict[str, Any]:
    plan = services.update_plan(scope_of(request), plan_id, payload.model_dump(exclude_unset=True))
    return _plan_response(request, plan)


@router.post("/plans/{plan_id}/archive", response=PlanOut, operation_id="archive_plan", tags=["plans"])
def archive_plan(request: HttpRequest, plan_id: str) -> dict[str, Any]:
    return _plan_response(request, services.archive_plan(scope_of(request), plan_id))


@router.get(
    "/plans/{plan_id}/versions",
    response=ListResponse[PlanVersionOut],
    operation_id="list_plan_versions",
    tags=["plans"],
)
def list_plan_versions(request: HttpRequest, plan_id: str, filters: Query[ListFilters]) -> dict[str, Any]:
    plan = queries.get_in_scope(Plan, scope_of(request), plan_id)
    page = _page(queries.plan_versions(plan), filters)
    return {**page, "data": [version_body(version) for version in page["data"]]}


# --- add-ons


@router.post("/addons", response={201: AddOnOut}, operation_id="create_addon", tags=["add-ons"])
def create_addon(request: HttpRequest, payload: AddOnIn) -> Status[AddOn]:
    return Status(201, services.create_addon(scope_of(request), payload.model_dump()))


@router.get("/addons", response=ListResponse[AddOnOut], operation_id="list_addons", tags=["add-ons"])
def list_addons(request: HttpRequest, filters: Query[ActiveFilters]) -> dict[str, Any]:
    return _page(queries.addons(scope_of(request), active=filters.active), filters)


@router.get("/addons/{addon_id}", response=AddOnOut, operation_id="retrieve_addon", tags=["add-ons"])
def retrieve_addon(request: HttpRequest, addon_id: str) -> AddOn:
    return queries.get_in_scope(AddOn, scope_of(request), addon_id)


@router.post("/addons/{addon_id}", response=AddOnOut, operation_id="update_addon", tags=["add-ons"])
def update_addon(request: HttpRequest, addon_id: str, payload: AddOnUpdate) -> AddOn:
    return services.update_addon(scope_of(request), addon_id, payload.model_dump(exclude_unset=True))


@router.delete("/addons/{addon_id}", response=DeletedOut, operation_id="delete_addon", tags=["add-ons"])
def delete_addon(request: HttpRequest, addon_id: str) -> dict[str, Any]:
    services.delete_addon(scope_of(request), addon_id)
    return {"id": addon_id, "object": "addon", "deleted": True}


# --- coupons


@router.post("/coupons", response={201: CouponOut}, operation_id="create_coupon", tags=["coupons"])
def create_coupon(request: HttpRequest, payload: CouponIn) -> Status[Coupon]:
    return Status(201, services.create_coupon(scope_of(request), payload.model_dump()))


@router.get("/coupons", response=ListResponse[CouponOut], operation_id="list_coupons", tags=["coupons"])
def list_coupons(request: HttpRequest, filters: Query[CouponFilters]) -> dict[str, Any]:
    return _page(queries.coupons(scope_of(request), active=filters.active, code=filters.code), filters)


@router.get("/coupons/{coupon_id}", response=CouponOut, operation_id="retrieve_coupon", tags=["coupons"])
def retrieve_coupon(request: HttpRequest, coupon_id: str) -> Coupon:
    return queries.get_in_scope(Coupon, scope_of(request), coupon_id)


@router.post(
    "/coupons/{coupon_id}/archive", response=CouponOut, operation_id="archive_coupon", tags=["coupons"]
)
def archive_coupon(request: HttpRequest, coupon_id: str) -> Coupon:
    return services.archive_coupon(scope_of(request), coupon_id)
