"""The OpenAPI document of ``/api/ver1.0``, completed from what the routes already declare.

FastAPI describes parameters, bodies and success answers from the routes' signatures. What it
cannot see — the access policy, the error table, the quota headers — follows from facts each
operation already carries: its ``x-callgate-operation`` class, its method, its path parameters
and whether it takes a body. So this module adds them generically, and a route added by anyone
is described completely without touching this file:

- 401 (with ``WWW-Authenticate``) and 429 (with ``Retry-After``) on every operation;
- 403 naming exactly the refusals the policy can give this operation (``user_blocked`` always;
  ``user_access_type_deny`` on writes; ``app_access_type_deny`` on ``config`` writes;
  ``access_denied`` in client/extension realms; ``permission_denied`` on writes);
- 404 where the path names an object, 409 on writes, 415 and 413 where a body is taken, and 422
  with the ``fields`` of the offending input where anything is parsed;
- ``X-RateLimit-*`` on every answer that passed the token check, ``X-Total-Count`` on lists;
- two security schemes: a bearer token, and OAuth2 client credentials at ``/oauth/token`` (what
  the API explorer uses to get a token for a trusted app).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from fastapi.openapi.utils import get_openapi
from starlette.routing import BaseRoute

from callgate.policy.operations import OPERATION_KEY, Operation

BEARER_SCHEME = "bearerAuth"
CLIENT_CREDENTIALS_SCHEME = "appCredentials"
TOKEN_URL = "/oauth/token"  # noqa: S105 - a path, not a secret
REALM_PARAMS = frozenset({"client_id", "extension_id"})
WRITE_METHODS = frozenset({"post", "put", "patch", "delete"})
HTTP_METHODS = ("get", "put", "post", "delete", "patch", "head", "options", "trace")

_ERROR_REF = {"$ref": "#/components/schemas/Error"}
_INVALID_INPUT_REF = {"$ref": "#/components/schemas/InvalidInputError"}
_RATE_HEADERS = ("X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset")
# FastAPI's own 422 shape; Callgate answers with InvalidInputError instead (api/errors.py).
_FASTAPI_VALIDATION_SCHEMAS = ("HTTPValidationError", "ValidationError")

_DESCRIPTION = (
    "The resource API of Callgate, compatible with the ver1.0 API of the original PBX "
    "platform.\n\n"
    "Every request carries `Authorization: Bearer <access token>`; a trusted application gets "
    "one from `POST /oauth/token` with `grant_type=client_credentials` and its App ID and App "
    "secret.\n\n"
    "Each operation's `x-callgate-operation` is its class: `read` (both access levels), "
    "`call_api` (writes a Call API application may make) or `config` (writes that need level "
    'All). Errors are `{"status", "message"}` (plus `fields` for 422). Lists are JSON '
    "arrays; `page` and `per_page` choose the page and `X-Total-Count` says how many there are "
    "in all. Every answer after the token check carries the client's hourly quota in "
    "`X-RateLimit-Limit`, `X-RateLimit-Remaining` and `X-RateLimit-Reset`."
)

_REFUSALS = {
    "user_blocked": "The user or its client is blocked.",
    "user_access_type_deny": "A read-only user may only read.",
    "app_access_type_deny": "A Call API application may not change the configuration.",
    "access_denied": "The client or extension is outside what the user may see.",
    "permission_denied": "The user may not make this change.",
}

_PAGING = {
    "page": "The page to return, from 1.",
    "per_page": "How many items a page holds.",
    "order": "The order of a time-ordered list.",
}


def _int_header(description: str) -> dict[str, Any]:
    return {"description": description, "schema": {"type": "integer", "minimum": 0}}


_HEADERS: dict[str, dict[str, Any]] = {
    "X-RateLimit-Limit": _int_header("Requests the client may make in one clock hour."),
    "X-RateLimit-Remaining": _int_header("Requests left in this hour."),
    "X-RateLimit-Reset": _int_header("Seconds until the quota is renewed."),
    "Retry-After": _int_header("Seconds to wait before trying again."),
    "X-Total-Count": _int_header("How many items the whole list holds."),
    "WWW-Authenticate": {
        "description": 'Bearer error="invalid_token"',
        "schema": {"type": "string"},
    },
}

_SCHEMAS: dict[str, dict[str, Any]] = {
    "Error": {
        "type": "object",
        "required": ["status", "message"],
        "properties": {
            "status": {"type": "string", "description": "A machine id, e.g. access_denied."},
            "message": {"type": "string", "description": "A sentence for people."},
        },
    },
    "InvalidInputError": {
        "type": "object",
        "required": ["status", "message"],
        "properties": {
            "status": {"type": "string", "enum": ["invalid_input"]},
            "message": {"type": "string"},
            "fields": {
                "type": "object",
                "description": "Each offending field and what is wrong with it.",
                "additionalProperties": {"type": "string"},
            },
        },
    },
}


def build_openapi_document(
    routes: Iterable[BaseRoute], *, title: str, version: str
) -> dict[str, Any]:
    """The OpenAPI 3.1 document of ``routes``, completed with the policy's answers."""
    document = get_openapi(
        title=title, version=version, description=_DESCRIPTION, routes=list(routes)
    )
    components = document.setdefault("components", {})
    components["securitySchemes"] = {
        BEARER_SCHEME: {
            "type": "http",
            "scheme": "bearer",
            "description": "An OAuth2 access token from POST /oauth/token.",
        },
        CLIENT_CREDENTIALS_SCHEME: {
            "type": "oauth2",
            "description": (
                "A trusted application's App ID (client_id) and App secret (client_secret); "
                "the token acts as the application's owner."
            ),
            "flows": {"clientCredentials": {"tokenUrl": TOKEN_URL, "scopes": {}}},
        },
    }
    document["security"] = [{BEARER_SCHEME: []}, {CLIENT_CREDENTIALS_SCHEME: []}]
    components.setdefault("headers", {}).update(_HEADERS)
    schemas = components.setdefault("schemas", {})
    for name in _FASTAPI_VALIDATION_SCHEMAS:
        schemas.pop(name, None)
    schemas.update(_SCHEMAS)
    for path, operations in document.get("paths", {}).items():
        for method, operation in operations.items():
            if method in HTTP_METHODS:
                complete_operation(path, method, operation)
    return document


