import pytest

from tests.apps.customers.support import customer_data
from tests.support import TEST_ACTOR
from turnus.apps.customers import services
from turnus.apps.customers.models import Customer
from turnus.core.errors import Conflict, NotFound, ValidationFailed
from turnus.core.models import AuditEvent, OutboxEvent
from turnus.core.scope import Scope

pytestmark = pytest.mark.django_db


@pytest.fixture
def scope(tenant):
    return Scope(tenant.pk, False, TEST_ACTOR)


def test_a_new_customer_takes_the_tenants_language_and_timezone(make_tenant):
    tenant = make_tenant(locale="en", timezone="Europe/Vienna")
    customer = services.create_customer(Scope(tenant.pk, False, TEST_ACTOR), customer_data())
    assert customer.public_id.startswith("cus_")
    assert (customer.locale, customer.timezone) == ("en", "Europe/Vienna")
    assert (customer.tax_exempt, customer.metadata, customer.is_business) == ("none", {}, False)


def test_identifiers_are_stored_in_canonical_form(scope):
    customer = services.create_customer(
        scope, customer_data(country="at", vat_id="ATU 1358 5627", company="  Beispiel GmbH ")
    )
    assert (customer.country, customer.vat_id, customer.company) == ("AT", "ATU13585627", "Beispiel GmbH")
    assert customer.is_business


def test_a_greek_vat_id_begins_with_el_and_matches_the_country_gr(scope):
    customer = services.create_customer(scope, customer_data(country="GR", vat_id="EL094259216"))
    assert customer.vat_id == "EL094259216"


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("name", "  "),
        ("email", "not-an-address"),
        ("country", "XX"),
        ("locale", "fr"),
        ("timezone", "Mars/Olympus"),
        ("vat_id", "DE136695977"),
        ("vat_id", "ATU13585627"),
        ("tax_exempt", "sometimes"),
        ("metadata", ["a"]),
        ("external_id", "x" * 121),
    ],
)
def test_invalid_input_names_the_field_and_writes_nothing(scope, field, value):
    with pytest.raises(ValidationFailed) as raised:
        services.create_customer(scope, customer_data(**{field: value}))
    assert raised.value.field == field
    assert not Customer.objects.exists()
    assert not AuditEvent.objects.filter(object_type="customer").exists()


@pytest.mark.parametrize(
    "metadata",
    [
        {f"k{n}": "v" for n in range(51)},
        {"k" * 41: "v"},
        {"key": "v" * 501},
        {"key": 1},
        {"": "v"},
    ],
)
def test_metadata_is_a_small_flat_map_of_strings(scope, metadata):
    with pytest.raises(ValidationFailed) as raised:
        services.create_customer(scope, customer_data(metadata=metadata))
    assert raised.value.field.startswith("metadata")


def test_metadata_at_the_limits_is_accepted(scope):
    metadata = {f"{n:02}" + "k" * 38: "v" * 500 for n in range(50)}
    assert services.create_customer(scope, customer_data(metadata=metadata)).metadata == metadata


def test_an_external_id_is_unique_per_tenant_and_mode(make_tenant):
    tenant, other = make_tenant(), make_tenant()
    test_scope, live_scope = Scope(tenant.pk, False, TEST_ACTOR), Scope(tenant.pk, True, TEST_ACTOR)
    services.create_customer(test_scope, customer_data(external_id="user-1"))
    services.create_customer(live_scope, customer_data(external_id="user-1"))
    services.create_customer(Scope(other.pk, False, TEST_ACTOR), customer_data(external_id="user-1"))
    with pytest.raises(Conflict) as raised:
        services.create_customer(test_scope, customer_data(external_id="user-1"))
    assert raised.value.field == "external_id"
    assert Customer.objects.filter(external_id="user-1").count() == 3


def test_customers_without_an_external_id_do_not_collide(scope):
    services.create_customer(scope, customer_data())
    services.create_customer(scope, customer_data(external_id=""))
    assert Customer.objects.count() == 2


