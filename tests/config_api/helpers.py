"""Helpers of the configuration API tests: counting rows to prove nothing was half-written."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select

from callgate.identity.models import Client, Extension, User
from callgate.phones.models import IncomingRule, PhoneSettings
from callgate.routing.models import Did, Trunk
from callgate.services import Services

CONFIG_TABLES: tuple[Any, ...] = (Client, Extension, User, PhoneSettings, IncomingRule, Did, Trunk)

# Metacharacters of SQL, HTML and JSON that must be stored and returned verbatim.
NASTY = "O'Brien\"; DROP TABLE users; -- <script>alert(1)</script> & \\ %_ ünï"


def count_rows(services: Services, model: Any) -> int:
    with services.database.read() as session:
        return int(session.scalar(select(func.count()).select_from(model)) or 0)


def snapshot(services: Services) -> dict[str, int]:
    """Row counts of every configuration table."""
    return {model.__tablename__: count_rows(services, model) for model in CONFIG_TABLES}


def row(services: Services, model: Any, key: Any) -> Any:
    with services.database.read() as session:
        return session.get(model, key)


def fields_named(error: dict[str, Any]) -> set[str]:
    """The top-level field names of a 422 body (``codecs.0`` names ``codecs``)."""
    return {name.split(".")[0] for name in error.get("fields", {})}
