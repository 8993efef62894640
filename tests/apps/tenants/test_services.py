import pytest

from tests.support import TEST_ACTOR, tenant_data
from turnus.apps.tenants import services
from turnus.apps.tenants.models import ApiKey, Tenant
from turnus.core.errors import Conflict, NotFound, ValidationFailed
from turnus.core.models import AuditEvent, OutboxEvent

pytestmark = pytest.mark.django_db


def test_creating_a_tenant_normalises_its_identifiers_and_audits_it():
    tenant = services.create_tenant(
        tenant_data(
            slug="",
            legal_name="Müller & Söhne GmbH",
            country="de",
            vat_id="DE 136 695 976",
            iban="DE89 3704 0044 0532 0130 00",
        ),
        actor=TEST_ACTOR,
    )
    assert tenant.public_id.startswith("ten_")
    assert (tenant.slug, tenant.country, tenant.vat_id) == ("muller-sohne-gmbh", "DE", "DE136695976")
    assert tenant.iban == "DE89370400440532013000"
    event = AuditEvent.objects.get(object_id=tenant.public_id)
    assert (event.action, event.actor, event.after["legal_name"]) == (
        "tenant.created",
        "system:tests",
        "Müller & Söhne GmbH",
    )
    assert OutboxEvent.objects.filter(type="tenant.created", object_id=tenant.public_id).exists()


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("country", "XX"),
        ("default_currency", "EURO"),
        ("timezone", "Europe/Atlantis"),
        ("vat_id", "DE136695977"),
        ("iban", "DE89370400440532013001"),
        ("bic", "NOTABIC"),
        ("sepa_creditor_id", "DE00ZZZ09999999999"),
        ("invoice_number_format", "RE-{year}"),
        ("invoice_number_format", "RE-{nope}-{seq}"),
        ("locale", "fr"),
        ("legal_name", ""),
    ],
)
def test_invalid_tenant_data_names_the_field_and_writes_nothing(field, value):
    with pytest.raises(ValidationFailed) as caught:
        services.create_tenant(tenant_data(**{field: value}), actor=TEST_ACTOR)
    assert caught.value.field == field
    assert not Tenant.objects.exists()
    assert not AuditEvent.objects.exists()


def test_a_tenant_needs_a_vat_id_or_tax_number_unless_it_is_a_small_business():
    with pytest.raises(ValidationFailed) as caught:
        services.create_tenant(tenant_data(vat_id="", tax_number=""), actor=TEST_ACTOR)
    assert caught.value.field == "vat_id"
    small = services.create_tenant(tenant_data(vat_id="", small_business=True), actor=TEST_ACTOR)
    assert small.small_business


def test_unknown_tenant_fields_are_refused():
    with pytest.raises(ValidationFailed) as caught:
        services.create_tenant(tenant_data(colour="blue"), actor=TEST_ACTOR)
    assert caught.value.field == "colour"


def test_a_second_tenant_with_the_same_slug_is_a_conflict():
    services.create_tenant(tenant_data(slug="acme"), actor=TEST_ACTOR)
    with pytest.raises(Conflict):
        services.create_tenant(tenant_data(slug="acme"), actor=TEST_ACTOR)
    assert Tenant.objects.count() == 1


def test_updating_a_tenant_records_before_and_after(tenant):
    services.update_tenant(tenant, {"city": "Hamburg", "postal_code": "20095"}, actor=TEST_ACTOR)
    event = AuditEvent.objects.get(action="tenant.updated")
    assert (event.before["city"], event.after["city"]) == ("Berlin", "Hamburg")


@pytest.mark.parametrize(
    ("livemode", "kind", "prefix"),
    [
        (False, "secret", "sk_test_"),
        (True, "secret", "sk_live_"),
        (False, "publishable", "pk_test_"),
        (True, "publishable", "pk_live_"),
    ],
)
def test_keys_are_shown_once_and_stored_only_as_a_hash(tenant, livemode, kind, prefix):
    issued = services.create_api_key(tenant, livemode=livemode, kind=kind, actor=TEST_ACTOR)
    assert issued.plaintext.startswith(prefix)
    assert len(issued.plaintext) == len(prefix) + services.KEY_BODY_LENGTH
    stored = ApiKey.objects.get(pk=issued.key.pk)
    assert issued.plaintext not in {stored.key_hash, stored.prefix, stored.name}
    assert stored.key_hash == services.hash_key(issued.plaintext)
    assert services.find_active_key(issued.plaintext) == stored


def test_a_revoked_key_no_longer_authenticates(tenant):
    issued = services.create_api_key(tenant, livemode=False, actor=TEST_ACTOR)
    services.revoke_api_key(tenant, issued.key.public_id, actor=TEST_ACTOR)
    assert services.find_active_key(issued.plaintext) is None
    assert AuditEvent.objects.filter(action="api_key.revoked", object_id=issued.key.public_id).count() == 1
    services.revoke_api_key(tenant, issued.key.public_id, actor=TEST_ACTOR)
    assert AuditEvent.objects.filter(action="api_key.revoked").count() == 1


def test_a_tenant_cannot_revoke_another_tenants_key(make_tenant):
    mine, theirs = make_tenant(), make_tenant()
    issued = services.create_api_key(theirs, livemode=False, actor=TEST_ACTOR)
    with pytest.raises(NotFound):
        services.revoke_api_key(mine, issued.key.public_id, actor=TEST_ACTOR)
    assert services.find_active_key(issued.plaintext) is not None


def test_unknown_key_kinds_and_foreign_tokens_are_refused(tenant):
    with pytest.raises(ValidationFailed):
        services.create_api_key(tenant, livemode=False, kind="admin", actor=TEST_ACTOR)
    assert services.find_active_key("Bearer nonsense") is None
    assert services.find_active_key("sk_test_" + "x" * 100) is None
