import threading
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.db import connection

from tests.apps.catalog.conftest import coupon_data, metric_data, plan_data, product_data
from tests.support import TEST_ACTOR
from turnus.apps.catalog import services
from turnus.apps.catalog.models import Coupon, Plan, PlanVersion, Product
from turnus.core.clock import FrozenClock, use_clock
from turnus.core.errors import Conflict, NotFound, ValidationFailed
from turnus.core.models import AuditEvent, OutboxEvent
from turnus.core.scope import Scope
from turnus.engine.aggregation import Aggregation, Metric, PropertyFilter
from turnus.engine.discounts import DiscountKind
from turnus.engine.errors import EngineError, InvalidPriceSpec
from turnus.engine.lifecycle import PauseResume, PlanTerms
from turnus.engine.money import Money
from turnus.engine.periods import Interval, IntervalUnit
from turnus.engine.pricing import GraduatedPrice, PerUnitPrice

pytestmark = pytest.mark.django_db


def _metered_plan(scope, product, metric, **overrides):
    charges = [
        {
            "code": "base",
            "name_en": "Base fee",
            "kind": "recurring",
            "price": {"model": "flat", "amount": "29"},
        },
        {
            "code": "calls",
            "name_en": "API calls",
            "name_de": "API-Aufrufe",
            "kind": "metered",
            "metric": metric.public_id,
            "price": {
                "model": "graduated",
                "tiers": [{"up_to": "1000", "unit_price": "0"}, {"up_to": None, "unit_price": "0.000125"}],
            },
        },
    ]
    return services.create_plan(scope, plan_data(product.public_id, charges=charges, **overrides))


def test_creating_a_product_stores_it_in_scope_and_audits_it(scope):
    product = services.create_product(scope, product_data(name_en=" Coffee club "))
    assert product.public_id.startswith("prod_")
    assert (product.tenant_id, product.livemode, product.name_en, product.active) == (
        scope.tenant_id,
        False,
        "Coffee club",
        True,
    )
    assert product.name("de") == "Kaffeeklub"
    event = AuditEvent.objects.get(object_id=product.public_id)
    assert (event.action, event.actor, event.after["tax_category"]) == (
        "product.created",
        "system:tests",
        "reduced",
    )
    assert OutboxEvent.objects.filter(type="product.created", object_id=product.public_id).exists()


def test_a_product_needs_a_name_in_one_language(scope):
    with pytest.raises(ValidationFailed) as caught:
        services.create_product(scope, product_data(name_en="", name_de=""))
    assert caught.value.field == "name_en"
    assert not Product.objects.exists()


def test_a_product_falls_back_to_the_other_language(scope):
    product = services.create_product(scope, product_data(name_de=""))
    assert product.name("de") == "Coffee club"


def test_updating_and_archiving_a_product_is_audited_with_before_and_after(scope, product):
    services.update_product(scope, product.public_id, {"name_en": "Tea club"})
    services.archive_product(scope, product.public_id)
    product.refresh_from_db()
    assert (product.name_en, product.name_de, product.active) == ("Tea club", "Kaffeeklub", False)
    actions = list(AuditEvent.objects.filter(object_id=product.public_id).values_list("action", flat=True))
    assert actions == ["product.archived", "product.updated", "product.created"]
    updated = AuditEvent.objects.get(action="product.updated")
    assert (updated.before["name_en"], updated.after["name_en"]) == ("Coffee club", "Tea club")


def test_another_tenants_or_modes_product_is_not_found_and_unchanged(scope, product, make_tenant):
    other = Scope(make_tenant().pk, False, TEST_ACTOR)
    live = Scope(scope.tenant_id, True, TEST_ACTOR)
    for foreign in (other, live):
        with pytest.raises(NotFound):
            services.update_product(foreign, product.public_id, {"name_en": "Stolen"})
        with pytest.raises(NotFound):
            services.archive_product(foreign, product.public_id)
    product.refresh_from_db()
    assert (product.name_en, product.active) == ("Coffee club", True)


