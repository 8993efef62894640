"""What a merchant sells: products, billable metrics, versioned plans with their charges, add-ons, coupons.

Prices are engine price models stored as JSON in their normalised form (``price_from_dict(...).to_dict()``);
the methods named ``engine_*`` turn rows back into the engine's values.
"""

from __future__ import annotations

import json
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.db import models
from django.db.models import F, Q
from django.utils.translation import gettext_lazy as _

from turnus.engine.aggregation import Aggregation, Metric, PropertyFilter
from turnus.engine.discounts import Discount, DiscountDuration, DiscountKind
from turnus.engine.lifecycle import ContractTerms, PauseResume, PlanTerms
from turnus.engine.money import Money
from turnus.engine.periods import Anchoring, Interval, IntervalUnit
from turnus.engine.pricing import FlatPrice, PerUnitPrice, PriceModel, price_from_dict
from turnus.engine.proration import ProrationMode
from turnus.engine.tax import TaxCategory


def _choices(enum: Any, labels: dict[str, Any]) -> list[tuple[str, Any]]:
    return [(member.value, labels[member.value]) for member in enum]


TAX_CATEGORY_CHOICES = _choices(
    TaxCategory,
    {
        "standard": _("standard rate"),
        "reduced": _("reduced rate"),
        "zero": _("zero rate"),
        "exempt": _("exempt"),
    },
)
AGGREGATION_CHOICES = _choices(
    Aggregation,
    {
        "count": _("count"),
        "sum": _("sum"),
        "max": _("maximum"),
        "unique_count": _("unique count"),
        "latest": _("latest value"),
        "weighted_sum": _("time-weighted sum"),
    },
)
INTERVAL_UNIT_CHOICES = _choices(
    IntervalUnit, {"day": _("day"), "week": _("week"), "month": _("month"), "year": _("year")}
)
ANCHORING_CHOICES = _choices(Anchoring, {"anniversary": _("anniversary"), "calendar": _("calendar")})
PRORATION_CHOICES = _choices(ProrationMode, {"day": _("by day"), "second": _("by second")})
PAUSE_RESUME_CHOICES = _choices(
    PauseResume, {"remaining": _("resume with the remaining days"), "restart": _("restart the period")}
)
DISCOUNT_KIND_CHOICES = _choices(DiscountKind, {"percentage": _("percentage"), "amount": _("amount")})
DISCOUNT_DURATION_CHOICES = _choices(
    DiscountDuration, {"once": _("once"), "repeating": _("repeating"), "forever": _("forever")}
)
CONTRACT_TERM_NAMES = ("initial_term", "initial_notice", "renewal_term", "renewal_notice")


class BillingTiming(models.TextChoices):
    IN_ADVANCE = "in_advance", _("in advance")
    IN_ARREARS = "in_arrears", _("in arrears")


class ChargeKind(models.TextChoices):
    RECURRING = "recurring", _("recurring")
    QUANTITY = "quantity", _("quantity")
    METERED = "metered", _("metered")


def _money_field(verbose_name: Any, **kwargs: Any) -> models.DecimalField:  # type: ignore[type-arg]
    return models.DecimalField(verbose_name, max_digits=30, decimal_places=12, **kwargs)


def localized(english: str, german: str, language: str) -> str:
    """The text in ``language`` (``de`` or ``en``), falling back to the other one when it is empty."""
    first, second = (german, english) if language.startswith("de") else (english, german)
    return first or second


class TenantOwned(models.Model):
    public_id = models.CharField(_("id"), max_length=40, unique=True, editable=False)
    tenant = models.ForeignKey("tenants.Tenant", on_delete=models.PROTECT, related_name="+")
    livemode = models.BooleanField(_("live mode"))
    created_at = models.DateTimeField(_("created at"))

    class Meta:
        abstract = True


