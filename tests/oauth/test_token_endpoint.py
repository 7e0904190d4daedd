"""The token endpoint with raw HTTP: grants bound to app types, client authentication, errors."""

from __future__ import annotations

import httpx
from sqlalchemy import func, select

from callgate.identity.models import Status
from callgate.oauth.models import Token
from callgate.services import Services
from tests.conftest import LiveServer
from tests.oauth.helpers import (
    ago,
    introspect,
    make_app,
    password_token,
    set_token_times,
    token_request,
)
from tests.support.factories import PASSWORD, World


def _token_count(services: Services) -> int:
    with services.database.read() as session:
        return int(session.scalar(select(func.count()).select_from(Token)) or 0)


def test_client_credentials_token_acts_as_the_owner(
    live_server: LiveServer, services: Services, world: World
) -> None:
    app = make_app(services, world, "trusted", owner=world.ext_user)
    response = token_request(live_server.url, app, grant_type="client_credentials")
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["pragma"] == "no-cache"
    body = response.json()
    assert set(body) == {"access_token", "token_type", "expires_in", "scope"}
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == services.settings.access_token_lifetime
    assert body["scope"] == "all"
    info = introspect(live_server.url, app, body["access_token"])
    assert info["active"] is True
    assert info["username"] == world.ext_user.login
    assert info["client_id"] == app.client_id
    assert info["scope"] == "all"
    assert info["token_type"] == "Bearer"
    assert info["exp"] - info["iat"] == services.settings.access_token_lifetime


def test_password_grant_gives_a_refresh_token(
    live_server: LiveServer, services: Services, world: World
) -> None:
    app = make_app(services, world, "password_credentials")
    body = password_token(live_server.url, app, world.reader)
    assert body["refresh_token"] and body["access_token"] != body["refresh_token"]
    assert introspect(live_server.url, app, body["access_token"])["username"] == world.reader.login
    refresh_info = introspect(live_server.url, app, body["refresh_token"], "refresh_token")
    assert refresh_info["active"] is True
    assert refresh_info["token_type"] == "refresh_token"


def test_each_app_type_gets_only_its_grants(
    live_server: LiveServer, services: Services, world: World
) -> None:
    public = make_app(services, world, "public")
    trusted = make_app(services, world, "trusted")
    password = make_app(services, world, "password_credentials")
    login = {"username": world.manager.login, "password": PASSWORD}
    refused = [
        (public, {"grant_type": "client_credentials"}),
        (public, {"grant_type": "password", **login}),
        (trusted, {"grant_type": "password", **login}),
        (trusted, {"grant_type": "refresh_token", "refresh_token": "x" * 43}),
        (trusted, {"grant_type": "authorization_code", "code": "x" * 43}),
        (password, {"grant_type": "client_credentials"}),
        (password, {"grant_type": "authorization_code", "code": "x" * 43}),
    ]
    for app, data in refused:
        response = token_request(live_server.url, app, **data)
        assert response.status_code == 400, (app.registered.application.type, data)
        assert response.json()["error"] == "unauthorized_client", response.text
    unknown = token_request(live_server.url, trusted, grant_type="implicit")
    assert unknown.json()["error"] == "unsupported_grant_type"
    assert _token_count(services) == 0


def test_bad_client_credentials_get_401(
    live_server: LiveServer, services: Services, world: World
) -> None:
    app = make_app(services, world, "trusted")
    url = f"{live_server.url}/oauth/token"
    grant = {"grant_type": "client_credentials"}
    attempts = [
        httpx.post(url, data={**grant, "client_id": app.client_id, "client_secret": "wrong"}),
        httpx.post(url, data=grant, auth=(app.client_id, "wrong")),
        httpx.post(url, data={**grant, "client_id": "0" * 32, "client_secret": app.client_secret}),
        httpx.post(url, data={**grant, "client_id": app.client_id}),
        # Credentials in the query string are not read: they would end up in access logs.
        httpx.post(
            url,
            params={"client_id": app.client_id, "client_secret": app.client_secret},
            data=grant,
        ),
    ]
    for response in attempts:
        assert response.status_code == 401, response.text
        assert response.json()["error"] == "invalid_client"
        assert response.headers["www-authenticate"].startswith("Basic")
    basic = httpx.post(url, data=grant, auth=(app.client_id, app.client_secret))
    assert basic.status_code == 200, basic.text


