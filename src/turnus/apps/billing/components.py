"""The per-period fees of a subscription's quantity components and add-ons, as invoice lines.

The lifecycle stores the plan's recurring fee of each period it bills (a ``recurring`` charge) and, when a
component quantity changes now, the proration of that change (credit of the old amount and charge of the
new one from the change to the period end). What a component costs for a whole period is billed here:

- A billing period carries component and add-on fees only if the lifecycle billed its recurring fee
  (a ``recurring`` charge for exactly that period): nothing in a trial, nothing for the rest of a period
  resumed after a pause (its fee was paid before the pause).
- Each quantity charge of the plan version in force (the one the recurring charge names) is rated at the
  quantity in effect at the start of the period, for the whole period, in advance and in arrears alike;
  a change within the period is the proration the component code stored, so it is never counted twice.
  A first calendar period that is shorter than a full one is prorated like the recurring fee.
- The quantities in effect at an instant come from the subscription's audit trail (each stored change
  records the component quantities, the scheduled ones and when they apply); a decrease scheduled for
  the period end is therefore in effect for the next period. A period begun by an immediate change of
  plan to a new billing cycle is charged by that change's proration and gets no component line.
- An add-on with the plan's interval is billed once per billing period; an add-on with another interval
  is billed for each of its own periods (anchored at the day it was added) on the first billing period
  it overlaps, once.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.db.models import Q
from django.utils import translation
from django.utils.translation import gettext as _

from turnus.apps.billing.models import BilledPeriod, DocumentKind, InvoiceLine, InvoiceStatus
from turnus.apps.catalog.models import AddOn, ChargeKind, PlanVersion
from turnus.apps.subscriptions.models import Subscription, SubscriptionAddOn, SubscriptionCharge
from turnus.core.models import AuditEvent
from turnus.engine.errors import InvalidPeriod
from turnus.engine.invoice import LineInput
from turnus.engine.lifecycle import ItemKind
from turnus.engine.money import MAX_UNIT_PRICE_DECIMALS, Money, round_half_up
from turnus.engine.periods import Anchoring, BillingCycle, Period, local_date, local_midnight
from turnus.engine.pricing import rate
from turnus.engine.proration import ProrationMode, prorate
from turnus.engine.tax import TaxCategory, TaxDecision

COMPONENT = "component"
ADDON = "addon"

TaxFor = Callable[[TaxCategory], TaxDecision]


@dataclass(frozen=True)
class ComponentState:
    """The plan version and component quantities (by charge code) of a subscription at an instant."""

    version: str
    quantities: dict[str, Decimal]


def _instant(value: Any) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def _quantities(data: Any) -> dict[str, Decimal]:
    return {code: Decimal(value) for code, value in (data or {}).items()}


def state_at(subscription: Subscription, instant: datetime) -> ComponentState:
    """The component quantities in effect at ``instant`` (a change made exactly then is not yet in effect).

    Read from the subscription's audit trail: the last snapshot of a change that occurred before ``instant``
    (in the subscription's time, a test clock's for its customers; the first snapshot
    if none was, as a subscription's first period begins at the midnight before it was created), with
    the scheduled quantities and plan change applied if they fell due by then. Without a trail the
    subscription's current values are used.
    """
    trail = AuditEvent.objects.filter(
        tenant_id=subscription.tenant_id,
        livemode=subscription.livemode,
        object_type="subscription",
        object_id=subscription.public_id,
        action__startswith="subscription.",
        after__has_key="quantities",
    )
    snapshot = (trail.filter(occurred_at__lt=instant).order_by("-occurred_at", "-pk").first()) or (
        trail.order_by("occurred_at", "pk").first()
    )
    if snapshot is None or not isinstance(snapshot.after, dict):
        return ComponentState(
            subscription.plan_version.public_id, _quantities(subscription.component_quantities)
        )
    after = snapshot.after
    quantities = _quantities(after["quantities"])
    scheduled_at = _instant(after.get("scheduled_quantities_at"))
    if after.get("scheduled_quantities") and scheduled_at is not None and scheduled_at <= instant:
        quantities.update(_quantities(after["scheduled_quantities"]))
    version = after["plan_version"]
    period_end = _instant(after.get("current_period_end"))
    if after.get("scheduled_plan_version") and period_end is not None and period_end <= instant:
        version = after["scheduled_plan_version"]
    return ComponentState(version, quantities)


def _unit_price(amount: Decimal, quantity: Decimal) -> Decimal:
    return round_half_up(amount / quantity, MAX_UNIT_PRICE_DECIMALS)


def _whole(quantity: Decimal) -> str:
    return (
        str(int(quantity)) if quantity == quantity.to_integral_value() else format(quantity.normalize(), "f")
    )


def _full_period(version: PlanVersion, period: Period, timezone: str) -> Period:
    """The full period of the plan's cycle around ``period`` (the proration denominator)."""
    if Anchoring(version.anchoring) is not Anchoring.CALENDAR:
        return period
    day = local_date(period.start, timezone)
    cycle = BillingCycle(version.interval(), day, timezone, Anchoring.CALENDAR, start=day)
    try:
        return cycle.full_period_containing(period)
    except InvalidPeriod:
        return period


def _for_period(amount: Money, full: Period, period: Period, version: PlanVersion, timezone: str) -> Money:
    if full == period:
        return amount
    return prorate(amount, full, period, ProrationMode(version.proration_mode), timezone)


def _component_lines(
    subscription: Subscription,
    period: Period,
    version: PlanVersion,
    full: Period,
    tax: TaxDecision,
    language: str,
) -> list[LineInput]:
    state = state_at(subscription, period.start)
    if state.version != version.public_id:
        return []
    lines = []
    for charge in version.ordered_charges():
        quantity = state.quantities.get(charge.code, Decimal(0))
        if charge.kind != ChargeKind.QUANTITY or quantity <= 0:
            continue
        rated = rate(charge.engine_price(), quantity, version.currency).amount
        amount = _for_period(rated, full, period, version, subscription.timezone).amount
        if not amount:
            continue
        text = _("%(charge)s × %(quantity)s") % {
            "charge": charge.name(language) or charge.code,
            "quantity": _whole(quantity),
        }
        lines.append(
            LineInput(
                description=text,
                quantity=quantity,
                unit_price=_unit_price(amount, quantity),
                tax=tax,
                amount=amount,
                kind=COMPONENT,
                period=(period.start, period.end),
                metadata={"charge": charge.code},
            )
        )
    return lines


def _addon_periods(addon: AddOn, added_at: datetime, period: Period, timezone: str) -> Iterator[Period]:
    """The add-on's own periods (anchored at the day it was added) that overlap ``period``."""
    day = local_date(added_at, timezone)
    begin = max(period.start, local_midnight(day, timezone))
    if begin >= period.end:
        return
    cycle = BillingCycle(addon.interval(), day, timezone)
    span = cycle.period_at(begin)
    while span.start < period.end:
        yield span
        span = cycle.next_period(span)


def _billed_addon_periods(subscription: Subscription, period: Period) -> set[tuple[str, datetime]]:
    """(add-on code, period start) of every add-on line on the subscription's earlier invoices (on a
    consolidated invoice, the lines it labelled with the subscription)."""
    billed = BilledPeriod.objects.filter(subscription=subscription, period_start__lt=period.start)
    lines = (
        InvoiceLine.objects.filter(
            Q(invoice__subscription=subscription)
            | Q(invoice__subscription__isnull=True, metadata__subscription=subscription.public_id),
            invoice__in=billed.values("invoice_id"),
            invoice__kind=DocumentKind.INVOICE,
            kind=ADDON,
        )
        .exclude(invoice__status=InvoiceStatus.VOID)
        .values_list("metadata", "period_start")
    )
    return {(metadata.get(ADDON, ""), start) for metadata, start in lines if start is not None}


def _addon_lines(
    subscription: Subscription,
    period: Period,
    version: PlanVersion,
    full: Period,
    tax: TaxDecision,
    tax_for: TaxFor,
    language: str,
) -> list[LineInput]:
    attached = (
        SubscriptionAddOn.objects.filter(subscription=subscription, added_at__lt=period.end)
        .select_related("addon")
        .order_by("added_at", "pk")
    )
    lines: list[LineInput] = []
    billed: set[tuple[str, datetime]] | None = None
    product_category = version.plan.product.tax_category
    for attachment in attached:
        addon, quantity = attachment.addon, Decimal(attachment.quantity)
        if quantity <= 0:
            continue
        rated = rate(addon.engine_price(), quantity, addon.currency).amount
        if addon.interval() == version.interval():
            spans = [(period, _for_period(rated, full, period, version, subscription.timezone))]
        else:
            if billed is None:
                billed = _billed_addon_periods(subscription, period)
            spans = [
                (span, rated)
                for span in _addon_periods(addon, attachment.added_at, period, subscription.timezone)
                if (addon.code, span.start) not in billed
            ]
        line_tax = tax if addon.tax_category == product_category else tax_for(TaxCategory(addon.tax_category))
        text = _("Add-on: %(addon)s × %(quantity)s") % {
            "addon": addon.name(language) or addon.code,
            "quantity": _whole(quantity),
        }
        for span, amount in spans:
            if not amount.amount:
                continue
            lines.append(
                LineInput(
                    description=text,
                    quantity=quantity,
                    unit_price=_unit_price(amount.amount, quantity),
                    tax=line_tax,
                    amount=amount.amount,
                    kind=ADDON,
                    period=(span.start, span.end),
                    metadata={ADDON: addon.code},
                )
            )
    return lines


def period_lines(
    subscription: Subscription, period: Period, tax: TaxDecision, tax_for: TaxFor
) -> list[LineInput]:
    """The component and add-on lines of the invoice for billing period ``period``.

    ``tax`` is the invoice's tax decision; ``tax_for`` decides the tax of an add-on whose tax category
    differs from the plan's product. Empty when the lifecycle billed no recurring fee for ``period``.
    """
    recurring = (
        SubscriptionCharge.objects.filter(
            subscription=subscription,
            kind=ItemKind.RECURRING,
            period_start=period.start,
            period_end=period.end,
        )
        .order_by("-pk")
        .first()
    )
    if recurring is None:
        return []
    version = (
        PlanVersion.objects.filter(public_id=recurring.plan_version)
        .select_related("plan__product")
        .prefetch_related("charges")
        .first()
    )
    if version is None:
        return []
    language = subscription.customer.locale
    full = _full_period(version, period, subscription.timezone)
    with translation.override(language):
        return _component_lines(subscription, period, version, full, tax, language) + _addon_lines(
            subscription, period, version, full, tax, tax_for, language
        )