def test_a_billable_metric_becomes_the_engine_metric(scope):
    metric = services.create_billable_metric(
        scope,
        metric_data(
            code="storage",
            aggregation="weighted_sum",
            property="gb",
            filters=[{"property": "region", "values": ["eu", "us"]}],
            group_by="bucket",
            recurring=True,
        ),
    )
    assert metric.public_id.startswith("bm_")
    assert metric.engine_metric() == Metric(
        "storage",
        Aggregation.WEIGHTED_SUM,
        "gb",
        (PropertyFilter("region", ("eu", "us")),),
        "bucket",
        True,
    )


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"code": ""}, "code"),
        ({"code": "has space"}, "code"),
        ({"aggregation": "median"}, "aggregation"),
        ({"aggregation": "sum"}, "property"),
        ({"property": "x"}, "property"),
        ({"aggregation": "sum", "property": "n", "recurring": True}, "recurring"),
        ({"filters": [{"property": "region", "values": []}]}, "filters[0].values"),
        ({"filters": [{"property": "", "values": ["a"]}]}, "filters[0].property"),
        ({"name_en": ""}, "name_en"),
    ],
)
def test_invalid_metrics_name_the_field(scope, overrides, field):
    with pytest.raises((ValidationFailed, EngineError)) as caught:
        services.create_billable_metric(scope, metric_data(**overrides))
    assert caught.value.field == field


def test_metric_codes_are_unique_per_tenant_and_mode(scope, metric, make_tenant):
    with pytest.raises(Conflict) as caught:
        services.create_billable_metric(scope, metric_data())
    assert (caught.value.code, caught.value.field) == ("code_taken", "code")
    services.create_billable_metric(Scope(scope.tenant_id, True, TEST_ACTOR), metric_data())
    services.create_billable_metric(Scope(make_tenant().pk, False, TEST_ACTOR), metric_data())


def test_a_metric_billed_under_a_locked_version_keeps_its_definition(scope, product, metric):
    plan = _metered_plan(scope, product, metric)
    services.update_billable_metric(
        scope, metric.public_id, {"aggregation": "unique_count", "property": "user"}
    )
    services.lock_version(plan.current_version())
    with pytest.raises(Conflict) as caught:
        services.update_billable_metric(scope, metric.public_id, {"aggregation": "count", "property": None})
    assert caught.value.code == "metric_in_use"
    renamed = services.update_billable_metric(scope, metric.public_id, {"name_de": "Aufrufe"})
    assert (renamed.aggregation, renamed.name_de) == ("unique_count", "Aufrufe")


def test_a_plan_version_gives_the_engine_its_terms_and_prices(scope, product, metric):
    plan = _metered_plan(scope, product, metric, pause_resume="restart", trial_days=14)
    version = plan.current_version()
    assert (plan.public_id[:5], version.public_id[:5], version.number) == ("plan_", "pver_", 1)
    terms = version.engine_terms()
    assert isinstance(terms, PlanTerms)
    assert terms.plan_id == version.public_id
    assert terms.recurring_price == Money(Decimal(29), "EUR")
    assert terms.interval == Interval(IntervalUnit.MONTH)
    assert terms.contract.initial_term == Interval(IntervalUnit.MONTH, 12)
    assert terms.contract.initial_notice == Interval(IntervalUnit.MONTH)
    assert (terms.trial_days, terms.pause_resume) == (14, PauseResume.RESTART)
    prices = version.engine_prices()
    assert list(prices) == ["base", "calls"]
    assert isinstance(prices["calls"], GraduatedPrice)
    assert version.setup_fee_money() == Money(Decimal("49"), "EUR")
    calls = version.ordered_charges()[1]
    assert (calls.metric, calls.billed_in_arrears) == (metric, True)


def test_a_per_unit_recurring_price_is_the_unit_the_quantity_multiplies(scope, product):
    version = services.create_plan(scope, plan_data(product.public_id)).current_version()
    assert isinstance(version.engine_prices()["seat"], PerUnitPrice)
    assert version.engine_terms().fee(Decimal(3)) == Money(Decimal(60), "EUR")


