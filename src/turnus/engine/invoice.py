"""Invoice composition by EN 16931: lines, document-level discounts, VAT breakdown and totals.

Rounding happens half-up to the currency's minor unit at exactly these points, so the BR-CO rules
hold exactly on every composed invoice:

1. each line's net amount (``quantity x unit_price``, or the exact precomputed ``amount``);
2. each discount's allowance per VAT category (category = VAT category code and rate);
3. the VAT of each category: taxable amount x rate, rounded once;
4. totals are sums of these rounded parts.

Discounts are document-level allowances, applied before tax in the order given, each on what the
previous ones left. A percentage discount takes its share of each category's positive discountable
base; an amount discount is split across categories in proportion to that base (largest remainder,
so the parts add up exactly and no part exceeds its base). No discount takes more than the category's
total base nor more than the invoice's total net, so discounts never make an invoice negative; what a
discount could not use is reported in ``discount_usage``. In tax-inclusive mode discount values
and usage are gross amounts.

Negative lines (credits, e.g. from prorations) reduce their category's base. An invoice whose total is
negative stays as computed; turning it into a customer credit is the billing app's decision.

With ``prices_include_tax`` the line amounts are gross. Per category the net ``N`` is chosen so that
``N + round(N x rate)`` equals the category's gross (after discounts); when no such ``N`` exists the
nearest one is used and the difference goes into ``rounding_amount`` (BT-114), so the amount due equals
the gross amounts the customer was shown. The category's net is spread over its lines by largest
remainder.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from fractions import Fraction
from types import MappingProxyType

from turnus.engine.discounts import Discount, DiscountKind
from turnus.engine.errors import CurrencyMismatch, InvalidAmount, InvalidInvoice
from turnus.engine.frozen import slot_init
from turnus.engine.money import (
    EXACT,
    MAX_UNIT_PRICE_DECIMALS,
    Money,
    check_currency,
    currency_digits,
    round_half_up,
    to_decimal,
)
from turnus.engine.tax import TaxDecision, VatCategory

CategoryKey = tuple[VatCategory, Decimal]

_CATEGORY_ORDER: Mapping[VatCategory, int] = MappingProxyType(
    {category: index for index, category in enumerate(VatCategory)}
)

_TAXABLE_AMOUNT_RULES: Mapping[VatCategory, str] = MappingProxyType(
    {
        VatCategory.S: "BR-S-08",
        VatCategory.Z: "BR-Z-08",
        VatCategory.E: "BR-E-08",
        VatCategory.AE: "BR-AE-08",
        VatCategory.K: "BR-IC-08",
        VatCategory.G: "BR-G-08",
        VatCategory.O: "BR-O-08",
    }
)


_NO_METADATA: Mapping[str, str] = MappingProxyType({})
_HUNDRED = Decimal(100)


def _empty_metadata() -> Mapping[str, str]:
    return _NO_METADATA


@slot_init
@dataclass(frozen=True, slots=True)
class LineInput:
    """One line to invoice; ``amount`` is the exact net (or gross) when it is not quantity x unit price."""

    description: str
    quantity: Decimal
    unit_price: Decimal
    tax: TaxDecision
    amount: Decimal | None = None
    kind: str = "charge"
    period: tuple[datetime, datetime] | None = None
    discountable: bool = True
    metadata: Mapping[str, str] = field(default_factory=_empty_metadata)


@slot_init
@dataclass(frozen=True, slots=True)
class InvoiceLine:
    """A composed line; ``gross_amount`` is set when the invoice was composed from gross prices."""

    description: str
    quantity: Decimal
    unit_price: Decimal
    net_amount: Money
    tax: TaxDecision
    kind: str
    period: tuple[datetime, datetime] | None
    metadata: Mapping[str, str]
    gross_amount: Money | None = None


@slot_init
@dataclass(frozen=True, slots=True)
class Allowance:
    """A document-level allowance (BG-20): the part of one discount falling on one VAT category."""

    discount_code: str
    category: VatCategory
    rate: Decimal
    amount: Money


@slot_init
@dataclass(frozen=True, slots=True)
class VatBreakdown:
    """One VAT breakdown group (BG-23)."""

    category: VatCategory
    rate: Decimal
    taxable_amount: Money
    tax_amount: Money
    reason_code: str | None
    note: str | None


@slot_init
@dataclass(frozen=True, slots=True)
class Totals:
    """Document totals (BG-22): BT-106, BT-107, BT-109, BT-110, BT-112, BT-114, BT-113, BT-115."""

    line_total: Money
    allowance_total: Money
    tax_exclusive: Money
    tax_total: Money
    grand_total: Money
    rounding_amount: Money
    prepaid: Money
    amount_due: Money


@slot_init
@dataclass(frozen=True, slots=True)
class DiscountUsage:
    """How much of a discount this invoice used, and what it could not use (capped at the base)."""

    discount_code: str
    applied: Money
    unused: Money


@slot_init
@dataclass(frozen=True, slots=True)
class ComposedInvoice:
    currency: str
    lines: tuple[InvoiceLine, ...]
    allowances: tuple[Allowance, ...]
    vat_breakdown: tuple[VatBreakdown, ...]
    totals: Totals
    credit_note_for: str | None = None
    discount_usage: tuple[DiscountUsage, ...] = ()
    prices_include_tax: bool = False


@dataclass(slots=True)
class _PreparedLine:
    line: LineInput
    quantity: Decimal
    unit_price: Decimal
    units: int
    key: CategoryKey
    metadata: Mapping[str, str]


def _to_units(value: Decimal, digits: int) -> int:
    return int(round_half_up(value, digits).scaleb(digits, EXACT))


def _percent_of(amount: Decimal, percent: Decimal) -> Decimal:
    return EXACT.divide(EXACT.multiply(amount, percent), _HUNDRED)


def _percent_units(units: int, percent: Decimal) -> int:
    """``units x percent / 100`` rounded half-up (halves away from zero), in exact integer arithmetic.

    Equal to rounding ``_percent_of(Decimal(units), percent)`` to a whole unit, at a quarter of the cost.
    """
    numerator, denominator = percent.as_integer_ratio()
    exact = units * numerator
    denominator *= 100
    whole, remainder = divmod(abs(exact), denominator)
    if 2 * remainder >= denominator:
        whole += 1
    return whole if exact >= 0 else -whole


def _apportion(total: int, ideals: Sequence[Fraction]) -> list[int]:
    """Integers near ``ideals`` adding up to ``total``: floors, then the rest by largest fraction."""
    floors = [math.floor(ideal) for ideal in ideals]
    every, extra = divmod(total - sum(floors), len(ideals))
    by_fraction = sorted(range(len(ideals)), key=lambda index: (floors[index] - ideals[index], index))
    result = [floor + every for floor in floors]
    for index in by_fraction[:extra]:
        result[index] += 1
    return result


def _split(total: int, weights: Sequence[int]) -> list[int]:
    """Split ``0 <= total <= sum(weights)`` in proportion to ``weights >= 0``, no part above its weight."""
    if total == 0:
        return [0] * len(weights)
    if len(weights) == 1:
        return [total]
    weight_sum = sum(weights)
    return _apportion(total, [Fraction(total * weight, weight_sum) for weight in weights])


def _net_from_gross(gross_units: int, rate: Decimal) -> int:
    """The net ``N`` with ``N + round(N x rate)`` nearest ``gross_units`` (exact when possible)."""
    estimate = math.floor(Fraction(gross_units) * 100 / (100 + Fraction(rate)))
    candidates = range(estimate - 3, estimate + 4)
    return min(candidates, key=lambda net: (abs(net + _percent_units(net, rate) - gross_units), abs(net)))


def _category_sort_key(key: CategoryKey) -> tuple[int, Decimal]:
    return _CATEGORY_ORDER[key[0]], key[1]


def _line_decimal(value: object, index: int, name: str, max_decimals: int | None = None) -> Decimal:
    """``to_decimal`` of a line's field; its name is spelt out only when the value is no plain Decimal."""
    if type(value) is Decimal and value.is_finite():
        if max_decimals is None:
            return value
        exponent = value.as_tuple().exponent
        if isinstance(exponent, int) and exponent >= -max_decimals:
            return value
    return to_decimal(value, field=f"lines[{index}].{name}", max_decimals=max_decimals)