class Product(TenantOwned):
    name_en = models.CharField(_("name (English)"), max_length=200, blank=True)
    name_de = models.CharField(_("name (German)"), max_length=200, blank=True)
    description_en = models.TextField(_("description (English)"), blank=True)
    description_de = models.TextField(_("description (German)"), blank=True)
    tax_category = models.CharField(
        _("tax category"),
        max_length=12,
        choices=TAX_CATEGORY_CHOICES,
        default=TaxCategory.STANDARD.value,
        help_text=_("Decides the VAT rate of everything sold under this product."),
    )
    active = models.BooleanField(_("active"), default=True)

    class Meta:
        verbose_name = _("product")
        verbose_name_plural = _("products")
        ordering = ("-public_id",)
        indexes = (models.Index(fields=("tenant", "livemode", "-public_id")),)

    def __str__(self) -> str:
        return self.name_en or self.name_de

    def name(self, language: str) -> str:
        return localized(self.name_en, self.name_de, language)


class BillableMetric(TenantOwned):
    code = models.CharField(
        _("code"), max_length=64, help_text=_("Usage events name the metric by its code.")
    )
    name_en = models.CharField(_("name (English)"), max_length=200, blank=True)
    name_de = models.CharField(_("name (German)"), max_length=200, blank=True)
    aggregation = models.CharField(_("aggregation"), max_length=16, choices=AGGREGATION_CHOICES)
    property = models.CharField(
        _("property"), max_length=100, blank=True, help_text=_("The event property the aggregation reads.")
    )
    filters = models.JSONField(
        _("filters"), default=list, blank=True, help_text=_("Only events whose properties match count.")
    )
    group_by = models.CharField(_("group by"), max_length=100, blank=True)
    recurring = models.BooleanField(
        _("recurring"), default=False, help_text=_("A gauge carries its last value into the next period.")
    )

    class Meta:
        verbose_name = _("billable metric")
        verbose_name_plural = _("billable metrics")
        ordering = ("-public_id",)
        indexes = (models.Index(fields=("tenant", "livemode", "-public_id")),)
        constraints = (
            models.UniqueConstraint(fields=("tenant", "livemode", "code"), name="catalog_metric_code_unique"),
        )

    def __str__(self) -> str:
        return self.code

    def engine_metric(self) -> Metric:
        return Metric(
            code=self.code,
            aggregation=Aggregation(self.aggregation),
            property=self.property or None,
            filters=tuple(PropertyFilter(item["property"], tuple(item["values"])) for item in self.filters),
            group_by=self.group_by or None,
            recurring=self.recurring,
        )


class Plan(TenantOwned):
    """A plan's stable identity; what it costs lives in its versions, the last of which is current."""

    code = models.CharField(_("code"), max_length=64)
    product = models.ForeignKey(
        Product, on_delete=models.PROTECT, related_name="plans", verbose_name=_("product")
    )
    active = models.BooleanField(
        _("active"), default=True, help_text=_("Archived plans take no new subscriptions.")
    )

    class Meta:
        verbose_name = _("plan")
        verbose_name_plural = _("plans")
        ordering = ("-public_id",)
        indexes = (models.Index(fields=("tenant", "livemode", "-public_id")),)
        constraints = (
            models.UniqueConstraint(fields=("tenant", "livemode", "code"), name="catalog_plan_code_unique"),
        )

    def __str__(self) -> str:
        return self.code

    def current_version(self) -> PlanVersion:
        return self.versions.order_by("-number")[0]


_LOCKED_TERMS: dict[tuple[str, datetime], PlanTerms] = {}
_LOCKED_TERMS_LIMIT = 10_000
_LOCKED_CHARGES: dict[tuple[str, datetime], tuple[PlanCharge, ...]] = {}
_PRICES: dict[str, PriceModel] = {}


def cached_price(price: Any) -> PriceModel:
    """The engine's price model of the stored ``price`` (engine price models are immutable, so one
    object serves every charge with the same definition for the life of the process)."""
    key = json.dumps(price, sort_keys=True, default=str)
    found = _PRICES.get(key)
    if found is None:
        if len(_PRICES) >= _LOCKED_TERMS_LIMIT:
            _PRICES.clear()
        found = _PRICES[key] = price_from_dict(price)
    return found


