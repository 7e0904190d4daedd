"""Real OAuth2 client libraries against the live server: requests-oauthlib and Authlib's httpx."""

from __future__ import annotations

import time
from typing import Any

import pytest
from authlib.common.security import generate_token
from authlib.integrations.httpx_client import OAuth2Client
from oauthlib.oauth2 import (  # type: ignore[import-untyped]
    BackendApplicationClient,
    LegacyApplicationClient,
)
from requests_oauthlib import OAuth2Session

from callgate.services import Services
from tests.conftest import LiveServer
from tests.oauth.helpers import (
    REDIRECT_URI,
    ago,
    approve,
    introspect,
    logged_in_browser,
    make_app,
    set_token_times,
)
from tests.support.factories import PASSWORD, World


@pytest.fixture(autouse=True)
def _loopback_http_allowed(monkeypatch: pytest.MonkeyPatch) -> None:
    # oauthlib insists on https; the test server is plain http on 127.0.0.1.
    monkeypatch.setenv("OAUTHLIB_INSECURE_TRANSPORT", "1")


def _user_of(session: OAuth2Session, url: str) -> dict[str, Any]:
    response = session.get(f"{url}/api/ver1.0/user")
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


def test_requests_oauthlib_client_credentials(
    live_server: LiveServer, services: Services, world: World
) -> None:
    app = make_app(services, world, "trusted", owner=world.manager)
    session = OAuth2Session(client=BackendApplicationClient(client_id=app.client_id, scope=["all"]))
    token = session.fetch_token(
        f"{live_server.url}/oauth/token", client_id=app.client_id, client_secret=app.client_secret
    )
    assert token["token_type"] == "Bearer" and token["scope"] == ["all"]
    assert "refresh_token" not in token
    assert _user_of(session, live_server.url)["login"] == world.manager.login


def test_requests_oauthlib_password_grant(
    live_server: LiveServer, services: Services, world: World
) -> None:
    app = make_app(services, world, "password_credentials")
    session = OAuth2Session(client=LegacyApplicationClient(client_id=app.client_id, scope=["all"]))
    token = session.fetch_token(
        f"{live_server.url}/oauth/token",
        username=world.ext_user.login,
        password=PASSWORD,
        client_id=app.client_id,
        client_secret=app.client_secret,
    )
    assert token["refresh_token"]
    assert _user_of(session, live_server.url)["login"] == world.ext_user.login


def test_requests_oauthlib_web_application_flow(
    live_server: LiveServer, services: Services, world: World
) -> None:
    app = make_app(services, world, "public")
    session = OAuth2Session(app.client_id, redirect_uri=REDIRECT_URI, scope=["all"], pkce="S256")
    url, state = session.authorization_url(f"{live_server.url}/oauth/authorize")
    with logged_in_browser(live_server.url, world.ext_user) as browser:
        answer = approve(browser, url.removeprefix(live_server.url))
    callback = answer.headers["location"]
    token = session.fetch_token(
        f"{live_server.url}/oauth/token",
        authorization_response=callback,
        client_secret=app.client_secret,
    )
    assert token["refresh_token"] and token["scope"] == ["all"]
    assert _user_of(session, live_server.url)["login"] == world.ext_user.login
    assert state in callback


def test_requests_oauthlib_refreshes_an_expired_token_automatically(
    live_server: LiveServer, services: Services, world: World
) -> None:
    app = make_app(services, world, "password_credentials")
    token_url = f"{live_server.url}/oauth/token"
    first = OAuth2Session(
        client=LegacyApplicationClient(client_id=app.client_id, scope=["all"])
    ).fetch_token(
        token_url,
        username=world.manager.login,
        password=PASSWORD,
        client_id=app.client_id,
        client_secret=app.client_secret,
    )
    # Time passes: the server and the client both consider the access token expired.
    set_token_times(services, first["access_token"], access_expires_at=ago(1))
    expired = {**first, "expires_in": -10, "expires_at": time.time() - 10}
    updates: list[dict[str, Any]] = []
    session = OAuth2Session(
        app.client_id,
        token=expired,
        scope=["all"],
        auto_refresh_url=token_url,
        auto_refresh_kwargs={"client_id": app.client_id, "client_secret": app.client_secret},
        token_updater=updates.append,
    )
    assert _user_of(session, live_server.url)["login"] == world.manager.login
    assert len(updates) == 1
    fresh = updates[0]
    assert fresh["access_token"] != first["access_token"]
    assert fresh["refresh_token"] != first["refresh_token"]
    assert introspect(live_server.url, app, first["access_token"]) == {"active": False}
    assert introspect(live_server.url, app, fresh["access_token"])["active"] is True


def test_authlib_httpx_client_code_flow_with_pkce_refresh_and_revoke(
    live_server: LiveServer, services: Services, world: World
) -> None:
    app = make_app(services, world, "public")
    token_url = f"{live_server.url}/oauth/token"
    verifier = generate_token(48)
    with OAuth2Client(
        app.client_id,
        app.client_secret,
        scope="all",
        redirect_uri=REDIRECT_URI,
        code_challenge_method="S256",
    ) as client:
        url, state = client.create_authorization_url(
            f"{live_server.url}/oauth/authorize", code_verifier=verifier
        )
        assert "code_challenge_method=S256" in url
        with logged_in_browser(live_server.url, world.ext_user) as browser:
            answer = approve(browser, url.removeprefix(live_server.url))
        token = client.fetch_token(
            token_url,
            authorization_response=answer.headers["location"],
            state=state,
            code_verifier=verifier,
        )
        assert token["token_type"] == "Bearer" and token["refresh_token"]
        renewed = client.refresh_token(token_url)
        assert renewed["refresh_token"] != token["refresh_token"]
        assert renewed["access_token"] != token["access_token"]
        revoked = client.revoke_token(
            f"{live_server.url}/oauth/revoke",
            token=renewed["refresh_token"],
            token_type_hint="refresh_token",
        )
        assert revoked.status_code == 200
    for value in (token["access_token"], renewed["access_token"]):
        assert introspect(live_server.url, app, value) == {"active": False}
