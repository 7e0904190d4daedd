"""The access policy of SPEC §4 as an oracle over the OpenAPI document.

Given an operation of the published document (its method, path and ``x-callgate-operation``)
and who asks (user level, access type, application level, realm) about what (the client and
extension the filled path names), ``expected_refusal`` says which 403 the policy must answer,
or None when it must let the request through. It knows nothing of the routes themselves, so a
route added by anyone is checked the moment it is in the document — and one whose operation
has no class makes ``operations`` fail.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Literal

OPERATION_KEY = "x-callgate-operation"
CLASSES = frozenset({"read", "call_api", "config"})
READ_METHODS = frozenset({"get", "head"})
HTTP_METHODS = frozenset({"get", "put", "post", "delete", "patch", "head", "options", "trace"})
REALM_PARAMS = ("client_id", "extension_id")

BodyKind = Literal["json", "multipart", "none"]
NONEXISTENT_ID = 987654321
NONEXISTENT_UUID = "00000000-0000-4000-8000-00000000dead"


class UndeclaredInDocument(AssertionError):
    """An operation of the document without a valid operation class."""


@dataclass(frozen=True)
class Operation:
    method: str  # lower case, as in the document
    path: str
    operation_class: str
    body: BodyKind
    spec: dict[str, Any]

    @property
    def label(self) -> str:
        return f"{self.method.upper()} {self.path}"

    @property
    def parameters(self) -> list[str]:
        return re.findall(r"{([^}/]+)}", self.path)

    @property
    def is_write(self) -> bool:
        return self.method not in READ_METHODS

    @property
    def deletes_realm(self) -> str | None:
        """The realm parameter whose object this operation deletes (``DELETE /extension/{id}/``)."""
        parameters = self.parameters
        last = parameters[-1] if parameters else ""
        if (
            self.method == "delete"
            and last in REALM_PARAMS
            and self.path.rstrip("/").endswith("{" + last + "}")
        ):
            return last
        return None


def _body_kind(spec: dict[str, Any]) -> BodyKind:
    content = spec.get("requestBody", {}).get("content", {})
    if "multipart/form-data" in content:
        return "multipart"
    if any(kind == "application/json" or kind.endswith("+json") for kind in content):
        return "json"
    return "none"


def operations(document: dict[str, Any]) -> list[Operation]:
    """Every operation of the document; raises when one lacks a valid class."""
    found: list[Operation] = []
    problems: list[str] = []
    for path, item in document.get("paths", {}).items():
        for method, spec in item.items():
            if method not in HTTP_METHODS:
                continue
            declared = spec.get(OPERATION_KEY)
            if declared not in CLASSES:
                problems.append(f"{method.upper()} {path}: {OPERATION_KEY}={declared!r}")
                continue
            found.append(Operation(method, path, declared, _body_kind(spec), spec))
    if problems:
        raise UndeclaredInDocument(
            "operations without a valid operation class: " + "; ".join(problems)
        )
    return found


@dataclass(frozen=True)
class Actor:
    """Who asks: the token's user and its application."""

    name: str
    level: Literal["admin", "client", "extension"]
    read_only: bool
    app_level: Literal["all", "call_api"]
    client_id: int | None = None  # the user's client (for an extension user, its extension's)
    extension_id: int | None = None


@dataclass(frozen=True)
class Target:
    """What the filled path names: its client and extension, with the extension's client."""

    client_id: int | None = None
    extension_id: int | None = None
    extension_client_id: int | None = None


def _inside_realm(operation: Operation, actor: Actor, target: Target) -> bool:
    parameters = operation.parameters
    if actor.level == "admin":
        return True
    # An extension user may not use client paths, its own client's included.
    if "client_id" in parameters and (
        actor.level != "client" or target.client_id != actor.client_id
    ):
        return False
    if "extension_id" in parameters:
        if actor.level == "client" and target.extension_client_id != actor.client_id:
            return False
        if actor.level == "extension" and target.extension_id != actor.extension_id:
            return False
    return True


def expected_refusal(operation: Operation, actor: Actor, target: Target) -> str | None:
    """The 403 status the policy answers, checks 3 to 5 in order, or None when it admits."""
    if operation.is_write and actor.read_only:
        return "user_access_type_deny"
    if (
        operation.is_write
        and actor.app_level == "call_api"
        and operation.operation_class != "call_api"
    ):
        return "app_access_type_deny"
    if not _inside_realm(operation, actor, target):
        return "access_denied"
    return None


# Answers that show the policy let a request through: success, or a problem with the body or
# with an object nested in the realm (the matrix sends {} and nonexistent nested ids).
ADMITTED_ERRORS = frozenset({404, 409, 413, 415, 422})


def admitted(status_code: int) -> bool:
    return 200 <= status_code < 300 or status_code in ADMITTED_ERRORS


# -- filling a path -------------------------------------------------------------------------


def _parameter_schemas(operation: Operation) -> dict[str, dict[str, Any]]:
    return {
        parameter["name"]: parameter.get("schema", {})
        for parameter in operation.spec.get("parameters", ())
        if parameter.get("in") == "path"
    }


def nested_value(schema: dict[str, Any]) -> str:
    """A value of a nested id's schema that names nothing."""
    kinds = {schema.get("type")} | {option.get("type") for option in schema.get("anyOf", ())}
    if "integer" in kinds or "number" in kinds:
        return str(NONEXISTENT_ID)
    return NONEXISTENT_UUID


def fill(operation: Operation, target: Target) -> str:
    schemas = _parameter_schemas(operation)
    path = operation.path
    for name in operation.parameters:
        if name == "client_id":
            value = str(target.client_id)
        elif name == "extension_id":
            value = str(target.extension_id)
        else:
            value = nested_value(schemas.get(name, {}))
        path = path.replace("{" + name + "}", value)
    return path
