from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class DocumentsConfig(AppConfig):
    name = "turnus.apps.documents"
    label = "documents"
    verbose_name = _("Invoice documents")

    def ready(self) -> None:
        from turnus.apps.billing.services import invoice_issued
        from turnus.apps.documents.tasks import on_invoice_issued

        invoice_issued.connect(on_invoice_issued, dispatch_uid="documents.render_on_issue")
