"""Use cases of the catalog. Each validates all input before it writes and audits what it changed.

Plans are versioned: an edit changes the current version in place while no subscription uses it, and
makes a new version once the subscriptions app has locked it (``lock_version``), so the prices a
subscriber agreed to never change under them.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import F, ProtectedError, Q

from turnus.apps.catalog.models import (
    CONTRACT_TERM_NAMES,
    AddOn,
    BillableMetric,
    BillingTiming,
    ChargeKind,
    Coupon,
    Plan,
    PlanCharge,
    PlanVersion,
    Product,
    TenantOwned,
)
from turnus.apps.catalog.queries import get_in_scope, in_scope
from turnus.core import clock, validation
from turnus.core.audit import record
from turnus.core.errors import Conflict, ValidationFailed
from turnus.core.ids import new_id
from turnus.core.scope import Actor, ActorKind, Scope
from turnus.engine.aggregation import Aggregation, Metric, PropertyFilter
from turnus.engine.discounts import Discount, DiscountDuration, DiscountKind
from turnus.engine.errors import EngineError
from turnus.engine.lifecycle import ContractTerms, PauseResume
from turnus.engine.money import MAX_UNIT_PRICE_DECIMALS, currency_digits, decimal_places
from turnus.engine.periods import Anchoring, Interval, IntervalUnit
from turnus.engine.pricing import FlatPrice, PercentagePrice, PerUnitPrice, price_from_dict
from turnus.engine.proration import ProrationMode
from turnus.engine.tax import TaxCategory

_CODE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$")
_NAME_MAX = 200
_TEXT_MAX = 5000

PRODUCT_FIELDS = ("name_en", "name_de", "description_en", "description_de", "tax_category")
METRIC_FIELDS = ("code", "name_en", "name_de", "aggregation", "property", "filters", "group_by", "recurring")
METRIC_DEFINITION = ("aggregation", "property", "filters", "group_by", "recurring")
VERSION_FIELDS = (
    "name_en",
    "name_de",
    "description_en",
    "description_de",
    "currency",
    "interval",
    "anchoring",
    "billing_timing",
    "trial_days",
    "setup_fee",
    "contract",
    "proration_mode",
    "credit_unused_on_downgrade",
    "credit_unused_on_cancel",
    "allow_downgrade_now",
    "pause_resume",
    "prices_include_tax",
    "charges",
)
PLAN_FIELDS = ("code", "product", *VERSION_FIELDS)
CHARGE_FIELDS = ("code", "name_en", "name_de", "kind", "price", "metric")
ADDON_FIELDS = ("code", "name_en", "name_de", "currency", "price", "interval", "tax_category")
COUPON_FIELDS = (
    "code",
    "name",
    "kind",
    "value",
    "currency",
    "duration",
    "periods",
    "max_redemptions",
    "redeem_by",
)


# --- input checks -------------------------------------------------------------------------------


@contextmanager
def _engine_field(prefix: str) -> Iterator[None]:
    """Re-raise an engine error with its field placed under ``prefix`` (``charges[1].price``)."""
    try:
        yield
    except EngineError as error:
        field = prefix if not error.field else f"{prefix}.{error.field}" if prefix else error.field
        raise type(error)(error.message, field=field, code=error.code) from None


def _refuse_unknown(data: Mapping[str, Any], allowed: tuple[str, ...], prefix: str = "") -> None:
    for name in data:
        if name not in allowed:
            raise ValidationFailed(f"unknown field {name!r}", field=f"{prefix}{name}")


def _text(value: Any, field: str, *, max_length: int = _NAME_MAX) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise ValidationFailed(f"{field} must be text", field=field)
    text = value.strip()
    if len(text) > max_length:
        raise ValidationFailed(f"{field} must be at most {max_length} characters", field=field)
    return text


def _names(data: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    names = {
        "name_en": _text(data.get("name_en"), f"{prefix}name_en"),
        "name_de": _text(data.get("name_de"), f"{prefix}name_de"),
    }
    if not names["name_en"] and not names["name_de"]:
        raise ValidationFailed("a name in English or German is required", field=f"{prefix}name_en")
    return names


def _descriptions(data: Mapping[str, Any]) -> dict[str, str]:
    return {
        name: _text(data.get(name), name, max_length=_TEXT_MAX)
        for name in ("description_en", "description_de")
    }


def _code(value: Any, field: str = "code") -> str:
    if not isinstance(value, str) or not _CODE.match(value):
        raise ValidationFailed(
            f"{field} must be 1 to 64 letters, digits or _ . : - and begin with a letter or digit",
            field=field,
        )
    return value


def _choice(value: Any, allowed: Any, field: str) -> str:
    values = [str(member.value if hasattr(member, "value") else member) for member in allowed]
    if not isinstance(value, str) or value not in values:
        raise ValidationFailed(f"{field} must be one of: {', '.join(values)}", field=field)
    return value


def _flag(value: Any, field: str) -> bool:
    if not isinstance(value, bool):
        raise ValidationFailed(f"{field} must be true or false", field=field)
    return value


def _count(value: Any, field: str, *, minimum: int, maximum: int = 1_000_000) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not minimum <= value <= maximum:
        raise ValidationFailed(f"{field} must be a whole number from {minimum} to {maximum}", field=field)
    return value


def _decimal(value: Any, field: str) -> Decimal:
    if isinstance(value, bool | float):
        raise ValidationFailed(
            f"{field} must be a decimal string, never a floating-point number", field=field
        )
    try:
        number = Decimal(str(value).strip()) if isinstance(value, int | str) else value
    except ArithmeticError:
        number = None
    if not isinstance(number, Decimal) or not number.is_finite():
        raise ValidationFailed(f"{field} must be a decimal number", field=field)
    if decimal_places(number) > MAX_UNIT_PRICE_DECIMALS:
        raise ValidationFailed(f"{field} has more than {MAX_UNIT_PRICE_DECIMALS} decimal places", field=field)
    return number


def _interval(value: Any, field: str) -> Interval:
    if not isinstance(value, Mapping):
        raise ValidationFailed(f"{field} must be an object with unit and count", field=field)
    _refuse_unknown(value, ("unit", "count"), prefix=f"{field}.")
    unit = _choice(value.get("unit"), IntervalUnit, f"{field}.unit")
    count = _count(value.get("count", 1), f"{field}.count", minimum=1, maximum=1000)
    with _engine_field(field):
        return Interval(IntervalUnit(unit), count)


def _interval_dict(interval: Interval | None) -> dict[str, Any] | None:
    return None if interval is None else {"unit": interval.unit.value, "count": interval.count}


def _price(value: Any, field: str) -> dict[str, Any]:
    if not isinstance(value, Mapping):
        raise ValidationFailed(f"{field} must be an object", field=field)
    with _engine_field(field):
        return price_from_dict(value).to_dict()


def _currency(value: Any, field: str = "currency") -> str:
    if not isinstance(value, str):
        raise ValidationFailed(f"{field} is required", field=field)
    return validation.currency(value, field=field)


def _json_safe(value: Any) -> Any:
    if isinstance(value, Decimal):
        return format(value.normalize(), "f")
    if isinstance(value, datetime):
        return value.isoformat()
    return value


def _snapshot(obj: TenantOwned, fields: tuple[str, ...]) -> dict[str, Any]:
    return {"id": obj.public_id, **{name: _json_safe(getattr(obj, name)) for name in fields}}


def _create(model: type[TenantOwned], scope: Scope, prefix: str, **fields: Any) -> Any:
    now = clock.now()
    try:
        with transaction.atomic():
            return model._default_manager.create(
                public_id=new_id(prefix, at=now),
                tenant_id=scope.tenant_id,
                livemode=scope.livemode,
                created_at=now,
                **fields,
            )
    except IntegrityError:
        code = fields.get("code")
        raise Conflict(
            f"a {model._meta.model_name} with code {code!r} exists", field="code", code="code_taken"
        ) from None


# --- products -----------------------------------------------------------------------------------


def _clean_product(data: Mapping[str, Any]) -> dict[str, Any]:
    _refuse_unknown(data, PRODUCT_FIELDS)
    tax_category = _choice(data.get("tax_category", TaxCategory.STANDARD.value), TaxCategory, "tax_category")
    return {**_names(data), **_descriptions(data), "tax_category": tax_category}


def product_snapshot(product: Product) -> dict[str, Any]:
    return _snapshot(product, (*PRODUCT_FIELDS, "active"))


@transaction.atomic
def create_product(scope: Scope, data: Mapping[str, Any]) -> Product:
    product: Product = _create(Product, scope, "prod", **_clean_product(data))
    record(scope, "product.created", "product", product.public_id, after=product_snapshot(product))
    return product


@transaction.atomic
def update_product(scope: Scope, product_id: str, changes: Mapping[str, Any]) -> Product:
    product = get_in_scope(Product, scope, product_id, for_update=True)
    _refuse_unknown(changes, PRODUCT_FIELDS)
    before = product_snapshot(product)
    clean = _clean_product({name: before[name] for name in PRODUCT_FIELDS} | dict(changes))
    for name, value in clean.items():
        setattr(product, name, value)
    product.save()
    record(
        scope, "product.updated", "product", product.public_id, before=before, after=product_snapshot(product)
    )
    return product


@transaction.atomic
def archive_product(scope: Scope, product_id: str) -> Product:
    product = get_in_scope(Product, scope, product_id, for_update=True)
    if product.active:
        before = product_snapshot(product)
        product.active = False
        product.save(update_fields=("active",))
        record(
            scope,
            "product.archived",
            "product",
            product.public_id,
            before=before,
            after=product_snapshot(product),
        )
    return product


# --- billable metrics ---------------------------------------------------------------------------


def _clean_filters(value: Any) -> list[dict[str, Any]]:
    if value is None:
        return []
    if not isinstance(value, list | tuple):
        raise ValidationFailed("filters must be a list of {property, values}", field="filters")
    filters = []
    for index, item in enumerate(value):
        field = f"filters[{index}]"
        if not isinstance(item, Mapping):
            raise ValidationFailed(f"{field} must be an object with property and values", field=field)
        _refuse_unknown(item, ("property", "values"), prefix=f"{field}.")
        prop = _text(item.get("property"), f"{field}.property", max_length=100)
        if not prop:
            raise ValidationFailed(f"{field}.property is required", field=f"{field}.property")
        values = item.get("values")
        if not isinstance(values, list | tuple) or not values:
            raise ValidationFailed(f"{field}.values needs at least one value", field=f"{field}.values")
        for position, text in enumerate(values):
            if not isinstance(text, str) or not text:
                raise ValidationFailed(
                    f"{field}.values[{position}] must be non-empty text", field=f"{field}.values[{position}]"
                )
        filters.append({"property": prop, "values": list(values)})
    return filters


def _clean_metric(data: Mapping[str, Any]) -> dict[str, Any]:
    _refuse_unknown(data, METRIC_FIELDS)
    clean: dict[str, Any] = {
        "code": _code(data.get("code")),
        **_names(data),
        "aggregation": _choice(data.get("aggregation"), Aggregation, "aggregation"),
        "property": _text(data.get("property"), "property", max_length=100),
        "filters": _clean_filters(data.get("filters")),
        "group_by": _text(data.get("group_by"), "group_by", max_length=100),
        "recurring": _flag(data.get("recurring", False), "recurring"),
    }
    with _engine_field(""):
        Metric(
            code=clean["code"],
            aggregation=Aggregation(clean["aggregation"]),
            property=clean["property"] or None,
            filters=tuple(
                PropertyFilter(item["property"], tuple(item["values"])) for item in clean["filters"]
            ),
            group_by=clean["group_by"] or None,
            recurring=clean["recurring"],
        )
    return clean


def metric_snapshot(metric: BillableMetric) -> dict[str, Any]:
    return _snapshot(metric, METRIC_FIELDS)


@transaction.atomic
def create_billable_metric(scope: Scope, data: Mapping[str, Any]) -> BillableMetric:
    metric: BillableMetric = _create(BillableMetric, scope, "bm", **_clean_metric(data))
    record(
        scope, "billable_metric.created", "billable_metric", metric.public_id, after=metric_snapshot(metric)
    )
    return metric


@transaction.atomic
def update_billable_metric(scope: Scope, metric_id: str, changes: Mapping[str, Any]) -> BillableMetric:
    """Names can always change; the definition only while no locked plan version charges for the metric."""
    metric = get_in_scope(BillableMetric, scope, metric_id, for_update=True)
    before = metric_snapshot(metric)
    if "code" in changes and changes["code"] != metric.code:
        raise ValidationFailed("a metric's code cannot change; usage events refer to it", field="code")
    clean = _clean_metric({name: before[name] for name in METRIC_FIELDS} | dict(changes))
    redefined = [name for name in METRIC_DEFINITION if clean[name] != before[name]]
    if redefined and metric.charges.filter(version__locked_at__isnull=False).exists():
        raise Conflict(
            "subscriptions are billed by this metric; create a new metric instead of changing its definition",
            field=redefined[0],
            code="metric_in_use",
        )
    for name, value in clean.items():
        setattr(metric, name, value)
    metric.save()
    record(
        scope,
        "billable_metric.updated",
        "billable_metric",
        metric.public_id,
        before=before,
        after=metric_snapshot(metric),
    )
    return metric


# --- plans and versions -------------------------------------------------------------------------


def _clean_charges(scope: Scope, value: Any) -> list[dict[str, Any]]:
    if not isinstance(value, list | tuple) or not value:
        raise ValidationFailed("a plan needs a list of charges with one recurring charge", field="charges")
    charges: list[dict[str, Any]] = []
    codes: set[str] = set()
    recurring_index: int | None = None
    for index, item in enumerate(value):
        prefix = f"charges[{index}]"
        if not isinstance(item, Mapping):
            raise ValidationFailed(f"{prefix} must be an object", field=prefix)
        _refuse_unknown(item, CHARGE_FIELDS, prefix=f"{prefix}.")
        code = _code(item.get("code"), f"{prefix}.code")
        if code in codes:
            raise ValidationFailed(f"charge code {code!r} is used twice", field=f"{prefix}.code")
        codes.add(code)
        kind = _choice(item.get("kind"), ChargeKind, f"{prefix}.kind")
        price = _price(item.get("price"), f"{prefix}.price")
        model = price["model"]
        if kind == ChargeKind.RECURRING:
            if recurring_index is not None:
                raise ValidationFailed(
                    f"a plan has exactly one recurring charge; charges[{recurring_index}] is one already",
                    field=f"{prefix}.kind",
                )
            recurring_index = index
            if model not in (FlatPrice.model, PerUnitPrice.model):
                raise ValidationFailed(
                    "the recurring charge is priced flat or per unit", field=f"{prefix}.price.model"
                )
            for modifier in ("minimum", "maximum"):
                if price[modifier] is not None:
                    raise ValidationFailed(
                        f"the recurring charge has no {modifier}", field=f"{prefix}.price.{modifier}"
                    )
            if Decimal(price["included_units"]):
                raise ValidationFailed(
                    "the recurring charge has no included units", field=f"{prefix}.price.included_units"
                )
        if model == PercentagePrice.model and kind != ChargeKind.METERED:
            raise ValidationFailed("percentage prices are for metered charges", field=f"{prefix}.price.model")
        metric = None
        metric_id = item.get("metric")
        if kind == ChargeKind.METERED:
            if not metric_id:
                raise ValidationFailed("a metered charge names its billable metric", field=f"{prefix}.metric")
            metric = in_scope(BillableMetric, scope).filter(public_id=metric_id).first()
            if metric is None:
                raise ValidationFailed(f"no billable metric {metric_id}", field=f"{prefix}.metric")
        elif metric_id is not None:
            raise ValidationFailed("only metered charges name a billable metric", field=f"{prefix}.metric")
        names = _names(item, prefix=f"{prefix}.")
        charges.append({"code": code, **names, "kind": kind, "price": price, "metric": metric})
    if recurring_index is None:
        raise ValidationFailed("a plan needs exactly one recurring charge", field="charges")
    return charges


def _clean_contract(value: Any) -> dict[str, Any]:
    if value is None:
        value = {}
    if not isinstance(value, Mapping):
        raise ValidationFailed("contract must be an object", field="contract")
    _refuse_unknown(value, CONTRACT_TERM_NAMES, prefix="contract.")
    intervals = {
        name: None if value.get(name) is None else _interval(value[name], f"contract.{name}")
        for name in CONTRACT_TERM_NAMES
    }
    with _engine_field("contract"):
        ContractTerms(**intervals)
    fields: dict[str, Any] = {}
    for name, interval in intervals.items():
        fields[f"{name}_unit"] = "" if interval is None else interval.unit.value
        fields[f"{name}_count"] = None if interval is None else interval.count
    return fields


def _clean_version(scope: Scope, data: Mapping[str, Any]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    currency = _currency(data.get("currency"))
    interval = _interval(data.get("interval"), "interval")
    setup_fee = data.get("setup_fee")
    if setup_fee is not None:
        setup_fee = _decimal(setup_fee, "setup_fee")
        digits = currency_digits(currency)
        if setup_fee < 0 or decimal_places(setup_fee) > digits:
            raise ValidationFailed(
                f"setup_fee must be a non-negative amount with at most {digits} decimal places",
                field="setup_fee",
            )
    fields = {
        **_names(data),
        **_descriptions(data),
        "currency": currency,
        "interval_unit": interval.unit.value,
        "interval_count": interval.count,
        "anchoring": _choice(data.get("anchoring", Anchoring.ANNIVERSARY.value), Anchoring, "anchoring"),
        "billing_timing": _choice(
            data.get("billing_timing", BillingTiming.IN_ADVANCE.value), BillingTiming, "billing_timing"
        ),
        "trial_days": _count(data.get("trial_days", 0), "trial_days", minimum=0, maximum=3660),
        "setup_fee": setup_fee,
        **_clean_contract(data.get("contract")),
        "proration_mode": _choice(
            data.get("proration_mode", ProrationMode.DAY.value), ProrationMode, "proration_mode"
        ),
        "pause_resume": _choice(
            data.get("pause_resume", PauseResume.REMAINING.value), PauseResume, "pause_resume"
        ),
    }
    for name, default in (
        ("credit_unused_on_downgrade", True),
        ("credit_unused_on_cancel", False),
        ("allow_downgrade_now", False),
        ("prices_include_tax", False),
    ):
        fields[name] = _flag(data.get(name, default), name)
    return fields, _clean_charges(scope, data.get("charges"))


def version_input(version: PlanVersion) -> dict[str, Any]:
    """A version in the form ``create_plan`` takes, so an edit can start from it."""
    data: dict[str, Any] = {
        name: getattr(version, name)
        for name in VERSION_FIELDS
        if name not in ("interval", "contract", "charges")
    }
    data["interval"] = _interval_dict(version.interval())
    data["contract"] = {name: _interval_dict(version.contract_interval(name)) for name in CONTRACT_TERM_NAMES}
    data["charges"] = [
        {
            "code": charge.code,
            "name_en": charge.name_en,
            "name_de": charge.name_de,
            "kind": charge.kind,
            "price": charge.price,
            "metric": charge.metric.public_id if charge.metric else None,
        }
        for charge in version.ordered_charges()
    ]
    return data


def version_snapshot(version: PlanVersion) -> dict[str, Any]:
    data = version_input(version)
    data["setup_fee"] = _json_safe(data["setup_fee"])
    return {"version": version.number, "version_id": version.public_id, **data}


def plan_snapshot(plan: Plan, version: PlanVersion) -> dict[str, Any]:
    return {
        "id": plan.public_id,
        "code": plan.code,
        "product": plan.product.public_id,
        "active": plan.active,
        **version_snapshot(version),
    }


def _write_charges(scope: Scope, version: PlanVersion, charges: list[dict[str, Any]]) -> None:
    existing = {charge.code: charge for charge in version.charges.all()}
    wanted = {charge["code"] for charge in charges}
    version.charges.filter(code__in=set(existing) - wanted).delete()
    for position, charge in enumerate(charges):
        row = existing.get(charge["code"])
        if row is None:
            _create(PlanCharge, scope, "chg", version=version, position=position, **charge)
        else:
            for name, value in charge.items():
                setattr(row, name, value)
            row.position = position
            row.save()
    if hasattr(version, "_prefetched_objects_cache"):
        version._prefetched_objects_cache.pop("charges", None)


def _new_version(
    scope: Scope, plan: Plan, number: int, fields: dict[str, Any], charges: list[dict[str, Any]]
) -> PlanVersion:
    version: PlanVersion = _create(PlanVersion, scope, "pver", plan=plan, number=number, **fields)
    _write_charges(scope, version, charges)
    return version


def _unchanged(version: PlanVersion, fields: dict[str, Any], charges: list[dict[str, Any]]) -> bool:
    if any(getattr(version, name) != value for name, value in fields.items()):
        return False
    current = [
        {name: getattr(charge, name) for name in ("code", "name_en", "name_de", "kind", "price", "metric")}
        for charge in version.ordered_charges()
    ]
    return current == charges


@transaction.atomic
def create_plan(scope: Scope, data: Mapping[str, Any]) -> Plan:
    _refuse_unknown(data, PLAN_FIELDS)
    code = _code(data.get("code"))
    product_id = data.get("product")
    product = (
        in_scope(Product, scope).filter(public_id=product_id).first() if isinstance(product_id, str) else None
    )
    if product is None:
        raise ValidationFailed(f"no product {product_id}", field="product")
    if not product.active:
        raise ValidationFailed(f"product {product_id} is archived", field="product")
    fields, charges = _clean_version(scope, data)
    plan: Plan = _create(Plan, scope, "plan", code=code, product=product)
    version = _new_version(scope, plan, 1, fields, charges)
    record(scope, "plan.created", "plan", plan.public_id, after=plan_snapshot(plan, version))
    return plan


@transaction.atomic
def update_plan(scope: Scope, plan_id: str, changes: Mapping[str, Any]) -> Plan:
    """Edit the current version in place while it is unlocked; otherwise add the next version."""
    plan = get_in_scope(Plan, scope, plan_id, for_update=True)
    _refuse_unknown(changes, VERSION_FIELDS)
    current = plan.current_version()
    merged = version_input(current) | dict(changes)
    if isinstance(changes.get("contract"), Mapping):
        merged["contract"] = version_input(current)["contract"] | dict(changes["contract"])
    fields, charges = _clean_version(scope, merged)
    if _unchanged(current, fields, charges):
        return plan
    before = plan_snapshot(plan, current)
    if current.locked:
        version = _new_version(scope, plan, current.number + 1, fields, charges)
    else:
        version = current
        for name, value in fields.items():
            setattr(version, name, value)
        version.save()
        _write_charges(scope, version, charges)
    record(scope, "plan.updated", "plan", plan.public_id, before=before, after=plan_snapshot(plan, version))
    return plan


@transaction.atomic
def archive_plan(scope: Scope, plan_id: str) -> Plan:
    """An archived plan takes no new subscriptions; existing ones run on."""
    plan = get_in_scope(Plan, scope, plan_id, for_update=True)
    if plan.active:
        plan.active = False
        plan.save(update_fields=("active",))
        record(
            scope,
            "plan.archived",
            "plan",
            plan.public_id,
            before={"id": plan.public_id, "active": True},
            after={"id": plan.public_id, "active": False},
        )
    return plan


@transaction.atomic
def lock_version(version: PlanVersion, *, scope: Scope | None = None) -> PlanVersion:
    """Freeze ``version`` because a subscription now uses it; later edits of the plan make a new version.

    Call it in the transaction that creates the first subscription on the version; locking twice is a
    no-op. ``scope`` (the subscriber's request) is audited as the actor, else the system is.
    """
    if scope is None:
        scope = Scope(version.tenant_id, version.livemode, Actor(ActorKind.SYSTEM, "catalog"))
    plan = get_in_scope(Plan, scope, version.plan.public_id, for_update=True)
    locked_at = clock.now()
    if PlanVersion.objects.filter(pk=version.pk, plan=plan, locked_at__isnull=True).update(
        locked_at=locked_at
    ):
        record(
            scope,
            "plan_version.locked",
            "plan_version",
            version.public_id,
            after={"id": version.public_id, "plan": plan.public_id, "locked_at": locked_at.isoformat()},
        )
    version.refresh_from_db(fields=("locked_at",))
    return version


# --- add-ons ------------------------------------------------------------------------------------


def _clean_addon(data: Mapping[str, Any]) -> dict[str, Any]:
    _refuse_unknown(data, ADDON_FIELDS)
    price = _price(data.get("price"), "price")
    if price["model"] == PercentagePrice.model:
        raise ValidationFailed("percentage prices are for metered charges", field="price.model")
    interval = _interval(data.get("interval"), "interval")
    return {
        "code": _code(data.get("code")),
        **_names(data),
        "currency": _currency(data.get("currency")),
        "price": price,
        "interval_unit": interval.unit.value,
        "interval_count": interval.count,
        "tax_category": _choice(
            data.get("tax_category", TaxCategory.STANDARD.value), TaxCategory, "tax_category"
        ),
    }


def addon_input(addon: AddOn) -> dict[str, Any]:
    return {
        "code": addon.code,
        "name_en": addon.name_en,
        "name_de": addon.name_de,
        "currency": addon.currency,
        "price": addon.price,
        "interval": _interval_dict(addon.interval()),
        "tax_category": addon.tax_category,
    }


def addon_snapshot(addon: AddOn) -> dict[str, Any]:
    return {"id": addon.public_id, **addon_input(addon), "active": addon.active}


@transaction.atomic
def create_addon(scope: Scope, data: Mapping[str, Any]) -> AddOn:
    addon: AddOn = _create(AddOn, scope, "addon", **_clean_addon(data))
    record(scope, "addon.created", "addon", addon.public_id, after=addon_snapshot(addon))
    return addon


@transaction.atomic
def update_addon(scope: Scope, addon_id: str, changes: Mapping[str, Any]) -> AddOn:
    addon = get_in_scope(AddOn, scope, addon_id, for_update=True)
    if "code" in changes and changes["code"] != addon.code:
        raise ValidationFailed("an add-on's code cannot change", field="code")
    before = addon_snapshot(addon)
    clean = _clean_addon(addon_input(addon) | dict(changes))
    for name, value in clean.items():
        setattr(addon, name, value)
    addon.save()
    record(scope, "addon.updated", "addon", addon.public_id, before=before, after=addon_snapshot(addon))
    return addon


@transaction.atomic
def delete_addon(scope: Scope, addon_id: str) -> AddOn:
    addon = get_in_scope(AddOn, scope, addon_id, for_update=True)
    before = addon_snapshot(addon)
    try:
        with transaction.atomic():
            addon.delete()
    except ProtectedError:
        raise Conflict("subscriptions use this add-on; it cannot be deleted", code="addon_in_use") from None
    record(scope, "addon.deleted", "addon", before["id"], before=before)
    return addon


# --- coupons ------------------------------------------------------------------------------------


def _clean_coupon(data: Mapping[str, Any]) -> dict[str, Any]:
    _refuse_unknown(data, COUPON_FIELDS)
    kind = _choice(data.get("kind"), DiscountKind, "kind")
    currency = data.get("currency")
    clean: dict[str, Any] = {
        "code": _code(data.get("code")),
        "name": _text(data.get("name"), "name"),
        "kind": kind,
        "value": _decimal(data.get("value"), "value"),
        "currency": None if currency is None else _currency(currency),
        "duration": _choice(data.get("duration", DiscountDuration.ONCE.value), DiscountDuration, "duration"),
        "periods": None if data.get("periods") is None else _count(data["periods"], "periods", minimum=1),
        "max_redemptions": None
        if data.get("max_redemptions") is None
        else _count(data["max_redemptions"], "max_redemptions", minimum=1, maximum=2_000_000_000),
        "redeem_by": data.get("redeem_by"),
    }
    if not clean["name"]:
        raise ValidationFailed("name is required", field="name")
    redeem_by = clean["redeem_by"]
    if redeem_by is not None:
        if not isinstance(redeem_by, datetime) or redeem_by.utcoffset() is None:
            raise ValidationFailed("redeem_by must be an instant with a timezone", field="redeem_by")
        if redeem_by <= clock.now():
            raise ValidationFailed("redeem_by must lie in the future", field="redeem_by")
        clean["redeem_by"] = redeem_by.astimezone(UTC)
    with _engine_field(""):
        Discount(
            code=clean["code"],
            kind=DiscountKind(kind),
            value=clean["value"],
            currency=clean["currency"],
            duration=DiscountDuration(str(clean["duration"])),
            periods=clean["periods"],
        )
    clean["currency"] = clean["currency"] or ""
    return clean


def coupon_snapshot(coupon: Coupon) -> dict[str, Any]:
    return _snapshot(coupon, (*COUPON_FIELDS, "times_redeemed", "active"))


@transaction.atomic
def create_coupon(scope: Scope, data: Mapping[str, Any]) -> Coupon:
    coupon: Coupon = _create(Coupon, scope, "coupon", **_clean_coupon(data))
    record(scope, "coupon.created", "coupon", coupon.public_id, after=coupon_snapshot(coupon))
    return coupon


@transaction.atomic
def archive_coupon(scope: Scope, coupon_id: str) -> Coupon:
    coupon = get_in_scope(Coupon, scope, coupon_id, for_update=True)
    if coupon.active:
        before = coupon_snapshot(coupon)
        coupon.active = False
        coupon.save(update_fields=("active",))
        record(
            scope, "coupon.archived", "coupon", coupon.public_id, before=before, after=coupon_snapshot(coupon)
        )
    return coupon


@transaction.atomic
def redeem_coupon(scope: Scope, coupon: Coupon, at: datetime) -> Coupon:
    """Count one redemption of ``coupon`` at ``at``, or raise ``Conflict`` when it can no longer be redeemed.

    One conditional UPDATE checks and counts, so concurrent redemptions never pass ``max_redemptions``.
    Codes: ``coupon_inactive`` (archived), ``coupon_expired`` (``at`` is past ``redeem_by``),
    ``coupon_exhausted`` (every redemption is used).
    """
    rows = in_scope(Coupon, scope).filter(pk=coupon.pk)
    redeemable = rows.filter(active=True).filter(Q(redeem_by__isnull=True) | Q(redeem_by__gt=at))
    redeemable = redeemable.filter(
        Q(max_redemptions__isnull=True) | Q(times_redeemed__lt=F("max_redemptions"))
    )
    if not redeemable.update(times_redeemed=F("times_redeemed") + 1):
        current = get_in_scope(Coupon, scope, coupon.public_id)
        if not current.active:
            raise Conflict(f"coupon {current.code} is archived", field="coupon", code="coupon_inactive")
        if current.redeem_by is not None and current.redeem_by <= at:
            raise Conflict(f"coupon {current.code} has expired", field="coupon", code="coupon_expired")
        raise Conflict(
            f"coupon {current.code} has been redeemed {current.times_redeemed} times, its limit",
            field="coupon",
            code="coupon_exhausted",
        )
    coupon.refresh_from_db(fields=("times_redeemed",))
    record(
        scope,
        "coupon.redeemed",
        "coupon",
        coupon.public_id,
        after={
            "id": coupon.public_id,
            "times_redeemed": coupon.times_redeemed,
            "redeemed_at": at.isoformat(),
        },
    )
    return coupon
