from django.contrib import admin
from django.urls import path
from django.utils.translation import gettext_lazy as _

from turnus.core.health import healthz
from turnus.project.api import api

admin.site.site_header = _("Turnus back-office")
admin.site.site_title = _("Turnus")
admin.site.index_title = _("Subscriptions and billing")

urlpatterns = [
    path("healthz", healthz, name="healthz"),
    path("admin/", admin.site.urls),
    path("v1/", api.urls),
]
