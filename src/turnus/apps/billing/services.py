"""Billing use cases: gather what a period's invoice holds, compose it with the engine, store, number,
correct.

The split follows Kill Bill: ``build_invoice`` loads everything a period's invoice needs and asks the pure
engine to compose it (nothing is written, so the upcoming-invoice preview runs the same code);
``create_draft`` stores that result; ``finalize`` numbers it in the same transaction.

Which period an invoice is for. An invoice is keyed by its *billing period* ``[start, end)``, a period of
the subscription. For a plan billed in advance it is issued when the period begins and holds the
recurring fee of that period, every pending lifecycle charge that began before the period ends
(prorations of earlier changes) and the metered usage since the previous invoice's usage (in arrears, up
to the period start). For a plan billed in arrears it is issued when the period ends and holds the used
recurring fee and the usage of the period itself; the remainder a pause carried over is a billing period
of its own (``carry_over``), so a paused period is invoiced at its original end.
``usage_start``/``usage_end`` record which usage an invoice billed; finalizing closes metering up to
``usage_end``.

Exactly once. Each subscription period an invoice bills has a ``BilledPeriod`` row, unique on
(subscription, period start, period end, kind) and written in the transaction that stores the invoice;
its usage bounds are the ones metering is closed to. An invoice of one subscription has one row (and
``Invoice.subscription`` set); a consolidated invoice (``create_consolidated_draft``) has one per
subscription and no ``Invoice.subscription``: its ``period_*`` span what each row's period shows
(``invoice_period``: a closing period shows what its lines cover), its ``usage_*`` the rows' usage.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from decimal import Decimal
from functools import partial
from typing import Any

from django.db import IntegrityError, connection, transaction
from django.db.models import Q, QuerySet
from django.dispatch import Signal
from django.utils import translation
from django.utils.translation import gettext as _

from turnus.apps.billing import balance, charge_lines
from turnus.apps.billing.components import period_lines
from turnus.apps.billing.models import (
    BilledPeriod,
    BillingSettings,
    CustomerCharge,
    DocumentKind,
    Invoice,
    InvoiceAllowance,
    InvoicedCharge,
    InvoiceLine,
    InvoiceStatus,
    InvoiceVatBreakdown,
    NumberSeries,
)
from turnus.apps.catalog.models import BillingTiming, PlanVersion
from turnus.apps.customers.models import Customer, TaxExempt
from turnus.apps.metering import services as metering
from turnus.apps.metering.queries import UsageLine, usage_for_period
from turnus.apps.subscriptions import services as subscriptions
from turnus.apps.subscriptions import state as states
from turnus.apps.subscriptions.models import Subscription, SubscriptionCharge
from turnus.apps.tenants.models import Tenant
from turnus.core import clock
from turnus.core.audit import record
from turnus.core.bulk import insert_rows
from turnus.core.errors import Conflict, NotFound, ValidationFailed
from turnus.core.ids import new_id
from turnus.core.scope import Scope
from turnus.engine.discounts import Discount
from turnus.engine.invoice import (
    Allowance,
    ComposedInvoice,
    LineInput,
    Totals,
    VatBreakdown,
    check_en16931_totals,
    compose_invoice,
)
from turnus.engine.invoice import InvoiceLine as ComposedLine
from turnus.engine.invoice import credit_note as engine_credit_note
from turnus.engine.lifecycle import (
    PAUSE_CARRIED,
    RESUME_CARRIED,
    ItemKind,
    LifecycleItem,
    SubscriptionStatus,
    carried_over,
)
from turnus.engine.money import MAX_UNIT_PRICE_DECIMALS, Money, currency_digits, round_half_up
from turnus.engine.periods import Period, local_date
from turnus.engine.tax import TaxCategory, TaxDecision, VatCategory, determine_vat

PAYMENT_TERM = timedelta(days=14)
#: Sent after the transaction that issued (numbered) invoices or credit notes commits, with ``invoices``
#: (their public ids: one for a single issue, a whole batch for the billing run). Apps above billing
#: listen (documents renders them); billing knows none of them.
invoice_issued = Signal()
_PLACEHOLDER = re.compile(r"\{(year|seq)(:[^}]*)?\}")


class NothingToInvoice(Conflict):
    """The period holds nothing to bill (no fee, no usage, no pending charge). Nothing was written."""

    code = "nothing_to_invoice"


class InvoiceState(Conflict):
    """The invoice's status forbids this step (e.g. finalizing a paid invoice). Reload it and decide."""

    code = "invoice_state"


class InvoiceTotalsBroken(Conflict):
    """The composed invoice breaks EN 16931's BR-CO rules; this is a bug in Turnus. Nothing was stored."""

    code = "invoice_totals_broken"


@dataclass(frozen=True)
class BuiltInvoice:
    """What ``build_invoice`` found for a period: the engine's composition and where each line came from.

    ``charges`` are the pending lifecycle charges the invoice consumes; ``composed`` is ``None`` when
    there is nothing to bill.
    """

    subscription: Subscription
    period: Period
    usage_period: Period | None
    composed: ComposedInvoice | None
    lines: tuple[LineInput, ...]
    charges: tuple[SubscriptionCharge, ...]
    discounts: tuple[Discount, ...] = field(default=())
    customer_charges: tuple[CustomerCharge, ...] = field(default=())


def get_invoice(
    scope: Scope, public_id: str, *, kind: str = DocumentKind.INVOICE, lock: bool = False
) -> Invoice:
    queryset = Invoice.objects.select_related("customer", "subscription", "credit_note_for")
    if lock:
        queryset = queryset.select_for_update(of=("self",))
    found = queryset.filter(
        tenant_id=scope.tenant_id, livemode=scope.livemode, kind=kind, public_id=public_id
    ).first()
    if found is None:
        noun = "credit note" if kind == DocumentKind.CREDIT_NOTE else "invoice"
        raise NotFound(f"no {noun} {public_id}", field="id")
    return found


# --- what a period's invoice holds -----------------------------------------------------------------


def _tax_decision(
    tenant: Tenant,
    customer: Customer,
    version: PlanVersion,
    supply_day: Any,
    category: TaxCategory | None = None,
) -> TaxDecision:
    return tax_decision(
        tenant, customer, category or TaxCategory(version.plan.product.tax_category), supply_day
    )


def tax_decision(tenant: Tenant, customer: Customer, category: TaxCategory, supply_day: Any) -> TaxDecision:
    """The VAT of a supply of ``category`` (standard, reduced …) to ``customer`` on ``supply_day``."""
    if customer.tax_exempt == TaxExempt.EXEMPT and not tenant.small_business:
        return TaxDecision(VatCategory.E, Decimal(0), customer.country, None, "tax_exempt")
    return determine_vat(
        seller_country=tenant.country,
        buyer_country=customer.country,
        buyer_vat_id=customer.vat_id or None,
        buyer_is_business=customer.is_business or customer.tax_exempt == TaxExempt.REVERSE,
        tax_category=category,
        supply_date=supply_day,
        seller_small_business=tenant.small_business,
    )


def _unit_price(amount: Decimal, quantity: Decimal) -> Decimal:
    if not quantity:
        return amount
    return round_half_up(amount / quantity, MAX_UNIT_PRICE_DECIMALS)


def _charge_description(charge: SubscriptionCharge, plan_name: str) -> str:
    texts = {
        ItemKind.RECURRING: _("Subscription fee: %(plan)s"),
        ItemKind.PRORATION_CREDIT: _("Credit for unused time: %(plan)s"),
        ItemKind.PRORATION_CHARGE: _("Remaining time: %(plan)s"),
        ItemKind.USED: _("Used time: %(plan)s"),
    }
    text = texts[ItemKind(charge.kind)] % {"plan": plan_name}
    if not charge.description.startswith("lifecycle."):
        text = f"{text} ({charge.description})"
    return text


def _plan_name(version: PlanVersion, language: str) -> str:
    return version.name(language) or version.plan.code


def _billing_line(
    charges: Sequence[SubscriptionCharge], kind: str, description: str, tax: TaxDecision
) -> LineInput:
    amount = sum((Decimal(charge.amount) for charge in charges), Decimal(0))
    quantity = Decimal(charges[0].quantity) or Decimal(1)
    period = (min(c.period_start for c in charges), max(c.period_end for c in charges))
    return LineInput(
        description=description,
        quantity=quantity,
        unit_price=_unit_price(amount, quantity),
        tax=tax,
        amount=amount,
        kind=kind,
        period=period,
        metadata={"charges": ",".join(charge.public_id for charge in charges)},
    )