def _prepare_line(index: int, line: LineInput, digits: int, sign: int) -> _PreparedLine:
    if not isinstance(line, LineInput):
        raise InvalidInvoice(f"lines[{index}] is not a LineInput", field=f"lines[{index}]")
    if not isinstance(line.description, str) or not line.description.strip():
        raise InvalidInvoice(f"lines[{index}] needs a description", field=f"lines[{index}].description")
    if not isinstance(line.tax, TaxDecision):
        raise InvalidInvoice(f"lines[{index}] has no tax decision", field=f"lines[{index}].tax")
    if not isinstance(line.kind, str) or not line.kind:
        raise InvalidInvoice(f"lines[{index}] needs a kind", field=f"lines[{index}].kind")
    quantity = _line_decimal(line.quantity, index, "quantity")
    unit_price = _line_decimal(line.unit_price, index, "unit_price", MAX_UNIT_PRICE_DECIMALS)
    if line.amount is None:
        exact = EXACT.multiply(quantity, unit_price)
    else:
        exact = _line_decimal(line.amount, index, "amount")
    if line.period is not None and not _is_period(line.period):
        raise InvalidInvoice(
            "a line period is a pair of aware datetimes with start < end", field=f"lines[{index}].period"
        )
    metadata = _snapshot(line.metadata, index)
    if sign < 0:
        quantity = EXACT.minus(quantity)
    units = _to_units(exact, digits) * sign
    return _PreparedLine(line, quantity, unit_price, units, (line.tax.category, line.tax.rate), metadata)


