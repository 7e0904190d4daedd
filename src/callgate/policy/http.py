"""The web edge of the access policy: the route class of every ``/api/ver1.0`` route.

``PolicyRoute`` runs the policy's checks (``policy/service.py``) before FastAPI reads the body,
so that a request without a valid token gets 401 and not a 415 or 422; then it refuses a body
that is not JSON (415); then FastAPI validates and calls the endpoint. The checks run on the
event loop when the per-worker cache and quota reservation can answer them (no I/O), else in one
thread-pool call that reads what is missing from the database.

The quota headers are added where the response starts, from ``scope["state"]``: that covers
successful answers and the error answers the app's exception handlers produce alike.

Endpoints receive what the policy established through cheap async dependencies:
``CurrentPrincipal``, ``ClientRealm`` (the path's client id, ``@me`` resolved) and
``ExtensionRealmDep``.
"""

from __future__ import annotations

import json
import typing
from collections.abc import Callable, Coroutine, Iterator
from typing import Annotated, Any

import fastapi.routing
from fastapi import Depends, FastAPI, Path, Request, params
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute, APIRouter
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response
from starlette.routing import BaseRoute, Match
from starlette.types import Message, Receive, Scope, Send

from callgate.api.storable import find_unstorable, integer_problem, parameter_problem
from callgate.common.errors import InvalidInput, NotFound, PayloadTooLarge, UnsupportedMediaType
from callgate.policy.operations import (
    Operation,
    UndeclaredOperation,
    check_declaration,
    declared_operation,
)
from callgate.policy.principal import ExtensionRealm, Principal, RateStatus, Realm
from callgate.policy.service import AccessPolicy
from callgate.services import get_services

STATE_PRINCIPAL = "callgate_principal"
STATE_REALM = "callgate_realm"
STATE_RATE = "callgate_rate"
REALM_PARAMS = ("client_id", "extension_id")
REALM_ID_PATTERN = r"^(@me|[0-9]{1,18})$"
# No resource of the API takes a JSON body anywhere near this; files travel as multipart.
MAX_JSON_BODY = 1024 * 1024


def rate_headers(status: RateStatus) -> list[tuple[bytes, bytes]]:
    return [
        (b"x-ratelimit-limit", str(status.limit).encode()),
        (b"x-ratelimit-remaining", str(status.remaining).encode()),
        (b"x-ratelimit-reset", str(status.reset).encode()),
    ]


def _authorize(
    policy: AccessPolicy, request: Request, operation: Operation, *, cached: bool = False
) -> bool:
    """The six checks, recording in the request state what later steps need.

    With ``cached`` only from memory (on the event loop): False when the database is needed.
    """
    state = request.state

    def record_quota(rate: RateStatus) -> None:
        setattr(state, STATE_RATE, rate)

    path_params = request.path_params
    realm_params = {name: str(path_params[name]) for name in REALM_PARAMS if name in path_params}
    admit = policy.admit_cached if cached else policy.admit
    admission = admit(
        request.headers.get("authorization"),
        request.method,
        operation,
        realm_params,
        record_quota,
    )
    if admission is None:
        return False
    setattr(state, STATE_PRINCIPAL, admission.principal)
    setattr(state, STATE_REALM, admission.realm)
    return True


async def _require_json(request: Request) -> None:
    content_type = request.headers.get("content-type")
    if content_type is None:
        # No type and no body: FastAPI reports the missing body (422) itself.
        if await request.body():
            raise UnsupportedMediaType("The request body must be sent as application/json.")
        return
    media_type = content_type.partition(";")[0].strip().lower()
    if media_type != "application/json" and not (
        media_type.startswith("application/") and media_type.endswith("+json")
    ):
        raise UnsupportedMediaType(
            f"The request body must be application/json, not {media_type or 'empty'}."
        )
    # Refused before it is read when its length is declared; a chunked body is read (the
    # server reads it anyway to parse it) and refused after.
    declared = request.headers.get("content-length", "")
    if (declared.isdigit() and int(declared) > MAX_JSON_BODY) or (
        not declared and len(await request.body()) > MAX_JSON_BODY
    ):
        raise PayloadTooLarge(f"A JSON body may hold at most {MAX_JSON_BODY} bytes.")


