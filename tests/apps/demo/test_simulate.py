"""``turnus demo simulate``: months of a new demo tenant's billing on a test clock, printed as invoices."""

from datetime import date
from decimal import Decimal
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from turnus.apps.billing.models import Invoice
from turnus.apps.customers.models import Customer, TestClock
from turnus.apps.demo.loader import DEMO_SLUG, load_demo
from turnus.apps.metering.models import UsageEvent
from turnus.apps.subscriptions.models import Subscription
from turnus.apps.tenants.models import Tenant
from turnus.engine.periods import local_date, local_midnight

pytestmark = pytest.mark.django_db

BERLIN = "Europe/Berlin"
#: The continuous customers: billed every calendar month from the first day on.
CONTINUOUS = ("sim-erika", "sim-schmidt", "sim-lena")


def _simulate(*args: str) -> str:
    out = StringIO()
    call_command("demo", "simulate", "--start", "2026-01", *args, stdout=out)
    return out.getvalue()


def _month(index: int) -> date:
    """The first day of simulated month ``index`` (1-based) of a run starting in January 2026."""
    return date(2026 + (index - 1) // 12, (index - 1) % 12 + 1, 1)


def _invoices(slug: str, external_id: str):
    return Invoice.objects.filter(
        tenant__slug=slug, customer__external_id=external_id, kind="invoice", subscription__isnull=False
    )


def _subscription(slug: str, external_id: str) -> Subscription:
    return Subscription.objects.get(tenant__slug=slug, customer__external_id=external_id)


def _table(output: str) -> list[str]:
    """The printout from the invoice table on (the tenant and its key differ from run to run)."""
    lines = output.splitlines()
    return lines[lines.index(next(line for line in lines if line.startswith("Number"))) :]


def test_three_months_bill_every_continuous_customer_every_month_and_print_the_table():
    output = _simulate("--months", "3")
    tenant = Tenant.objects.get(slug="demo-sim-1")
    assert tenant.slug in output
    for external_id in CONTINUOUS:
        starts = {
            local_date(start, BERLIN)
            for start in _invoices(tenant.slug, external_id).values_list("period_start", flat=True)
        }
        assert {_month(1), _month(2), _month(3)} <= starts, external_id
    assert not Invoice.objects.filter(tenant=tenant, status="draft").exists()
    erika = _subscription(tenant.slug, "sim-erika")
    assert erika.plan.code == "pro"
    assert erika.component_quantities == {"seats": "2"}
    upgraded = Invoice.objects.filter(subscription=erika, lines__kind="proration_charge")
    assert upgraded.filter(lines__kind="proration_credit").exists()
    one_off = Invoice.objects.get(tenant=tenant, subscription__isnull=True)
    assert (one_off.customer.external_id, one_off.tax_exclusive, one_off.tax_total) == (
        "sim-schmidt",
        Decimal("480.00"),
        Decimal("91.20"),
    )
    alpen = _invoices(tenant.slug, "sim-alpen").get()
    assert (alpen.tax_exclusive, alpen.tax_total) == (Decimal("760.00"), 0)
    assert set(alpen.lines.values_list("vat_category", flat=True)) == {"AE"}
    camille = _invoices(tenant.slug, "sim-camille").first()
    assert camille is not None
    assert set(camille.lines.values_list("vat_country", "vat_rate")) == {("FR", Decimal(20))}
    assert UsageEvent.objects.filter(tenant=tenant).count() > 3 * 28 * 4
    header = _table(output)[0].split()
    assert header == ["Number", "Customer", "Period", "Net", "VAT", "Gross", "Status"]
    numbers = Invoice.objects.filter(tenant=tenant).values_list("number", flat=True)
    assert all(number in output for number in numbers)
    assert "Total EUR: net " in output
    assert f"Summary: {len(numbers)} invoices for 6 customers" in output


def test_a_year_pauses_one_customer_for_two_months_and_ends_the_cancelled_one():
    output = _simulate("--months", "12")
    slug = "demo-sim-1"
    for external_id in CONTINUOUS:
        starts = {
            local_date(start, BERLIN)
            for start in _invoices(slug, external_id).values_list("period_start", flat=True)
        }
        assert {_month(index) for index in range(1, 13)} <= starts, external_id

    paused = _subscription(slug, "sim-camille")
    assert paused.status == "active"
    camille = _invoices(slug, "sim-camille")
    months_billed = {
        local_date(start, BERLIN).replace(day=1) for start in camille.values_list("period_start", flat=True)
    }
    assert _month(6) not in months_billed
    assert {_month(5), _month(7), _month(12)} <= months_billed
    paused_from = local_midnight(date(2026, 5, 10), BERLIN)
    resumed_at = local_midnight(date(2026, 7, 5), BERLIN)
    assert not camille.filter(created_at__gt=paused_from, created_at__lt=resumed_at).exists()
    assert not UsageEvent.objects.filter(
        subscription=paused, timestamp__gt=paused_from, timestamp__lt=resumed_at
    ).exists()

    cancelled = _subscription(slug, "sim-jonas")
    assert cancelled.status == "ended"
    assert cancelled.ended_at == local_midnight(date(2026, 9, 15), BERLIN)
    jonas = _invoices(slug, "sim-jonas")
    assert not jonas.filter(created_at__gt=cancelled.ended_at).exists()
    # Billed in advance, the end brings one closing invoice (keyed by the period beginning at the end): the
    # usage after the last invoice up to the end, which is also the service period it shows.
    closing = jonas.filter(billed_periods__period_start=cancelled.ended_at)
    assert jonas.exclude(pk__in=closing).filter(period_end__lte=cancelled.ended_at).count() == 8
    last = closing.get()
    assert (last.period_start, last.period_end) == (last.usage_start, last.usage_end)
    assert last.usage_end == cancelled.ended_at
    assert set(last.lines.values_list("kind", flat=True)) == {"usage"}
    assert not UsageEvent.objects.filter(subscription=cancelled, timestamp__gte=cancelled.ended_at).exists()

    for expected in ("2026-05-10", "pause", "2026-07-05", "resume", "2026-09-12", "cancel at the end"):
        assert expected in output
    assert "0 billing errors" in output


def test_two_runs_make_two_tenants_with_the_same_invoices_and_leave_the_demo_merchant_alone(
    settings, tmp_path
):
    settings.VAR_DIR = tmp_path
    demo = load_demo().tenant

    def demo_state():
        return (
            Customer.objects.filter(tenant=demo).count(),
            list(
                Subscription.objects.filter(tenant=demo).values_list(
                    "public_id", "status", "as_of", "cancel_at"
                )
            ),
            Invoice.objects.filter(tenant=demo).count(),
            TestClock.objects.filter(tenant=demo).count(),
        )

    before = demo_state()
    first = _simulate("--months", "2")
    second = _simulate("--months", "2")
    assert demo_state() == before
    assert set(Tenant.objects.values_list("slug", flat=True)) == {DEMO_SLUG, "demo-sim-1", "demo-sim-2"}
    assert _table(first) == _table(second)
    assert (
        Invoice.objects.filter(tenant__slug="demo-sim-1").count()
        == Invoice.objects.filter(tenant__slug="demo-sim-2").count()
        > 0
    )
    other_seed = _simulate("--months", "2", "--seed", "7", "--tenant-slug", "my-sim")
    assert Tenant.objects.filter(slug="my-sim").exists()
    assert _table(other_seed) != _table(first)


@pytest.mark.parametrize(
    "args",
    [
        ("--months", "0"),
        ("--months", "25"),
        ("--months", "x"),
        ("--start", "2026-13"),
        ("--tenant-slug", DEMO_SLUG),
        ("--tenant-slug", "Not A Slug"),
    ],
)
def test_bad_arguments_are_refused_and_nothing_is_created(args):
    with pytest.raises(CommandError):
        call_command("demo", "simulate", *args, stdout=StringIO())
    assert not Tenant.objects.exists()


def test_an_existing_slug_is_refused_and_leaves_that_tenant_alone():
    _simulate("--months", "1", "--tenant-slug", "taken")
    count = Invoice.objects.filter(tenant__slug="taken").count()
    with pytest.raises(CommandError, match="exists already"):
        _simulate("--months", "1", "--tenant-slug", "taken")
    assert Invoice.objects.filter(tenant__slug="taken").count() == count
