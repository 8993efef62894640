"""Request and response bodies of the catalog's /v1 routes."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any, Literal

from ninja import Schema
from pydantic import Field

from turnus.core.api import DecimalString, InputSchema, UtcDateTime

TaxCategoryName = Literal["standard", "reduced", "zero", "exempt"]
AggregationName = Literal["count", "sum", "max", "unique_count", "latest", "weighted_sum"]
IntervalUnitName = Literal["day", "week", "month", "year"]
Name = Field(default="", max_length=200)
Description = Field(default="", max_length=5000)
PriceSpec = Field(
    description="An engine price model: {model: flat|per_unit|graduated|volume|package|percentage|"
    "stairstep, …}; numbers are decimal strings.",
    examples=[{"model": "per_unit", "unit_price": "9.90"}],
)


def plain_decimal(value: Decimal) -> Decimal:
    """``value`` without trailing zeros and never in exponent form (``100``, not ``1E+2``)."""
    normal = value.normalize()
    exponent = normal.as_tuple().exponent
    return normal.quantize(Decimal(1)) if isinstance(exponent, int) and exponent > 0 else normal


class Resource(Schema):
    id: str
    livemode: bool
    created_at: datetime

    @staticmethod
    def resolve_id(obj: Any) -> str:
        return str(obj["id"] if isinstance(obj, dict) else obj.public_id)


# --- products


class ProductIn(InputSchema):
    name_en: str = Name
    name_de: str = Name
    description_en: str = Description
    description_de: str = Description
    tax_category: TaxCategoryName = "standard"


class ProductUpdate(InputSchema):
    name_en: str | None = Field(default=None, max_length=200)
    name_de: str | None = Field(default=None, max_length=200)
    description_en: str | None = Field(default=None, max_length=5000)
    description_de: str | None = Field(default=None, max_length=5000)
    tax_category: TaxCategoryName | None = None


class ProductOut(Resource):
    object: str = "product"
    name_en: str
    name_de: str
    description_en: str
    description_de: str
    tax_category: str
    active: bool


# --- billable metrics


class MetricFilter(InputSchema):
    property: str = Field(min_length=1, max_length=100)
    values: list[str] = Field(min_length=1)


class BillableMetricIn(InputSchema):
    code: str = Field(max_length=64)
    name_en: str = Name
    name_de: str = Name
    aggregation: AggregationName
    property: str | None = Field(default=None, max_length=100)
    filters: list[MetricFilter] = Field(default_factory=list)
    group_by: str | None = Field(default=None, max_length=100)
    recurring: bool = False


class BillableMetricUpdate(InputSchema):
    name_en: str | None = Field(default=None, max_length=200)
    name_de: str | None = Field(default=None, max_length=200)
    aggregation: AggregationName | None = None
    property: str | None = Field(default=None, max_length=100)
    filters: list[MetricFilter] | None = None
    group_by: str | None = Field(default=None, max_length=100)
    recurring: bool | None = None


class MetricFilterOut(Schema):
    property: str
    values: list[str]


class BillableMetricOut(Resource):
    object: str = "billable_metric"
    code: str
    name_en: str
    name_de: str
    aggregation: str
    property: str | None
    filters: list[MetricFilterOut]
    group_by: str | None
    recurring: bool

    @staticmethod
    def resolve_property(metric: Any) -> str | None:
        return metric.property or None

    @staticmethod
    def resolve_group_by(metric: Any) -> str | None:
        return metric.group_by or None


# --- plans


class IntervalIn(InputSchema):
    unit: IntervalUnitName
    count: int = 1


class IntervalOut(Schema):
    unit: str
    count: int


class ContractIn(InputSchema):
    initial_term: IntervalIn | None = None
    initial_notice: IntervalIn | None = None
    renewal_term: IntervalIn | None = None
    renewal_notice: IntervalIn | None = None


class ContractOut(Schema):
    initial_term: IntervalOut | None
    initial_notice: IntervalOut | None
    renewal_term: IntervalOut | None
    renewal_notice: IntervalOut | None


class ChargeIn(InputSchema):
    code: str = Field(max_length=64)
    name_en: str = Name
    name_de: str = Name
    kind: Literal["recurring", "quantity", "metered"]
    price: dict[str, Any] = PriceSpec
    metric: str | None = Field(default=None, description="The billable metric of a metered charge (bm_…).")


class ChargeOut(Schema):
    id: str
    code: str
    name_en: str
    name_de: str
    kind: str
    price: dict[str, Any]
    metric: str | None
    billed_in_arrears: bool


class PlanVersionFields(InputSchema):
    name_en: str = Name
    name_de: str = Name
    description_en: str = Description
    description_de: str = Description
    currency: str = Field(min_length=3, max_length=3)
    interval: IntervalIn
    anchoring: Literal["anniversary", "calendar"] = "anniversary"
    billing_timing: Literal["in_advance", "in_arrears"] = "in_advance"
    trial_days: int = 0
    setup_fee: DecimalString | None = None
    contract: ContractIn | None = None
    proration_mode: Literal["day", "second"] = "day"
    credit_unused_on_downgrade: bool = True
    credit_unused_on_cancel: bool = False
    allow_downgrade_now: bool = False
    pause_resume: Literal["remaining", "restart"] = "remaining"
    prices_include_tax: bool = False
    charges: list[ChargeIn] = Field(min_length=1)


class PlanIn(PlanVersionFields):
    code: str = Field(max_length=64)
    product: str = Field(description="The product (prod_…) the plan sells; it decides the tax category.")


class PlanUpdate(InputSchema):
    """Fields to change; ``charges``, when given, replaces the whole list (charges are matched by code)."""

    name_en: str | None = Field(default=None, max_length=200)
    name_de: str | None = Field(default=None, max_length=200)
    description_en: str | None = Field(default=None, max_length=5000)
    description_de: str | None = Field(default=None, max_length=5000)
    currency: str | None = Field(default=None, min_length=3, max_length=3)
    interval: IntervalIn | None = None
    anchoring: Literal["anniversary", "calendar"] | None = None
    billing_timing: Literal["in_advance", "in_arrears"] | None = None
    trial_days: int | None = None
    setup_fee: DecimalString | None = None
    contract: ContractIn | None = None
    proration_mode: Literal["day", "second"] | None = None
    credit_unused_on_downgrade: bool | None = None
    credit_unused_on_cancel: bool | None = None
    allow_downgrade_now: bool | None = None
    pause_resume: Literal["remaining", "restart"] | None = None
    prices_include_tax: bool | None = None
    charges: list[ChargeIn] | None = Field(default=None, min_length=1)


class VersionTermsOut(Resource):
    """What a plan version sells and on which terms; shown for a version and for a plan's current one."""

    name_en: str
    name_de: str
    description_en: str
    description_de: str
    currency: str
    interval: IntervalOut
    anchoring: str
    billing_timing: str
    trial_days: int
    setup_fee: DecimalString | None
    contract: ContractOut
    proration_mode: str
    credit_unused_on_downgrade: bool
    credit_unused_on_cancel: bool
    allow_downgrade_now: bool
    pause_resume: str
    prices_include_tax: bool
    charges: list[ChargeOut]
    locked_at: datetime | None