def test_an_update_to_a_taken_external_id_is_a_conflict_and_changes_nothing(scope):
    services.create_customer(scope, customer_data(external_id="user-1"))
    second = services.create_customer(scope, customer_data(external_id="user-2", name="Max"))
    with pytest.raises(Conflict):
        services.update_customer(scope, second.public_id, {"external_id": "user-1", "name": "Moritz"})
    second.refresh_from_db()
    assert (second.external_id, second.name) == ("user-2", "Max")


def test_an_update_changes_only_the_given_fields_and_audits_before_and_after(scope):
    customer = services.create_customer(scope, customer_data(metadata={"plan": "gold"}))
    updated = services.update_customer(scope, customer.public_id, {"city": "Bonn", "company": "Acme AG"})
    assert (updated.city, updated.company, updated.name) == ("Bonn", "Acme AG", "Erika Mustermann")
    assert updated.metadata == {"plan": "gold"}
    event = AuditEvent.objects.get(action="customer.updated", object_id=customer.public_id)
    assert (event.before["city"], event.after["city"]) == ("Köln", "Bonn")
    assert (event.before["is_business"], event.after["is_business"]) == (False, True)
    assert OutboxEvent.objects.filter(type="customer.updated", object_id=customer.public_id).exists()


def test_changing_the_country_away_from_the_vat_ids_country_is_refused(scope):
    customer = services.create_customer(scope, customer_data(vat_id="DE136695976"))
    with pytest.raises(ValidationFailed) as raised:
        services.update_customer(scope, customer.public_id, {"country": "AT"})
    assert raised.value.field == "vat_id"


def test_a_deleted_customer_stays_in_the_database_but_is_not_found(scope):
    customer = services.create_customer(scope, customer_data(external_id="user-1"))
    services.delete_customer(scope, customer.public_id)
    assert Customer.objects.get(pk=customer.pk).deleted_at is not None
    with pytest.raises(NotFound):
        services.get_customer(scope, customer.public_id)
    with pytest.raises(NotFound):
        services.get_customer_by_external_id(scope, "user-1")
    with pytest.raises(NotFound):
        services.update_customer(scope, customer.public_id, {"name": "x"})
    with pytest.raises(NotFound):
        services.delete_customer(scope, customer.public_id)
    assert [e.type for e in OutboxEvent.objects.filter(object_id=customer.public_id)] == [
        "customer.created",
        "customer.deleted",
    ]


def test_the_external_id_of_a_deleted_customer_can_be_used_again(scope):
    first = services.create_customer(scope, customer_data(external_id="user-1"))
    services.delete_customer(scope, first.public_id)
    second = services.create_customer(scope, customer_data(external_id="user-1"))
    assert services.get_customer_by_external_id(scope, "user-1") == second


def test_the_bridge_finds_customers_of_its_scope_only(make_tenant):
    tenant, other = make_tenant(), make_tenant()
    scope = Scope(tenant.pk, False, TEST_ACTOR)
    customer = services.create_customer(scope, customer_data())
    assert services.get_customer(scope, customer.public_id) == customer
    for foreign in (Scope(tenant.pk, True, TEST_ACTOR), Scope(other.pk, False, TEST_ACTOR)):
        with pytest.raises(NotFound) as raised:
            services.get_customer(foreign, customer.public_id, field="customer")
        assert raised.value.field == "customer"


def test_only_a_customer_with_an_external_id_needs_a_savepoint_for_its_insert(scope):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as plain:
        services.create_customer(scope, customer_data())
    with CaptureQueriesContext(connection) as external:
        services.create_customer(scope, customer_data(external_id="crm-1"))

    def savepoints(captured):
        return sum(query["sql"].startswith("SAVEPOINT") for query in captured.captured_queries)

    assert savepoints(external) == savepoints(plain) + 1
    with pytest.raises(Conflict):
        services.create_customer(scope, customer_data(external_id="crm-1"))
    assert Customer.objects.filter(external_id="crm-1").count() == 1
