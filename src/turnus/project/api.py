"""The REST API v1: every app's router under one NinjaAPI, with problem+json errors."""

from __future__ import annotations

from turnus.apps.billing.account_api import router as billing_account_router
from turnus.apps.billing.api import router as billing_router
from turnus.apps.catalog.api import router as catalog_router
from turnus.apps.customers.api import router as customers_router
from turnus.apps.documents.api import router as documents_router
from turnus.apps.metering.api import router as metering_router
from turnus.apps.subscriptions.api import router as subscriptions_router
from turnus.apps.tenants.api import router as tenants_router
from turnus.apps.tenants.auth import SecretKeyAuth
from turnus.core.api import ProblemAPI, install_problem_handlers

api = ProblemAPI(
    title="Turnus API",
    version="1",
    description="Subscription management and recurring billing. Amounts are decimal strings with a "
    "currency; times are RFC 3339 in UTC; ids are opaque and prefixed.",
    auth=SecretKeyAuth(),
    urls_namespace="v1",
    docs_url="/docs",
    openapi_url="/openapi.json",
)
install_problem_handlers(api)
api.add_router("/", tenants_router)
api.add_router("/", catalog_router)
api.add_router("/", customers_router)
api.add_router("/", subscriptions_router)
api.add_router("/", metering_router)
api.add_router("/", billing_router)
api.add_router("/", documents_router)
api.add_router("/", billing_account_router)