def _is_carried_back(charge: SubscriptionCharge) -> bool:
    return charge.kind == ItemKind.PRORATION_CHARGE and charge.description == RESUME_CARRIED


def _remainders(charges: Sequence[SubscriptionCharge]) -> list[SubscriptionCharge]:
    """The charges among ``charges`` of the remainders a pause carried over, by the remainders' start."""
    found = [charge for charge in charges if _is_carried_back(charge)]
    return sorted(found, key=lambda charge: (charge.period_start, charge.pk))


def _in_remainder(charge: SubscriptionCharge, remainder: SubscriptionCharge) -> bool:
    """Whether ``charge`` belongs to the remainder whose carried part ``remainder`` charges: it begins
    there, and, if it is the credit of a part carried over, a pause within the remainder made it (the
    credit of the remainder's own carried part, stored before that charge, belongs to the period the
    pause interrupted, even if the remainder began on the day of the pause)."""
    if charge.description == PAUSE_CARRIED and charge.pk < remainder.pk:
        return False
    return remainder.period_start <= charge.period_start < remainder.period_end


def _segments(group: Sequence[SubscriptionCharge]) -> list[list[SubscriptionCharge]]:
    """One plan version's charges split where a pause left a gap: those of each remainder the pause
    carried over, after the rest, so that each used span gets a line of its own."""
    remainders = _remainders(group)
    parts: list[list[SubscriptionCharge]] = [[] for _ in range(len(remainders) + 1)]
    for charge in group:
        home = next((i for i, found in enumerate(remainders, 1) if _in_remainder(charge, found)), 0)
        parts[home].append(charge)
    return [part for part in parts if part]


def _used_lines(
    charges: Sequence[SubscriptionCharge],
    versions: dict[str, PlanVersion],
    language: str,
    tax: TaxDecision,
) -> list[LineInput]:
    """In arrears: per plan version, what the lifecycle charged in advance less what it credited equals
    what was used (``lifecycle.used_items``' identity), shown as one ``used`` line over the used span; a
    remainder a pause carried over is a span of its own (``_segments``), so no line spans the pause.

    The prorations of a change to a quantity component or an add-on (their descriptions are not the
    lifecycle's) are no part of the plan's used time: each is a line of its own, as in advance."""
    by_version: dict[str, list[SubscriptionCharge]] = {}
    prorations: list[SubscriptionCharge] = []
    for charge in charges:
        if charge.description.startswith("lifecycle."):
            by_version.setdefault(charge.plan_version, []).append(charge)
        elif charge.amount:  # a 0.00 charge bills nothing: no line
            prorations.append(charge)
    groups = [(version_id, part) for version_id, group in by_version.items() for part in _segments(group)]
    lines = []
    for version_id, group in groups:
        amount = sum((Decimal(charge.amount) for charge in group), Decimal(0))
        if not amount:
            continue
        credits = [c.period_start for c in group if c.kind == ItemKind.PRORATION_CREDIT]
        start = min(c.period_start for c in group)
        end = min(credits) if credits else max(c.period_end for c in group)
        quantity = Decimal(group[0].quantity) or Decimal(1)
        kind, text = ItemKind.USED, _("Used time: %(plan)s")
        if amount < 0:
            kind, text = ItemKind.PRORATION_CREDIT, _("Credit for unused time: %(plan)s")
            start = min(credits)
            end = max(c.period_end for c in group if c.kind == ItemKind.PRORATION_CREDIT)
        text = text % {"plan": _plan_name(versions[version_id], language)}
        lines.append(
            LineInput(
                description=text,
                quantity=quantity,
                unit_price=_unit_price(amount, quantity),
                tax=tax,
                amount=amount,
                kind=kind.value,
                period=(start, end) if start < end else None,
                metadata={"charges": ",".join(charge.public_id for charge in group)},
            )
        )
    for charge in prorations:
        description = _charge_description(charge, _plan_name(versions[charge.plan_version], language))
        lines.append(_billing_line([charge], charge.kind, description, tax))
    return lines


def _of_period(
    subscription: Subscription, period: Period, charges: list[SubscriptionCharge]
) -> list[SubscriptionCharge]:
    """Billed in arrears, which of the pending ``charges`` the invoice of ``period`` bills: all, except
    those of a remainder a pause carried over that is not ``period`` while the subscription runs on (the
    remainder's own invoice bills them once it is over; once the subscription ended, the first invoice
    bills everything left)."""
    others = [found for found in _remainders(charges) if _span(found) != period]
    if subscription.ended_at is not None or not others:
        return charges
    return [charge for charge in charges if not any(_in_remainder(charge, found) for found in others)]


def _previous_periods(subscription: Subscription, period: Period) -> Any:
    """The subscription's periods before ``period`` that an invoice (not voided) billed."""
    return BilledPeriod.objects.filter(
        subscription=subscription, kind=DocumentKind.INVOICE, period_start__lt=period.start
    ).exclude(invoice__status=InvoiceStatus.VOID)


class PeriodReads:
    """What ``collect_lines`` reads besides the subscription, one query per question.

    The billing run's batches answer the same questions from rows loaded for many subscriptions at once
    (``turnus.apps.billing.batch``); both go through ``collect_lines``, so an invoice is composed by one
    code path however it was read."""

    def pending_charges(self, subscription: Subscription, period: Period) -> list[SubscriptionCharge]:
        """The lifecycle charges not yet invoiced that begin before ``period`` ends, oldest first."""
        invoiced = InvoicedCharge.objects.filter(charge__subscription=subscription).values("charge_id")
        return list(
            SubscriptionCharge.objects.filter(subscription=subscription, period_start__lt=period.end)
            .exclude(pk__in=invoiced)
            .order_by("period_start", "public_id")
        )

    def versions(self, public_ids: set[str]) -> dict[str, PlanVersion]:
        return {
            found.public_id: found
            for found in PlanVersion.objects.filter(public_id__in=public_ids).select_related("plan")
        }

    def billed_before(self, subscription: Subscription, period: Period) -> int:
        """How many of the subscription's periods before ``period`` an invoice (not voided) billed."""
        return int(_previous_periods(subscription, period).count())

    def last_usage_end(self, subscription: Subscription, period: Period) -> datetime | None:
        """Up to where the invoices of the periods before ``period`` billed usage."""
        last = _previous_periods(subscription, period).exclude(usage_end=None).order_by("-usage_end").first()
        return None if last is None else last.usage_end

    def period_lines(
        self,
        subscription: Subscription,
        period: Period,
        tax: TaxDecision,
        tax_for: Callable[..., TaxDecision],
    ) -> list[LineInput]:
        return period_lines(subscription, period, tax, tax_for)

    def usage(self, scope: Scope, subscription: Subscription, period: Period) -> list[UsageLine]:
        return usage_for_period(scope, subscription, period)


DATABASE_READS = PeriodReads()


def usage_period(
    subscription: Subscription, period: Period, in_arrears: bool, reads: PeriodReads = DATABASE_READS
) -> Period | None:
    """Which usage the invoice of ``period`` bills: in arrears the period's own; in advance the usage
    after the previous invoice's usage window (or the start) up to the period start."""
    last = reads.last_usage_end(subscription, period)
    if in_arrears:
        start = last if last is not None else period.start
        return Period(start, period.end) if start < period.end else None
    start = last if last is not None else subscription.started_at
    return Period(start, period.start) if start < period.start else None


@dataclass(frozen=True)
class PeriodLines:
    """What one subscription's billing period puts on an invoice, before the customer's one-off charges:
    its lines, the pending lifecycle charges they consume and the coupon that applies to them."""

    subscription: Subscription
    period: Period
    usage_period: Period | None
    lines: tuple[LineInput, ...]
    charges: tuple[SubscriptionCharge, ...]
    discounts: tuple[Discount, ...]
    supply_day: date


