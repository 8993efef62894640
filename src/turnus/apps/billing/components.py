"""The per-period fees of a subscription's quantity components and add-ons, as invoice lines.

The lifecycle stores the plan's recurring fee of each period it bills (a ``recurring`` charge) and, when a
component quantity changes now, the proration of that change (credit of the old amount and charge of the
new one from the change to the period end). What a component costs for a whole period is billed here:

- A billing period carries component and add-on fees only if the lifecycle billed its recurring fee
  (a ``recurring`` charge for exactly that period, 0.00 for a plan without a base fee: the lifecycle
  marks every paid period; one that began with nothing to bill is marked when an add-on is added to it
  now, ``subscriptions.services``): nothing in a trial, nothing for the rest of a period resumed after
  a pause (its fee was paid before the pause).
- Each quantity charge of the plan version in force (the one the recurring charge names) is rated at the
  quantity in effect at the start of the period, for the whole period, in advance and in arrears alike;
  a change within the period is the proration the component code stored, so it is never counted twice.
  A first calendar period that is shorter than a full one is prorated like the recurring fee.
- The quantities in effect at an instant come from the subscription's audit trail (each stored change
  records the component quantities, the scheduled ones and when they apply); a decrease scheduled for
  the period end is therefore in effect for the next period. A period begun by an immediate change of
  plan to a new billing cycle is charged by that change's proration and gets no component line.
- An add-on with the plan's interval is billed once per billing period; an add-on with another interval
  is billed for each of its own periods (anchored at the day it was first added) on the first billing
  period it overlaps, once. Each is billed at its quantity when the (its own) period begins, read from
  the add-on's history (``SubscriptionAddOn.quantity_at``); a change within a period is the proration
  the change stored, so a removed add-on is billed up to its removal and not after.
- A period cut short by a cancellation now, a pause that restarts the period or an end inside it gets
  back the unused part of its component fees and of its add-on fees exactly as the recurring fee does:
  the lifecycle's credit of that part (``lifecycle.CUT_SHORT``, 0.00 for a plan without a base fee) is
  the signal, and each fee at the quantities in effect when the period was cut is prorated over the same
  part of the same basis, by the plan's proration mode; an add-on with another interval gets back the
  rest of its own period (and, should the service resume within that period, is billed for the rest of
  it from then on). The invoice that bills the lifecycle's credit bills these credits: billed in
  advance the closing invoice (or the next one after a pause), billed in arrears the period's own
  invoice, where a credit is taken off the line of the period it belongs to (which then covers the used
  part only).
- Billed in arrears, a pause in ``remaining`` mode splits the component and add-on fees (those with the
  plan's interval) like the base fee: the lifecycle's credit of the part carried over
  (``lifecycle.PAUSE_CARRIED``) takes that part, prorated the same way, off the interrupted period's
  lines, and the remainder it runs in (the billing period of its ``RESUME_CARRIED`` charge) bills the
  same amounts; a cut within the remainder is taken off those.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.db.models import Q
from django.utils import translation
from django.utils.translation import gettext as _

from turnus.apps.billing.models import (
    BilledPeriod,
    DocumentKind,
    InvoicedCharge,
    InvoiceLine,
    InvoiceStatus,
)
from turnus.apps.catalog.models import AddOn, BillingTiming, ChargeKind, PlanVersion
from turnus.apps.subscriptions import services as subscriptions
from turnus.apps.subscriptions.models import Subscription, SubscriptionAddOn, SubscriptionCharge
from turnus.core.models import AuditEvent
from turnus.engine.errors import InvalidPeriod
from turnus.engine.invoice import LineInput
from turnus.engine.lifecycle import (
    CUT_SHORT,
    PAUSE_CARRIED,
    RESUME_CARRIED,
    ItemKind,
    PauseState,
    resumed_basis,
)
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


def _gaps(subscription: Subscription) -> list[tuple[datetime, datetime | None]]:
    """The spans without service after a period was cut short (``CUT_SHORT``): from the cut to the start of
    the next paid period (its ``recurring`` mark, made after the cut), ``None`` if none followed."""
    rows = (
        SubscriptionCharge.objects.filter(subscription=subscription)
        .filter(Q(kind=ItemKind.RECURRING) | Q(kind=ItemKind.PRORATION_CREDIT, description__in=CUT_SHORT))
        .order_by("pk")
        .values_list("kind", "period_start")
    )
    gaps: list[tuple[datetime, datetime | None]] = []
    cut: datetime | None = None
    for kind, start in rows:
        if kind != ItemKind.RECURRING:
            cut = start if cut is None else cut
        elif cut is not None:
            gaps.append((cut, start))
            cut = None
    if cut is not None:
        gaps.append((cut, None))
    return gaps


def _billable_starts(span: Period, gaps: list[tuple[datetime, datetime | None]]) -> list[datetime]:
    """Where the add-on's own period ``span`` is billed from: its start, unless the service was cut off
    then, and each resumption of the service within it (the rest of the span after a cut is credited)."""
    starts = []
    if not any(cut <= span.start and (back is None or span.start < back) for cut, back in gaps):
        starts.append(span.start)
    starts += [back for _cut, back in gaps if back is not None and span.start < back < span.end]
    return starts


def _addon_lines(
    subscription: Subscription,
    period: Period,
    version: PlanVersion,
    full: Period,
    tax: TaxDecision,
    tax_for: TaxFor,
    language: str,
) -> list[LineInput]:
    """The add-on fees of ``period``: an add-on with the plan's interval at its quantity when the period
    begins; one with another interval for each of its own periods that overlaps ``period`` and no earlier
    invoice billed, at its quantity when that begins (or the rest of it from a resumption after a cut,
    prorated). A change within a period is the proration its change stored."""
    attached = (
        SubscriptionAddOn.objects.filter(subscription=subscription, added_at__lt=period.end)
        .select_related("addon")
        .order_by("added_at", "pk")
    )
    lines: list[LineInput] = []
    billed: set[tuple[str, datetime]] | None = None
    gaps: list[tuple[datetime, datetime | None]] = []
    product_category = version.plan.product.tax_category
    mode, timezone = ProrationMode(version.proration_mode), subscription.timezone
    for attachment in attached:
        addon = attachment.addon
        spans: list[tuple[Period, Decimal, Money]] = []
        if addon.interval() == version.interval():
            quantity = attachment.quantity_at(period.start)
            if quantity > 0:
                rated = rate(addon.engine_price(), quantity, addon.currency).amount
                spans.append((period, quantity, _for_period(rated, full, period, version, timezone)))
        else:
            if billed is None:
                billed, gaps = _billed_addon_periods(subscription, period), _gaps(subscription)
            for span in _addon_periods(addon, attachment.added_at, period, timezone):
                for start in _billable_starts(span, gaps):
                    quantity = attachment.quantity_at(start)
                    if quantity <= 0 or (addon.code, start) in billed:
                        continue
                    rated = rate(addon.engine_price(), quantity, addon.currency).amount
                    part = Period(start, span.end)
                    if part != span:
                        rated = prorate(rated, span, part, mode, timezone)
                    spans.append((part, quantity, rated))
        line_tax = tax if addon.tax_category == product_category else tax_for(TaxCategory(addon.tax_category))
        for span, quantity, amount in spans:
            if not amount.amount:
                continue
            text = _("Add-on: %(addon)s × %(quantity)s") % {
                "addon": addon.name(language) or addon.code,
                "quantity": _whole(quantity),
            }
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


@dataclass(frozen=True)
class _Credit:
    """The credit of one fee (a quantity charge or an add-on) for the unused part of a period cut short."""

    kind: str
    code: str
    quantity: Decimal
    amount: Decimal
    text: str
    part: Period
    version: str
    tax: TaxDecision


def _marks(
    subscription: Subscription, period: Period
) -> tuple[SubscriptionCharge | None, list[SubscriptionCharge]]:
    """The lifecycle's ``recurring`` charge of exactly ``period`` (its mark of a paid period) and its
    ``CUT_SHORT`` credits the invoice of ``period`` bills (not invoiced yet, beginning before its end), in
    one query."""
    invoiced = InvoicedCharge.objects.filter(charge__subscription=subscription).values("charge_id")
    found = SubscriptionCharge.objects.filter(subscription=subscription).filter(
        Q(kind=ItemKind.RECURRING, period_start=period.start, period_end=period.end)
        | (
            Q(kind=ItemKind.PRORATION_CREDIT, description__in=CUT_SHORT, period_start__lt=period.end)
            & ~Q(pk__in=invoiced)
        )
    )
    recurring: SubscriptionCharge | None = None
    cuts: list[SubscriptionCharge] = []
    for charge in found.order_by("period_start", "pk"):
        if charge.kind == ItemKind.RECURRING:
            recurring = charge
        else:
            cuts.append(charge)
    return recurring, cuts


def _version(public_id: str) -> PlanVersion | None:
    return (
        PlanVersion.objects.filter(public_id=public_id)
        .select_related("plan__product")
        .prefetch_related("charges")
        .first()
    )


def _paused_before(subscription: Subscription, instant: datetime) -> PauseState | None:
    """The last pause made by ``instant`` with a remainder it carried over (from the audit trail)."""
    paused = (
        AuditEvent.objects.filter(
            tenant_id=subscription.tenant_id,
            livemode=subscription.livemode,
            object_type="subscription",
            object_id=subscription.public_id,
            action="subscription.paused",
            occurred_at__lte=instant,
        )
        .order_by("-occurred_at", "-pk")
        .first()
    )
    data = paused.after.get("pause") if paused is not None and isinstance(paused.after, dict) else None
    if not data or not data.get("unused") or not data.get("basis"):
        return None

    def span(value: list[str]) -> Period:
        return Period(datetime.fromisoformat(value[0]), datetime.fromisoformat(value[1]))

    return PauseState(
        paused_at=datetime.fromisoformat(data["paused_at"]),
        remaining_days=int(data["remaining_days"]),
        unused=span(data["unused"]),
        basis=span(data["basis"]),
    )


def _basis(subscription: Subscription, part: Period, version: PlanVersion) -> Period | None:
    """The period whose price covered ``part`` (the proration basis the lifecycle credited it by).

    A part of a paid period (its ``recurring`` mark holds the part's start and ends with it) is a share of
    that period's full period; any other part is the rest of a remainder a pause carried over, a share of
    the basis the lifecycle gave the resumed remainder."""
    marked = (
        SubscriptionCharge.objects.filter(
            subscription=subscription,
            kind=ItemKind.RECURRING,
            period_start__lte=part.start,
            period_end__gt=part.start,
        )
        .order_by("-period_start", "-pk")
        .first()
    )
    if marked is not None and marked.period_end == part.end:
        return _full_period(version, Period(marked.period_start, marked.period_end), subscription.timezone)
    pause = _paused_before(subscription, part.start)
    if pause is None:
        return None
    timezone = subscription.timezone
    first_day = local_date(part.end, timezone) - timedelta(days=pause.remaining_days)
    resumed = Period(local_midnight(first_day, timezone), part.end)
    if not resumed.start <= part.start:
        return None
    return resumed_basis(pause, resumed, ProrationMode(version.proration_mode), timezone)


def _cut_credits(
    subscription: Subscription,
    cut: SubscriptionCharge,
    tax: TaxDecision,
    tax_for: TaxFor,
    language: str,
    labelled: bool = True,
) -> list[_Credit]:
    """The credits of the component and add-on fees for the part of a period the lifecycle's ``cut``
    (a ``CUT_SHORT`` credit) gave back, prorated like the recurring fee's credit (rounded half-up, the
    day of the cut credited by day)."""
    version = _version(cut.plan_version)
    if version is None:
        return []
    part = Period(cut.period_start, cut.period_end)
    basis = _basis(subscription, part, version)
    mode, timezone = ProrationMode(version.proration_mode), subscription.timezone
    quantities = state_at(subscription, part.start).quantities if basis is not None else {}
    credits: list[_Credit] = []
    for charge in version.ordered_charges():
        quantity = quantities.get(charge.code, Decimal(0))
        if charge.kind != ChargeKind.QUANTITY or quantity <= 0 or basis is None:
            continue
        rated = rate(charge.engine_price(), quantity, version.currency).amount
        text = _("%(charge)s × %(quantity)s") % {
            "charge": charge.name(language) or charge.code,
            "quantity": _whole(quantity),
        }
        amount = prorate(rated, basis, part, mode, timezone).amount
        credits.append(_Credit(COMPONENT, charge.code, quantity, amount, text, part, version.public_id, tax))
    attached = (
        SubscriptionAddOn.objects.filter(subscription=subscription, added_at__lt=part.end)
        .select_related("addon")
        .order_by("added_at", "pk")
    )
    product_category = version.plan.product.tax_category
    for attachment in attached:
        addon, quantity = attachment.addon, attachment.quantity_at(part.start)
        if addon.interval() == version.interval():
            unused, paid = part, basis
        else:
            # An add-on with another interval gets back the unused part of its own period.
            paid = subscriptions.addon_period_at(addon, attachment.added_at, part.start, timezone)
            unused = part if paid is None else Period(part.start, paid.end)
        if quantity <= 0 or paid is None:
            continue
        line_tax = tax if addon.tax_category == product_category else tax_for(TaxCategory(addon.tax_category))
        rated = rate(addon.engine_price(), quantity, addon.currency).amount
        text = _("Add-on: %(addon)s × %(quantity)s") % {
            "addon": addon.name(language) or addon.code,
            "quantity": _whole(quantity),
        }
        amount = prorate(rated, paid, unused, mode, timezone).amount
        credits.append(
            _Credit(ADDON, addon.code, quantity, amount, text, unused, version.public_id, line_tax)
        )
    if not labelled:
        return [credit for credit in credits if credit.amount]
    plan = version.name(language) or version.plan.code
    label = _("Credit for unused time: %(plan)s") % {"plan": plan}
    return [replace(credit, text=f"{label} ({credit.text})") for credit in credits if credit.amount]


def _end_credits(
    subscription: Subscription,
    period: Period,
    recurring: SubscriptionCharge | None,
    tax: TaxDecision,
    tax_for: TaxFor,
    language: str,
) -> list[_Credit]:
    """The credits of the add-ons with another interval for the part of their own period after the end
    of a subscription that ended at a period end (a cancellation for the period end, the end of a fixed
    term): nothing cut the period short, yet each such add-on was billed for the whole of its own period
    (or, added or changed since, the rest of it). Billed by the invoice that bills the end: billed in
    advance the closing invoice, billed in arrears the ended period's own one. An end that cut a period
    short is credited with the cut (``_cut_credits``)."""
    ended = subscription.ended_at
    if ended is None:
        return []
    in_arrears = subscription.plan_version.billing_timing == BillingTiming.IN_ARREARS
    if in_arrears:
        if recurring is None or period.end != ended:
            return []
        version_id = recurring.plan_version
    elif period.start != ended or period.end - period.start > timedelta(milliseconds=1):
        return []
    else:
        version_id = subscription.plan_version.public_id
    cut = SubscriptionCharge.objects.filter(
        subscription=subscription,
        kind=ItemKind.PRORATION_CREDIT,
        description__in=CUT_SHORT,
        period_start=ended,
    )
    if cut.exists():
        return []
    version = _version(version_id)
    if version is None:
        return []
    mode, timezone = ProrationMode(version.proration_mode), subscription.timezone
    product_category = version.plan.product.tax_category
    attached = (
        SubscriptionAddOn.objects.filter(subscription=subscription, added_at__lt=ended)
        .select_related("addon")
        .order_by("added_at", "pk")
    )
    credits: list[_Credit] = []
    for attachment in attached:
        addon, quantity = attachment.addon, attachment.quantity_at(ended)
        if addon.interval() == version.interval() or quantity <= 0:
            continue
        paid = subscriptions.addon_period_at(addon, attachment.added_at, ended, timezone)
        if paid is None or paid.start == ended:
            continue
        unused = Period(ended, paid.end)
        line_tax = tax if addon.tax_category == product_category else tax_for(TaxCategory(addon.tax_category))
        rated = rate(addon.engine_price(), quantity, addon.currency).amount
        text = _("Add-on: %(addon)s × %(quantity)s") % {
            "addon": addon.name(language) or addon.code,
            "quantity": _whole(quantity),
        }
        amount = prorate(rated, paid, unused, mode, timezone).amount
        if amount:
            credits.append(
                _Credit(ADDON, addon.code, quantity, amount, text, unused, version.public_id, line_tax)
            )
    plan = version.name(language) or version.plan.code
    label = _("Credit for unused time: %(plan)s") % {"plan": plan}
    return [replace(credit, text=f"{label} ({credit.text})") for credit in credits]


def _credit_line(credit: _Credit) -> LineInput:
    return LineInput(
        description=credit.text,
        quantity=credit.quantity,
        unit_price=_unit_price(-credit.amount, credit.quantity),
        tax=credit.tax,
        amount=-credit.amount,
        kind=ItemKind.PRORATION_CREDIT.value,
        period=(credit.part.start, credit.part.end),
        metadata={"charge" if credit.kind == COMPONENT else ADDON: credit.code},
    )


def _code(line: LineInput) -> str:
    return line.metadata.get("charge") or line.metadata.get(ADDON, "")


def _take_off(lines: list[LineInput], credit: _Credit) -> bool:
    """Billed in arrears: take ``credit`` off the line of its fee for the period (same fee, quantity and
    plan version), which then covers the used part up to the cut; False if there is no such line."""
    for index, line in enumerate(lines):
        if (line.kind, _code(line), line.quantity) != (credit.kind, credit.code, credit.quantity):
            continue
        if line.period is None or line.amount is None or not line.period[0] <= credit.part.start:
            continue
        amount = line.amount - credit.amount
        lines[index] = replace(
            line,
            unit_price=_unit_price(amount, line.quantity),
            amount=amount,
            period=(line.period[0], credit.part.start),
        )
        return True
    return False


def _carried(
    subscription: Subscription, period: Period
) -> tuple[list[SubscriptionCharge], SubscriptionCharge | None]:
    """Billed in arrears, the lifecycle's credits of the parts a pause in ``remaining`` mode carried over
    (``PAUSE_CARRIED``) that begin within ``period``, and the credit whose part the remainder ``period``
    charges back (the ``RESUME_CARRIED`` charge of exactly ``period`` pairs with the credit of the same
    rank, as the billing run stores them), ``None`` if ``period`` is no such remainder."""
    rows = list(
        SubscriptionCharge.objects.filter(subscription=subscription)
        .filter(
            Q(kind=ItemKind.PRORATION_CREDIT, description=PAUSE_CARRIED)
            | Q(kind=ItemKind.PRORATION_CHARGE, description=RESUME_CARRIED)
        )
        .order_by("pk")
    )
    credits = [row for row in rows if row.kind == ItemKind.PRORATION_CREDIT]
    backs = [row for row in rows if row.kind == ItemKind.PRORATION_CHARGE]
    within = [row for row in credits if period.start <= row.period_start < period.end]
    back = next(
        (
            credits[rank]
            for rank, row in enumerate(backs)
            if (row.period_start, row.period_end) == (period.start, period.end) and rank < len(credits)
        ),
        None,
    )
    return within, back


def _carried_fees(
    subscription: Subscription, carried: SubscriptionCharge, tax: TaxDecision, tax_for: TaxFor, language: str
) -> list[_Credit]:
    """The component and add-on fees of the part ``carried`` (a ``PAUSE_CARRIED`` credit) carried over,
    prorated like the base fee's part; an add-on with another interval keeps its own periods."""
    part = Period(carried.period_start, carried.period_end)
    return [
        credit
        for credit in _cut_credits(subscription, carried, tax, tax_for, language, labelled=False)
        if credit.part == part
    ]


