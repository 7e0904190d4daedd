"""Refresh tokens: rotation, absolute family lifetime, grace period, reuse detection, races."""

from __future__ import annotations

import threading

import httpx
from sqlalchemy import select, update

from callgate.common.security import hash_secret
from callgate.oauth.models import Token
from callgate.services import Services
from tests.conftest import LiveServer
from tests.oauth.helpers import (
    ago,
    audit_kinds,
    introspect,
    make_app,
    password_token,
    refresh,
    token_request,
)
from tests.support.factories import World


def _row(services: Services, refresh_token: str) -> Token:
    with services.database.read() as session:
        row = session.scalar(
            select(Token).where(Token.refresh_token_hash == hash_secret(refresh_token))
        )
    assert row is not None
    return row


def _move_rotation_back(services: Services, refresh_token: str, seconds: int) -> None:
    with services.database.write() as session:
        session.execute(
            update(Token)
            .where(Token.refresh_token_hash == hash_secret(refresh_token))
            .values(refresh_rotated_at=ago(seconds))
        )


def test_refresh_rotates_within_the_family(
    live_server: LiveServer, services: Services, world: World
) -> None:
    app = make_app(services, world, "password_credentials")
    first = password_token(live_server.url, app, world.manager)
    response = refresh(live_server.url, app, first["refresh_token"])
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    second = response.json()
    assert set(second) == {"access_token", "token_type", "expires_in", "scope", "refresh_token"}
    assert second["refresh_token"] != first["refresh_token"]
    assert second["access_token"] != first["access_token"]
    old, new = _row(services, first["refresh_token"]), _row(services, second["refresh_token"])
    assert old.refresh_rotated_at is not None and new.refresh_rotated_at is None
    assert new.family_id == old.family_id
    # The family's absolute lifetime counts from the first grant, not from each refresh.
    assert new.refresh_expires_at == old.refresh_expires_at
    assert introspect(live_server.url, app, second["access_token"])["active"] is True
    third = refresh(live_server.url, app, second["refresh_token"]).json()
    assert _row(services, third["refresh_token"]).refresh_expires_at == old.refresh_expires_at
    assert "token_refreshed" in audit_kinds(services)


def test_rotated_token_within_grace_succeeds_again(
    live_server: LiveServer, services: Services, world: World
) -> None:
    app = make_app(services, world, "password_credentials")
    first = password_token(live_server.url, app, world.manager)
    second = refresh(live_server.url, app, first["refresh_token"])
    again = refresh(live_server.url, app, first["refresh_token"])
    assert second.status_code == again.status_code == 200, again.text
    assert again.json()["refresh_token"] != second.json()["refresh_token"]
    for body in (second.json(), again.json()):
        assert introspect(live_server.url, app, body["access_token"])["active"] is True


def test_reuse_after_grace_revokes_the_whole_family(
    live_server: LiveServer, services: Services, world: World
) -> None:
    app = make_app(services, world, "password_credentials")
    first = password_token(live_server.url, app, world.manager)
    second = refresh(live_server.url, app, first["refresh_token"]).json()
    third = refresh(live_server.url, app, second["refresh_token"]).json()
    unrelated = password_token(live_server.url, app, world.manager)
    _move_rotation_back(
        services, first["refresh_token"], services.settings.refresh_grace_period + 5
    )
    reused = refresh(live_server.url, app, first["refresh_token"])
    assert reused.status_code == 400
    assert reused.json()["error"] == "invalid_grant"
    for token in (second["access_token"], third["access_token"], third["refresh_token"]):
        assert introspect(live_server.url, app, token) == {"active": False}
    # The legitimate holder's newest refresh token is dead too: the family is revoked.
    assert refresh(live_server.url, app, third["refresh_token"]).json()["error"] == "invalid_grant"
    assert introspect(live_server.url, app, unrelated["access_token"])["active"] is True
    assert "refresh_reuse" in audit_kinds(services)


def test_parallel_refreshes_inside_grace_all_succeed(
    live_server: LiveServer, services: Services, world: World
) -> None:
    app = make_app(services, world, "password_credentials")
    first = password_token(live_server.url, app, world.manager)
    workers = 4
    barrier = threading.Barrier(workers)
    results: list[httpx.Response] = []
    lock = threading.Lock()

    def refresh_once() -> None:
        barrier.wait(timeout=10)
        response = refresh(live_server.url, app, first["refresh_token"])
        with lock:
            results.append(response)

    threads = [threading.Thread(target=refresh_once) for _ in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert [r.status_code for r in results] == [200] * workers, [r.text for r in results]
    tokens = {r.json()["refresh_token"] for r in results}
    assert len(tokens) == workers
    family = {_row(services, t).family_id for t in tokens}
    assert family == {_row(services, first["refresh_token"]).family_id}


def test_expired_revoked_or_foreign_refresh_tokens_are_invalid_grant(
    live_server: LiveServer, services: Services, world: World
) -> None:
    app = make_app(services, world, "password_credentials")
    other_app = make_app(services, world, "password_credentials")
    expired = password_token(live_server.url, app, world.manager)
    with services.database.write() as session:
        session.execute(
            update(Token)
            .where(Token.refresh_token_hash == hash_secret(expired["refresh_token"]))
            .values(refresh_expires_at=ago(1))
        )
    revoked = password_token(live_server.url, app, world.manager)
    revocation = httpx.post(
        f"{live_server.url}/oauth/revoke",
        data={"token": revoked["refresh_token"], "token_type_hint": "refresh_token"},
        auth=(app.client_id, app.client_secret),
    )
    assert revocation.status_code == 200
    foreign = password_token(live_server.url, other_app, world.manager)
    for value in (expired["refresh_token"], revoked["refresh_token"], foreign["refresh_token"]):
        response = refresh(live_server.url, app, value)
        assert response.status_code == 400
        assert response.json()["error"] == "invalid_grant"
    # An access token is not a refresh token.
    wrong_kind = refresh(live_server.url, other_app, foreign["access_token"])
    assert wrong_kind.json()["error"] == "invalid_grant"
    scoped = token_request(
        live_server.url,
        other_app,
        grant_type="refresh_token",
        refresh_token=foreign["refresh_token"],
        scope="admin",
    )
    assert scoped.json()["error"] == "invalid_scope"