def collect_lines(
    tenant: Tenant,
    scope: Scope,
    subscription: Subscription,
    period: Period,
    reads: PeriodReads = DATABASE_READS,
) -> PeriodLines:
    """The lines of ``subscription``'s billing period ``period`` (setup fee, lifecycle charges, component
    and add-on fees, usage) and its coupon, if it applies to this period; nothing is written."""
    customer = subscription.customer
    version = subscription.plan_version
    language = customer.locale
    in_arrears = version.billing_timing == BillingTiming.IN_ARREARS
    supply_day = local_date(period.start, subscription.timezone)
    tax = _tax_decision(tenant, customer, version, supply_day)
    charges = reads.pending_charges(subscription, period)
    if in_arrears:
        charges = _of_period(subscription, period, charges)
    versions = reads.versions({charge.plan_version for charge in charges} | {version.public_id})
    billed_before = reads.billed_before(subscription, period)
    lines: list[LineInput] = []
    with translation.override(language):
        if version.setup_fee and not billed_before:
            lines.append(
                LineInput(
                    description=_("Setup fee: %(plan)s") % {"plan": _plan_name(version, language)},
                    quantity=Decimal(1),
                    unit_price=Decimal(version.setup_fee),
                    tax=tax,
                    kind="setup_fee",
                    discountable=False,
                )
            )
        if in_arrears:
            lines += _used_lines(charges, versions, language, tax)
        else:
            for charge in charges:
                if not charge.amount:  # a 0.00 mark of the lifecycle (see ``components``): no line
                    continue
                description = _charge_description(charge, _plan_name(versions[charge.plan_version], language))
                lines.append(_billing_line([charge], charge.kind, description, tax))
        tax_for = partial(_tax_decision, tenant, customer, version, supply_day)
        lines += reads.period_lines(subscription, period, tax, tax_for)
        usage_in = usage_period(subscription, period, in_arrears, reads)
        if usage_in is not None:
            for usage in reads.usage(scope, subscription, usage_in):
                if not usage.quantity and not usage.amount.amount:
                    continue
                name = (usage.charge_name_de if language.startswith("de") else usage.charge_name_en) or (
                    usage.charge_name_en or usage.charge_name_de or usage.charge
                )
                if usage.group is not None:
                    name = f"{name} ({usage.group})"
                lines.append(
                    LineInput(
                        description=_("Usage: %(charge)s") % {"charge": name},
                        quantity=usage.quantity,
                        unit_price=_unit_price(usage.amount.amount, usage.quantity),
                        tax=tax,
                        amount=usage.amount.amount,
                        kind="usage",
                        period=(usage_in.start, usage_in.end),
                        metadata={"charge": usage.charge, "metric": usage.metric},
                    )
                )
    discounts: tuple[Discount, ...] = ()
    if subscription.coupon is not None:
        discount = subscription.coupon.engine_discount()
        if discount.applies_to(billed_before):
            discounts = (discount,)
    return PeriodLines(subscription, period, usage_in, tuple(lines), tuple(charges), discounts, supply_day)


def _one_off_tax(tenant: Tenant, customer: Customer, supply_day: date) -> Callable[[str], TaxDecision]:
    return lambda category: tax_decision(tenant, customer, TaxCategory(category), supply_day)


def compose_lines(
    currency: str, lines: Sequence[LineInput], discounts: Sequence[Discount], prices_include_tax: bool
) -> ComposedInvoice | None:
    """The engine's composition of ``lines`` (``None`` without lines), checked against EN 16931."""
    if not lines:
        return None
    composed = compose_invoice(currency, lines, discounts=discounts, prices_include_tax=prices_include_tax)
    broken = check_en16931_totals(composed)
    if broken:
        raise InvoiceTotalsBroken(f"the composed invoice breaks {', '.join(broken)}")
    return composed


def build_invoice(scope: Scope, subscription: Subscription, period: Period, *, at: datetime) -> BuiltInvoice:
    """Everything the invoice of ``period`` holds, composed by the engine; nothing is written.

    ``subscription`` comes from ``subscriptions.services.get_subscription`` (customer and plan version
    loaded); its lifecycle charges up to ``at`` must already be stored (``create_draft`` does that).
    """
    tenant = Tenant.objects.get(pk=scope.tenant_id)
    customer = subscription.customer
    version = subscription.plan_version
    part = collect_lines(tenant, scope, subscription, period)
    one_off = charge_lines.pending_charges(customer, version.currency, subscription=subscription)
    lines = [
        *part.lines,
        *charge_lines.charge_lines(
            one_off,
            _one_off_tax(tenant, customer, part.supply_day),
            prices_include_tax=version.prices_include_tax,
        ),
    ]
    composed = compose_lines(version.currency, lines, part.discounts, version.prices_include_tax)
    return BuiltInvoice(
        subscription,
        period,
        part.usage_period,
        composed,
        tuple(lines),
        part.charges,
        part.discounts,
        customer_charges=tuple(one_off),
    )


# --- one invoice for several subscriptions of a customer (consolidated invoicing) ---------------------

DISCOUNT_LINE = "discount"


@dataclass(frozen=True)
class BuiltConsolidated:
    """A consolidated invoice as ``build_consolidated_invoice`` composed it; ``parts`` are the billing
    periods it bills (each with lines of its own)."""

    customer: Customer
    currency: str
    parts: tuple[PeriodLines, ...]
    composed: ComposedInvoice | None
    lines: tuple[LineInput, ...]
    customer_charges: tuple[CustomerCharge, ...] = field(default=())


def _labelled(part: PeriodLines, line: LineInput, label: str) -> LineInput:
    """``line`` of ``part`` on a consolidated invoice: its description names the subscription's plan and
    its metadata the subscription."""
    return replace(
        line,
        description=_("%(plan)s: %(line)s") % {"plan": label, "line": line.description},
        metadata={**line.metadata, "subscription": part.subscription.public_id},
    )


def _split_amount(total: Decimal, weights: Sequence[Decimal], digits: int) -> list[Decimal]:
    """``total`` split in proportion to ``weights`` in minor units; the last part takes the remainder."""
    quantum = Decimal(1).scaleb(-digits)
    weight = sum(weights, Decimal(0))
    parts = [
        round_half_up(total * share / weight, digits).quantize(quantum) if weight else Decimal(0)
        for share in weights[:-1]
    ]
    return [*parts, total - sum(parts, Decimal(0))]


def _discount_lines(
    part: PeriodLines, currency: str, prices_include_tax: bool, label: str
) -> list[LineInput]:
    """The coupon of ``part`` as negative lines of its own: the engine composes ``part``'s lines alone
    with the coupon (exactly what the subscription's own invoice would get) and each allowance it
    computes (one per VAT category) becomes a non-discountable line of that category, so a subscription's
    coupon reduces only its own lines. On a gross-priced invoice a line carries the gross part of the
    discount (what the allowances took off the gross total, split over the categories by their net)."""
    if not part.discounts or not part.lines:
        return []
    alone = compose_invoice(
        currency, part.lines, discounts=part.discounts, prices_include_tax=prices_include_tax
    )
    if not alone.allowances:
        return []
    amounts = [allowance.amount.amount for allowance in alone.allowances]
    if prices_include_tax:
        gross = sum((line.gross_amount.amount for line in alone.lines if line.gross_amount), Decimal(0))
        payable = alone.totals.grand_total.amount + alone.totals.rounding_amount.amount
        amounts = _split_amount(gross - payable, amounts, currency_digits(currency))
    taxes = {(line.tax.category, line.tax.rate): line.tax for line in part.lines}
    return [
        LineInput(
            description=_("%(plan)s: %(line)s")
            % {"plan": label, "line": _("Discount %(code)s") % {"code": allowance.discount_code}},
            quantity=Decimal(1),
            unit_price=-amount,
            tax=taxes[(allowance.category, allowance.rate)],
            amount=-amount,
            kind=DISCOUNT_LINE,
            discountable=False,
            metadata={"discount": allowance.discount_code, "subscription": part.subscription.public_id},
        )
        for allowance, amount in zip(alone.allowances, amounts, strict=True)
        if amount
    ]