def path_parameters(path: str) -> list[str]:
    return re.findall(r"{([^}/]+)}", path)


def refusals(method: str, operation_class: str | None, path: str) -> list[str]:
    """The 403 statuses the policy (and the services) can give this operation, in check order."""
    found = ["user_blocked"]
    write = method in WRITE_METHODS
    if write:
        found.append("user_access_type_deny")
    if write and operation_class != Operation.CALL_API.value:
        # An undeclared class is treated as config by PolicyRoute: the strictest one.
        found.append("app_access_type_deny")
    if REALM_PARAMS & set(path_parameters(path)):
        found.append("access_denied")
    if write:
        found.append("permission_denied")
    return found


def _error(
    description: str,
    schema: dict[str, Any] = _ERROR_REF,
    *,
    headers: dict[str, Any] | None = None,
    examples: dict[str, Any] | None = None,
) -> dict[str, Any]:
    media: dict[str, Any] = {"schema": schema}
    if examples:
        media["examples"] = examples
    response: dict[str, Any] = {"description": description, "content": {"application/json": media}}
    if headers:
        response["headers"] = headers
    return response


def _header_refs(names: Iterable[str]) -> dict[str, Any]:
    return {name: {"$ref": f"#/components/headers/{name}"} for name in names}


def _examples(statuses: Iterable[str]) -> dict[str, Any]:
    return {
        status: {"value": {"status": status, "message": _REFUSALS[status]}} for status in statuses
    }


def _is_list(operation: dict[str, Any]) -> bool:
    names = {parameter.get("name") for parameter in operation.get("parameters", ())}
    if "per_page" in names:
        return True
    success = operation.get("responses", {}).get("200", {})
    schema = success.get("content", {}).get("application/json", {}).get("schema", {})
    return bool(schema.get("type") == "array")


def complete_operation(path: str, method: str, operation: dict[str, Any]) -> None:
    """Add the answers the policy and the error table give to one operation, in place."""
    operation_class = operation.get(OPERATION_KEY)
    parameters = operation.get("parameters", [])
    has_body = "requestBody" in operation
    write = method in WRITE_METHODS
    for parameter in parameters:
        hint = _PAGING.get(parameter.get("name", ""))
        if hint and parameter.get("in") == "query" and not parameter.get("description"):
            parameter["description"] = hint

    responses: dict[str, Any] = operation.setdefault("responses", {})
    for code, response in responses.items():
        if code.startswith("2"):
            headers = response.setdefault("headers", {})
            headers.update(_header_refs(_RATE_HEADERS))
            if code == "200" and method == "get" and _is_list(operation):
                headers.update(_header_refs(["X-Total-Count"]))

    statuses = refusals(method, operation_class, path)
    errors: dict[str, dict[str, Any]] = {
        "401": _error(
            "No valid access token, or its application is not active (invalid_token).",
            headers=_header_refs(["WWW-Authenticate"]),
        ),
        "403": _error("Refused: " + ", ".join(statuses) + ".", examples=_examples(statuses)),
        "429": _error(
            "The client's hourly quota is used up (rate_limit_exceeded).",
            headers=_header_refs(["Retry-After"]),
        ),
    }
    if path_parameters(path):
        errors["404"] = _error("The object does not exist (not_found).")
    if write:
        errors["409"] = _error("The change conflicts with the current state (conflict).")
    if has_body:
        errors["415"] = _error("The body is not of a type this operation takes.")
    if "application/json" in operation.get("requestBody", {}).get("content", {}):
        errors["413"] = _error("The JSON body is larger than 1 MiB (payload_too_large).")
    if has_body or parameters:
        errors["422"] = _error(
            "Invalid input (invalid_input); `fields` names each offending field.",
            schema=_INVALID_INPUT_REF,
        )
    for code, response in errors.items():
        existing = responses.get(code)
        if existing is None or _is_fastapi_validation(existing):
            responses[code] = response
        else:
            # A route's own words for an error (what a 404 means there) are kept; the body's
            # shape and the headers are the error table's.
            existing.setdefault("content", response["content"])
            existing.setdefault("headers", {}).update(response.get("headers", {}))
    for code, response in responses.items():
        if not code.startswith("2") and code != "401":
            response.setdefault("headers", {}).update(_header_refs(_RATE_HEADERS))


def _is_fastapi_validation(response: dict[str, Any]) -> bool:
    schema = response.get("content", {}).get("application/json", {}).get("schema", {})
    reference: str = schema.get("$ref", "")
    return reference.endswith("/HTTPValidationError")