def _carried_line(credit: _Credit, period: Period) -> LineInput:
    """The charge of a fee's carried part ``credit`` for the remainder ``period`` it runs in."""
    return LineInput(
        description=credit.text,
        quantity=credit.quantity,
        unit_price=_unit_price(credit.amount, credit.quantity),
        tax=credit.tax,
        amount=credit.amount,
        kind=credit.kind,
        period=(period.start, period.end),
        metadata={"charge" if credit.kind == COMPONENT else ADDON: credit.code},
    )


def period_lines(
    subscription: Subscription, period: Period, tax: TaxDecision, tax_for: TaxFor
) -> list[LineInput]:
    """The component and add-on lines of the invoice for billing period ``period``, and the credits of
    their unused part for the periods cut short that this invoice bills the lifecycle's credit of.

    ``tax`` is the invoice's tax decision; ``tax_for`` decides the tax of an add-on whose tax category
    differs from the plan's product. Without a ``recurring`` charge for ``period`` it has no fee lines.
    """
    recurring, cuts = _marks(subscription, period)
    ended = subscription.ended_at
    in_arrears = subscription.plan_version.billing_timing == BillingTiming.IN_ARREARS
    within, back = _carried(subscription, period) if in_arrears else ([], None)
    if recurring is None and not cuts and back is None and (ended is None or period.start != ended):
        return []
    language = subscription.customer.locale
    lines: list[LineInput] = []
    with translation.override(language):
        version = None if recurring is None else _version(recurring.plan_version)
        if version is not None:
            full = _full_period(version, period, subscription.timezone)
            lines = _component_lines(subscription, period, version, full, tax, language) + _addon_lines(
                subscription, period, version, full, tax, tax_for, language
            )
        elif back is not None:
            # The remainder a pause carried over bills the carried part of the fees (in arrears).
            version = _version(back.plan_version)
            fees = _carried_fees(subscription, back, tax, tax_for, language)
            lines = [_carried_line(fee, period) for fee in fees if fee.version == back.plan_version]
        # The parts carried over leave the fees of the part used before the pause (never a credit line).
        for carried in within:
            for fee in _carried_fees(subscription, carried, tax, tax_for, language):
                if version is not None and fee.version == version.public_id:
                    _take_off(lines, fee)
        credits = [
            credit for cut in cuts for credit in _cut_credits(subscription, cut, tax, tax_for, language)
        ] + _end_credits(subscription, period, recurring, tax, tax_for, language)
    rest = []
    for credit in credits:
        in_period = period.start <= credit.part.start < period.end
        same_version = version is not None and credit.version == version.public_id
        if not (in_arrears and in_period and same_version and _take_off(lines, credit)):
            rest.append(credit)
    return [line for line in lines if line.amount] + [_credit_line(credit) for credit in rest]
