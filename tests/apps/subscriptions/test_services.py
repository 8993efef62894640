import pytest

from tests.apps.catalog.conftest import plan_data, product_data
from tests.apps.customers.support import customer_data
from tests.support import TEST_ACTOR
from turnus.apps.catalog import services as catalog
from turnus.apps.customers import services as customers
from turnus.apps.subscriptions import services
from turnus.core.models import AuditEvent, OutboxEvent
from turnus.core.scope import Scope

pytestmark = pytest.mark.django_db


def test_creating_a_subscription_audits_and_emits_subscription_created_once(tenant):
    scope = Scope(tenant.pk, False, TEST_ACTOR)
    plan = catalog.create_plan(scope, plan_data(catalog.create_product(scope, product_data()).public_id))
    customer = customers.create_customer(scope, customer_data())
    subscription = services.create_subscription(scope, customer=customer.public_id, plan=plan.public_id)
    audited = AuditEvent.objects.filter(object_id=subscription.public_id, action="subscription.created")
    emitted = OutboxEvent.objects.filter(object_id=subscription.public_id, type="subscription.created")
    assert (audited.count(), emitted.count()) == (1, 1)
    assert audited.get().after["status"] == "active"


def test_advancing_a_subscription_stores_the_renewals_that_fell_due(tenant):
    from datetime import UTC, datetime, timedelta

    from turnus.apps.subscriptions.models import SubscriptionCharge
    from turnus.core.clock import FrozenClock, use_clock

    scope = Scope(tenant.pk, False, TEST_ACTOR)
    clock = FrozenClock(datetime(2026, 1, 15, 10, tzinfo=UTC))
    with use_clock(clock):
        plan = catalog.create_plan(scope, plan_data(catalog.create_product(scope, product_data()).public_id))
        customer = customers.create_customer(scope, customer_data())
        subscription = services.create_subscription(scope, customer=customer.public_id, plan=plan.public_id)
        assert SubscriptionCharge.objects.filter(subscription=subscription, kind="recurring").count() == 1
        clock.advance(timedelta(days=62))
        outcome = services.advance_subscription(scope, subscription.public_id)
    recurring = SubscriptionCharge.objects.filter(subscription=subscription, kind="recurring")
    assert recurring.count() == 3
    assert outcome.subscription.current_period_start > datetime(2026, 3, 1, tzinfo=UTC)
    assert outcome.subscription.as_of == clock.now()