def build_consolidated_invoice(
    scope: Scope, items: Sequence[tuple[Subscription, Period]], *, at: datetime
) -> BuiltConsolidated:
    """One invoice for the billing periods ``items`` of one customer's subscriptions (same currency and
    pricing, with or without VAT); nothing is written.

    Each period's lines are collected as for its own invoice (``collect_lines``) and shown under the
    subscription's plan; each subscription's coupon discounts only its own lines (``_discount_lines``);
    the customer's pending one-off charges in the currency (those naming one of the subscriptions or
    none) appear once. Periods without lines of their own are left out (unless no period has any: the
    first then carries the one-off charges, as its own invoice would)."""
    tenant = Tenant.objects.get(pk=scope.tenant_id)
    first = items[0][0]
    customer = first.customer
    currency = first.plan_version.currency
    prices_include_tax = first.plan_version.prices_include_tax
    collected = [collect_lines(tenant, scope, subscription, period) for subscription, period in items]
    parts = [part for part in collected if part.lines]
    lines: list[LineInput] = []
    with translation.override(customer.locale):
        for part in parts:
            label = _plan_name(part.subscription.plan_version, customer.locale)
            lines += [_labelled(part, line, label) for line in part.lines]
            lines += _discount_lines(part, currency, prices_include_tax, label)
    one_off = charge_lines.pending_charges_of(customer, currency, [item[0] for item in items])
    if one_off and not parts:
        parts = collected[:1]
    lines += charge_lines.charge_lines(
        one_off,
        _one_off_tax(tenant, customer, (parts or collected)[0].supply_day),
        prices_include_tax=prices_include_tax,
    )
    composed = compose_lines(currency, lines, (), prices_include_tax)
    return BuiltConsolidated(customer, currency, tuple(parts), composed, tuple(lines), tuple(one_off))


# --- the current billing period ---------------------------------------------------------------------


def billing_period(subscription: Subscription) -> Period:
    """The period an invoice made now is for: the current one in advance, the one just ended in arrears."""
    if subscription.current_period_start is None or subscription.current_period_end is None:
        raise NothingToInvoice(f"subscription {subscription.public_id} is {subscription.status}", field="id")
    current = Period(subscription.current_period_start, subscription.current_period_end)
    if subscription.plan_version.billing_timing != BillingTiming.IN_ARREARS:
        return current
    ended = (
        SubscriptionCharge.objects.filter(
            subscription=subscription, kind=ItemKind.RECURRING, period_end=current.start
        )
        .order_by("-period_start")
        .first()
    )
    if ended is None:
        names = {"subscription": subscription.public_id, "end": current.end.isoformat()}
        if current.start <= subscription.started_at:
            message = _("subscription %(subscription)s is billed in arrears; its first period has not ended")
        else:
            # The period that ended was settled with nothing to bill (or was a trial or a pause).
            message = _(
                "subscription %(subscription)s is billed in arrears and has nothing to invoice now: "
                "nothing is left to bill for the periods that have ended, and the current period is "
                "invoiced when it ends at %(end)s"
            )
        raise NothingToInvoice(message % names, field="id")
    return Period(ended.period_start, ended.period_end)


def billing_charges(subscription: Subscription) -> QuerySet[SubscriptionCharge]:
    """The charges whose periods are billing periods of ``subscription``: the ``recurring`` charge of
    each paid period and, billed in arrears, the charge of each remainder a pause carried over
    (``carry_over``)."""
    return SubscriptionCharge.objects.filter(subscription=subscription).filter(
        Q(kind=ItemKind.RECURRING) | Q(kind=ItemKind.PRORATION_CHARGE, description=RESUME_CARRIED)
    )


def carry_over(scope: Scope, subscription: Subscription) -> None:
    """Billed in arrears, bill the part of a period that a pause in ``remaining`` mode carried over with
    the remainder it runs in, not with the interrupted period.

    While the subscription is paused, the lifecycle's credit of that part (``lifecycle.carried_over``) is
    stored once, so the interrupted period's invoice at its original end bills the part used before the
    pause. Once the pause is over, the same amount is charged back (``RESUME_CARRIED``) for the remainder,
    whose invoice bills it when the remainder is over or cut short (its period is a billing period,
    ``billing_charges``); should the subscription have ended during the pause, it is charged back over
    the carried part itself, where the credit of a cancellation meets it, unless the interrupted
    period's invoice is still to come: then the credit is dropped and that invoice bills as if there had
    been none. Called by the billing run before it looks for due periods; a repeated call adds nothing.
    """
    if subscription.plan_version.billing_timing != BillingTiming.IN_ARREARS:
        return
    charges = SubscriptionCharge.objects.filter(subscription=subscription)
    credits = list(charges.filter(kind=ItemKind.PRORATION_CREDIT, description=PAUSE_CARRIED).order_by("pk"))
    state = states.load(subscription, states.TermsCache())
    fresh = carried_over(state)
    if fresh and all(_span(credit) != fresh[0].period for credit in credits):
        SubscriptionCharge.objects.bulk_create(subscriptions.charge_rows(scope, subscription, fresh))
    in_pause = fresh[0].period if fresh else None
    charged_back = charges.filter(kind=ItemKind.PRORATION_CHARGE, description=RESUME_CARRIED).count()
    over = [credit for credit in credits[charged_back:] if _span(credit) != in_pause]
    for credit in over:
        if subscription.ended_at is not None and not InvoicedCharge.objects.filter(charge=credit).exists():
            credit.delete()
            continue
        remainder = _span(credit)
        current = state.current_period
        if credit is over[-1] and state.status is SubscriptionStatus.ACTIVE and current is not None:
            paid = charges.filter(kind=ItemKind.RECURRING, period_start=current.start, period_end=current.end)
            remainder = remainder if paid.exists() else current
        back = LifecycleItem(
            ItemKind.PRORATION_CHARGE,
            credit.plan_version,
            remainder,
            -Money(Decimal(credit.amount), credit.currency),
            RESUME_CARRIED,
            Decimal(credit.quantity),
        )
        SubscriptionCharge.objects.bulk_create(subscriptions.charge_rows(scope, subscription, [back]))


def _span(charge: SubscriptionCharge) -> Period:
    return Period(charge.period_start, charge.period_end)


#: The length of a closing period (``closing_period``): a period must not be empty, and one microsecond
#: (the precision the databases store) keeps it apart from every period of the subscription's schedule.
CLOSING_SPAN = timedelta(microseconds=1)


def closing_period(subscription: Subscription) -> Period:
    """The closing period of an ended subscription billed in advance: ``[ended_at, ended_at + 1µs)``.

    Billed in advance, an invoice holds the usage up to its period's start and the pending lifecycle
    charges that begin before its end; the period beginning at the end therefore bills the usage after
    the last invoice's usage window up to the end and the charges the end created (the credit of a
    cancellation), and no fee (the lifecycle charged none for it). Its ``BilledPeriod`` row makes it
    billed once; the invoice itself shows the span its lines cover (``invoice_period``). Raises
    ``NothingToInvoice`` when the subscription has not ended or is billed in arrears (there the ended
    period's own invoice bills its usage).

    A subscription that ends through a call (cancelled now) is due for the billing run at once
    (``receivers``), so its closing invoice comes with the next run, not at the interrupted period's end."""
    if subscription.ended_at is None:
        raise NothingToInvoice(f"subscription {subscription.public_id} has not ended", field="id")
    if subscription.plan_version.billing_timing == BillingTiming.IN_ARREARS:
        last = (
            billing_charges(subscription).order_by("-period_end").values_list("period_end", flat=True).first()
        )
        if last is None or last >= subscription.ended_at:
            raise NothingToInvoice(
                f"subscription {subscription.public_id} is billed in arrears; "
                "its last period bills its usage",
                field="id",
            )
    return Period(subscription.ended_at, subscription.ended_at + CLOSING_SPAN)


def _is_closing(subscription: Subscription, period: Period) -> bool:
    ended = subscription.ended_at
    return ended is not None and period.start == ended and period.duration == CLOSING_SPAN


def invoice_period(built: BuiltInvoice) -> Period:
    """The service period the invoice of ``built`` shows (``Invoice.period_*``, the PDF's service period).

    It is the billing period, except for a closing period (``closing_period``), whose one microsecond
    only keys the ``BilledPeriod`` row: its invoice shows the span its lines and its usage window cover,
    e.g. the usage from the last invoice's usage end to the end and the credit from the end to where the
    interrupted period would have ended. Should nothing have a period (only one-off charges), the closing
    period stays, which reads as the day the subscription ended."""
    return _shown_period(built.subscription, built.period, built.lines, built.usage_period)