def _charges(*charges):
    return [
        {
            "code": "seat",
            "name_en": "Seats",
            "kind": "recurring",
            "price": {"model": "per_unit", "unit_price": "20"},
        },
        *charges,
    ]


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"code": ""}, "code"),
        ({"currency": "EURO"}, "currency"),
        ({"interval": {"unit": "fortnight"}}, "interval.unit"),
        ({"interval": {"unit": "month", "count": 0}}, "interval.count"),
        ({"trial_days": -1}, "trial_days"),
        ({"setup_fee": "1.001"}, "setup_fee"),
        ({"setup_fee": 1.5}, "setup_fee"),
        ({"anchoring": "weekly"}, "anchoring"),
        ({"contract": {"renewal_term": {"unit": "month"}}}, "contract.renewal_term"),
        ({"contract": {"initial_term": {"unit": "month", "count": "12"}}}, "contract.initial_term.count"),
        ({"charges": []}, "charges"),
        (
            {
                "charges": [
                    {
                        "code": "q",
                        "name_en": "Q",
                        "kind": "quantity",
                        "price": {"model": "flat", "amount": "1"},
                    }
                ]
            },
            "charges",
        ),
        (
            {
                "charges": _charges(
                    {
                        "code": "s2",
                        "name_en": "S",
                        "kind": "recurring",
                        "price": {"model": "flat", "amount": "1"},
                    }
                )
            },
            "charges[1].kind",
        ),
        (
            {
                "charges": [
                    {
                        "code": "seat",
                        "name_en": "Seats",
                        "kind": "recurring",
                        "price": {"model": "volume", "tiers": [{"up_to": None, "unit_price": "1"}]},
                    }
                ]
            },
            "charges[0].price.model",
        ),
        (
            {
                "charges": [
                    {
                        "code": "seat",
                        "name_en": "Seats",
                        "kind": "recurring",
                        "price": {"model": "per_unit", "unit_price": "1", "minimum": "5"},
                    }
                ]
            },
            "charges[0].price.minimum",
        ),
        (
            {
                "charges": _charges(
                    {
                        "code": "extra",
                        "name_en": "Extra",
                        "kind": "quantity",
                        "price": {
                            "model": "graduated",
                            "tiers": [
                                {"up_to": "10", "unit_price": "1"},
                                {"up_to": "5", "unit_price": "1"},
                                {"up_to": None, "unit_price": "1"},
                            ],
                        },
                    }
                )
            },
            "charges[1].price.tiers[1].up_to",
        ),
        (
            {
                "charges": _charges(
                    {
                        "code": "extra",
                        "name_en": "E",
                        "kind": "quantity",
                        "price": {"model": "per_unit", "unit_price": 0.5},
                    }
                )
            },
            "charges[1].price.unit_price",
        ),
        (
            {
                "charges": _charges(
                    {
                        "code": "seat",
                        "name_en": "S",
                        "kind": "quantity",
                        "price": {"model": "flat", "amount": "1"},
                    }
                )
            },
            "charges[1].code",
        ),
        (
            {
                "charges": _charges(
                    {
                        "code": "m",
                        "name_en": "M",
                        "kind": "metered",
                        "price": {"model": "flat", "amount": "1"},
                    }
                )
            },
            "charges[1].metric",
        ),
        (
            {
                "charges": _charges(
                    {
                        "code": "m",
                        "name_en": "M",
                        "kind": "metered",
                        "metric": "bm_nope",
                        "price": {"model": "flat", "amount": "1"},
                    }
                )
            },
            "charges[1].metric",
        ),
        (
            {
                "charges": _charges(
                    {
                        "code": "q",
                        "name_en": "Q",
                        "kind": "quantity",
                        "price": {"model": "percentage", "rate_percent": "2"},
                    }
                )
            },
            "charges[1].price.model",
        ),
        (
            {
                "charges": _charges(
                    {
                        "code": "q",
                        "name_en": "Q",
                        "kind": "quantity",
                        "price": {"model": "flat", "amount": "1", "colour": "red"},
                    }
                )
            },
            "charges[1].price.colour",
        ),
        (
            {
                "charges": _charges(
                    {"code": "q", "kind": "quantity", "price": {"model": "flat", "amount": "1"}}
                )
            },
            "charges[1].name_en",
        ),
        ({"discount": "5"}, "discount"),
    ],
)
def test_invalid_plans_name_the_field_and_write_nothing(scope, product, overrides, field):
    with pytest.raises((ValidationFailed, EngineError)) as caught:
        services.create_plan(scope, plan_data(product.public_id, **overrides))
    assert caught.value.field == field
    assert not Plan.objects.exists()
    assert not AuditEvent.objects.filter(action="plan.created").exists()


def test_a_metered_charge_cannot_use_another_tenants_or_modes_metric(scope, product, make_tenant):
    for foreign in (Scope(make_tenant().pk, False, TEST_ACTOR), Scope(scope.tenant_id, True, TEST_ACTOR)):
        metric = services.create_billable_metric(foreign, metric_data())
        charge = {
            "code": "m",
            "name_en": "M",
            "kind": "metered",
            "metric": metric.public_id,
            "price": {"model": "flat", "amount": "1"},
        }
        with pytest.raises(ValidationFailed) as caught:
            services.create_plan(scope, plan_data(product.public_id, charges=_charges(charge)))
        assert caught.value.field == "charges[1].metric"


def test_a_plan_needs_an_active_product_of_its_scope(scope, product, make_tenant):
    with pytest.raises(ValidationFailed) as caught:
        services.create_plan(Scope(make_tenant().pk, False, TEST_ACTOR), plan_data(product.public_id))
    assert caught.value.field == "product"
    services.archive_product(scope, product.public_id)
    with pytest.raises(ValidationFailed) as caught:
        services.create_plan(scope, plan_data(product.public_id))
    assert caught.value.field == "product"