class PlanVersion(TenantOwned):
    """What a plan costs and the rules it follows from one version on. Locked once someone subscribes."""

    plan = models.ForeignKey(Plan, on_delete=models.PROTECT, related_name="versions", verbose_name=_("plan"))
    number = models.PositiveIntegerField(_("version"))
    name_en = models.CharField(_("name (English)"), max_length=200, blank=True)
    name_de = models.CharField(_("name (German)"), max_length=200, blank=True)
    description_en = models.TextField(_("description (English)"), blank=True)
    description_de = models.TextField(_("description (German)"), blank=True)
    currency = models.CharField(_("currency"), max_length=3)
    interval_unit = models.CharField(_("billing interval"), max_length=8, choices=INTERVAL_UNIT_CHOICES)
    interval_count = models.PositiveIntegerField(_("billing interval count"), default=1)
    anchoring = models.CharField(
        _("anchoring"), max_length=12, choices=ANCHORING_CHOICES, default=Anchoring.ANNIVERSARY.value
    )
    billing_timing = models.CharField(
        _("billing timing"), max_length=12, choices=BillingTiming.choices, default=BillingTiming.IN_ADVANCE
    )
    trial_days = models.PositiveIntegerField(_("trial days"), default=0)
    setup_fee = _money_field(_("setup fee"), null=True, blank=True)
    initial_term_unit = models.CharField(
        _("initial term"), max_length=8, choices=INTERVAL_UNIT_CHOICES, blank=True
    )
    initial_term_count = models.PositiveIntegerField(_("initial term count"), null=True, blank=True)
    initial_notice_unit = models.CharField(
        _("initial notice period"), max_length=8, choices=INTERVAL_UNIT_CHOICES, blank=True
    )
    initial_notice_count = models.PositiveIntegerField(
        _("initial notice period count"), null=True, blank=True
    )
    renewal_term_unit = models.CharField(
        _("renewal term"), max_length=8, choices=INTERVAL_UNIT_CHOICES, blank=True
    )
    renewal_term_count = models.PositiveIntegerField(_("renewal term count"), null=True, blank=True)
    renewal_notice_unit = models.CharField(
        _("renewal notice period"), max_length=8, choices=INTERVAL_UNIT_CHOICES, blank=True
    )
    renewal_notice_count = models.PositiveIntegerField(
        _("renewal notice period count"), null=True, blank=True
    )
    proration_mode = models.CharField(
        _("proration"), max_length=8, choices=PRORATION_CHOICES, default=ProrationMode.DAY.value
    )
    credit_unused_on_downgrade = models.BooleanField(_("credit unused time on downgrade"), default=True)
    credit_unused_on_cancel = models.BooleanField(_("credit unused time on cancellation"), default=False)
    allow_downgrade_now = models.BooleanField(_("allow immediate downgrades"), default=False)
    pause_resume = models.CharField(
        _("after a pause"), max_length=12, choices=PAUSE_RESUME_CHOICES, default=PauseResume.REMAINING.value
    )
    prices_include_tax = models.BooleanField(_("prices include VAT"), default=False)
    locked_at = models.DateTimeField(
        _("locked at"),
        null=True,
        blank=True,
        help_text=_("Set when the first subscription uses this version; changes then make a new version."),
    )

    class Meta:
        verbose_name = _("plan version")
        verbose_name_plural = _("plan versions")
        ordering = ("plan", "-number")
        indexes = (models.Index(fields=("tenant", "livemode", "-public_id")),)
        constraints = (
            models.UniqueConstraint(fields=("plan", "number"), name="catalog_plan_version_number_unique"),
        )

    def __str__(self) -> str:
        return f"{self.plan_id and self.plan.code} v{self.number}"

    @property
    def locked(self) -> bool:
        return self.locked_at is not None

    def name(self, language: str) -> str:
        return localized(self.name_en, self.name_de, language)

    def interval(self) -> Interval:
        return Interval(IntervalUnit(self.interval_unit), self.interval_count)

    def contract_interval(self, name: str) -> Interval | None:
        unit, count = getattr(self, f"{name}_unit"), getattr(self, f"{name}_count")
        return Interval(IntervalUnit(unit), count) if unit else None

    def contract_terms(self) -> ContractTerms:
        return ContractTerms(*(self.contract_interval(name) for name in CONTRACT_TERM_NAMES))

    def ordered_charges(self) -> list[PlanCharge]:
        return sorted(self.charges.all(), key=lambda charge: charge.position)

    def charges_with_metrics(self) -> tuple[PlanCharge, ...]:
        """The charges in order, each with its billable metric loaded (one query).

        A locked version's charges never change, nor do the definitions of the metrics they charge for,
        so they are kept for the life of the process (billing reads them for every invoice). A metric's
        names may still change: read those from the database, not from here.
        """
        if self.locked_at is None:
            return self._load_charges()
        key = (self.public_id, self.locked_at)
        charges = _LOCKED_CHARGES.get(key)
        if charges is None:
            if len(_LOCKED_CHARGES) >= _LOCKED_TERMS_LIMIT:
                _LOCKED_CHARGES.clear()
            charges = _LOCKED_CHARGES[key] = self._load_charges()
        return charges

    def _load_charges(self) -> tuple[PlanCharge, ...]:
        found = PlanCharge.objects.filter(version_id=self.pk).select_related("metric").order_by("position")
        return tuple(found)

    def recurring_charge(self) -> PlanCharge:
        return next(charge for charge in self.ordered_charges() if charge.kind == ChargeKind.RECURRING)

    def engine_prices(self) -> dict[str, PriceModel]:
        """Each charge's engine price model, by charge code, in the charges' order."""
        return {charge.code: charge.engine_price() for charge in self.ordered_charges()}

    def engine_terms(self) -> PlanTerms:
        """The engine's view of this version; ``plan_id`` is the version's public id.

        A locked version never changes, so its terms are kept for the life of the process.
        """
        if self.locked_at is None:
            return self._build_engine_terms()
        key = (self.public_id, self.locked_at)
        terms = _LOCKED_TERMS.get(key)
        if terms is None:
            if len(_LOCKED_TERMS) >= _LOCKED_TERMS_LIMIT:
                _LOCKED_TERMS.clear()
            terms = _LOCKED_TERMS[key] = self._build_engine_terms()
        return terms

    def _build_engine_terms(self) -> PlanTerms:
        price = self.recurring_charge().engine_price()
        if isinstance(price, FlatPrice):
            unit_amount = price.amount
        elif isinstance(price, PerUnitPrice):
            unit_amount = price.unit_price
        else:
            raise AssertionError(f"recurring charge of {self.public_id} has a {price.model} price")
        return PlanTerms(
            plan_id=self.public_id,
            recurring_price=Money(unit_amount, self.currency),
            interval=self.interval(),
            anchoring=Anchoring(self.anchoring),
            proration=ProrationMode(self.proration_mode),
            trial_days=self.trial_days,
            contract=self.contract_terms(),
            credit_unused_on_downgrade=self.credit_unused_on_downgrade,
            credit_unused_on_cancel=self.credit_unused_on_cancel,
            allow_downgrade_now=self.allow_downgrade_now,
            pause_resume=PauseResume(self.pause_resume),
        )

    def setup_fee_money(self) -> Money | None:
        return None if self.setup_fee is None else Money(self.setup_fee, self.currency)


