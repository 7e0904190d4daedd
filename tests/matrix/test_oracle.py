"""The matrix oracle on fake documents: an undeclared operation fails the suite, and the policy's
order of checks (read_only, then the application's level, then the realm) is what it computes."""

from __future__ import annotations

from typing import Any

import pytest

from tests.matrix.oracle import (
    Actor,
    Target,
    UndeclaredInDocument,
    admitted,
    expected_refusal,
    operations,
)

CLIENT, OTHER, EXT, OTHER_EXT = 1, 2, 11, 12
OWN_EXTENSION = Target(client_id=CLIENT, extension_id=EXT, extension_client_id=CLIENT)
OTHER_EXTENSION = Target(extension_id=OTHER_EXT, extension_client_id=OTHER)
ADMIN = Actor("admin", "admin", read_only=False, app_level="all")
MANAGER = Actor("manager", "client", read_only=False, app_level="all", client_id=CLIENT)
MANAGER_CALL_API = Actor("manager/call_api", "client", False, "call_api", client_id=CLIENT)
READER = Actor("reader", "client", read_only=True, app_level="all", client_id=CLIENT)
EXT_USER = Actor("ext", "extension", False, "all", client_id=CLIENT, extension_id=EXT)
OTHER_MANAGER = Actor("other", "client", read_only=False, app_level="all", client_id=OTHER)


def document(*operations_: tuple[str, str, str | None]) -> dict[str, Any]:
    paths: dict[str, Any] = {}
    for method, path, declared in operations_:
        spec: dict[str, Any] = {"responses": {}}
        if declared is not None:
            spec["x-callgate-operation"] = declared
        paths.setdefault(path, {})[method] = spec
    return {"openapi": "3.1.0", "paths": paths}


def one(method: str, path: str, declared: str) -> Any:
    (found,) = operations(document((method, path, declared)))
    return found


def test_an_operation_without_a_class_fails_the_suite() -> None:
    fake = document(
        ("get", "/api/ver1.0/user", "read"),
        ("post", "/api/ver1.0/client/{client_id}/secret_thing/", None),
    )
    with pytest.raises(UndeclaredInDocument, match="secret_thing"):
        operations(fake)


def test_an_unknown_class_fails_the_suite() -> None:
    with pytest.raises(UndeclaredInDocument, match="admin_only"):
        operations(document(("put", "/api/ver1.0/client/{client_id}/", "admin_only")))


def test_path_level_keys_are_not_operations() -> None:
    fake = document(("get", "/api/ver1.0/user", "read"))
    fake["paths"]["/api/ver1.0/user"]["parameters"] = []
    assert [found.label for found in operations(fake)] == ["GET /api/ver1.0/user"]


@pytest.mark.parametrize(
    ("actor", "method", "declared", "target", "expected"),
    [
        (ADMIN, "put", "config", OWN_EXTENSION, None),
        (MANAGER, "put", "config", OWN_EXTENSION, None),
        (MANAGER_CALL_API, "get", "read", OWN_EXTENSION, None),
        (MANAGER_CALL_API, "post", "call_api", OWN_EXTENSION, None),
        (MANAGER_CALL_API, "put", "config", OWN_EXTENSION, "app_access_type_deny"),
        (READER, "get", "read", OWN_EXTENSION, None),
        (READER, "delete", "call_api", OWN_EXTENSION, "user_access_type_deny"),
        (READER, "put", "config", OTHER_EXTENSION, "user_access_type_deny"),
        (EXT_USER, "put", "config", OWN_EXTENSION, None),
        (EXT_USER, "get", "read", OTHER_EXTENSION, "access_denied"),
        (MANAGER_CALL_API, "put", "config", OTHER_EXTENSION, "app_access_type_deny"),
        (OTHER_MANAGER, "get", "read", OWN_EXTENSION, "access_denied"),
        (ADMIN, "delete", "config", OTHER_EXTENSION, None),
    ],
)
def test_extension_realm(
    actor: Actor, method: str, declared: str, target: Target, expected: str | None
) -> None:
    operation = one(method, "/api/ver1.0/extension/{extension_id}/x/{x_id}", declared)
    assert expected_refusal(operation, actor, target) == expected


def test_client_realm() -> None:
    operation = one("get", "/api/ver1.0/client/{client_id}/", "read")
    own = Target(client_id=CLIENT)
    assert expected_refusal(operation, MANAGER, own) is None
    assert expected_refusal(operation, OTHER_MANAGER, own) == "access_denied"
    # An extension user may not use client paths, its own client's included.
    assert expected_refusal(operation, EXT_USER, own) == "access_denied"
    assert expected_refusal(operation, ADMIN, Target(client_id=OTHER)) is None


def test_no_realm_is_open_to_every_user() -> None:
    operation = one("get", "/api/ver1.0/user", "read")
    for actor in (ADMIN, MANAGER, READER, EXT_USER, OTHER_MANAGER):
        assert expected_refusal(operation, actor, Target()) is None


def test_deleting_a_realm_object_is_recognised() -> None:
    assert one("delete", "/api/ver1.0/extension/{extension_id}/", "config").deletes_realm == (
        "extension_id"
    )
    nested = one("delete", "/api/ver1.0/extension/{extension_id}/event/{event_id}", "call_api")
    assert nested.deletes_realm is None


def test_admitted_answers() -> None:
    assert all(admitted(code) for code in (200, 201, 204, 404, 409, 415, 422))
    assert not any(admitted(code) for code in (400, 401, 403, 405, 429, 500))
