"""``/healthz``: is this process serving, and does its database answer?"""

from __future__ import annotations

from django.db import DatabaseError, connection
from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe

import turnus
from turnus.core import clock


@never_cache
@require_safe
def healthz(request: HttpRequest) -> JsonResponse:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
        database = "ok"
    except DatabaseError:
        database = "unavailable"
    healthy = database == "ok"
    return JsonResponse(
        {
            "status": "ok" if healthy else "degraded",
            "database": database,
            "database_vendor": connection.vendor,
            "version": turnus.__version__,
            "time": clock.now().isoformat().replace("+00:00", "Z"),
        },
        status=200 if healthy else 503,
    )
