"""Authorization changes committed by another process reach this one's cache; the PostgreSQL
listener survives losing its connection; what counts as an authorization change."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text, update

from callgate.common.db import Database, changes_authorization
from callgate.config import Settings
from callgate.identity.models import User
from callgate.policy.invalidation import AuthorizationCache, PostgresWatch
from callgate.policy.principal import Principal, PrincipalApp, PrincipalUser
from callgate.services import Services
from tests.api.helpers import HANDLER, Api, assert_error, issue_token
from tests.perf_semantics.helpers import cached, wait_for, warm
from tests.support.factories import World, register_app

# How long a change committed elsewhere may take to reach this process. On SQLite the next
# request reads it; on PostgreSQL it is the notification's delivery (typically < 1 ms), with a
# wide margin for a loaded test machine.
PROPAGATION_S = 2.0


def _read_only_elsewhere(url: str, user_id: int) -> None:
    """Make the user read-only through another ``Database``, as another worker would."""
    other = Database(url)
    try:
        with other.write() as session:
            session.execute(update(User).where(User.id == user_id).values(access="read_only"))
    finally:
        other.dispose()


def _write_refused_within(api: Api, world: World, seconds: float) -> float:
    """Poll a write until it is refused as read-only; return how long that took."""
    start = time.monotonic()
    path = f"/extension/{world.ext101.id}/event/"
    while True:
        response = api.post(path, json=HANDLER)
        if response.status_code == 403:
            assert_error(response, 403, "user_access_type_deny")
            return time.monotonic() - start
        assert response.status_code == 201, response.text
        assert time.monotonic() - start < seconds, "the other process's change never arrived"


def test_a_change_committed_by_another_process_reaches_the_cache(
    services: Services, world: World, http: httpx.Client, settings: Settings
) -> None:
    registered = register_app(services, world.manager, level="all", actor=world.admin)
    token = issue_token(services, registered.application, world.manager)
    api = Api(http, token)
    warm(services, api, token)
    _read_only_elsewhere(settings.effective_database_url, world.manager.id)
    took = _write_refused_within(api, world, PROPAGATION_S)
    if services.database.is_sqlite:
        assert took < 0.5  # the very next request: the header is read on every request


def test_the_listener_reconnects_and_starts_afresh(
    services: Services, world: World, http: httpx.Client, settings: Settings
) -> None:
    if services.database.is_sqlite:
        pytest.skip("SQLite has no listener: it reads the database header on every request")
    watch = services.access.cache.watch
    assert isinstance(watch, PostgresWatch)
    wait_for(lambda: watch.generation() is not None, message="the listener never listened")
    registered = register_app(services, world.manager, level="all", actor=world.admin)
    token = issue_token(services, registered.application, world.manager)
    api = Api(http, token)
    warm(services, api, token)
    connections, backend = watch.connections, watch.backend_pid
    with services.database.engine.connect() as connection:
        killed = connection.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": backend})
        assert killed.scalar() is True
    wait_for(
        lambda: watch.connections > connections and watch.generation() is not None,
        message="the listener did not reconnect",
    )
    assert watch.backend_pid != backend
    # Whatever was cached before the reconnection is not trusted any more...
    assert not cached(services, token)
    warm(services, api, token)
    # ...and notifications arrive on the new connection.
    _read_only_elsewhere(settings.effective_database_url, world.manager.id)
    _write_refused_within(api, world, PROPAGATION_S)


def test_without_a_listener_nothing_is_served_from_the_cache(
    services: Services, world: World, http: httpx.Client
) -> None:
    if services.database.is_sqlite:
        pytest.skip("PostgreSQL only")
    watch = services.access.cache.watch
    assert isinstance(watch, PostgresWatch)
    registered = register_app(services, world.manager)
    token = issue_token(services, registered.application, world.manager)
    api = Api(http, token)
    warm(services, api, token)
    watch.close()  # the listener stops: no notification can arrive any more
    assert watch.generation() is None
    assert not cached(services, token)
    assert api.get("/user").status_code == 200  # answered from the database


def test_a_zero_ttl_turns_the_cache_off(tmp_path: Path) -> None:
    database = Database(f"sqlite:///{tmp_path / 'off.sqlite3'}")
    try:
        cache = AuthorizationCache(database, Settings(data_dir=tmp_path, authz_cache_ttl=0))
        assert cache.generation() is None
    finally:
        database.dispose()


def test_the_cache_is_bounded_and_keeps_the_recently_used(tmp_path: Path) -> None:
    database = Database(f"sqlite:///{tmp_path / 'lru.sqlite3'}")
    try:
        settings = Settings(data_dir=tmp_path, authz_cache_size=2)
        cache = AuthorizationCache(database, settings)
        generation = database.authorization_generation
        principals = {
            name: Principal(
                name,
                PrincipalUser(1, "u", "client", "full", "active", None, None, "UTC"),
                PrincipalApp(1, "a", "trusted", "all", "active"),
                None,
            )
            for name in "abc"
        }
        later = time.time() + 600
        cache.put_principal("a", principals["a"], later, generation)
        cache.put_principal("b", principals["b"], later, generation)
        assert cache.principal("a", generation) is principals["a"]  # "a" is now the newest
        cache.put_principal("c", principals["c"], later, generation)
        assert cache.principal("b", generation) is None
        assert cache.principal("a", generation) is principals["a"]
        # An entry read under an older generation is never served.
        database.note_authorization_change()
        assert cache.principal("a", database.authorization_generation) is None
        # Nor past its expiry.
        cache.put_principal("d", principals["a"], time.time() - 1, cache.generation() or 0)
        assert cache.principal("d", cache.generation() or 0) is None
    finally:
        database.dispose()


@pytest.mark.parametrize(
    ("statement", "changes"),
    [
        ("UPDATE users SET status=%(status)s WHERE users.id = %(users_id)s", True),
        ("UPDATE oauth_tokens SET revoked_at=? WHERE oauth_tokens.revoked_at IS NULL", True),
        ('update "applications" set access_level = ?', True),
        ("DELETE FROM clients WHERE clients.id = ?", True),
        ("DELETE FROM extensions WHERE extensions.id = ?", True),
        ("TRUNCATE users, clients RESTART IDENTITY CASCADE", True),
        ("INSERT INTO users (login) VALUES (?) ON CONFLICT (login) DO UPDATE SET x = 1", True),
        ("INSERT OR REPLACE INTO users (id) VALUES (?)", True),
        ("WITH gone AS (DELETE FROM users RETURNING id) SELECT count(*) FROM gone", True),
        ("INSERT INTO oauth_tokens (id) VALUES (?)", False),  # a new token: nothing cached yet
        ("INSERT INTO rate_counters (key) VALUES (?) ON CONFLICT DO UPDATE SET count = 1", False),
        ("UPDATE event_handlers SET url=? WHERE event_handlers.id = ?", False),
        ("DELETE FROM auth_failures WHERE auth_failures.login = ?", False),
        ("SELECT users.status FROM users WHERE users.id = ?", False),
    ],
)
def test_what_counts_as_an_authorization_change(statement: str, changes: bool) -> None:
    assert changes_authorization(statement) is changes
