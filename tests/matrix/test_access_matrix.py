"""The access matrix: every operation of the published OpenAPI document, asked by six kinds of
token, answered as the policy of SPEC §4 says.

The operations are read from the live server's document, so every route is covered as soon as
it exists. Path parameters name the world's objects (client A, its extension 101); nested ids
are numbers and uuids that do not exist, so an admitted request on them is a 404. JSON
operations get ``{}``, multipart ones an empty multipart body. An admitted request may answer
2xx, 404, 409, 413, 415 or 422 — never 401 or 403; a refused one exactly the 403 whose status
``oracle.expected_refusal`` computes. Every answer must also be one the document lists for the
operation, and carry the quota headers.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

import httpx

from callgate.api.router import PREFIX
from callgate.composition import create_app
from callgate.policy.http import PolicyRoute, routes_under
from callgate.policy.operations import Operation as Declared
from callgate.services import Services
from tests.api.helpers import token_for
from tests.matrix.oracle import (
    Actor,
    Operation,
    Target,
    admitted,
    expected_refusal,
    fill,
    operations,
)
from tests.support.factories import World, unique

EMPTY_MULTIPART = b"--matrixboundary--\r\n"
RATE_HEADERS = ("x-ratelimit-limit", "x-ratelimit-remaining", "x-ratelimit-reset")

# Refusals that are a resource's own rule, not the policy's (403 ``permission_denied``):
# (method, path) -> the actors that get it.
OWN_RULES: dict[tuple[str, str], frozenset[str]] = {
    # SPEC §5: the limits are GET only for non-admins.
    ("put", "/api/ver1.0/client/{client_id}/limit/"): frozenset({"manager/all"}),
}

_extension_names = itertools.count(700)


@dataclass
class Asker:
    actor: Actor
    token: str


def askers(services: Services, world: World) -> list[Asker]:
    def token(user: Any, level: str) -> str:
        return token_for(services, user, level=level, admin=world.admin)

    client_a, other = world.client.id, world.other_client.id
    ext = world.ext101.id
    return [
        Asker(Actor("admin/all", "admin", False, "all"), token(world.admin, "all")),
        Asker(Actor("manager/all", "client", False, "all", client_a), token(world.manager, "all")),
        Asker(
            Actor("manager/call_api", "client", False, "call_api", client_a),
            token(world.manager, "call_api"),
        ),
        Asker(Actor("reader/all", "client", True, "all", client_a), token(world.reader, "all")),
        Asker(
            Actor("extension/all", "extension", False, "all", client_a, ext),
            token(world.ext_user, "all"),
        ),
        Asker(
            Actor("other_manager/all", "client", False, "all", other),
            token(world.other_manager, "all"),
        ),
    ]


def target_for(services: Services, world: World, operation: Operation) -> Target:
    """The client and extension the path will name; a fresh one when the request deletes it."""
    doomed = operation.deletes_realm
    if doomed == "extension_id":
        fresh = services.identity.create_extension(world.client.id, str(next(_extension_names)))
        return Target(world.client.id, fresh.id, world.client.id)
    if doomed == "client_id":
        fresh_client = services.identity.create_client(unique("Doomed "), unique("30"))
        return Target(fresh_client.id, world.ext101.id, world.client.id)
    return Target(world.client.id, world.ext101.id, world.client.id)


def send(http: httpx.Client, operation: Operation, path: str, token: str) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"}
    if operation.body == "json":
        return http.request(operation.method.upper(), path, headers=headers, json={})
    if operation.body == "multipart":
        headers["Content-Type"] = "multipart/form-data; boundary=matrixboundary"
        return http.request(
            operation.method.upper(), path, headers=headers, content=EMPTY_MULTIPART
        )
    return http.request(operation.method.upper(), path, headers=headers)


def judge(operation: Operation, actor: Actor, target: Target, response: httpx.Response) -> str:
    """What is wrong with the answer, or ''."""
    code = response.status_code
    body: Any = None
    if response.headers.get("content-type", "").startswith("application/json"):
        body = response.json()
    status = body.get("status") if isinstance(body, dict) else None
    expected = expected_refusal(operation, actor, target)
    problems = []
    if expected is not None:
        if (code, status) != (403, expected):
            problems.append(f"expected 403 {expected}")
    elif actor.name in OWN_RULES.get((operation.method, operation.path), frozenset()):
        if (code, status) != (403, "permission_denied"):
            problems.append("expected 403 permission_denied (the resource's own rule)")
    elif not admitted(code):
        problems.append("expected the policy to admit it")
    if str(code) not in operation.spec.get("responses", {}):
        problems.append(f"{code} is not among the document's answers")
    missing = [name for name in RATE_HEADERS if name not in response.headers]
    if missing:
        problems.append(f"no {', '.join(missing)}")
    if not problems:
        return ""
    return f"{operation.label} as {actor.name}: {'; '.join(problems)}; got {code} {body!r}"


def test_every_operation_answers_every_kind_of_token_as_the_policy_says(
    services: Services, world: World, http: httpx.Client, document: dict[str, Any]
) -> None:
    found = operations(document)  # fails when an operation declares no class
    assert len(found) >= 8
    everyone = askers(services, world)
    failures: list[str] = []
    asked = 0
    for operation in found:
        for asker in everyone:
            target = target_for(services, world, operation)
            response = send(http, operation, fill(operation, target), asker.token)
            asked += 1
            problem = judge(operation, asker.actor, target, response)
            if problem:
                failures.append(problem)
    assert asked == len(found) * len(everyone)
    assert not failures, f"{len(failures)} of {asked} answers break the policy:\n" + "\n".join(
        failures
    )


def test_the_matrix_sees_every_operation_the_app_serves(
    services: Services, document: dict[str, Any]
) -> None:
    """The document the matrix walks holds every API route of the application, so no route can
    slip past the matrix by staying out of the document."""
    served = {
        (method.lower(), path)
        for path, route in routes_under(create_app(services=services), PREFIX)
        if isinstance(route, PolicyRoute) and route.operation is not Declared.PUBLIC
        for method in route.methods or ()
    }
    published = {(found.method, found.path) for found in operations(document)}
    assert served == published