def _is_period(period: object) -> bool:
    if not isinstance(period, tuple) or len(period) != 2:
        return False
    start, end = period[0], period[1]
    return (
        isinstance(start, datetime)
        and start.utcoffset() is not None
        and isinstance(end, datetime)
        and end.utcoffset() is not None
        and start < end
    )


def _snapshot(metadata: Mapping[str, str], index: int) -> Mapping[str, str]:
    """A read-only copy of a line's metadata, whose keys and values must be strings."""
    if type(metadata) is MappingProxyType and not metadata:
        return _NO_METADATA
    copied = dict(metadata)
    if not all(isinstance(key, str) and isinstance(value, str) for key, value in copied.items()):
        raise InvalidInvoice(
            f"lines[{index}] metadata keys and values must be strings", field=f"lines[{index}].metadata"
        )
    return MappingProxyType(copied)


def _check_discounts(discounts: Sequence[Discount], currency: str) -> None:
    for index, discount in enumerate(discounts):
        if not isinstance(discount, Discount):
            raise InvalidInvoice(f"discounts[{index}] is not a Discount", field=f"discounts[{index}]")
        if discount.kind is DiscountKind.AMOUNT and discount.currency != currency:
            raise CurrencyMismatch(
                f"discount {discount.code} is in {discount.currency}, the invoice in {currency}",
                field=f"discounts[{index}].currency",
            )


def _apply_discounts(
    discounts: Sequence[Discount],
    keys: Sequence[CategoryKey],
    base: Mapping[CategoryKey, int],
    discountable: Mapping[CategoryKey, int],
    digits: int,
) -> tuple[list[dict[CategoryKey, int]], list[tuple[int, int]]]:
    used = dict.fromkeys(keys, 0)
    parts_per_discount: list[dict[CategoryKey, int]] = []
    usage: list[tuple[int, int]] = []
    for discount in discounts:
        invoice_room = max(0, sum([base[key] - used[key] for key in keys]))
        room = [max(0, min(discountable[key], base[key]) - used[key]) for key in keys]
        if discount.kind is DiscountKind.PERCENTAGE:
            wanted = [_percent_units(units, discount.value) for units in room]
            requested = sum(wanted)
            applied = min(requested, invoice_room)
            parts = _split(applied, wanted)
        else:
            requested = _to_units(discount.value, digits)
            applied = min(requested, sum(room), invoice_room)
            parts = _split(applied, room)
        for key, part in zip(keys, parts, strict=True):
            used[key] += part
        parts_per_discount.append(dict(zip(keys, parts, strict=True)))
        usage.append((applied, requested - applied))
    return parts_per_discount, usage


