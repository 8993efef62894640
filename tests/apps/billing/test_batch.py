"""The billing run's batched path bills exactly what billing one subscription at a time bills.

Two tenants get the same subscriptions, usage, charges and changes; one is billed by the run as it is
(batches), the other with the batch handing every subscription back (each billed alone). Every invoice,
line, VAT group, billed period, subscription state, schedule, usage watermark and audit action must be
the same, and the batch must really have taken the subscriptions it can take.
"""

from __future__ import annotations

import logging
import re
from collections import Counter
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest

from tests.apps.billing.support import APRIL, MARCH, calls, plan, scope_of, subscribe
from turnus.apps.billing import batch, charges, sweep
from turnus.apps.billing.balance import adjust
from turnus.apps.billing.models import BillingSchedule, Invoice, InvoiceStatus
from turnus.apps.billing.services import invoice_issued
from turnus.apps.documents.tasks import on_invoice_issued
from turnus.apps.metering.models import UsageWatermark
from turnus.apps.subscriptions import services as subscriptions
from turnus.apps.subscriptions.models import Subscription, SubscriptionCharge
from turnus.core.clock import FrozenClock, use_clock
from turnus.core.models import AuditEvent, OutboxEvent

_ID = re.compile(r"\b[a-z]{2,8}_[0-9A-Z]{26}\b")
_REQUEST = re.compile(r"\breq_[0-9a-f]+\b")
TEN_PERCENT = {"code": "TEN", "name": "Ten", "kind": "percentage", "value": "10", "duration": "forever"}
#: The kinds of subscription of a world, and whether the batch takes them at the April run.
KINDS = {
    "flat": True,
    "usage": True,
    "coupon": True,
    "setup": True,
    "upgraded": True,
    "arrears": False,  # billed in arrears
    "charged": False,  # a pending one-off charge
    "credited": False,  # customer credit
    "trial": False,  # the trial ended since the last run: not a renewal
}


def _world(make_tenant: Any) -> dict[str, str]:
    """A tenant with a subscription of every kind, billed on 1 March; usage, an upgrade, a charge and
    credit in March. Returns the subscription ids by kind."""
    scope = scope_of(make_tenant(legal_name="Beispiel Shop GmbH"))
    with use_clock(FrozenClock(MARCH)):
        made = {
            "flat": subscribe(scope, code="flat"),
            "usage": subscribe(scope, code="usage"),
            "coupon": subscribe(scope, code="coupon", coupon=TEN_PERCENT),
            "setup": subscribe(scope, code="setup", setup_fee="49.00"),
            "upgraded": subscribe(scope, code="small", fee="50.00"),
            "arrears": subscribe(scope, code="arrears", billing_timing="in_arrears"),
            "charged": subscribe(scope, code="charged"),
            "credited": subscribe(scope, code="credited"),
            "trial": subscribe(scope, code="trial", trial_days=14),
        }
    return {kind: billed.subscription for kind, billed in made.items()} | {"_tenant": str(scope.tenant_id)}


def _march(make_tenant: Any) -> dict[str, str]:
    made = _world(make_tenant)
    scope = scope_of(_tenant(made))
    sweep.run_sweep(MARCH + timedelta(hours=1), tenant=_tenant(made))
    with use_clock(FrozenClock(MARCH + timedelta(days=10))):
        for kind in ("usage", "coupon", "arrears"):
            billed = _billed(scope, made[kind])
            calls(billed, 150, MARCH + timedelta(days=5), prefix=kind)
        large = plan(scope, code="large", fee="120.00")
        subscriptions.change_subscription(scope, made["upgraded"], plan=large, effective="now")
        owner = Subscription.objects.get(public_id=made["charged"]).customer.public_id
        charges.create_charge(scope, owner, charges.NewCharge("Installation", Decimal("80.00")))
        credited = Subscription.objects.get(public_id=made["credited"]).customer.public_id
        adjust(scope, credited, amount=Decimal("30.00"), currency="EUR", description="Goodwill")
    return made


def _tenant(made: dict[str, str]) -> Any:
    from turnus.apps.tenants.models import Tenant

    return Tenant.objects.get(pk=int(made["_tenant"]))


def _billed(scope: Any, subscription_id: str) -> Any:
    from tests.apps.billing.support import Billed

    found = Subscription.objects.select_related("customer", "plan").get(public_id=subscription_id)
    return Billed(scope, found.customer.public_id, found.plan.public_id, subscription_id)


def _plain(value: Any) -> Any:
    return _REQUEST.sub("<req>", _ID.sub("<id>", str(value)))