def test_regenerated_secret_revokes_tokens_and_retires_the_old_secret(
    live_server: LiveServer, services: Services, world: World
) -> None:
    app = make_app(services, world, "trusted")
    old_token = token_request(live_server.url, app, grant_type="client_credentials").json()
    fresh = services.apps.regenerate_secret(world.manager, app.client_id)
    rotated = type(app)(app.client_id, fresh.app_secret, fresh)
    assert introspect(live_server.url, rotated, old_token["access_token"]) == {"active": False}
    stale = token_request(live_server.url, app, grant_type="client_credentials")
    assert stale.status_code == 401
    assert token_request(live_server.url, rotated, grant_type="client_credentials").is_success


def test_suspended_app_is_an_invalid_client(
    live_server: LiveServer, services: Services, world: World
) -> None:
    app = make_app(services, world, "trusted")
    services.apps.set_status(world.admin, app.client_id, "suspended")
    response = token_request(live_server.url, app, grant_type="client_credentials")
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"


def test_blocked_user_or_client_gets_invalid_grant_and_no_token(
    live_server: LiveServer, services: Services, world: World
) -> None:
    password_app = make_app(services, world, "password_credentials")
    trusted_app = make_app(services, world, "trusted", owner=world.other_manager)
    services.identity.set_user_status(world.ext_user.id, Status.BLOCKED)
    services.identity.set_client_status(world.other_client.id, Status.BLOCKED)
    blocked_user = token_request(
        live_server.url,
        password_app,
        grant_type="password",
        username=world.ext_user.login,
        password=PASSWORD,
    )
    assert blocked_user.status_code == 400
    assert blocked_user.json()["error"] == "invalid_grant"
    blocked_owner = token_request(live_server.url, trusted_app, grant_type="client_credentials")
    assert blocked_owner.status_code == 400
    assert blocked_owner.json()["error"] == "invalid_grant"
    assert _token_count(services) == 0


def test_scope_is_all_or_nothing_else(
    live_server: LiveServer, services: Services, world: World
) -> None:
    app = make_app(services, world, "trusted")
    for scope in ("read", "all write", "openid"):
        response = token_request(live_server.url, app, grant_type="client_credentials", scope=scope)
        assert response.status_code == 400
        assert response.json()["error"] == "invalid_scope"
    explicit = token_request(live_server.url, app, grant_type="client_credentials", scope="all")
    assert explicit.json()["scope"] == "all"
    absent = token_request(live_server.url, app, grant_type="client_credentials")
    assert absent.json()["scope"] == "all"


def test_expired_access_token_is_inactive(
    live_server: LiveServer, services: Services, world: World
) -> None:
    app = make_app(services, world, "trusted")
    token = token_request(live_server.url, app, grant_type="client_credentials").json()
    set_token_times(services, token["access_token"], access_expires_at=ago(1))
    assert introspect(live_server.url, app, token["access_token"]) == {"active": False}


def test_password_grant_locks_out_after_repeated_failures(
    live_server: LiveServer, services: Services, world: World
) -> None:
    app = make_app(services, world, "password_credentials")
    wrong = {"grant_type": "password", "username": world.manager.login, "password": "nope" * 3}
    answers = [
        token_request(live_server.url, app, **wrong)
        for _ in range(services.settings.login_max_failures)
    ]
    unknown = token_request(
        live_server.url, app, grant_type="password", username="nobody-here", password="x" * 12
    )
    # Unknown users and wrong passwords are indistinguishable.
    assert {r.status_code for r in [*answers, unknown]} == {400}
    assert {r.text for r in [*answers, unknown]} == {answers[0].text}
    assert answers[0].json()["error"] == "invalid_grant"
    locked = token_request(
        live_server.url,
        app,
        grant_type="password",
        username=world.manager.login,
        password=PASSWORD,
    )
    assert locked.status_code == 429, locked.text
    assert locked.json()["error"] == "invalid_grant"
    assert 0 < int(locked.headers["retry-after"]) <= services.settings.login_failure_window
    assert _token_count(services) == 0