def _shown_period(
    subscription: Subscription, period: Period, lines: Sequence[LineInput], usage: Period | None
) -> Period:
    """What ``invoice_period`` shows for billing period ``period`` of ``subscription`` with ``lines`` and
    the usage window ``usage``; a consolidated invoice spans this of each of its periods."""
    if not _is_closing(subscription, period):
        return period
    spans = [line.period for line in lines if line.period is not None]
    if usage is not None:
        spans.append((usage.start, usage.end))
    if not spans:
        return period
    start = min(span[0] for span in spans)
    end = max(period.start, *(span[1] for span in spans))
    return Period(start, end) if start < end else period


def _caught_up(scope: Scope, subscription_id: str) -> Subscription:
    """The locked subscription, its lifecycle advanced to now and the charges that caused stored."""
    subscription = subscriptions.get_subscription(scope, subscription_id, lock=True)
    due = subscription.next_event_at
    if due is None or due > clock.now():
        return subscription
    subscriptions.advance_subscription(scope, subscription_id)
    return subscriptions.get_subscription(scope, subscription_id, lock=True)


def _preview_period(subscription: Subscription) -> Period:
    """The period the preview is for: the billing period; for an ended subscription billed in advance its
    closing period while its closing invoice is still to be made (``NothingToInvoice`` once it is)."""
    try:
        return billing_period(subscription)
    except NothingToInvoice:
        if subscription.ended_at is None:
            raise
    period = closing_period(subscription)
    if _existing_draft(subscription, period) is not None:
        raise NothingToInvoice(
            f"subscription {subscription.public_id} ended and its closing invoice was made", field="id"
        )
    return period


def preview_invoice(scope: Scope, subscription_id: str) -> BuiltInvoice:
    """The invoice ``create_draft`` would make now, by the same code, without writing anything: for an
    ended subscription its closing invoice, while that is still to be made. ``period`` is the period the
    invoice would show (``invoice_period``)."""
    with transaction.atomic():
        subscription = _caught_up(scope, subscription_id)
        built = build_invoice(scope, subscription, _preview_period(subscription), at=clock.now())
        transaction.set_rollback(True)
    return replace(built, period=invoice_period(built))


# --- storing -----------------------------------------------------------------------------------------


def _supplier(tenant: Tenant) -> dict[str, str]:
    return {
        "name": tenant.legal_name,
        "address_line1": tenant.address_line1,
        "address_line2": tenant.address_line2,
        "postal_code": tenant.postal_code,
        "city": tenant.city,
        "country": tenant.country,
        "vat_id": tenant.vat_id,
        "tax_number": tenant.tax_number,
        "email": tenant.email,
        # For e-invoices (XRechnung's seller contact) and the payment details: copied so that a later
        # change of the tenant's telephone or bank account never alters an issued document.
        "phone": tenant.phone,
        "contact_name": tenant.contact_name,
        "iban": tenant.iban,
        "bic": tenant.bic,
    }


def _recipient(customer: Customer) -> dict[str, str]:
    return {
        "name": customer.name,
        "company": customer.company,
        "address_line1": customer.address_line1,
        "address_line2": customer.address_line2,
        "postal_code": customer.postal_code,
        "city": customer.city,
        "state": customer.state,
        "country": customer.country,
        "vat_id": customer.vat_id,
        "email": customer.email,
        # E-invoicing: which e-invoice the customer wants and how it is addressed (BT-10, BT-49).
        "einvoice_format": customer.einvoice_format,
        "buyer_reference": customer.buyer_reference,
        "electronic_address": customer.electronic_address,
    }


def unsaved_invoice(
    scope: Scope,
    tenant: Tenant,
    composed: ComposedInvoice,
    *,
    customer: Customer,
    subscription: Subscription | None,
    kind: str,
    status: str,
    period: tuple[datetime | None, datetime | None],
    usage: tuple[datetime | None, datetime | None] = (None, None),
    credit_note_for: Invoice | None = None,
    reason: str = "",
) -> Invoice:
    """The invoice row of ``composed`` (not saved; ``invoice_parts`` gives its lines)."""
    now = clock.now()
    totals = composed.totals
    return Invoice(
        public_id=new_id("cn" if kind == DocumentKind.CREDIT_NOTE else "inv", at=now),
        tenant_id=scope.tenant_id,
        livemode=scope.livemode,
        created_at=now,
        customer=customer,
        subscription=subscription,
        kind=kind,
        status=status,
        currency=composed.currency,
        locale=customer.locale,
        period_start=period[0],
        period_end=period[1],
        usage_start=usage[0],
        usage_end=usage[1],
        supplier=_supplier(tenant),
        recipient=_recipient(customer),
        prices_include_tax=composed.prices_include_tax,
        line_total=totals.line_total.amount,
        allowance_total=totals.allowance_total.amount,
        tax_exclusive=totals.tax_exclusive.amount,
        tax_total=totals.tax_total.amount,
        grand_total=totals.grand_total.amount,
        rounding_amount=totals.rounding_amount.amount,
        prepaid=totals.prepaid.amount,
        amount_due=totals.amount_due.amount,
        credit_note_for=credit_note_for,
        reason=reason,
    )


LINE_COLUMNS = (
    "invoice",
    "position",
    "description",
    "quantity",
    "unit_price",
    "net_amount",
    "gross_amount",
    "vat_category",
    "vat_rate",
    "vat_country",
    "vat_reason",
    "vat_note",
    "kind",
    "period_start",
    "period_end",
    "metadata",
)
VAT_COLUMNS = ("invoice", "category", "rate", "taxable_amount", "tax_amount", "reason_code", "note")
ALLOWANCE_COLUMNS = ("invoice", "discount_code", "category", "rate", "amount")


@dataclass(frozen=True)
class InvoiceParts:
    """The rows of an invoice's lines, VAT breakdown and allowances (values in the order of
    ``LINE_COLUMNS``, ``VAT_COLUMNS``, ``ALLOWANCE_COLUMNS``)."""

    lines: list[tuple[Any, ...]]
    vat_breakdown: list[tuple[Any, ...]]
    allowances: list[tuple[Any, ...]]


def invoice_parts(invoice_pk: int, composed: ComposedInvoice) -> InvoiceParts:
    """The line, VAT breakdown and allowance rows of ``composed`` for the saved invoice ``invoice_pk``."""
    lines = [
        (
            invoice_pk,
            position,
            line.description[:300],
            line.quantity,
            line.unit_price,
            line.net_amount.amount,
            None if line.gross_amount is None else line.gross_amount.amount,
            line.tax.category.value,
            line.tax.rate,
            line.tax.country or "",
            line.tax.reason_code or "",
            line.tax.note or "",
            line.kind,
            line.period[0] if line.period else None,
            line.period[1] if line.period else None,
            dict(line.metadata),
        )
        for position, line in enumerate(composed.lines, start=1)
    ]
    vat_breakdown = [
        (
            invoice_pk,
            group.category.value,
            group.rate,
            group.taxable_amount.amount,
            group.tax_amount.amount,
            group.reason_code or "",
            group.note or "",
        )
        for group in composed.vat_breakdown
    ]
    allowances = [
        (invoice_pk, item.discount_code, item.category.value, item.rate, item.amount.amount)
        for item in composed.allowances
    ]
    return InvoiceParts(lines, vat_breakdown, allowances)


def save_parts(parts: Sequence[InvoiceParts]) -> None:
    """Store the rows of invoices saved before, a statement per table (and per ``ROWS_PER_STATEMENT``).
    Invoice parts are written once, with their draft invoice, and never changed (``InvoicePart``)."""
    insert_rows(InvoiceLine, LINE_COLUMNS, [line for part in parts for line in part.lines])
    insert_rows(InvoiceVatBreakdown, VAT_COLUMNS, [group for part in parts for group in part.vat_breakdown])
    insert_rows(InvoiceAllowance, ALLOWANCE_COLUMNS, [item for part in parts for item in part.allowances])


