"""What every /v1 route shares: problem+json error handlers, list envelopes, strict input schemas."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any, Generic, TypeVar

from django.http import Http404, HttpRequest, HttpResponse
from ninja import NinjaAPI, Schema
from ninja.errors import AuthenticationError, HttpError, ValidationError
from pydantic import BeforeValidator, ConfigDict, PlainSerializer, WithJsonSchema

from turnus.core.errors import FieldError, Problem, TurnusError, problem_for
from turnus.core.http import problem_response
from turnus.core.scope import Scope

T = TypeVar("T")

_LOCATION_ROOTS = {"body", "query", "path", "header", "cookie", "form"}


def _exact_decimal(value: Any) -> Decimal:
    if isinstance(value, (bool, float)):
        raise ValueError('amounts are decimal strings such as "19.99", never floating-point numbers')
    if isinstance(value, Decimal):
        return value
    if isinstance(value, int | str):
        try:
            result = Decimal(str(value).strip())
        except InvalidOperation:
            raise ValueError(f"{value!r} is not a decimal number") from None
        if not result.is_finite():
            raise ValueError("amounts must be finite numbers")
        return result
    raise ValueError("expected a decimal string")


#: An exact decimal: accepted as a string (or integer), never a float; written as a string.
DecimalString = Annotated[
    Decimal,
    BeforeValidator(_exact_decimal),
    PlainSerializer(lambda value: format(value, "f"), return_type=str, when_used="json"),
    WithJsonSchema({"type": "string", "pattern": r"^-?[0-9]{1,18}(\.[0-9]{1,12})?$", "examples": ["19.99"]}),
]


class InputSchema(Schema):
    """Request bodies: unknown fields are refused, not ignored."""

    model_config = ConfigDict(extra="forbid")


class ListResponse(Schema, Generic[T]):
    object: str = "list"
    data: list[T]
    has_more: bool


def scope_of(request: HttpRequest) -> Scope:
    scope = getattr(request, "auth", None)
    if not isinstance(scope, Scope):
        raise AuthenticationError()
    return scope


def _field_path(location: tuple[Any, ...] | list[Any]) -> str:
    parts = list(location)
    if parts and parts[0] in _LOCATION_ROOTS:
        parts = parts[1:]
        if len(parts) > 1 and parts[0] in {"payload", "data", "body", "filters", "params"}:
            parts = parts[1:]
    path = ""
    for part in parts:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path += ("." if path else "") + str(part)
    return path or "body"


def validation_problem(errors: list[dict[str, Any]]) -> Problem:
    field_errors = tuple(
        FieldError(
            _field_path(error.get("loc", ())), str(error.get("msg", "invalid")), str(error.get("type", ""))
        )
        for error in errors
    )
    detail = "; ".join(f"{e.field}: {e.message}" for e in field_errors) or "invalid request"
    return Problem(422, "validation_failed", "Validation failed", detail, field_errors)


def install_problem_handlers(api: NinjaAPI) -> None:
    """Make every error of ``api`` an RFC 9457 problem+json answer."""

    def on_turnus_error(request: HttpRequest, exc: TurnusError) -> HttpResponse:
        return problem_response(problem_for(exc, instance=request.path))

    def on_validation_error(request: HttpRequest, exc: ValidationError) -> HttpResponse:
        return problem_response(validation_problem(list(exc.errors)))

    def on_authentication_error(request: HttpRequest, exc: AuthenticationError) -> HttpResponse:
        problem = Problem(401, "unauthenticated", "Unauthenticated", "a valid secret API key is required")
        return problem_response(problem, headers={"WWW-Authenticate": "Bearer"})

    def on_http_error(request: HttpRequest, exc: HttpError) -> HttpResponse:
        status = exc.status_code
        code = {400: "malformed_request", 404: "not_found", 405: "method_not_allowed"}.get(
            status, "http_error"
        )
        return problem_response(Problem(status, code, str(exc), str(exc)))

    def on_not_found(request: HttpRequest, exc: Http404) -> HttpResponse:
        return problem_response(Problem(404, "not_found", "Not found", "no such object"))

    handlers: list[tuple[type[Exception], Callable[..., HttpResponse]]] = [
        (TurnusError, on_turnus_error),
        (ValidationError, on_validation_error),
        (AuthenticationError, on_authentication_error),
        (HttpError, on_http_error),
        (Http404, on_not_found),
    ]
    for exception_class, handler in handlers:
        api.add_exception_handler(exception_class, handler)
