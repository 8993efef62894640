"""``field__any``: the same rows as ``field__in``, on SQLite and PostgreSQL, for keys, relations and text."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from turnus.apps.catalog.models import Product
from turnus.apps.tenants.models import Tenant


def _products(tenant: Tenant, count: int) -> list[Product]:
    return [
        Product.objects.create(
            public_id=f"prod_{tenant.pk}_{index}",
            tenant=tenant,
            livemode=False,
            created_at=tenant.created_at,
            name_en=f"obj_{index}",
        )
        for index in range(count)
    ]


@pytest.mark.django_db
def test_any_finds_what_in_finds(tenant, make_tenant):
    other = make_tenant(legal_name="Andere GmbH")
    events = _products(tenant, 5)
    keys = [events[0].pk, events[3].pk, 10**12]
    for lookup in ("pk", "id"):
        assert set(Product.objects.filter(**{f"{lookup}__any": keys})) == {events[0], events[3]}
        assert set(Product.objects.exclude(**{f"{lookup}__any": keys})) == set(events) - {
            events[0],
            events[3],
        }
    for lookup in ("tenant", "tenant_id"):
        found = Product.objects.filter(**{f"{lookup}__any": [tenant.pk]})
        assert set(found) == set(Product.objects.filter(**{f"{lookup}__in": [tenant.pk]}))
        assert set(Product.objects.filter(**{f"{lookup}__any": [other.pk]})) == set()
    texts = ["obj_1", "obj_4", "missing"]
    assert {product.name_en for product in Product.objects.filter(name_en__any=texts)} == {"obj_1", "obj_4"}
    with_none = [events[0].pk, None]
    assert set(Product.objects.exclude(pk__any=with_none)) == set(Product.objects.exclude(pk__in=with_none))
    assert set(Product.objects.filter(pk__any=with_none)) == {events[0]}
    assert not Product.objects.filter(pk__any=[]).exists()
    assert Product.objects.exclude(pk__any=[]).count() == 5


@pytest.mark.django_db
def test_any_binds_one_array_on_postgresql(tenant):
    events = _products(tenant, 3)
    with CaptureQueriesContext(connection) as captured:
        list(Product.objects.filter(pk__any=[event.pk for event in events]))
    sql = captured.captured_queries[-1]["sql"]
    if connection.vendor == "postgresql":
        assert "= ANY(" in sql
        assert " IN (" not in sql
    else:
        assert " IN (" in sql