def _invoice_view(invoice: Invoice) -> tuple[Any, ...]:
    lines = [
        (
            line.position,
            line.description,
            Decimal(line.quantity),
            Decimal(line.unit_price),
            Decimal(line.net_amount),
            line.vat_category,
            Decimal(line.vat_rate),
            line.kind,
            line.period_start,
            line.period_end,
            _plain(line.metadata),
        )
        for line in invoice.lines.order_by("position")
    ]
    groups = [
        (group.category, Decimal(group.rate), Decimal(group.taxable_amount), Decimal(group.tax_amount))
        for group in invoice.vat_breakdown.order_by("category", "rate")
    ]
    allowances = [(item.discount_code, Decimal(item.amount)) for item in invoice.allowances.all()]
    billed = [
        (period.period_start, period.period_end, period.usage_start, period.usage_end)
        for period in invoice.billed_periods.order_by("pk")
    ]
    return (
        invoice.status,
        invoice.currency,
        invoice.period_start,
        invoice.period_end,
        invoice.usage_start,
        invoice.usage_end,
        Decimal(invoice.grand_total),
        Decimal(invoice.tax_total),
        Decimal(invoice.prepaid),
        Decimal(invoice.amount_due),
        invoice.issue_date,
        invoice.due_date,
        _plain(invoice.supplier),
        _plain(invoice.recipient),
        lines,
        groups,
        allowances,
        billed,
    )


def _state(made: dict[str, str]) -> dict[str, Any]:
    """Everything billing wrote for each subscription of a world, without ids and numbers."""
    state: dict[str, Any] = {}
    tenant_id = int(made["_tenant"])
    for kind, public_id in made.items():
        if kind.startswith("_"):
            continue
        subscription = Subscription.objects.get(public_id=public_id)
        invoices = Invoice.objects.filter(subscription=subscription).order_by("period_start", "pk")
        schedule = BillingSchedule.objects.get(subscription=subscription)
        watermark = UsageWatermark.objects.filter(subscription=subscription).first()
        audit = AuditEvent.objects.filter(tenant_id=tenant_id, object_id=public_id).order_by("pk")
        state[kind] = {
            "subscription": _plain(subscriptions.snapshot(subscription)),
            "charges": sorted(
                (c.kind, c.period_start, c.period_end, Decimal(c.amount))
                for c in SubscriptionCharge.objects.filter(subscription=subscription)
            ),
            "invoices": [_invoice_view(invoice) for invoice in invoices],
            "schedule": (schedule.next_billing_at, schedule.checked_at),
            "watermark": None if watermark is None else watermark.closed_until,
            "audit": [(event.action, _plain(event.before), _plain(event.after)) for event in audit],
        }
    invoices = Invoice.objects.filter(tenant_id=tenant_id, kind="invoice").exclude(number=None)
    state["_numbers"] = sorted(invoices.values_list("number", flat=True))
    state["_actions"] = Counter(
        AuditEvent.objects.filter(tenant_id=tenant_id).values_list("action", flat=True)
    )
    state["_events"] = Counter(OutboxEvent.objects.filter(tenant_id=tenant_id).values_list("type", flat=True))
    return state


def _one_at_a_time(monkeypatch: Any) -> None:
    monkeypatch.setattr(
        batch, "bill_batch", lambda due, now, graces, actor: batch.BatchResult(rest=list(due))
    )


@pytest.mark.django_db
def test_a_batch_bills_exactly_what_billing_one_subscription_at_a_time_bills(make_tenant, monkeypatch):
    alone = _march(make_tenant)
    in_batches = _march(make_tenant)
    with monkeypatch.context() as patched:
        _one_at_a_time(patched)
        single = sweep.run_sweep(APRIL + timedelta(hours=1), tenant=_tenant(alone))
    seen: dict[str, list[str]] = {"taken": [], "handed_back": []}
    real = batch.bill_batch

    def spy(due, now, graces, actor):
        result = real(due, now, graces, actor)
        back = {subscription.public_id for subscription in result.rest}
        seen["handed_back"] += sorted(back)
        seen["taken"] += [s.public_id for s in due if s.public_id not in back]
        return result

    monkeypatch.setattr(batch, "bill_batch", spy)
    batched = sweep.run_sweep(APRIL + timedelta(hours=1), tenant=_tenant(in_batches))
    assert sorted(seen["taken"]) == sorted(in_batches[kind] for kind, takes in KINDS.items() if takes)
    assert sorted(seen["handed_back"]) == sorted(
        in_batches[kind] for kind, takes in KINDS.items() if not takes
    )
    assert (batched.invoices_created, batched.finalized, batched.amounts, batched.errors) == (
        single.invoices_created,
        single.finalized,
        single.amounts,
        single.errors,
    )
    expected, got = _state(alone), _state(in_batches)
    for kind in KINDS:
        assert got[kind] == expected[kind], kind
    assert got["_numbers"] == expected["_numbers"]
    assert got["_numbers"] == [f"RE-2026-{seq:06d}" for seq in range(1, len(got["_numbers"]) + 1)]
    assert got["_actions"] == expected["_actions"]
    assert got["_events"] == expected["_events"]
    renewed = in_batches["usage"]
    invoice = Invoice.objects.get(subscription__public_id=renewed, period_start=APRIL)
    assert [line.kind for line in invoice.lines.order_by("position")] == ["recurring", "usage"]
    assert invoice.status == InvoiceStatus.FINALIZED


