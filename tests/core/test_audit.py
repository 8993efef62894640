"""The audit trail and the outbox: one row each per recorded change, in order, values stored as given."""

from datetime import UTC, datetime

import pytest

from tests.support import TEST_ACTOR
from turnus.core.audit import Change, record, record_many
from turnus.core.clock import FrozenClock, SimulatedClock, use_clock
from turnus.core.models import AuditEvent, OutboxEvent
from turnus.core.scope import Scope

pytestmark = pytest.mark.django_db

AT = datetime(2026, 3, 1, 9, 30, tzinfo=UTC)


def test_record_many_writes_an_audit_row_and_a_domain_event_per_change_in_order():
    scope = Scope(7, True, TEST_ACTOR)
    before = {"status": "active", "amount": "9.50", "nested": {"list": [1, "two", None]}}
    after = {"status": "cancelled", "amount": "9.50", "nested": {"list": []}}
    changes = [
        Change("subscription.cancelled", "subscription", "sub_1", before, after),
        Change("subscription.updated", "subscription", "sub_1", before, after),
        Change("usage.closed", "subscription", "sub_1", before=before),
        Change("invoice.created", "invoice", "inv_1", after=after),
    ]
    with use_clock(FrozenClock(AT)):
        record_many(scope, changes)
    audit = list(AuditEvent.objects.order_by("public_id"))
    assert [(row.action, row.object_type, row.object_id) for row in audit] == [
        ("subscription.cancelled", "subscription", "sub_1"),
        ("subscription.updated", "subscription", "sub_1"),
        ("usage.closed", "subscription", "sub_1"),
        ("invoice.created", "invoice", "inv_1"),
    ]
    assert [(row.before, row.after) for row in audit] == [
        (before, after),
        (before, after),
        (before, None),
        (None, after),
    ]
    assert {(row.tenant_id, row.livemode, row.actor, row.request_id, row.created_at) for row in audit} == {
        (7, True, str(TEST_ACTOR), scope.request_id, AT)
    }
    assert AuditEvent.objects.filter(after__isnull=True).count() == 1
    assert AuditEvent.objects.filter(before__isnull=True).count() == 1
    outbox = list(OutboxEvent.objects.order_by("public_id"))
    assert [(row.type, row.object_id, row.payload) for row in outbox] == [
        ("subscription.cancelled", "sub_1", after),
        ("subscription.updated", "sub_1", after),
        ("usage.closed", "sub_1", before),
        ("invoice.created", "inv_1", after),
    ]
    assert {(row.tenant_id, row.livemode, row.created_at) for row in outbox} == {(7, True, AT)}
    assert len({row.public_id for row in audit} | {row.public_id for row in outbox}) == 8


def test_record_writes_one_of_each_and_an_empty_payload_when_nothing_is_given():
    record(Scope(3, False, TEST_ACTOR), "tenant.touched", "tenant", "ten_1")
    audit = AuditEvent.objects.get()
    assert (audit.action, audit.before, audit.after) == ("tenant.touched", None, None)
    assert OutboxEvent.objects.get().payload == {}


def test_record_many_of_nothing_writes_nothing(django_assert_num_queries):
    with django_assert_num_queries(0):
        record_many(Scope(3, False, TEST_ACTOR), [])


def test_a_change_on_a_test_clock_occurred_at_the_clocks_time_but_is_recorded_at_the_real_time():
    scope = Scope(7, False, TEST_ACTOR)
    frozen = datetime(2031, 5, 1, 12, 0, tzinfo=UTC)
    with use_clock(SimulatedClock(frozen)):
        record(scope, "subscription.updated", "subscription", "sub_1", after={"quantity": "2"})
    row = AuditEvent.objects.get()
    assert row.occurred_at == frozen
    assert row.created_at < frozen


def test_a_change_under_the_real_clock_occurred_when_it_was_recorded():
    with use_clock(FrozenClock(AT)):
        record(Scope(7, True, TEST_ACTOR), "customer.created", "customer", "cus_1", after={})
    row = AuditEvent.objects.get()
    assert row.occurred_at == row.created_at == AT
