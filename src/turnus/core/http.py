"""HTTP helpers shared by every API route: problem+json responses."""

from __future__ import annotations

import json
from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

from turnus.core.errors import (
    PROBLEM_CONTENT_TYPE,
    NotFound,
    Problem,
    TurnusError,
    ValidationFailed,
    problem_for,
)


def problem_response(problem: Problem, *, headers: dict[str, str] | None = None) -> HttpResponse:
    response = HttpResponse(
        json.dumps(problem.as_dict()),
        status=problem.status,
        content_type=PROBLEM_CONTENT_TYPE,
    )
    for name, value in (headers or {}).items():
        response[name] = value
    return response


def error_response(
    error: TurnusError, *, status: int | None = None, instance: str | None = None
) -> HttpResponse:
    problem = problem_for(error, instance=instance)
    if status is not None:
        problem = Problem(
            status, problem.code, problem.title, problem.detail, problem.errors, problem.instance
        )
    return problem_response(problem)


class RefuseNulMiddleware:
    """Under ``/v1/``, a NUL character in the path is a 404 and in a query parameter a 422 naming it.

    No id or stored text can hold one (PostgreSQL refuses them), so such requests never reach a lookup.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if not request.path.startswith("/v1/"):
            return self.get_response(request)
        if "\x00" in request.path:
            return error_response(NotFound("no such object"))
        for name, values in request.GET.lists():
            if "\x00" in name or any("\x00" in value for value in values):
                field = name.replace("\x00", "")
                return error_response(
                    ValidationFailed(f"{field} must not contain NUL characters", field=field)
                )
        return self.get_response(request)
