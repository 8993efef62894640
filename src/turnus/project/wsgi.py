"""The WSGI application: ``/v1/`` goes to a handler with ``settings.API_MIDDLEWARE``, the rest (admin,
pages, health) to one with the full ``settings.MIDDLEWARE``."""

import os
from collections.abc import Iterable
from typing import Any

from django.conf import settings
from django.core.handlers.wsgi import WSGIHandler
from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "turnus.project.settings")

API_PREFIX = "/v1/"


class ApiHandler(WSGIHandler):
    """Django's handler with the chain of ``settings.API_MIDDLEWARE`` (swapped in once, at start-up)."""

    def load_middleware(self, is_async: bool = False) -> None:
        full = settings.MIDDLEWARE
        settings.MIDDLEWARE = settings.API_MIDDLEWARE
        try:
            super().load_middleware(is_async)
        finally:
            settings.MIDDLEWARE = full


class Application:
    def __init__(self) -> None:
        self.site = get_wsgi_application()
        self.api = ApiHandler()

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        handler = self.api if environ.get("PATH_INFO", "").startswith(API_PREFIX) else self.site
        return handler(environ, start_response)


application = Application()
