"""The policy's queries, in SQLAlchemy Core: they run when the per-worker cache cannot answer.

The token lookup is one SELECT joining token → application → user → client; the rate counter is
one ``INSERT … ON CONFLICT DO UPDATE … RETURNING`` that adds one request or a reserved batch.
Core statements skip the ORM's identity map and object construction, which would dominate the
cost of these tiny queries.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Table, bindparam, delete, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from callgate.apps.models import Application
from callgate.identity.models import Client, Extension, User
from callgate.oauth.models import Token
from callgate.policy.models import RateCounter
from callgate.policy.principal import Principal, PrincipalApp, PrincipalClient, PrincipalUser


def _table(model: type[Any]) -> Table:
    table = model.__table__
    assert isinstance(table, Table)
    return table


_tokens = _table(Token)
_apps = _table(Application)
_users = _table(User)
_clients = _table(Client)
_extensions = _table(Extension)
_counters = _table(RateCounter)

_PRINCIPAL_BY_TOKEN_HASH = (
    select(
        _tokens.c.id,
        _tokens.c.access_expires_at,
        _tokens.c.revoked_at,
        _apps.c.id,
        _apps.c.app_id,
        _apps.c.type,
        _apps.c.access_level,
        _apps.c.status,
        _users.c.id,
        _users.c.login,
        _users.c.level,
        _users.c.access,
        _users.c.status,
        _users.c.client_id,
        _users.c.extension_id,
        _users.c.timezone,
        _clients.c.status,
        _clients.c.rate_limit_per_hour,
    )
    .select_from(
        _tokens.join(_apps, _apps.c.id == _tokens.c.application_id)
        .join(_users, _users.c.id == _tokens.c.user_id)
        .outerjoin(_clients, _clients.c.id == _users.c.client_id)
    )
    .where(_tokens.c.access_token_hash == bindparam("token_hash"))
)

_CLIENT_EXISTS = select(_clients.c.id).where(_clients.c.id == bindparam("client_id"))
_EXTENSION_CLIENT = select(_extensions.c.client_id).where(
    _extensions.c.id == bindparam("extension_id")
)
_PRUNE_COUNTERS = delete(_counters).where(_counters.c.window_start < bindparam("window_start"))


@dataclass(frozen=True, slots=True)
class TokenRecord:
    principal: Principal
    expires_at: dt.datetime
    revoked_at: dt.datetime | None


def principal_by_token_hash(connection: Connection, token_hash: str) -> TokenRecord | None:
    row = connection.execute(_PRINCIPAL_BY_TOKEN_HASH, {"token_hash": token_hash}).first()
    if row is None:
        return None
    (
        token_id,
        expires_at,
        revoked_at,
        app_pk,
        app_id,
        app_type,
        access_level,
        app_status,
        user_id,
        login,
        level,
        access,
        user_status,
        client_id,
        extension_id,
        timezone,
        client_status,
        rate_limit,
    ) = row
    client = (
        PrincipalClient(client_id, client_status, rate_limit) if client_id is not None else None
    )
    principal = Principal(
        token_id=token_id,
        user=PrincipalUser(
            user_id, login, level, access, user_status, client_id, extension_id, timezone
        ),
        app=PrincipalApp(app_pk, app_id, app_type, access_level, app_status),
        client=client,
    )
    return TokenRecord(principal, expires_at, revoked_at)


# Ids are 32-bit integer columns; a larger id in a path names nothing (and PostgreSQL would
# refuse the comparison instead of finding no row).
MAX_ID = 2**31 - 1


def client_exists(connection: Connection, client_id: int) -> bool:
    if not 0 < client_id <= MAX_ID:
        return False
    return connection.execute(_CLIENT_EXISTS, {"client_id": client_id}).first() is not None


def extension_client_id(connection: Connection, extension_id: int) -> int | None:
    """The client an extension belongs to, or None when there is no such extension."""
    if not 0 < extension_id <= MAX_ID:
        return None
    value = connection.execute(_EXTENSION_CLIENT, {"extension_id": extension_id}).scalar()
    return int(value) if value is not None else None


class RateCounterRepository:
    """Atomic hourly counters; the statement is built once for the database's dialect."""

    def __init__(self, dialect_name: str) -> None:
        insert = sqlite.insert if dialect_name == "sqlite" else postgresql.insert
        statement = insert(_counters).values(
            key=bindparam("key"), window_start=bindparam("window_start"), count=bindparam("amount")
        )
        self._increment = statement.on_conflict_do_update(
            index_elements=[_counters.c.key, _counters.c.window_start],
            set_={"count": _counters.c.count + statement.excluded.count},
        ).returning(_counters.c.count)

    def increment(
        self, session: Session | Connection, key: str, window_start: int, amount: int = 1
    ) -> int:
        """Add ``amount`` requests to the window and return the window's count after it."""
        count = session.execute(
            self._increment, {"key": key, "window_start": window_start, "amount": amount}
        ).scalar_one()
        return int(count)

    def prune(self, session: Session | Connection, before_window: int) -> None:
        """Drop the counters of every window that started before ``before_window``."""
        session.execute(_PRUNE_COUNTERS, {"window_start": before_window})