def _store(scope: Scope, composed: ComposedInvoice, **fields: Any) -> Invoice:
    """Save the invoice of ``composed`` with its lines; ``fields`` as ``unsaved_invoice`` takes them."""
    invoice = unsaved_invoice(scope, Tenant.objects.get(pk=scope.tenant_id), composed, **fields)
    invoice.save()
    save_parts([invoice_parts(invoice.pk, composed)])
    return invoice


def snapshot(invoice: Invoice) -> dict[str, Any]:
    return {
        "id": invoice.public_id,
        "kind": invoice.kind,
        "status": invoice.status,
        "number": invoice.number,
        "customer": invoice.customer.public_id,
        "subscription": invoice.subscription.public_id if invoice.subscription else None,
        "currency": invoice.currency,
        "amount_due": format(Decimal(invoice.amount_due), "f"),
        "period_start": invoice.period_start.isoformat() if invoice.period_start else None,
        "period_end": invoice.period_end.isoformat() if invoice.period_end else None,
    }


@dataclass(frozen=True)
class Drafted:
    invoice: Invoice
    created: bool


def _existing_draft(subscription: Subscription, period: Period) -> Invoice | None:
    """The invoice that billed ``subscription``'s ``period`` (alone or consolidated), if any."""
    billed = BilledPeriod.objects.filter(
        subscription=subscription,
        kind=DocumentKind.INVOICE,
        period_start=period.start,
        period_end=period.end,
    ).values("invoice_id")
    return Invoice.objects.select_related("customer", "subscription").filter(pk__in=billed).first()


def _bill_period(
    invoice: Invoice, subscription: Subscription, period: Period, usage: tuple[Any, Any]
) -> None:
    """Record that ``invoice`` bills ``period`` of ``subscription``; a second record of one period fails
    on the unique constraint (``IntegrityError``), which rolls the invoice back with it."""
    billed_period(invoice, subscription, period, usage).save()


def billed_period(
    invoice: Invoice, subscription: Subscription, period: Period, usage: tuple[Any, Any]
) -> BilledPeriod:
    """The (unsaved) record that ``invoice`` bills ``period`` of ``subscription``."""
    return BilledPeriod(
        invoice=invoice,
        subscription=subscription,
        kind=DocumentKind.INVOICE,
        period_start=period.start,
        period_end=period.end,
        usage_start=usage[0],
        usage_end=usage[1],
    )


def create_draft(scope: Scope, subscription_id: str, period: Period | None = None) -> Drafted:
    """Store the draft invoice of ``period`` (default: ``billing_period`` as of now) and mark the
    pending charges it bills as invoiced. A second call for the same period changes nothing and returns
    the invoice made first (the unique constraint decides, also between concurrent callers). The invoice
    shows ``invoice_period``; its ``BilledPeriod`` row keeps ``period``."""
    try:
        with transaction.atomic():
            subscription = _caught_up(scope, subscription_id)
            period = period or billing_period(subscription)
            existing = _existing_draft(subscription, period)
            if existing is not None:
                return Drafted(existing, False)
            built = build_invoice(scope, subscription, period, at=clock.now())
            if built.composed is None:
                raise NothingToInvoice(
                    f"nothing to invoice for subscription {subscription.public_id} in "
                    f"[{period.start.isoformat()}, {period.end.isoformat()})",
                    field="id",
                )
            usage = (
                (built.usage_period.start, built.usage_period.end)
                if built.usage_period
                else (period.start, period.start)
            )
            shown = invoice_period(built)
            invoice = _store(
                scope,
                built.composed,
                customer=subscription.customer,
                subscription=subscription,
                kind=DocumentKind.INVOICE,
                status=InvoiceStatus.DRAFT,
                period=(shown.start, shown.end),
                usage=usage,
            )
            _bill_period(invoice, subscription, period, usage)
            InvoicedCharge.objects.bulk_create(
                InvoicedCharge(charge=charge, invoice=invoice) for charge in built.charges
            )
            charge_lines.attach(invoice, built.customer_charges)
            record(scope, "invoice.created", "invoice", invoice.public_id, after=snapshot(invoice))
            return Drafted(invoice, True)
    except IntegrityError:
        subscription = subscriptions.get_subscription(scope, subscription_id)
        found = _existing_draft(subscription, period) if period is not None else None
        if found is None:
            raise
        return Drafted(found, False)


def settle_period(subscription: Subscription, period: Period) -> None:
    """Settle ``period`` of ``subscription``, whose invoice would hold nothing (``NothingToInvoice``):
    nothing is stored for it, and the 0.00 marks among the pending charges that invoice would have
    consumed (a plan without a base fee marks its paid and cut-short periods for their component and
    add-on fees, ``subscriptions.services.charge_rows``) are dropped once their period is over or the
    subscription ended, since they can bill nothing any more; so the billing run does not take their
    periods up again. The mark of a period still under way stays: a change within it (seats added, then
    a cancellation now) still bills and credits by it. Billed in arrears, the pending charges of an ended
    subscription that cancel out per plan version (a carried-over part charged back and credited on a
    cancellation during the pause, ``carry_over``) are dropped too."""
    now = clock.now()
    ended = subscription.ended_at is not None and subscription.ended_at <= now
    pending = DATABASE_READS.pending_charges(subscription, period)
    settled = [
        charge.pk for charge in pending if not Decimal(charge.amount) and (ended or charge.period_end <= now)
    ]
    if ended and subscription.plan_version.billing_timing == BillingTiming.IN_ARREARS:
        # Billed in arrears, charges that cancel out per plan version bill nothing, now or ever.
        net: dict[str, Decimal] = {}
        for charge in pending:
            net[charge.plan_version] = net.get(charge.plan_version, Decimal(0)) + Decimal(charge.amount)
        if not any(net.values()):
            settled = [charge.pk for charge in pending]
    if settled:
        SubscriptionCharge.objects.filter(pk__in=settled).delete()


def usage_bounds(part: PeriodLines) -> tuple[datetime, datetime]:
    usage = part.usage_period
    return (usage.start, usage.end) if usage is not None else (part.period.start, part.period.start)


def create_consolidated_draft(scope: Scope, items: Sequence[tuple[str, Period]]) -> list[Drafted]:
    """Store one draft invoice for the billing periods ``items`` (subscription id, period) of one
    customer's subscriptions in one currency (``build_consolidated_invoice``), with one ``BilledPeriod``
    per period it bills, in one transaction. Periods already billed are skipped; when only one period
    has anything to bill it gets its own invoice (``create_draft``). Returns the invoices made (none:
    nothing to bill). The per-period rows decide between concurrent callers: a period billed meanwhile
    by someone else rolls this attempt back, and it is made once more without that period."""
    for attempt in range(2):
        try:
            return _create_consolidated(scope, items)
        except IntegrityError:
            if attempt:
                raise
    raise AssertionError  # pragma: no cover


def _draft_alone(scope: Scope, subscription: Subscription, period: Period) -> list[Drafted]:
    try:
        drafted = create_draft(scope, subscription.public_id, period)
    except NothingToInvoice:
        settle_period(subscription, period)
        return []
    return [drafted] if drafted.created else []


def _create_consolidated(scope: Scope, items: Sequence[tuple[str, Period]]) -> list[Drafted]:
    with transaction.atomic():
        todo = []
        for subscription_id, period in items:
            subscription = _caught_up(scope, subscription_id)
            if _existing_draft(subscription, period) is None:
                todo.append((subscription, period))
        if len(todo) <= 1:
            return [found for sub, period in todo for found in _draft_alone(scope, sub, period)]
        built = build_consolidated_invoice(scope, todo, at=clock.now())
        billed = {part.subscription.pk for part in built.parts}
        for subscription, period in todo:
            if subscription.pk not in billed:
                settle_period(subscription, period)
        if built.composed is None:
            return []
        if len(built.parts) == 1:
            part = built.parts[0]
            return _draft_alone(scope, part.subscription, part.period)
        parts = built.parts
        usages = [usage_bounds(part) for part in parts]
        shown = [
            _shown_period(part.subscription, part.period, part.lines, part.usage_period) for part in parts
        ]
        invoice = _store(
            scope,
            built.composed,
            customer=built.customer,
            subscription=None,
            kind=DocumentKind.INVOICE,
            status=InvoiceStatus.DRAFT,
            period=(min(p.start for p in shown), max(p.end for p in shown)),
            usage=(min(u[0] for u in usages), max(u[1] for u in usages)),
        )
        for part, usage in zip(parts, usages, strict=True):
            _bill_period(invoice, part.subscription, part.period, usage)
        InvoicedCharge.objects.bulk_create(
            InvoicedCharge(charge=charge, invoice=invoice) for part in parts for charge in part.charges
        )
        charge_lines.attach(invoice, built.customer_charges)
        record(scope, "invoice.created", "invoice", invoice.public_id, after=snapshot(invoice))
        return [Drafted(invoice, True)]


