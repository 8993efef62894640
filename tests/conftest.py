import os

import pytest
from hypothesis import HealthCheck, settings

settings.register_profile("default", deadline=None)
settings.register_profile(
    "ci",
    deadline=None,
    derandomize=True,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile("ci" if os.environ.get("CI") == "true" else "default")


@pytest.fixture(autouse=True, scope="session")
def _jobs_run_at_once_and_documents_stay_in_a_temporary_folder(tmp_path_factory):
    """Queued jobs run where they are queued (huey's immediate mode, in memory), so that tests never fill
    the development queue in var/; rendered documents go to a temporary folder, not var/documents."""
    from django.conf import settings as django_settings
    from django.test.utils import override_settings

    from turnus.core.jobs import huey

    storages = {
        **django_settings.STORAGES,
        "documents": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(tmp_path_factory.mktemp("documents"))},
        },
    }
    huey.immediate = True
    with override_settings(STORAGES=storages):
        yield
    huey.immediate = False


@pytest.fixture
def make_tenant(db):
    from tests.support import TEST_ACTOR, tenant_data
    from turnus.apps.tenants import services

    def make(**overrides):
        return services.create_tenant(tenant_data(**overrides), actor=TEST_ACTOR)

    return make


@pytest.fixture
def tenant(make_tenant):
    return make_tenant()


@pytest.fixture
def api(tenant):
    from tests.support import ApiClient

    return ApiClient(tenant)
