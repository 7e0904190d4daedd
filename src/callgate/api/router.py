"""The resource API under ``/api/ver1.0``: its router, its OpenAPI document, its startup check.

Feature routers (``identity/http.py``, ``events/http.py``, …) are listed in ``FEATURE_ROUTERS``;
each builds its routes with ``APIRouter(route_class=PolicyRoute)`` and declares every route's
operation class. ``refuse_undeclared`` runs at the end of ``create_app`` and stops the
application from starting when any route under the prefix lacks a valid declaration.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse

from callgate.events import http as events_http
from callgate.identity import http as identity_http
from callgate.policy.http import PolicyRoute, refuse_undeclared_routes, route_entries
from callgate.policy.operations import Operation, declare

PREFIX = "/api/ver1.0"
API_TITLE = "Callgate resource API"
API_VERSION = "1.0"
SECURITY_SCHEME = "bearerAuth"

FEATURE_ROUTERS: tuple[APIRouter, ...] = (identity_http.router, events_http.router)

_ERROR_RESPONSES = {
    "401": "No valid access token (invalid_token).",
    "403": "user_blocked, user_access_type_deny, app_access_type_deny or access_denied.",
    "404": "The object does not exist (not_found).",
    "429": "The client's hourly quota is used up (rate_limit_exceeded).",
}


def build_router() -> APIRouter:
    router = APIRouter(prefix=PREFIX, route_class=PolicyRoute)
    for feature in FEATURE_ROUTERS:
        router.include_router(feature)
    router.add_api_route(
        "/openapi.json",
        openapi_document,
        methods=["GET"],
        include_in_schema=False,
        openapi_extra=declare(Operation.PUBLIC),
    )
    return router


def refuse_undeclared(app: FastAPI) -> None:
    """Raise ``UndeclaredOperation`` unless every ``/api/ver1.0`` route declares its class."""
    refuse_undeclared_routes(app, PREFIX)


def build_openapi(app: FastAPI) -> dict[str, Any]:
    """The OpenAPI document of the API routes only, with the bearer scheme and error shape."""
    document = get_openapi(
        title=API_TITLE,
        version=API_VERSION,
        description=(
            "Every request carries Authorization: Bearer <access token>. Each operation's "
            "x-callgate-operation is its class: read (both access levels), call_api (writes a "
            "Call API application may make) or config (writes that need level All)."
        ),
        routes=route_entries(app, PREFIX),
    )
    components = document.setdefault("components", {})
    components.setdefault("securitySchemes", {})[SECURITY_SCHEME] = {
        "type": "http",
        "scheme": "bearer",
        "description": "An OAuth2 access token from POST /oauth/token.",
    }
    components.setdefault("schemas", {})["Error"] = {
        "type": "object",
        "required": ["status", "message"],
        "properties": {"status": {"type": "string"}, "message": {"type": "string"}},
    }
    document["security"] = [{SECURITY_SCHEME: []}]
    error = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
    for operations in document.get("paths", {}).values():
        for operation in operations.values():
            responses = operation.setdefault("responses", {})
            for code, text in _ERROR_RESPONSES.items():
                responses.setdefault(code, {"description": text, "content": error})
    return document


async def openapi_document(request: Request) -> JSONResponse:
    """The API's OpenAPI document; public, so that explorers and generators can read it."""
    state = request.app.state
    document = getattr(state, "callgate_api_openapi", None)
    if document is None:
        document = build_openapi(request.app)
        state.callgate_api_openapi = document
    return JSONResponse(document)
