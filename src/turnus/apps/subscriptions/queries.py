"""Read side: one subscription as the API shows it, in a single statement.

``GET /v1/subscriptions/{id}`` is the hottest route. The ORM spends far longer composing the joined
query than the database spends answering it, so the statement is written once here. Plan versions are
immutable once locked (the first subscription locks its version), so a locked version is kept in memory
for the life of the process, keyed by its public id.
"""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet

from turnus.apps.catalog.models import Coupon, PlanVersion
from turnus.apps.customers.clocks import owner_of
from turnus.apps.customers.models import Customer
from turnus.apps.subscriptions.models import Subscription, SubscriptionAddOn
from turnus.core.errors import NotFound
from turnus.core.scope import Scope

_LOCKED_VERSIONS: dict[str, PlanVersion] = {}
_LOCKED_VERSIONS_LIMIT = 10_000

_ADDONS = SubscriptionAddOn._meta.db_table
_VIEW_SQL = f"""
SELECT s.*,
       c.public_id AS customer_public_id,
       c.test_clock_id AS customer_test_clock_id,
       v.public_id AS version_public_id,
       v.locked_at IS NOT NULL AS version_locked,
       k.code AS coupon_code,
       EXISTS (SELECT 1 FROM {_ADDONS} a WHERE a.subscription_id = s.id) AS has_addons
FROM {Subscription._meta.db_table} s
JOIN {Customer._meta.db_table} c ON c.id = s.customer_id
JOIN {PlanVersion._meta.db_table} v ON v.id = s.plan_version_id
LEFT JOIN {Coupon._meta.db_table} k ON k.id = s.coupon_id
WHERE s.tenant_id = %s AND s.livemode = %s AND s.public_id = %s
"""  # noqa: S608 (table names from the models; values are parameters)


def _plan_version(version_id: int, public_id: str, locked: bool) -> PlanVersion:
    version = _LOCKED_VERSIONS.get(public_id) if locked else None
    if version is None:
        version = PlanVersion.objects.select_related("plan").get(pk=version_id)
        if version.locked_at is not None:
            if len(_LOCKED_VERSIONS) >= _LOCKED_VERSIONS_LIMIT:
                _LOCKED_VERSIONS.clear()
            _LOCKED_VERSIONS[version.public_id] = version
    return version


def view_subscription(scope: Scope, public_id: str) -> Subscription:
    """The subscription ``public_id`` of this scope with what the API view reads: its customer's and
    coupon's ids, its plan version and plan, and ``has_addons``; ``NotFound`` otherwise."""
    rows = list(Subscription.objects.raw(_VIEW_SQL, [scope.tenant_id, scope.livemode, public_id]))
    if not rows:
        raise NotFound(f"no subscription {public_id}", field="id")
    found = rows[0]
    extra: dict[str, Any] = vars(found)
    db = found._state.db
    found.customer = Customer.from_db(
        db, ["id", "public_id"], [found.customer_id, extra["customer_public_id"]]
    )
    if found.coupon_id is not None:
        found.coupon = Coupon.from_db(db, ["id", "code"], [found.coupon_id, extra["coupon_code"]])
    found.plan_version = _plan_version(
        found.plan_version_id, extra["version_public_id"], bool(extra["version_locked"])
    )
    found.plan = found.plan_version.plan
    extra["has_addons"] = bool(extra["has_addons"])
    return found


def customer_of(scope: Scope, public_id: str) -> QuerySet[Any]:
    """The customer of subscription ``public_id``, as a queryset of its key, for
    ``turnus.apps.customers.clocks.customer_time`` (test-clock customers' subscriptions run at its time)."""
    return owner_of(Subscription, scope, public_id)