def _is_integer(annotation: Any) -> bool:
    return annotation is int or int in typing.get_args(annotation)


def _integer_parameters(dependant: Dependant) -> tuple[frozenset[str], frozenset[str]]:
    """The names of the route's integer path and query parameters, dependencies included."""
    path: set[str] = set()
    query: set[str] = set()
    pending = [dependant]
    while pending:
        current = pending.pop()
        path.update(f.alias for f in current.path_params if _is_integer(f.field_info.annotation))
        query.update(f.alias for f in current.query_params if _is_integer(f.field_info.annotation))
        pending.extend(current.dependencies)
    return frozenset(path), frozenset(query)


def _refuse_unstorable_params(
    request: Request, integer_path: frozenset[str], integer_query: frozenset[str]
) -> None:
    for name, value in request.path_params.items():
        problem = parameter_problem(str(value))
        if problem is not None:
            raise InvalidInput(f"{name} {problem}.", fields={name: problem})
        if name in integer_path and integer_problem(str(value)):
            # Every id is a 32-bit integer: one beyond names nothing (and PostgreSQL would
            # refuse to compare it with an INTEGER column).
            raise NotFound(f"There is no object with {name} {value}.")
    if not request.scope.get("query_string"):
        return  # most requests: no query string to parse
    for name, value in request.query_params.multi_items():
        problem = parameter_problem(value) or (
            integer_problem(value) if name in integer_query else None
        )
        if problem is not None:
            raise InvalidInput(f"{name} {problem}.", fields={name: problem})


async def _refuse_unstorable_body(request: Request) -> None:
    # Parsed once more than FastAPI does; bodies are small (MAX_JSON_BODY) and this is cheap.
    try:
        parsed = json.loads(await request.body())
        found = find_unstorable(parsed)
    except ValueError:
        return  # FastAPI reports malformed JSON itself
    except RecursionError:
        raise InvalidInput("The body is nested too deeply.", fields={"body": "too deep"}) from None
    if found is not None:
        field, problem = found
        raise InvalidInput(f"{field} {problem}.", fields={field: problem})


class PolicyRoute(APIRoute):
    """An API route that declares its operation class and is guarded by the access policy."""

    operation: Operation | None

    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        # Set before APIRoute.__init__, which already builds the request handler.
        self.operation = declared_operation(kwargs.get("openapi_extra"))
        super().__init__(path, endpoint, **kwargs)

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        if self.operation is Operation.PUBLIC:
            return handler
        # An undeclared route never gets past create_app; should one be built elsewhere, it is
        # guarded as the strictest class rather than left open.
        operation = self.operation or Operation.CONFIG
        body_field = self.body_field
        expects_json = body_field is not None and not isinstance(body_field.field_info, params.Form)
        integer_path, integer_query = _integer_parameters(self.dependant)

        async def guarded(request: Request) -> Response:
            policy = get_services(request).access
            # Most requests are answered from the per-worker cache, without the thread-pool hop.
            if not _authorize(policy, request, operation, cached=True):
                await run_in_threadpool(_authorize, policy, request, operation)
            _refuse_unstorable_params(request, integer_path, integer_query)
            if expects_json:
                await _require_json(request)
                await _refuse_unstorable_body(request)
            return await handler(request)

        return guarded

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def send_with_quota(message: Message) -> None:
            if message["type"] == "http.response.start":
                rate = (scope.get("state") or {}).get(STATE_RATE)
                if rate is not None:
                    message["headers"] = [*message.get("headers", ()), *rate_headers(rate)]
            await send(message)

        await super().handle(scope, receive, send_with_quota)