def test_an_unlocked_version_is_edited_in_place(scope, product):
    plan = services.create_plan(scope, plan_data(product.public_id))
    version = plan.current_version()
    charge_id = version.ordered_charges()[0].public_id
    services.update_plan(
        scope,
        plan.public_id,
        {
            "name_en": "Pro plus",
            "charges": _charges(
                {
                    "code": "extra",
                    "name_en": "Extra",
                    "kind": "quantity",
                    "price": {"model": "flat", "amount": "5"},
                }
            ),
        },
    )
    assert PlanVersion.objects.filter(plan=plan).count() == 1
    version.refresh_from_db()
    assert (version.name_en, version.name_de, version.setup_fee) == ("Pro plus", "Profi", Decimal("49"))
    assert [c.code for c in version.ordered_charges()] == ["seat", "extra"]
    assert version.ordered_charges()[0].public_id == charge_id
    event = AuditEvent.objects.get(action="plan.updated")
    assert (event.before["name_en"], event.after["name_en"], event.after["version"]) == ("Pro", "Pro plus", 1)


def test_a_locked_version_is_never_changed_an_edit_makes_the_next_version(scope, product):
    plan = services.create_plan(scope, plan_data(product.public_id))
    first = plan.current_version()
    services.lock_version(first)
    new_price = {"model": "per_unit", "unit_price": "25"}
    services.update_plan(
        scope,
        plan.public_id,
        {
            "charges": [{"code": "seat", "name_en": "Seats", "kind": "recurring", "price": new_price}],
            "trial_days": 7,
        },
    )
    first.refresh_from_db()
    assert first.engine_terms().recurring_price == Money(Decimal(20), "EUR")
    assert first.trial_days == 0
    second = plan.current_version()
    assert (second.number, second.locked, second.trial_days) == (2, False, 7)
    assert second.engine_terms().recurring_price == Money(Decimal(25), "EUR")
    assert (second.name_de, second.setup_fee, second.initial_term_count) == ("Profi", Decimal("49"), 12)
    services.update_plan(scope, plan.public_id, {"name_en": "Pro 2"})
    assert PlanVersion.objects.filter(plan=plan).count() == 2


def test_an_edit_that_changes_nothing_makes_no_version_and_no_event(scope, product):
    plan = services.create_plan(scope, plan_data(product.public_id))
    services.lock_version(plan.current_version())
    services.update_plan(scope, plan.public_id, {"name_en": "Pro", "setup_fee": Decimal("49.00")})
    assert PlanVersion.objects.filter(plan=plan).count() == 1
    assert not AuditEvent.objects.filter(action="plan.updated").exists()


def test_locking_is_audited_once_and_remembers_the_first_instant(scope, product):
    version = services.create_plan(scope, plan_data(product.public_id)).current_version()
    start = datetime(2026, 3, 1, tzinfo=UTC)
    with use_clock(FrozenClock(start)) as clock:
        services.lock_version(version, scope=scope)
        clock.advance(timedelta(days=1))
        services.lock_version(version)
    assert version.locked_at == start
    assert AuditEvent.objects.filter(action="plan_version.locked", object_id=version.public_id).count() == 1


def test_archiving_a_plan_keeps_its_versions(scope, product):
    plan = services.create_plan(scope, plan_data(product.public_id))
    services.archive_plan(scope, plan.public_id)
    plan.refresh_from_db()
    assert plan.active is False
    assert plan.current_version().number == 1
    assert AuditEvent.objects.filter(action="plan.archived", object_id=plan.public_id).exists()


def test_plan_codes_are_unique_per_tenant_and_mode(scope, product):
    services.create_plan(scope, plan_data(product.public_id))
    with pytest.raises(Conflict) as caught:
        services.create_plan(scope, plan_data(product.public_id))
    assert caught.value.field == "code"


def test_an_addon_is_validated_by_the_engine_and_deleted_with_an_event(scope):
    data = {
        "code": "storage",
        "name_en": "Extra storage",
        "currency": "eur",
        "price": {"model": "package", "package_size": "10", "package_price": "2"},
        "interval": {"unit": "month"},
    }
    addon = services.create_addon(scope, data)
    assert (addon.currency, addon.engine_price().to_dict()["package_size"]) == ("EUR", "10")
    with pytest.raises(InvalidPriceSpec) as caught:
        services.update_addon(
            scope, addon.public_id, {"price": {"model": "package", "package_size": "0", "package_price": "2"}}
        )
    assert caught.value.field == "price.package_size"
    services.update_addon(scope, addon.public_id, {"interval": {"unit": "year"}})
    services.delete_addon(scope, addon.public_id)
    assert [e.action for e in AuditEvent.objects.filter(object_id=addon.public_id)] == [
        "addon.deleted",
        "addon.updated",
        "addon.created",
    ]


