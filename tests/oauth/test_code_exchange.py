"""Exchanging authorization codes: single use, replay revocation, PKCE and redirect URI binding."""

from __future__ import annotations

import threading

import httpx
from sqlalchemy import update

from callgate.common.security import hash_secret
from callgate.oauth.models import AuthorizationCode
from callgate.services import Services
from tests.conftest import LiveServer
from tests.oauth.helpers import (
    REDIRECT_URI,
    App,
    ago,
    approve,
    audit_kinds,
    authorize_query,
    code_flow_tokens,
    introspect,
    logged_in_browser,
    make_app,
    pkce_pair,
    redirect_params,
    refresh,
    token_request,
)
from tests.support.factories import World


def _fresh_code(url: str, app: App, world: World) -> tuple[str, str]:
    """A new code for ext_user (consent given on the first call): (code, verifier)."""
    verifier, challenge = pkce_pair()
    query = authorize_query(app, code_challenge=challenge, code_challenge_method="S256")
    with logged_in_browser(url, world.ext_user) as browser:
        answer = approve(browser, query)
    return redirect_params(answer)["code"], verifier


def _exchange(
    url: str, app: App, code: str, verifier: str, overrides: dict[str, str] | None = None
) -> httpx.Response:
    data = {"code": code, "redirect_uri": REDIRECT_URI, "code_verifier": verifier}
    data.update(overrides or {})
    return token_request(url, app, grant_type="authorization_code", **data)


def test_code_gives_access_and_refresh_tokens_for_the_user(
    live_server: LiveServer, services: Services, world: World
) -> None:
    app = make_app(services, world, "public")
    tokens = code_flow_tokens(live_server.url, app, world.ext_user)
    assert tokens["token_type"] == "Bearer" and tokens["scope"] == "all"
    assert tokens["expires_in"] == services.settings.access_token_lifetime
    info = introspect(live_server.url, app, tokens["access_token"])
    assert info["username"] == world.ext_user.login and info["active"] is True
    assert refresh(live_server.url, app, tokens["refresh_token"]).status_code == 200


def test_replayed_code_is_refused_and_revokes_what_it_gave(
    live_server: LiveServer, services: Services, world: World
) -> None:
    app = make_app(services, world, "public")
    code, verifier = _fresh_code(live_server.url, app, world)
    first = _exchange(live_server.url, app, code, verifier).json()
    refreshed = refresh(live_server.url, app, first["refresh_token"]).json()
    other = code_flow_tokens(live_server.url, app, world.ext_user)
    replay = _exchange(live_server.url, app, code, verifier)
    assert replay.status_code == 400
    assert replay.json()["error"] == "invalid_grant"
    # Everything descended from the code is dead, tokens from other codes are not.
    for token in (first["access_token"], refreshed["access_token"], refreshed["refresh_token"]):
        assert introspect(live_server.url, app, token) == {"active": False}
    assert introspect(live_server.url, app, other["access_token"])["active"] is True
    assert "code_replay" in audit_kinds(services)


def test_parallel_exchanges_of_one_code_give_one_token_at_most(
    live_server: LiveServer, services: Services, world: World
) -> None:
    app = make_app(services, world, "public")
    code, verifier = _fresh_code(live_server.url, app, world)
    workers = 4
    barrier = threading.Barrier(workers)
    results: list[httpx.Response] = []
    lock = threading.Lock()

    def exchange() -> None:
        barrier.wait(timeout=10)
        response = _exchange(live_server.url, app, code, verifier)
        with lock:
            results.append(response)

    threads = [threading.Thread(target=exchange) for _ in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    winners = [r for r in results if r.status_code == 200]
    assert len(results) == workers and len(winners) == 1, [r.text for r in results]
    assert {r.json()["error"] for r in results if r.status_code != 200} == {"invalid_grant"}
    # The losers were replays: the winner's token is revoked as well.
    assert introspect(live_server.url, app, winners[0].json()["access_token"]) == {"active": False}


def test_code_verifier_and_redirect_uri_are_checked_with_the_code(
    live_server: LiveServer, services: Services, world: World
) -> None:
    app = make_app(services, world, "public")
    code, verifier = _fresh_code(live_server.url, app, world)
    other_verifier, _ = pkce_pair()
    failures: list[tuple[dict[str, str], str]] = [
        ({"code_verifier": other_verifier}, "invalid_grant"),
        ({"code_verifier": ""}, "invalid_request"),
        ({"redirect_uri": REDIRECT_URI + "/x"}, "invalid_grant"),
        ({"code": code[:-2] + "xx"}, "invalid_grant"),
    ]
    for override, error in failures:
        response = _exchange(live_server.url, app, code, verifier, override)
        assert response.status_code == 400, override
        assert response.json()["error"] == error, (override, response.text)
    # Failed attempts did not consume the code: the rightful client still gets its tokens.
    assert _exchange(live_server.url, app, code, verifier).status_code == 200


def test_code_is_bound_to_its_client_and_expires(
    live_server: LiveServer, services: Services, world: World
) -> None:
    app = make_app(services, world, "public")
    thief = make_app(services, world, "public")
    code, verifier = _fresh_code(live_server.url, app, world)
    stolen = _exchange(live_server.url, thief, code, verifier)
    assert stolen.json()["error"] == "invalid_grant"
    with services.database.write() as session:
        session.execute(
            update(AuthorizationCode)
            .where(AuthorizationCode.code_hash == hash_secret(code))
            .values(expires_at=ago(1))
        )
    expired = _exchange(live_server.url, app, code, verifier)
    assert expired.status_code == 400 and expired.json()["error"] == "invalid_grant"


def test_code_lifetime_is_at_most_the_setting(
    live_server: LiveServer, services: Services, world: World
) -> None:
    app = make_app(services, world, "public")
    code, _ = _fresh_code(live_server.url, app, world)
    with services.database.read() as session:
        row = session.query(AuthorizationCode).one()
    assert row.code_hash == hash_secret(code) and row.used_at is None
    lifetime = (row.expires_at - row.created_at).total_seconds()
    assert 0 < lifetime <= services.settings.authorization_code_lifetime <= 600