def _check_consistent_reasons(prepared: Sequence[_PreparedLine]) -> None:
    seen: dict[CategoryKey, tuple[str | None, str | None]] = {}
    for index, line in enumerate(prepared):
        reason = (line.line.tax.reason_code, line.line.tax.note)
        if seen.setdefault(line.key, reason) != reason:
            raise InvalidInvoice(
                f"lines[{index}] gives VAT category {line.key[0]} at {line.key[1]}% another exemption reason "
                "than an earlier line; one invoice has one reason per category and rate",
                field=f"lines[{index}].tax",
            )


def compose_invoice(
    currency: str,
    lines: Sequence[LineInput],
    *,
    discounts: Sequence[Discount] = (),
    prices_include_tax: bool = False,
    credit_note_for: str | None = None,
    prepaid: Decimal = Decimal(0),
) -> ComposedInvoice:
    """Compose an invoice (or a credit note referencing ``credit_note_for``) from lines and discounts."""
    return _compose(currency, lines, discounts, prices_include_tax, credit_note_for, prepaid, sign=1)


def _compose(
    currency: str,
    lines: Sequence[LineInput],
    discounts: Sequence[Discount],
    prices_include_tax: bool,
    credit_note_for: str | None,
    prepaid: Decimal,
    *,
    sign: int,
) -> ComposedInvoice:
    currency = check_currency(currency)
    digits = currency_digits(currency)
    if not lines:
        raise InvalidInvoice("an invoice needs at least one line", field="lines")
    prepared = [_prepare_line(index, line, digits, sign) for index, line in enumerate(lines)]
    _check_consistent_reasons(prepared)
    _check_discounts(discounts, currency)
    if type(prepaid) is Decimal and prepaid.is_zero():
        prepaid_amount = prepaid  # the usual case, valid in any currency: spares to_decimal's digit check
    else:
        prepaid_amount = to_decimal(prepaid, field="prepaid", max_decimals=digits)
    if prepaid_amount < 0:
        raise InvalidAmount("prepaid cannot be negative", field="prepaid")

    keys = sorted({line.key for line in prepared}, key=_category_sort_key)
    base = dict.fromkeys(keys, 0)
    discountable = dict.fromkeys(keys, 0)
    for line in prepared:
        base[line.key] += line.units
        if line.line.discountable:
            discountable[line.key] += line.units
    discount_parts, usage = _apply_discounts(discounts, keys, base, discountable, digits)

    line_nets = [line.units for line in prepared]
    allowance_units: list[dict[CategoryKey, int]] = discount_parts
    rounding_units = 0
    if prices_include_tax:
        allowance_units = [dict.fromkeys(keys, 0) for _ in discounts]
        for key in keys:
            rate = key[1]
            gross_allowance = sum(parts[key] for parts in discount_parts)
            lines_net = _net_from_gross(base[key], rate)
            taxable_gross = base[key] - gross_allowance
            taxable_net = _net_from_gross(taxable_gross, rate)
            rounding_units += taxable_gross - taxable_net - _percent_units(taxable_net, rate)
            members = [index for index, line in enumerate(prepared) if line.key == key]
            ideals = [Fraction(prepared[index].units) * 100 / (100 + Fraction(rate)) for index in members]
            for index, net in zip(members, _apportion(lines_net, ideals), strict=True):
                line_nets[index] = net
            net_parts = _split(lines_net - taxable_net, [parts[key] for parts in discount_parts])
            for parts, net_part in zip(allowance_units, net_parts, strict=True):
                parts[key] = net_part

    return _assemble(
        currency=currency,
        digits=digits,
        prepared=prepared,
        line_nets=line_nets,
        keys=keys,
        discounts=discounts,
        allowance_units=allowance_units,
        usage=usage,
        rounding_units=rounding_units,
        prepaid_units=_to_units(prepaid_amount, digits) if prepaid_amount else 0,
        prices_include_tax=prices_include_tax,
        credit_note_for=credit_note_for,
    )