# --- settings ---------------------------------------------------------------------------------------


MAX_DRAFT_GRACE_PERIOD = timedelta(days=90)


def billing_settings(scope: Scope) -> BillingSettings:
    """The tenant's billing settings (the defaults, unsaved, for a tenant without a row)."""
    found = BillingSettings.objects.filter(tenant_id=scope.tenant_id).first()
    return found if found is not None else BillingSettings(tenant_id=scope.tenant_id)


def _settings_snapshot(settings: BillingSettings) -> dict[str, Any]:
    return {
        "draft_grace_period": settings.draft_grace_period.total_seconds(),
        "consolidate_invoices": settings.consolidate_invoices,
    }


@transaction.atomic
def update_billing_settings(
    scope: Scope, *, draft_grace_period: timedelta | None = None, consolidate_invoices: bool | None = None
) -> BillingSettings:
    """Change the tenant's billing settings; ``None`` leaves a setting as it is.

    ``draft_grace_period``: how long the billing run keeps new invoices as drafts (0: finalize at once,
    at most 90 days). ``consolidate_invoices``: whether the billing run puts a customer's subscriptions
    due in the same run (same currency) on one invoice."""
    if draft_grace_period is not None and draft_grace_period < timedelta(0):
        raise ValidationFailed("the draft grace period cannot be negative", field="draft_grace_period")
    if draft_grace_period is not None and draft_grace_period > MAX_DRAFT_GRACE_PERIOD:
        raise ValidationFailed("the draft grace period is at most 90 days", field="draft_grace_period")
    settings, _created = BillingSettings.objects.select_for_update().get_or_create(tenant_id=scope.tenant_id)
    before = _settings_snapshot(settings)
    if draft_grace_period is not None:
        settings.draft_grace_period = draft_grace_period
    if consolidate_invoices is not None:
        settings.consolidate_invoices = consolidate_invoices
    settings.save(update_fields=("draft_grace_period", "consolidate_invoices"))
    after = _settings_snapshot(settings)
    tenant_id = Tenant.objects.values_list("public_id", flat=True).get(pk=scope.tenant_id)
    record(scope, "billing_settings.updated", "tenant", tenant_id, before=before, after=after)
    return settings


def set_draft_grace_period(scope: Scope, grace: timedelta) -> BillingSettings:
    """How long the billing run keeps new invoices of the tenant as drafts (0: finalize at once)."""
    return update_billing_settings(scope, draft_grace_period=grace)


# --- numbering and state moves ------------------------------------------------------------------------


def format_number(template: str, *, year: int, seq: int) -> str:
    return template.format(year=year, seq=seq)


def check_number_format(template: str, *, field: str) -> None:
    """Refuse a number format that cannot number a series (no ``{seq}``, unknown placeholders)."""
    if "{seq" not in template:
        raise ValidationFailed(
            "the number format needs a {seq} placeholder, e.g. RE-{year}-{seq:06}", field=field
        )
    try:
        format_number(template, year=2026, seq=1)
    except (KeyError, ValueError, IndexError) as error:
        raise ValidationFailed(f"the number format is invalid: {error}", field=field) from None


def _count_up(key: dict[str, Any], by: int) -> int | None:
    """Add ``by`` to the series ``key`` and return its new counter (``None``: no such series yet). One
    statement; the row stays locked until the transaction ends, so numbers have no gaps."""
    table = connection.ops.quote_name(NumberSeries._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} SET counter = counter + %s "  # noqa: S608 (model metadata)
            "WHERE tenant_id = %s AND livemode = %s AND kind = %s AND year = %s RETURNING counter",
            [by, key["tenant_id"], key["livemode"], key["kind"], key["year"]],
        )
        row = cursor.fetchone()
    return None if row is None else int(row[0])


def next_numbers(scope: Scope, kind: str, issued_on: date, count: int, template: str) -> list[str]:
    """The next ``count`` numbers of the tenant's series for ``kind`` formatted by ``template`` (the
    tenant's number format), taken in one statement: the series row stays locked until the transaction
    ends, so a series has no gaps."""
    check_number_format(template, field="number_format")
    year = issued_on.year if "{year" in template else 0
    key: dict[str, Any] = {
        "tenant_id": scope.tenant_id,
        "livemode": scope.livemode,
        "kind": kind,
        "year": year,
    }
    counter = _count_up(key, count)
    while counter is None:
        NumberSeries.objects.get_or_create(**key)
        counter = _count_up(key, count)
    return [
        format_number(template, year=issued_on.year, seq=seq)
        for seq in range(counter - count + 1, counter + 1)
    ]


def number_format(tenant: Tenant, kind: str) -> str:
    return (
        tenant.credit_note_number_format if kind == DocumentKind.CREDIT_NOTE else tenant.invoice_number_format
    )


def issue(invoice: Invoice, number: str, issued_on: date, now: datetime, *, announce: bool = True) -> None:
    """Set what issuing ``invoice`` sets (number, dates, status); announce it after the commit (unless the
    caller announces many at once: ``announce_issued``)."""
    invoice.number = number
    invoice.issue_date = issued_on
    invoice.due_date = issued_on + PAYMENT_TERM
    invoice.status = InvoiceStatus.FINALIZED
    invoice.finalized_at = now
    if announce:
        announce_issued([invoice.public_id])


def announce_issued(public_ids: list[str]) -> None:
    """Once the current transaction commits, send ``invoice_issued`` for the invoices ``public_ids``."""
    if public_ids:
        transaction.on_commit(lambda: invoice_issued.send(Invoice, invoices=public_ids), robust=True)


def _issue(scope: Scope, invoice: Invoice, now: datetime) -> None:
    tenant = Tenant.objects.get(pk=scope.tenant_id)
    issued_on = local_date(now, tenant.timezone)
    number = next_numbers(scope, invoice.kind, issued_on, 1, number_format(tenant, invoice.kind))[0]
    issue(invoice, number, issued_on, now)


def _check_totals(invoice: Invoice) -> None:
    broken = check_en16931_totals(_composed_from(invoice))
    if broken:
        raise InvoiceTotalsBroken(f"invoice {invoice.public_id} breaks {', '.join(broken)}")


@transaction.atomic
def finalize(scope: Scope, invoice_id: str) -> Invoice:
    """Number the draft from the tenant's series, in this transaction, and close its usage in metering.

    The customer's credit in the invoice's currency pays as much of it as it can (``balance``); an
    invoice the credit pays in full is paid at once."""
    invoice = get_invoice(scope, invoice_id, lock=True)
    if invoice.status != InvoiceStatus.DRAFT:
        raise InvoiceState(
            f"invoice {invoice_id} is {invoice.status}; only a draft can be finalized", field="id"
        )
    before = snapshot(invoice)
    if balance.apply_credit(scope, invoice):
        _check_totals(invoice)
    _issue(scope, invoice, clock.now())
    if Decimal(invoice.prepaid) > 0 and Decimal(invoice.amount_due) <= 0:
        invoice.status, invoice.paid_at = InvoiceStatus.PAID, invoice.finalized_at
    invoice.save()
    billed = invoice.billed_periods.exclude(usage_end=None).select_related("subscription").order_by("pk")
    for period in billed:
        if period.usage_end is not None:
            metering.close_usage(scope, period.subscription.public_id, period.usage_end)
    record(scope, "invoice.finalized", "invoice", invoice.public_id, before=before, after=snapshot(invoice))
    return invoice


