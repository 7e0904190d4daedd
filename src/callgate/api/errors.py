"""The one table that turns domain exceptions into HTTP answers of the resource API.

Bodies are ``{"status": "<machine id>", "message": "<sentence>"}``; invalid input adds
``fields``. OAuth endpoints keep their own RFC 6749 error format and do not pass through here.
"""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from callgate.common import errors

HTTP_STATUS: dict[type[errors.DomainError], int] = {
    errors.InvalidToken: 401,
    errors.UserBlocked: 403,
    errors.UserAccessTypeDeny: 403,
    errors.AppAccessTypeDeny: 403,
    errors.AccessDenied: 403,
    errors.PermissionRefused: 403,
    errors.NotFound: 404,
    errors.Conflict: 409,
    errors.PayloadTooLarge: 413,
    errors.UnsupportedMediaType: 415,
    errors.InvalidInput: 422,
    errors.RateLimitExceeded: 429,
    errors.TooManyAttempts: 429,
    errors.PbxUnavailable: 503,
}


def status_for(exc: errors.DomainError) -> int:
    for cls in type(exc).__mro__:
        if cls in HTTP_STATUS:
            return HTTP_STATUS[cls]
    return 400


def error_body(status: str, message: str, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"status": status, "message": message}
    body.update(extra)
    return body


def domain_error_response(exc: errors.DomainError) -> JSONResponse:
    extra: dict[str, Any] = {}
    headers: dict[str, str] = {}
    if isinstance(exc, errors.InvalidInput) and exc.fields:
        extra["fields"] = exc.fields
    if isinstance(exc, errors.InvalidToken):
        headers["WWW-Authenticate"] = 'Bearer error="invalid_token"'
    if isinstance(exc, errors.RateLimitExceeded | errors.TooManyAttempts):
        headers["Retry-After"] = str(exc.retry_after)
    return JSONResponse(
        error_body(exc.status, exc.message, **extra), status_code=status_for(exc), headers=headers
    )


def _describe(error: dict[str, Any]) -> tuple[str, str]:
    if error.get("type") == "json_invalid":
        # FastAPI puts the character position where a field name would be.
        position = next((part for part in error.get("loc", ()) if isinstance(part, int)), None)
        problem = (error.get("ctx") or {}).get("error") or "JSON decode error"
        where = "" if position is None else f" at character {position}"
        return "body", f"is not valid JSON: {problem}{where}"
    location = [str(part) for part in error.get("loc", ()) if part not in ("body", "query", "path")]
    field = ".".join(location) or "body"
    return field, str(error.get("msg", "is invalid"))


def validation_error_response(exc: RequestValidationError) -> JSONResponse:
    fields: dict[str, str] = {}
    for error in exc.errors():
        field, message = _describe(error)
        fields.setdefault(field, message)
    names = ", ".join(sorted(fields))
    return JSONResponse(
        error_body("invalid_input", f"Invalid input in: {names}.", fields=fields), status_code=422
    )


def is_api_request(request: Request) -> bool:
    return request.url.path.startswith("/api/")