def _assemble(
    *,
    currency: str,
    digits: int,
    prepared: Sequence[_PreparedLine],
    line_nets: Sequence[int],
    keys: Sequence[CategoryKey],
    discounts: Sequence[Discount],
    allowance_units: Sequence[Mapping[CategoryKey, int]],
    usage: Sequence[tuple[int, int]],
    rounding_units: int,
    prepaid_units: int,
    prices_include_tax: bool,
    credit_note_for: str | None,
) -> ComposedInvoice:
    amounts: dict[int, Money] = {}

    def money(units: int) -> Money:
        """``units`` minor units as Money; equal amounts of the invoice share one immutable Money."""
        amount = amounts.get(units)
        if amount is None:
            amount = amounts[units] = Money._unchecked(Decimal(units).scaleb(-digits), currency)
        return amount

    # Output objects are built positionally, in field order, and tuples from list comprehensions
    # rather than generators: both are cheaper on this hot path.
    lines = tuple(
        [
            InvoiceLine(
                line.line.description,
                line.quantity,
                (
                    round_half_up(
                        EXACT.divide(EXACT.multiply(line.unit_price, _HUNDRED), _HUNDRED + line.key[1]),
                        MAX_UNIT_PRICE_DECIMALS,
                    )
                    if prices_include_tax
                    else line.unit_price
                ),
                money(net),
                line.line.tax,
                line.line.kind,
                line.line.period,
                line.metadata,
                money(line.units) if prices_include_tax else None,
            )
            for line, net in zip(prepared, line_nets, strict=True)
        ]
    )
    allowances = tuple(
        [
            Allowance(discount.code, key[0], key[1], money(parts[key]))
            for discount, parts in zip(discounts, allowance_units, strict=True)
            for key in keys
            if parts[key]
        ]
    )
    taxable = dict.fromkeys(keys, 0)
    taxes: dict[CategoryKey, TaxDecision] = {}
    for line, net in zip(prepared, line_nets, strict=True):
        taxable[line.key] += net
        taxes[line.key] = line.line.tax
    allowance_total = 0
    for parts in allowance_units:
        for key, part in parts.items():
            taxable[key] -= part
            allowance_total += part
    breakdown: list[VatBreakdown] = []
    tax_total = 0
    for key, units in taxable.items():
        tax_units = _percent_units(units, key[1])
        tax_total += tax_units
        tax = taxes[key]
        breakdown.append(
            VatBreakdown(key[0], key[1], money(units), money(tax_units), tax.reason_code, tax.note)
        )
    line_total = sum(line_nets)
    grand_total = line_total - allowance_total + tax_total
    totals = Totals(
        money(line_total),
        money(allowance_total),
        money(line_total - allowance_total),  # tax exclusive
        money(tax_total),
        money(grand_total),
        money(rounding_units),
        money(prepaid_units),
        money(grand_total + rounding_units - prepaid_units),  # amount due
    )
    discount_usage = tuple(
        [
            DiscountUsage(discount.code, money(applied), money(unused))
            for discount, (applied, unused) in zip(discounts, usage, strict=True)
        ]
    )
    return ComposedInvoice(
        currency,
        lines,
        allowances,
        tuple(breakdown),
        totals,
        credit_note_for,
        discount_usage,
        prices_include_tax,
    )


def credit_note(
    invoice: ComposedInvoice,
    reference: str,
    lines: Sequence[LineInput] | None = None,
    *,
    prices_include_tax: bool = False,
) -> ComposedInvoice:
    """A credit note for ``invoice`` (whose number is ``reference``), with amounts of opposite sign.

    Without ``lines`` it negates the invoice exactly (prepaid is not carried over, so its amount due is
    the negated grand total plus rounding). With ``lines`` it credits those lines, given with positive
    amounts; per VAT category it may not credit more than the invoice's taxable amount.
    """
    if invoice.credit_note_for is not None:
        raise InvalidInvoice("a credit note cannot itself be credited", field="invoice")
    if not isinstance(reference, str) or not reference.strip():
        raise InvalidInvoice("a credit note must reference the invoice it corrects", field="reference")
    if lines is None:
        return _negated(invoice, reference)
    note = _compose(invoice.currency, lines, (), prices_include_tax, reference, Decimal(0), sign=-1)
    invoiced = {(group.category, group.rate): group.taxable_amount for group in invoice.vat_breakdown}
    for group in note.vat_breakdown:
        creditable = invoiced.get((group.category, group.rate))
        if creditable is None or -group.taxable_amount > creditable.max_zero():
            raise InvalidInvoice(
                f"the credit note credits more {group.category} at {group.rate}% than the invoice charged",
                field="lines",
            )
    return note


