"""What every /v1 route shares: problem+json error handlers, list envelopes, strict input schemas."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any, Generic, TypeVar

from django.http import Http404, HttpRequest, HttpResponse
from ninja import NinjaAPI, Schema
from ninja.errors import AuthenticationError, HttpError, ValidationError
from pydantic import (
    AfterValidator,
    AwareDatetime,
    BeforeValidator,
    ConfigDict,
    PlainSerializer,
    WithJsonSchema,
    field_validator,
)

from turnus.core.errors import PROBLEM_CONTENT_TYPE, FieldError, Problem, TurnusError, problem_for
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
    PlainSerializer(lambda value: format(value, "f"), return_type=str),
    WithJsonSchema({"type": "string", "pattern": r"^-?[0-9]{1,18}(\.[0-9]{1,12})?$", "examples": ["19.99"]}),
]


def contains_nul(value: Any) -> bool:
    """Whether ``value`` holds a NUL character anywhere; databases (PostgreSQL) cannot store one."""
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(contains_nul(key) or contains_nul(item) for key, item in value.items())
    if isinstance(value, list | tuple):
        return any(contains_nul(item) for item in value)
    return False


def _to_utc(value: datetime) -> datetime:
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise ValueError("the instant lies outside the supported range of years") from None


#: An instant with an explicit UTC offset, converted to UTC on the way in.
UtcDateTime = Annotated[AwareDatetime, AfterValidator(_to_utc)]


class InputSchema(Schema):
    """Request bodies: unknown fields are refused, not ignored; text never holds NUL characters."""

    model_config = ConfigDict(extra="forbid")

    @field_validator("*")
    @classmethod
    def _refuse_nul(cls, value: Any) -> Any:
        if contains_nul(value):
            raise ValueError("text must not contain NUL characters")
        return value


class ListResponse(Schema, Generic[T]):
    object: str = "list"
    data: list[T]
    has_more: bool


class FieldErrorOut(Schema):
    field: str
    message: str
    code: str


class ProblemOut(Schema):
    """An RFC 9457 problem: ``code`` is stable, ``errors`` names the offending fields."""

    type: str
    title: str
    status: int
    detail: str
    code: str
    errors: list[FieldErrorOut]
    instance: str | None = None


_PROBLEM_DESCRIPTIONS = {
    400: "Malformed request (unreadable body or bad Idempotency-Key)",
    401: "Missing, unknown or revoked secret key",
    404: "No such object for this tenant and mode",
    409: "The object's state forbids the request",
    422: "Validation failed; `errors` names the fields",
}


def _problem_statuses(method: str, operation: dict[str, Any]) -> list[int]:
    statuses = [422]
    if operation.get("security"):
        statuses.append(401)
    if method != "get" or any(p.get("in") == "path" for p in operation.get("parameters", ())):
        statuses.append(404)
    if method != "get":
        statuses.extend((400, 409))
    return sorted(statuses)


class ProblemAPI(NinjaAPI):
    """A NinjaAPI whose OpenAPI document declares the problem+json answers every route can give."""

    def get_openapi_schema(
        self, *, path_prefix: str | None = None, path_params: dict[str, Any] | None = None
    ) -> Any:
        schema = super().get_openapi_schema(path_prefix=path_prefix, path_params=path_params)
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        problem = ProblemOut.model_json_schema(ref_template="#/components/schemas/{model}")
        components.update(problem.pop("$defs", {}))
        components["Problem"] = problem
        content = {PROBLEM_CONTENT_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}}
        for path_item in schema.get("paths", {}).values():
            for method, operation in path_item.items():
                responses = operation.setdefault("responses", {})
                for status in _problem_statuses(method, operation):
                    responses.setdefault(
                        status, {"description": _PROBLEM_DESCRIPTIONS[status], "content": content}
                    )
        return schema


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
