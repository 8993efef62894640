"""HTTP helpers shared by every API route: problem+json responses."""

from __future__ import annotations

import json

from django.http import HttpResponse

from turnus.core.errors import PROBLEM_CONTENT_TYPE, Problem, TurnusError, problem_for


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