class PlanCharge(TenantOwned):
    version = models.ForeignKey(
        PlanVersion, on_delete=models.CASCADE, related_name="charges", verbose_name=_("plan version")
    )
    position = models.PositiveSmallIntegerField(_("position"), default=0)
    code = models.CharField(_("code"), max_length=64)
    name_en = models.CharField(_("name (English)"), max_length=200, blank=True)
    name_de = models.CharField(_("name (German)"), max_length=200, blank=True)
    kind = models.CharField(_("kind"), max_length=12, choices=ChargeKind.choices)
    price = models.JSONField(_("price"))
    metric = models.ForeignKey(
        BillableMetric,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="charges",
        verbose_name=_("billable metric"),
    )

    class Meta:
        verbose_name = _("charge")
        verbose_name_plural = _("charges")
        ordering = ("version", "position")
        indexes = (models.Index(fields=("tenant", "livemode", "-public_id")),)
        constraints = (
            models.UniqueConstraint(fields=("version", "code"), name="catalog_charge_code_unique_in_version"),
            models.CheckConstraint(
                condition=Q(kind=ChargeKind.METERED, metric__isnull=False)
                | (~Q(kind=ChargeKind.METERED) & Q(metric__isnull=True)),
                name="catalog_charge_metered_has_metric",
            ),
        )

    def __str__(self) -> str:
        return self.code

    def name(self, language: str) -> str:
        return localized(self.name_en, self.name_de, language)

    @property
    def billed_in_arrears(self) -> bool:
        return self.kind == ChargeKind.METERED or self.version.billing_timing == BillingTiming.IN_ARREARS

    def engine_price(self) -> PriceModel:
        return cached_price(self.price)