def _negated(invoice: ComposedInvoice, reference: str) -> ComposedInvoice:
    totals = invoice.totals
    zero = Money.zero(invoice.currency).rounded()
    return ComposedInvoice(
        currency=invoice.currency,
        lines=tuple(
            InvoiceLine(
                description=line.description,
                quantity=-line.quantity,
                unit_price=line.unit_price,
                net_amount=-line.net_amount,
                tax=line.tax,
                kind=line.kind,
                period=line.period,
                metadata=line.metadata,
                gross_amount=None if line.gross_amount is None else -line.gross_amount,
            )
            for line in invoice.lines
        ),
        allowances=tuple(
            Allowance(allowance.discount_code, allowance.category, allowance.rate, -allowance.amount)
            for allowance in invoice.allowances
        ),
        vat_breakdown=tuple(
            VatBreakdown(
                group.category,
                group.rate,
                -group.taxable_amount,
                -group.tax_amount,
                group.reason_code,
                group.note,
            )
            for group in invoice.vat_breakdown
        ),
        totals=Totals(
            line_total=-totals.line_total,
            allowance_total=-totals.allowance_total,
            tax_exclusive=-totals.tax_exclusive,
            tax_total=-totals.tax_total,
            grand_total=-totals.grand_total,
            rounding_amount=-totals.rounding_amount,
            prepaid=zero,
            amount_due=-(totals.grand_total + totals.rounding_amount),
        ),
        credit_note_for=reference,
        discount_usage=(),
        prices_include_tax=invoice.prices_include_tax,
    )


def check_en16931_totals(invoice: ComposedInvoice) -> list[str]:
    """The EN 16931 rules the invoice's amounts violate (BR-CO-10..18, BR-x-08); empty when all hold."""
    currency = invoice.currency
    digits = currency_digits(currency)
    totals = invoice.totals

    def total(amounts: Sequence[Money]) -> Money:
        result = Money.zero(currency)
        for amount in amounts:
            result = result + amount
        return result

    violated: list[str] = []
    if totals.line_total.amount != total([line.net_amount for line in invoice.lines]).amount:
        violated.append("BR-CO-10")
    if totals.allowance_total.amount != total([allowance.amount for allowance in invoice.allowances]).amount:
        violated.append("BR-CO-11")
    if totals.tax_exclusive.amount != (totals.line_total - totals.allowance_total).amount:
        violated.append("BR-CO-13")
    if totals.tax_total.amount != total([group.tax_amount for group in invoice.vat_breakdown]).amount:
        violated.append("BR-CO-14")
    if totals.grand_total.amount != (totals.tax_exclusive + totals.tax_total).amount:
        violated.append("BR-CO-15")
    if totals.amount_due.amount != (totals.grand_total - totals.prepaid + totals.rounding_amount).amount:
        violated.append("BR-CO-16")
    if any(
        group.tax_amount.amount != round_half_up(_percent_of(group.taxable_amount.amount, group.rate), digits)
        for group in invoice.vat_breakdown
    ):
        violated.append("BR-CO-17")
    if not invoice.vat_breakdown:
        violated.append("BR-CO-18")
    expected: dict[CategoryKey, Decimal] = {}
    for line in invoice.lines:
        key = (line.tax.category, line.tax.rate)
        expected[key] = expected.get(key, Decimal(0)) + line.net_amount.amount
    for allowance in invoice.allowances:
        key = (allowance.category, allowance.rate)
        expected[key] = expected.get(key, Decimal(0)) - allowance.amount.amount
    stated = {(group.category, group.rate): group.taxable_amount.amount for group in invoice.vat_breakdown}
    broken = {
        _TAXABLE_AMOUNT_RULES[key[0]]
        for key in expected.keys() | stated.keys()
        if expected.get(key) != stated.get(key)
    }
    violated += [rule for rule in _TAXABLE_AMOUNT_RULES.values() if rule in broken]
    return violated
