from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class MeteringConfig(AppConfig):
    name = "turnus.apps.metering"
    label = "metering"
    verbose_name = _("Usage metering")

    def ready(self) -> None:
        from turnus.apps.metering import store

        store.install_sqlite_functions()
