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
