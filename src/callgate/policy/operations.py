"""Operation classes of the resource API and how a route declares its class (SPEC §4).

Every ``/api/ver1.0`` route declares its class exactly once, in its decorator::

    @router.put("/client/{client_id}/", openapi_extra=declare(Operation.CONFIG))

The declaration lands in the route's OpenAPI operation as ``x-callgate-operation``; the access
policy reads the same value, so the published document and the enforced rule cannot disagree.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from typing import Any

OPERATION_KEY = "x-callgate-operation"
READ_METHODS = frozenset({"GET", "HEAD"})


class Operation(enum.StrEnum):
    """What a route does, as the application's access level sees it."""

    READ = "read"  # GET/HEAD: allowed for both levels
    CALL_API = "call_api"  # a write that a "Call API" application may make
    CONFIG = "config"  # any other write: needs level "all"
    PUBLIC = "public"  # no token at all (the API's own description)


class UndeclaredOperation(RuntimeError):
    """An API route without a valid operation class; the application refuses to start."""


def declare(operation: Operation) -> dict[str, Any]:
    """The ``openapi_extra`` of a route: its one declaration of its operation class."""
    return {OPERATION_KEY: operation.value}


def declared_operation(openapi_extra: Mapping[str, Any] | None) -> Operation | None:
    """The class a route declared, or None; an unknown value is a programming error."""
    if not openapi_extra or OPERATION_KEY not in openapi_extra:
        return None
    value = openapi_extra[OPERATION_KEY]
    try:
        return Operation(value)
    except ValueError:
        raise UndeclaredOperation(
            f"{OPERATION_KEY}={value!r} is not one of {', '.join(Operation)}"
        ) from None


def check_declaration(path: str, methods: Iterable[str], operation: Operation | None) -> None:
    """Refuse a route whose class is missing or contradicts its HTTP methods.

    Reads are GET/HEAD and nothing else; a GET declared as a write (or a write declared as a
    read) would make check 4 of the policy wrong, so it is refused outright.
    """
    methods = set(methods)
    if operation is None:
        raise UndeclaredOperation(
            f"API route {sorted(methods)} {path} declares no operation class; add "
            f"openapi_extra=declare(Operation.READ | Operation.CALL_API | Operation.CONFIG)"
        )
    if operation is Operation.PUBLIC:
        if not methods <= READ_METHODS:
            raise UndeclaredOperation(f"public API route {path} must be GET-only")
        return
    reads = methods <= READ_METHODS
    if reads != (operation is Operation.READ):
        raise UndeclaredOperation(
            f"API route {sorted(methods)} {path} is declared {operation.value}; GET/HEAD routes "
            f"are {Operation.READ.value}, other methods {Operation.CALL_API.value} or "
            f"{Operation.CONFIG.value}"
        )