class AddOn(TenantOwned):
    code = models.CharField(_("code"), max_length=64)
    name_en = models.CharField(_("name (English)"), max_length=200, blank=True)
    name_de = models.CharField(_("name (German)"), max_length=200, blank=True)
    currency = models.CharField(_("currency"), max_length=3)
    price = models.JSONField(_("price"))
    interval_unit = models.CharField(_("billing interval"), max_length=8, choices=INTERVAL_UNIT_CHOICES)
    interval_count = models.PositiveIntegerField(_("billing interval count"), default=1)
    tax_category = models.CharField(
        _("tax category"), max_length=12, choices=TAX_CATEGORY_CHOICES, default=TaxCategory.STANDARD.value
    )
    active = models.BooleanField(_("active"), default=True)

    class Meta:
        verbose_name = _("add-on")
        verbose_name_plural = _("add-ons")
        ordering = ("-public_id",)
        indexes = (models.Index(fields=("tenant", "livemode", "-public_id")),)
        constraints = (
            models.UniqueConstraint(fields=("tenant", "livemode", "code"), name="catalog_addon_code_unique"),
        )

    def __str__(self) -> str:
        return self.code

    def name(self, language: str) -> str:
        return localized(self.name_en, self.name_de, language)

    def interval(self) -> Interval:
        return Interval(IntervalUnit(self.interval_unit), self.interval_count)

    def engine_price(self) -> PriceModel:
        return cached_price(self.price)


class Coupon(TenantOwned):
    code = models.CharField(_("code"), max_length=64)
    name = models.CharField(_("name"), max_length=200)
    kind = models.CharField(_("kind"), max_length=12, choices=DISCOUNT_KIND_CHOICES)
    value = _money_field(_("value"), help_text=_("A percentage (e.g. 10) or an amount in the currency."))
    currency = models.CharField(_("currency"), max_length=3, blank=True)
    duration = models.CharField(_("duration"), max_length=12, choices=DISCOUNT_DURATION_CHOICES)
    periods = models.PositiveIntegerField(_("periods"), null=True, blank=True)
    max_redemptions = models.PositiveIntegerField(_("maximum redemptions"), null=True, blank=True)
    redeem_by = models.DateTimeField(_("redeemable until"), null=True, blank=True)
    times_redeemed = models.PositiveIntegerField(_("times redeemed"), default=0, editable=False)
    active = models.BooleanField(_("active"), default=True)

    class Meta:
        verbose_name = _("coupon")
        verbose_name_plural = _("coupons")
        ordering = ("-public_id",)
        indexes = (models.Index(fields=("tenant", "livemode", "-public_id")),)
        constraints = (
            models.UniqueConstraint(fields=("tenant", "livemode", "code"), name="catalog_coupon_code_unique"),
            models.CheckConstraint(
                condition=Q(max_redemptions__isnull=True) | Q(times_redeemed__lte=F("max_redemptions")),
                name="catalog_coupon_redemptions_within_limit",
            ),
        )

    def __str__(self) -> str:
        return self.code

    def engine_discount(self) -> Discount:
        return Discount(
            code=self.code,
            kind=DiscountKind(self.kind),
            value=Decimal(self.value),
            currency=self.currency or None,
            duration=DiscountDuration(self.duration),
            periods=self.periods,
        )
