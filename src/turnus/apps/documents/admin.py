"""Back-office: rendered documents with a download link, each staff user seeing their tenant's only."""

from __future__ import annotations

from functools import partial
from typing import Any

from django.contrib import admin, messages
from django.db import transaction
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse
from django.urls import URLPattern, path, reverse
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from turnus.apps.documents import delivery, services, tasks
from turnus.apps.documents.models import Delivery, Document
from turnus.apps.tenants.admin import ReadOnlyAdmin, actor_of
from turnus.core.errors import TurnusError
from turnus.core.scope import Scope


@admin.register(Document)
class DocumentAdmin(ReadOnlyAdmin):
    list_display = ("public_id", "invoice", "format", "size", "created_at", "livemode", "download")
    list_filter = ("format", "livemode")
    search_fields = ("public_id", "invoice__number", "invoice__public_id", "sha256")
    list_select_related = ("invoice",)
    fields = ("public_id", "invoice", "format", "sha256", "size", "created_at", "livemode", "download")
    readonly_fields = fields
    date_hierarchy = "created_at"

    @admin.display(description=_("download"))
    def download(self, document: Document) -> str:
        url = reverse("admin:documents_document_download", args=(document.pk,))
        return format_html('<a href="{}">{}</a>', url, services.download_name(document))

    def get_urls(self) -> list[URLPattern]:
        download = self.admin_site.admin_view(self.download_view)
        mine = [path("<int:pk>/download/", download, name="documents_document_download")]
        return mine + super().get_urls()

    def download_view(self, request: HttpRequest, pk: int, *args: Any, **kwargs: Any) -> HttpResponse:
        document = self.get_queryset(request).select_related("invoice").filter(pk=pk).first()
        if document is None or not self.has_view_permission(request, document):
            raise Http404("no such document")
        response = HttpResponse(services.content(document), content_type=document.media_type)
        response["Content-Disposition"] = f'attachment; filename="{services.download_name(document)}"'
        return response


@admin.register(Delivery)
class DeliveryAdmin(ReadOnlyAdmin):
    list_display = (
        "public_id",
        "invoice",
        "kind",
        "recipient",
        "status",
        "attempts",
        "short_error",
        "next_attempt_at",
        "sent_at",
        "livemode",
    )
    list_filter = ("status", "kind", "livemode")
    search_fields = ("public_id", "invoice__number", "invoice__public_id", "recipient", "message_id")
    list_select_related = ("invoice",)
    fields = (
        "public_id",
        "invoice",
        "kind",
        "recipient",
        "status",
        "attempts",
        "last_error",
        "last_attempt_at",
        "next_attempt_at",
        "sent_at",
        "message_id",
        "created_at",
        "livemode",
    )
    readonly_fields = fields
    date_hierarchy = "created_at"
    actions = ("resend",)

    @admin.display(description=_("last error"))
    def short_error(self, found: Delivery) -> str:
        error = found.last_error
        return error if len(error) <= 80 else f"{error[:79]}…"

    @admin.action(description=_("E-mail the invoices of the selected deliveries again"))
    def resend(self, request: HttpRequest, queryset: QuerySet[Delivery]) -> None:
        made = 0
        for found in queryset.select_related("invoice"):
            scope = Scope(found.tenant_id, found.livemode, actor_of(request))
            invoice = found.invoice
            try:
                public_id = delivery.resend(scope, invoice.public_id, invoice.kind).public_id
            except TurnusError as error:
                messages.error(request, f"{invoice}: {error.message}")
                continue
            transaction.on_commit(partial(tasks.send_delivery, public_id), robust=True)
            made += 1
        if made:
            messages.success(request, _("%(count)d e-mails queued.") % {"count": made})
