"""Customers attach to a test clock at creation, in test mode only, and then live at its time."""

from datetime import UTC, datetime

import pytest

from tests.apps.customers.support import customer_data
from tests.support import TEST_ACTOR
from turnus.apps.billing import test_clocks
from turnus.apps.customers import clocks, services
from turnus.apps.customers.models import Customer
from turnus.core import clock
from turnus.core.errors import NotFound, ValidationFailed
from turnus.core.models import AuditEvent
from turnus.core.scope import Scope

pytestmark = pytest.mark.django_db

FROZEN = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)


@pytest.fixture
def scope(tenant):
    return Scope(tenant.pk, False, TEST_ACTOR)


@pytest.fixture
def spring(scope):
    return test_clocks.create_test_clock(scope, frozen_time=FROZEN, name="Spring")


def test_a_customer_on_a_test_clock_is_created_at_its_time_and_audited_with_it(scope, spring):
    customer = services.create_customer(scope, {**customer_data(), "test_clock": spring.public_id})
    assert (customer.test_clock_id, customer.created_at) == (spring.pk, FROZEN)
    audited = AuditEvent.objects.get(action="customer.created", object_id=customer.public_id)
    assert audited.after["test_clock"] == spring.public_id
    assert audited.created_at > FROZEN, "the audit log keeps the real time"


def test_customer_time_is_the_clocks_time_for_its_customers_only(scope, spring):
    on_clock = services.create_customer(scope, {**customer_data(), "test_clock": spring.public_id})
    plain = services.create_customer(scope, customer_data())
    with clocks.customer_time(scope, clocks.customer_named(scope, on_clock.public_id)) as frozen:
        assert frozen == clock.now() == FROZEN
        assert clock.system_now() > FROZEN
    with clocks.customer_time(scope, clocks.customer_named(scope, plain.public_id)) as frozen:
        assert frozen is None
        assert clock.now() > FROZEN
    assert clocks.frozen_times(scope, [on_clock.pk, plain.pk]) == {on_clock.pk: FROZEN}
    live = Scope(scope.tenant_id, True, TEST_ACTOR)
    assert clocks.frozen_times(live, [on_clock.pk]) == {}


def test_live_customers_cannot_attach_and_foreign_or_deleted_clocks_are_not_found(scope, spring, make_tenant):
    live = Scope(scope.tenant_id, True, TEST_ACTOR)
    with pytest.raises(ValidationFailed) as refused:
        services.create_customer(live, {**customer_data(), "test_clock": spring.public_id})
    assert refused.value.field == "test_clock"
    stranger = Scope(make_tenant().pk, False, TEST_ACTOR)
    with pytest.raises(NotFound) as foreign:
        services.create_customer(stranger, {**customer_data(), "test_clock": spring.public_id})
    assert foreign.value.field == "test_clock"
    test_clocks.delete_test_clock(scope, spring.public_id)
    with pytest.raises(NotFound):
        services.create_customer(scope, {**customer_data(), "test_clock": spring.public_id})
    assert not Customer.objects.exists()


def test_the_test_clock_admin_lists_the_clocks(admin_client, spring):
    response = admin_client.get("/admin/customers/testclock/")
    assert response.status_code == 200
    assert spring.public_id in response.content.decode()
    assert admin_client.get("/admin/customers/testclock/add/").status_code == 403
