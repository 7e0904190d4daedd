"""The resource API under ``/api/ver1.0``: its router, its OpenAPI document, its startup check.

Feature routers (``identity/http.py``, ``events/http.py``, …) are listed in ``FEATURE_ROUTERS``;
each builds its routes with ``APIRouter(route_class=PolicyRoute)`` and declares every route's
operation class. ``refuse_undeclared`` runs at the end of ``create_app`` and stops the
application from starting when any route under the prefix lacks a valid declaration.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse

from callgate.api.openapi import build_openapi_document
from callgate.calls import control_http as call_control_http
from callgate.calls import http as calls_http
from callgate.events import http as events_http
from callgate.explorer import http as explorer_http
from callgate.fax import http as fax_http
from callgate.identity import http as identity_http
from callgate.phones import http as phones_http
from callgate.policy.http import ApiRouter, PolicyRoute, refuse_undeclared_routes, route_entries
from callgate.policy.operations import Operation, declare
from callgate.recordings import http as recordings_http
from callgate.routing import http as routing_http
from callgate.sounds import http as sounds_http
from callgate.voicemail import http as voicemail_http

PREFIX = "/api/ver1.0"
API_TITLE = "Callgate resource API"
API_VERSION = "1.0"

FEATURE_ROUTERS: tuple[APIRouter, ...] = (
    identity_http.router,
    events_http.router,
    calls_http.router,
    call_control_http.router,
    recordings_http.router,
    voicemail_http.router,
    sounds_http.router,
    fax_http.router,
    phones_http.router,
    routing_http.router,
)


def build_router() -> APIRouter:
    router = ApiRouter(prefix=PREFIX, route_class=PolicyRoute)
    for feature in FEATURE_ROUTERS:
        router.include_router(feature)
    router.add_api_route(
        "/openapi.json",
        openapi_document,
        methods=["GET"],
        include_in_schema=False,
        openapi_extra=declare(Operation.PUBLIC),
    )
    router.include_router(explorer_http.router)
    return router


def refuse_undeclared(app: FastAPI) -> None:
    """Raise ``UndeclaredOperation`` unless every ``/api/ver1.0`` route declares its class."""
    refuse_undeclared_routes(app, PREFIX)


def build_openapi(app: FastAPI) -> dict[str, Any]:
    """The OpenAPI document of the API routes only, completed by ``api/openapi.py``."""
    return build_openapi_document(route_entries(app, PREFIX), title=API_TITLE, version=API_VERSION)


async def openapi_document(request: Request) -> JSONResponse:
    """The API's OpenAPI document; public, so that explorers and generators can read it."""
    state = request.app.state
    document = getattr(state, "callgate_api_openapi", None)
    if document is None:
        document = build_openapi(request.app)
        state.callgate_api_openapi = document
    return JSONResponse(document)