def test_a_coupon_becomes_the_engine_discount(scope):
    coupon = services.create_coupon(
        scope, coupon_data(kind="amount", value="5.00", currency="EUR", duration="repeating", periods=3)
    )
    discount = coupon.engine_discount()
    assert (discount.kind, discount.value, discount.currency, discount.periods) == (
        DiscountKind.AMOUNT,
        Decimal(5),
        "EUR",
        3,
    )


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"value": "101"}, "value"),
        ({"value": 10.5}, "value"),
        ({"kind": "amount", "value": "5.001", "currency": "EUR"}, "value"),
        ({"kind": "amount", "value": "5"}, "currency"),
        ({"currency": "EUR"}, "currency"),
        ({"duration": "repeating"}, "periods"),
        ({"periods": 2}, "periods"),
        ({"max_redemptions": 0}, "max_redemptions"),
        ({"redeem_by": datetime(2000, 1, 1, tzinfo=UTC)}, "redeem_by"),
        ({"redeem_by": datetime(2099, 1, 1)}, "redeem_by"),  # noqa: DTZ001
        ({"name": ""}, "name"),
    ],
)
def test_invalid_coupons_name_the_field(scope, overrides, field):
    with pytest.raises((ValidationFailed, EngineError)) as caught:
        services.create_coupon(scope, coupon_data(**overrides))
    assert caught.value.field == field
    assert not Coupon.objects.exists()


def test_a_coupon_is_redeemed_up_to_its_limit(scope):
    coupon = services.create_coupon(scope, coupon_data(max_redemptions=2))
    at = datetime(2026, 3, 1, tzinfo=UTC)
    services.redeem_coupon(scope, coupon, at)
    assert services.redeem_coupon(scope, coupon, at).times_redeemed == 2
    with pytest.raises(Conflict) as caught:
        services.redeem_coupon(scope, coupon, at)
    assert caught.value.code == "coupon_exhausted"
    coupon.refresh_from_db()
    assert coupon.times_redeemed == 2
    assert AuditEvent.objects.filter(action="coupon.redeemed").count() == 2


def test_a_coupon_past_its_redeem_by_or_archived_is_refused(scope):
    start = datetime(2026, 3, 1, tzinfo=UTC)
    with use_clock(FrozenClock(start)):
        coupon = services.create_coupon(scope, coupon_data(redeem_by=start + timedelta(days=1)))
    services.redeem_coupon(scope, coupon, start + timedelta(hours=23))
    with pytest.raises(Conflict) as caught:
        services.redeem_coupon(scope, coupon, start + timedelta(days=1))
    assert caught.value.code == "coupon_expired"
    other = services.create_coupon(scope, coupon_data(code="OTHER"))
    services.archive_coupon(scope, other.public_id)
    with pytest.raises(Conflict) as caught:
        services.redeem_coupon(scope, other, start)
    assert caught.value.code == "coupon_inactive"


def test_another_scope_cannot_redeem_a_coupon(scope, make_tenant):
    coupon = services.create_coupon(scope, coupon_data(max_redemptions=1))
    with pytest.raises(NotFound):
        services.redeem_coupon(
            Scope(make_tenant().pk, False, TEST_ACTOR), coupon, datetime(2026, 3, 1, tzinfo=UTC)
        )
    coupon.refresh_from_db()
    assert coupon.times_redeemed == 0


@pytest.mark.django_db(transaction=True)
def test_concurrent_redemptions_never_exceed_the_limit(make_tenant):
    if connection.vendor != "postgresql":
        pytest.skip("SQLite serialises writers; the race needs PostgreSQL")
    scope = Scope(make_tenant().pk, False, TEST_ACTOR)
    coupon = services.create_coupon(scope, coupon_data(max_redemptions=3))
    at = datetime(2026, 3, 1, tzinfo=UTC)
    barrier = threading.Barrier(8)
    outcomes = []

    def redeem():
        barrier.wait()
        try:
            services.redeem_coupon(scope, coupon, at)
            outcomes.append("ok")
        except Conflict as error:
            outcomes.append(error.code)
        finally:
            connection.close()

    threads = [threading.Thread(target=redeem) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["coupon_exhausted"] * 5 + ["ok"] * 3
    coupon.refresh_from_db()
    assert coupon.times_redeemed == 3