class PlanVersionOut(VersionTermsOut):
    object: str = "plan_version"
    plan: str
    version: int


class PlanOut(VersionTermsOut):
    object: str = "plan"
    code: str
    product: str
    active: bool
    version: int
    version_id: str


# --- add-ons


class AddOnIn(InputSchema):
    code: str = Field(max_length=64)
    name_en: str = Name
    name_de: str = Name
    currency: str = Field(min_length=3, max_length=3)
    price: dict[str, Any] = PriceSpec
    interval: IntervalIn
    tax_category: TaxCategoryName = "standard"


class AddOnUpdate(InputSchema):
    name_en: str | None = Field(default=None, max_length=200)
    name_de: str | None = Field(default=None, max_length=200)
    currency: str | None = Field(default=None, min_length=3, max_length=3)
    price: dict[str, Any] | None = None
    interval: IntervalIn | None = None
    tax_category: TaxCategoryName | None = None


class AddOnOut(Resource):
    object: str = "addon"
    code: str
    name_en: str
    name_de: str
    currency: str
    price: dict[str, Any]
    interval: IntervalOut
    tax_category: str
    active: bool

    @staticmethod
    def resolve_interval(addon: Any) -> dict[str, Any]:
        return {"unit": addon.interval_unit, "count": addon.interval_count}


class DeletedOut(Schema):
    id: str
    object: str
    deleted: bool = True


# --- coupons


class CouponIn(InputSchema):
    code: str = Field(max_length=64)
    name: str = Field(max_length=200)
    kind: Literal["percentage", "amount"]
    value: DecimalString
    currency: str | None = Field(default=None, min_length=3, max_length=3)
    duration: Literal["once", "repeating", "forever"] = "once"
    periods: int | None = None
    max_redemptions: int | None = None
    redeem_by: UtcDateTime | None = None


class CouponOut(Resource):
    object: str = "coupon"
    code: str
    name: str
    kind: str
    value: DecimalString
    currency: str | None
    duration: str
    periods: int | None
    max_redemptions: int | None
    redeem_by: datetime | None
    times_redeemed: int
    active: bool

    @staticmethod
    def resolve_currency(coupon: Any) -> str | None:
        return coupon.currency or None

    @staticmethod
    def resolve_value(coupon: Any) -> Any:
        return plain_decimal(coupon.value)