class ApiRouter(APIRouter):
    """The router of the whole resource API, cheaper to route through than a plain one.

    - Every path it serves starts with its prefix: FastAPI tries an included router's routes one
      by one, nested routers included, whatever the path; this one refuses any other path at
      once. Included before the page, OAuth and health routers (``composition.py``), it spares
      every API request trying those and costs other requests one string test.
    - Its routes are fixed once it serves: FastAPI recomputes a version of the route table,
      through every included feature router, several times per request (to notice routes added
      at run time); from the first request on, this one answers the version it had then.

    Together about a quarter of the CPU of an authorized ``GET /user`` (docs/benchmarks.md).
    """

    _frozen_version: Any = None

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        path: str = scope["path"]
        root_path: str = scope.get("root_path", "")
        if root_path and path.startswith(root_path):
            path = path[len(root_path) :]
        if path != self.prefix and not path.startswith(self.prefix + "/"):
            return Match.NONE, {}
        if self._frozen_version is None:
            self._frozen_version = super()._get_routes_version()
        return super().matches(scope)

    def _get_routes_version(self, *args: Any, **kwargs: Any) -> Any:
        # FastAPI's own (private) method; should it be renamed, this is merely unused.
        if self._frozen_version is not None:
            return self._frozen_version
        return super()._get_routes_version(*args, **kwargs)


# -- what endpoints receive ----------------------------------------------------------------------


def _from_state(request: Request, name: str) -> Any:
    value = getattr(request.state, name, None)
    if value is None:
        raise RuntimeError(f"{request.url.path} is not served by a PolicyRoute")
    return value


async def current_principal(request: Request) -> Principal:
    principal: Principal = _from_state(request, STATE_PRINCIPAL)
    return principal


async def client_realm(
    request: Request,
    client_id: Annotated[
        str, Path(pattern=REALM_ID_PATTERN, description="A client id, or @me for your own.")
    ],
) -> int:
    realm: Realm = _from_state(request, STATE_REALM)
    assert realm.client_id is not None
    return realm.client_id


async def extension_realm(
    request: Request,
    extension_id: Annotated[
        str,
        Path(pattern=REALM_ID_PATTERN, description="An extension id, or @me for your own."),
    ],
) -> ExtensionRealm:
    realm: Realm = _from_state(request, STATE_REALM)
    assert realm.extension is not None
    return realm.extension


CurrentPrincipal = Annotated[Principal, Depends(current_principal)]
ClientRealm = Annotated[int, Depends(client_realm)]
ExtensionRealmDep = Annotated[ExtensionRealm, Depends(extension_realm)]


# -- the startup check -----------------------------------------------------------------------------


def route_entries(app: FastAPI, prefix: str) -> list[Any]:
    """The app's routes whose path starts with ``prefix``, included routers flattened.

    Recent FastAPI keeps included routers as one entry and describes each route by a context
    carrying its full path; older versions copy the routes, with full paths, into
    ``app.routes``. Either kind of entry can be handed to ``fastapi.openapi.utils.get_openapi``.
    """
    iterate = getattr(fastapi.routing, "iter_route_contexts", None)
    entries = list(iterate(app.routes)) if iterate is not None else list(app.routes)
    return [entry for entry in entries if (getattr(entry, "path", None) or "").startswith(prefix)]


def routes_under(app: FastAPI, prefix: str) -> Iterator[tuple[str, BaseRoute]]:
    """(full path, the route object as declared) of every route under ``prefix``."""
    for entry in route_entries(app, prefix):
        yield entry.path, getattr(entry, "original_route", entry)


def refuse_undeclared_routes(app: FastAPI, prefix: str) -> None:
    """Raise ``UndeclaredOperation`` unless every route under ``prefix`` declares its class."""
    for path, route in routes_under(app, prefix):
        if not isinstance(route, PolicyRoute):
            raise UndeclaredOperation(
                f"{path} is under {prefix} but is not a PolicyRoute; build its router with "
                f"APIRouter(route_class=PolicyRoute) and declare its operation class"
            )
        check_declaration(path, route.methods or (), route.operation)