def _announced(callbacks: list[Any]) -> list[list[str]]:
    """What the commit hooks ``callbacks`` announce through ``invoice_issued`` (documents not listening)."""
    heard: list[list[str]] = []

    def listen(sender: Any, *, invoices: list[str], **kwargs: Any) -> None:
        heard.append(invoices)

    invoice_issued.disconnect(dispatch_uid="documents.render_on_issue")
    invoice_issued.connect(listen, dispatch_uid="test.listen")
    try:
        for callback in callbacks:
            callback()
    finally:
        invoice_issued.disconnect(dispatch_uid="test.listen")
        invoice_issued.connect(on_invoice_issued, dispatch_uid="documents.render_on_issue")
    return heard


@pytest.mark.django_db
def test_a_batch_announces_its_invoices_once_after_the_commit(
    make_tenant, monkeypatch, django_capture_on_commit_callbacks
):
    alone, in_batches = _march(make_tenant), _march(make_tenant)
    with monkeypatch.context() as patched, django_capture_on_commit_callbacks() as single:
        _one_at_a_time(patched)
        sweep.run_sweep(APRIL + timedelta(hours=1), tenant=_tenant(alone))
    with django_capture_on_commit_callbacks() as batched:
        sweep.run_sweep(APRIL + timedelta(hours=1), tenant=_tenant(in_batches))
    one_each, together = _announced(single), _announced(batched)
    taken = sum(1 for takes in KINDS.values() if takes)
    assert [len(invoices) for invoices in one_each] == [1] * len(one_each)
    assert sorted(len(invoices) for invoices in together) == [1] * (len(one_each) - taken) + [taken]

    def finalized(made: dict[str, str]) -> list[str]:
        issued = Invoice.objects.filter(tenant_id=_tenant(made), finalized_at__gte=APRIL)
        return sorted(issued.values_list("public_id", flat=True))

    assert sorted(id_ for invoices in together for id_ in invoices) == finalized(in_batches)
    assert sorted(id_ for invoices in one_each for id_ in invoices) == finalized(alone)


@pytest.mark.django_db
def test_a_batch_whose_writes_fail_leaves_nothing_behind_and_its_subscriptions_are_billed_alone(
    make_tenant, monkeypatch, caplog
):
    made = _march(make_tenant)
    reference = _march(make_tenant)
    with monkeypatch.context() as patched:
        _one_at_a_time(patched)
        sweep.run_sweep(APRIL + timedelta(hours=1), tenant=_tenant(reference))

    def broken(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("the disk is full")

    # The numbering is the batch's last write: everything before it must be rolled back.
    monkeypatch.setattr(batch, "_number", broken)
    with caplog.at_level(logging.ERROR, logger="turnus.apps.billing.batch"):
        summary = sweep.run_sweep(APRIL + timedelta(hours=1), tenant=_tenant(made))
    assert "writing a billing batch failed" in caplog.text
    assert summary.errors == []
    expected, got = _state(reference), _state(made)
    for kind in KINDS:
        assert got[kind] == expected[kind], kind
    assert got["_numbers"] == expected["_numbers"]
    assert got["_actions"] == expected["_actions"]


@pytest.mark.django_db
def test_a_second_run_after_a_batch_bills_nothing(make_tenant):
    made = _march(make_tenant)
    first = sweep.run_sweep(APRIL + timedelta(hours=1), tenant=_tenant(made))
    assert first.invoices_created >= len(KINDS) - 1
    again = sweep.run_sweep(APRIL + timedelta(hours=2), tenant=_tenant(made))
    assert (again.subscriptions, again.invoices_created) == (0, 0)