@transaction.atomic
def void(scope: Scope, invoice_id: str) -> Invoice:
    invoice = get_invoice(scope, invoice_id, lock=True)
    if invoice.status not in (InvoiceStatus.DRAFT, InvoiceStatus.FINALIZED):
        raise InvoiceState(f"invoice {invoice_id} is {invoice.status} and cannot be voided", field="id")
    if invoice.credit_notes.exclude(status=InvoiceStatus.VOID).exists():
        raise InvoiceState(f"invoice {invoice_id} has credit notes and cannot be voided", field="id")
    before = snapshot(invoice)
    if invoice.status == InvoiceStatus.DRAFT:
        charge_lines.release(invoice)
    else:
        balance.restore_credit(scope, invoice)
    invoice.status, invoice.voided_at = InvoiceStatus.VOID, clock.now()
    invoice.save(update_fields=("status", "voided_at"))
    record(scope, "invoice.voided", "invoice", invoice.public_id, before=before, after=snapshot(invoice))
    return invoice


@transaction.atomic
def mark_paid(scope: Scope, invoice_id: str) -> Invoice:
    invoice = get_invoice(scope, invoice_id, lock=True)
    if invoice.status != InvoiceStatus.FINALIZED:
        raise InvoiceState(
            f"invoice {invoice_id} is {invoice.status}; only a finalized one can be paid", field="id"
        )
    before = snapshot(invoice)
    invoice.status, invoice.paid_at = InvoiceStatus.PAID, clock.now()
    invoice.save(update_fields=("status", "paid_at"))
    record(scope, "invoice.paid", "invoice", invoice.public_id, before=before, after=snapshot(invoice))
    return invoice


# --- credit notes -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CreditLine:
    """Credit ``amount`` (net, or gross for a tax-inclusive invoice) of the invoice's line ``line``
    (1-based position); ``None`` credits the whole line."""

    line: int
    amount: Decimal | None = None


def _tax_of(line: InvoiceLine) -> TaxDecision:
    return TaxDecision(
        VatCategory(line.vat_category),
        Decimal(line.vat_rate),
        line.vat_country or None,
        line.vat_reason or None,
        line.vat_note or None,
    )


def _credit_inputs(invoice: Invoice, lines: Sequence[CreditLine]) -> list[LineInput]:
    stored = {line.position: line for line in invoice.lines.all()}
    inputs = []
    for index, wanted in enumerate(lines):
        line = stored.get(wanted.line)
        if line is None:
            raise ValidationFailed(
                f"invoice {invoice.public_id} has no line {wanted.line}", field=f"lines[{index}].line"
            )
        full = Decimal(
            line.gross_amount
            if invoice.prices_include_tax and line.gross_amount is not None
            else line.net_amount
        )
        amount = full if wanted.amount is None else wanted.amount
        if amount <= 0 or amount > full:
            raise ValidationFailed(
                f"the credited amount must be above 0 and at most the line's {full}",
                field=f"lines[{index}].amount",
            )
        inputs.append(
            LineInput(
                description=line.description,
                quantity=Decimal(1),
                unit_price=amount,
                tax=_tax_of(line),
                amount=amount,
                kind=line.kind,
                period=(line.period_start, line.period_end)
                if line.period_start and line.period_end
                else None,
                metadata={"credits_line": str(line.position)},
            )
        )
    return inputs


def _composed_from(invoice: Invoice) -> ComposedInvoice:
    """The stored invoice as the engine's composition (for a full credit note)."""

    def money(value: Any) -> Money:
        return Money(Decimal(value), invoice.currency).rounded()

    lines = tuple(
        ComposedLine(
            line.description,
            Decimal(line.quantity),
            Decimal(line.unit_price),
            money(line.net_amount),
            _tax_of(line),
            line.kind,
            (line.period_start, line.period_end) if line.period_start and line.period_end else None,
            dict(line.metadata),
            None if line.gross_amount is None else money(line.gross_amount),
        )
        for line in invoice.lines.all()
    )
    allowances = tuple(
        Allowance(a.discount_code, VatCategory(a.category), Decimal(a.rate), money(a.amount))
        for a in invoice.allowances.all()
    )
    breakdown = tuple(
        VatBreakdown(
            VatCategory(g.category),
            Decimal(g.rate),
            money(g.taxable_amount),
            money(g.tax_amount),
            g.reason_code or None,
            g.note or None,
        )
        for g in invoice.vat_breakdown.all()
    )
    totals = Totals(
        *(
            money(getattr(invoice, name))
            for name in (
                "line_total",
                "allowance_total",
                "tax_exclusive",
                "tax_total",
                "grand_total",
                "rounding_amount",
                "prepaid",
                "amount_due",
            )
        )
    )
    return ComposedInvoice(
        invoice.currency, lines, allowances, breakdown, totals, prices_include_tax=invoice.prices_include_tax
    )


def _credited(invoice: Invoice) -> dict[tuple[str, Decimal], Decimal]:
    """Taxable amounts already credited per VAT category and rate (positive)."""
    credited: dict[tuple[str, Decimal], Decimal] = {}
    groups = InvoiceVatBreakdown.objects.filter(invoice__credit_note_for=invoice).exclude(
        invoice__status=InvoiceStatus.VOID
    )
    for group in groups:
        key = (group.category, Decimal(group.rate).normalize())
        credited[key] = credited.get(key, Decimal(0)) - Decimal(group.taxable_amount)
    return credited


@transaction.atomic
def create_credit_note(
    scope: Scope,
    invoice_id: str,
    lines: Sequence[CreditLine] | None = None,
    *,
    reason: str = "",
    settlement: str = "auto",
) -> Invoice:
    """A finalized credit note correcting the finalized invoice ``invoice_id``: in full (``lines`` is
    ``None``, only while nothing was credited yet) or for parts of lines, never more than is left.

    ``settlement`` says where its amount goes (``balance``: off what is still owed, to the customer's
    balance, or due back as a refund); an unpaid invoice it settles in full is paid."""
    balance.check_settlement(settlement)
    invoice = get_invoice(scope, invoice_id, lock=True)
    if invoice.status not in (InvoiceStatus.FINALIZED, InvoiceStatus.PAID) or invoice.number is None:
        raise InvoiceState(
            f"invoice {invoice_id} is {invoice.status}; only issued invoices are credited", field="invoice"
        )
    already = _credited(invoice)
    if lines is None:
        if any(already.values()):
            raise InvoiceState(
                f"invoice {invoice_id} was partly credited; credit the remaining lines instead", field="lines"
            )
        composed = engine_credit_note(_composed_from(invoice), invoice.number)
    else:
        if not lines:
            raise ValidationFailed(
                "give at least one line to credit, or none to credit everything", field="lines"
            )
        composed = engine_credit_note(
            _composed_from(invoice),
            invoice.number,
            _credit_inputs(invoice, lines),
            prices_include_tax=invoice.prices_include_tax,
        )
        invoiced = {
            (g.category, Decimal(g.rate).normalize()): Decimal(g.taxable_amount)
            for g in invoice.vat_breakdown.all()
        }
        for group in composed.vat_breakdown:
            key = (group.category.value, group.rate.normalize())
            if already.get(key, Decimal(0)) - group.taxable_amount.amount > invoiced.get(key, Decimal(0)):
                raise ValidationFailed(
                    f"this credits more {group.category} at {group.rate}% than is left to credit",
                    field="lines",
                )
    broken = check_en16931_totals(composed)
    if broken:
        raise InvoiceTotalsBroken(f"the credit note breaks {', '.join(broken)}")
    planned = balance.plan_settlement(invoice, -composed.totals.amount_due.amount, settlement)
    note = _store(
        scope,
        composed,
        customer=invoice.customer,
        subscription=invoice.subscription,
        kind=DocumentKind.CREDIT_NOTE,
        status=InvoiceStatus.DRAFT,
        period=(invoice.period_start, invoice.period_end),
        credit_note_for=invoice,
        reason=reason,
    )
    _issue(scope, note, clock.now())
    note.save()
    balance.settle(scope, invoice, note, planned)
    record(scope, "credit_note.created", "credit_note", note.public_id, after=snapshot(note))
    settled_in_full = planned.to_invoice > 0 and not balance.amount_remaining(invoice)
    if settled_in_full and invoice.status == InvoiceStatus.FINALIZED:
        before = snapshot(invoice)
        invoice.status, invoice.paid_at = InvoiceStatus.PAID, note.finalized_at
        invoice.save(update_fields=("status", "paid_at"))
        record(scope, "invoice.paid", "invoice", invoice.public_id, before=before, after=snapshot(invoice))
    return note
