from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class CoreConfig(AppConfig):
    name = "turnus.core"
    label = "core"
    verbose_name = _("Turnus core")

    def ready(self) -> None:
        from turnus.core import database, lookups

        lookups.register()
        database.register()
