from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class BillingConfig(AppConfig):
    name = "turnus.apps.billing"
    label = "billing"
    verbose_name = _("Invoices and credit notes")

    def ready(self) -> None:
        from turnus.apps.billing.receivers import on_subscription_changed
        from turnus.apps.subscriptions.signals import subscription_changed

        subscription_changed.connect(on_subscription_changed, dispatch_uid="billing.due_on_change")
