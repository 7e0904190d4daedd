"""Revocation (RFC 7009), introspection (RFC 7662) and server metadata (RFC 8414)."""

from __future__ import annotations

import httpx
from authlib.oauth2 import rfc8414, rfc9207

from callgate.services import Services
from tests.conftest import LiveServer
from tests.oauth.helpers import (
    App,
    audit_kinds,
    introspect,
    make_app,
    password_token,
    refresh,
    token_request,
)
from tests.support.factories import World


def _revoke(url: str, app: App, token: str, hint: str | None = None) -> httpx.Response:
    data = {"token": token, **({"token_type_hint": hint} if hint else {})}
    return httpx.post(f"{url}/oauth/revoke", data=data, auth=(app.client_id, app.client_secret))


def test_revoking_an_access_token(
    live_server: LiveServer, services: Services, world: World
) -> None:
    app = make_app(services, world, "password_credentials")
    tokens = password_token(live_server.url, app, world.manager)
    kept = password_token(live_server.url, app, world.manager)
    response = _revoke(live_server.url, app, tokens["access_token"], "access_token")
    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"
    assert introspect(live_server.url, app, tokens["access_token"]) == {"active": False}
    # The refresh token issued with it goes too; other grants of the same user stay.
    assert refresh(live_server.url, app, tokens["refresh_token"]).json()["error"] == "invalid_grant"
    assert introspect(live_server.url, app, kept["access_token"])["active"] is True
    assert "token_revoked" in audit_kinds(services)


def test_revoking_a_refresh_token_revokes_its_family(
    live_server: LiveServer, services: Services, world: World
) -> None:
    app = make_app(services, world, "password_credentials")
    first = password_token(live_server.url, app, world.manager)
    second = refresh(live_server.url, app, first["refresh_token"]).json()
    # Without a hint, and sent with client_secret_post this time.
    response = httpx.post(
        f"{live_server.url}/oauth/revoke",
        data={
            "token": second["refresh_token"],
            "client_id": app.client_id,
            "client_secret": app.client_secret,
        },
    )
    assert response.status_code == 200
    for token in (first["access_token"], second["access_token"]):
        assert introspect(live_server.url, app, token) == {"active": False}


def test_revocation_answers_and_errors(
    live_server: LiveServer, services: Services, world: World
) -> None:
    app = make_app(services, world, "trusted")
    other = make_app(services, world, "trusted")
    token = token_request(live_server.url, app, grant_type="client_credentials").json()
    assert _revoke(live_server.url, app, "not-a-token").status_code == 200
    assert _revoke(live_server.url, app, "not-a-token", "refresh_token").status_code == 200
    # Another client's token is treated as unknown: 200, and nothing happens to it.
    assert _revoke(live_server.url, other, token["access_token"]).status_code == 200
    assert introspect(live_server.url, app, token["access_token"])["active"] is True
    bad_hint = _revoke(live_server.url, app, token["access_token"], "id_token")
    assert bad_hint.json()["error"] == "unsupported_token_type"
    missing = httpx.post(
        f"{live_server.url}/oauth/revoke", data={}, auth=(app.client_id, app.client_secret)
    )
    assert missing.status_code == 400 and missing.json()["error"] == "invalid_request"
    unauthenticated = httpx.post(
        f"{live_server.url}/oauth/revoke",
        data={"token": token["access_token"]},
        auth=(app.client_id, "wrong"),
    )
    assert unauthenticated.status_code == 401
    assert introspect(live_server.url, app, token["access_token"])["active"] is True


def test_introspection_shows_a_client_only_its_own_tokens(
    live_server: LiveServer, services: Services, world: World
) -> None:
    app = make_app(services, world, "password_credentials")
    other = make_app(services, world, "password_credentials")
    tokens = password_token(live_server.url, app, world.ext_user)
    info = introspect(live_server.url, app, tokens["access_token"], "access_token")
    assert info["active"] is True
    assert info["client_id"] == app.client_id
    assert info["username"] == world.ext_user.login
    assert info["scope"] == "all" and info["token_type"] == "Bearer"
    assert isinstance(info["exp"], int) and isinstance(info["iat"], int)
    assert introspect(live_server.url, other, tokens["access_token"]) == {"active": False}
    assert introspect(live_server.url, other, tokens["refresh_token"]) == {"active": False}
    assert introspect(live_server.url, app, "unknown-token") == {"active": False}
    # The answer is the same whichever credential style the client uses.
    posted = httpx.post(
        f"{live_server.url}/oauth/introspect",
        data={
            "token": tokens["access_token"],
            "client_id": app.client_id,
            "client_secret": app.client_secret,
        },
    )
    assert posted.json() == info
    assert posted.headers["cache-control"] == "no-store"
    denied = httpx.post(f"{live_server.url}/oauth/introspect", data={"token": "x"})
    assert denied.status_code == 401 and denied.json()["error"] == "invalid_client"


def test_blocking_the_user_makes_tokens_inactive(
    live_server: LiveServer, services: Services, world: World
) -> None:
    app = make_app(services, world, "password_credentials")
    tokens = password_token(live_server.url, app, world.ext_user)
    services.identity.change_password(world.ext_user.id, "a new password 1")
    assert introspect(live_server.url, app, tokens["access_token"]) == {"active": False}
    assert refresh(live_server.url, app, tokens["refresh_token"]).json()["error"] == "invalid_grant"


def test_metadata_describes_the_server(live_server: LiveServer, services: Services) -> None:
    response = httpx.get(f"{live_server.url}/.well-known/oauth-authorization-server")
    assert response.status_code == 200
    data = response.json()
    issuer = services.settings.issuer
    assert data["issuer"] == issuer
    assert data["authorization_endpoint"] == f"{issuer}/oauth/authorize"
    assert data["token_endpoint"] == f"{issuer}/oauth/token"
    assert data["revocation_endpoint"] == f"{issuer}/oauth/revoke"
    assert data["introspection_endpoint"] == f"{issuer}/oauth/introspect"
    assert set(data["grant_types_supported"]) == {
        "authorization_code",
        "client_credentials",
        "password",
        "refresh_token",
    }
    assert data["code_challenge_methods_supported"] == ["S256"]
    assert data["authorization_response_iss_parameter_supported"] is True
    assert data["scopes_supported"] == ["all"]
    for key in (
        "token_endpoint_auth_methods_supported",
        "revocation_endpoint_auth_methods_supported",
        "introspection_endpoint_auth_methods_supported",
    ):
        assert sorted(data[key]) == ["client_secret_basic", "client_secret_post"]
    rfc8414.AuthorizationServerMetadata(data).validate(
        metadata_classes=[rfc9207.AuthorizationServerMetadata]
    )
