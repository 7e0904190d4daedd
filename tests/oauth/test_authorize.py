"""The authorization endpoint: login, consent page, decisions, refusals that never redirect."""

from __future__ import annotations

from urllib.parse import parse_qs, quote, urlsplit

import httpx
from sqlalchemy import func, select, update

from callgate.apps.models import Application
from callgate.oauth.models import AuthorizationCode
from callgate.services import Services
from tests.conftest import LiveServer
from tests.oauth.helpers import (
    REDIRECT_URI,
    App,
    approve,
    audit_kinds,
    authorize_query,
    consent_fields,
    forms,
    logged_in_browser,
    make_app,
    pkce_pair,
    post_form,
    redirect_params,
)
from tests.support.factories import PASSWORD, World


def _pkce_query(app: App, **extra: str) -> str:
    _, challenge = pkce_pair()
    return authorize_query(app, code_challenge=challenge, code_challenge_method="S256", **extra)


def _code_count(services: Services) -> int:
    with services.database.read() as session:
        return int(session.scalar(select(func.count()).select_from(AuthorizationCode)) or 0)


def test_anonymous_user_logs_in_and_comes_back(
    live_server: LiveServer, services: Services, world: World
) -> None:
    app = make_app(services, world, "public")
    path = _pkce_query(app)
    with httpx.Client(base_url=live_server.url) as browser:
        first = browser.get(path)
        assert first.status_code == 303
        assert first.headers["location"] == "/login?next=" + quote(path, safe="")
        login_page = browser.get(first.headers["location"])
        (form,) = [f for f in forms(login_page.text) if f["action"] == "/login"]
        fields = dict(form["fields"])
        assert fields["next"] == path
        logged_in = browser.post(
            "/login",
            data={**fields, "login": world.ext_user.login, "password": PASSWORD},
        )
        assert logged_in.status_code == 303
        assert logged_in.headers["location"] == path
        assert browser.get(path).status_code == 200


def test_consent_page_describes_the_app_and_its_level(
    live_server: LiveServer, services: Services, world: World
) -> None:
    app = make_app(services, world, "public", owner=world.manager)
    with logged_in_browser(live_server.url, world.ext_user) as browser:
        page = browser.get(_pkce_query(app))
    assert page.status_code == 200
    assert page.headers["x-frame-options"] == "DENY"
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
    html = page.text
    assert app.registered.application.name in html
    assert world.manager.login in html
    assert "Call API" in html and "initiate calls" in html
    assert 'name="decision" value="allow"' in html and 'name="decision" value="deny"' in html
    names = {name for name, _ in consent_fields(html)}
    assert {"csrf_token", "client_id", "redirect_uri", "state", "code_challenge"} <= names


def test_allow_redirects_with_code_state_and_issuer(
    live_server: LiveServer, services: Services, world: World
) -> None:
    app = make_app(services, world, "public")
    path = _pkce_query(app, state="xyz-123")
    with logged_in_browser(live_server.url, world.ext_user) as browser:
        answer = approve(browser, path)
    assert answer.status_code == 303
    assert answer.headers["cache-control"] == "no-store"
    params = redirect_params(answer)
    assert set(params) == {"code", "state", "iss"}
    assert params["state"] == "xyz-123"
    assert params["iss"] == services.settings.issuer
    assert "consent_given" in audit_kinds(services)


def test_deny_redirects_with_access_denied(
    live_server: LiveServer, services: Services, world: World
) -> None:
    app = make_app(services, world, "public")
    with logged_in_browser(live_server.url, world.ext_user) as browser:
        answer = approve(browser, _pkce_query(app, state="s1"), decision="deny")
        params = redirect_params(answer)
        assert params["error"] == "access_denied"
        assert params["state"] == "s1" and params["iss"] == services.settings.issuer
        assert "code" not in params
        # Nothing was remembered: the next visit asks again.
        assert browser.get(_pkce_query(app)).status_code == 200
    assert _code_count(services) == 0


def test_consent_is_remembered_until_withdrawn(
    live_server: LiveServer, services: Services, world: World
) -> None:
    app = make_app(services, world, "public")
    with logged_in_browser(live_server.url, world.ext_user) as browser:
        approve(browser, _pkce_query(app))
        again = browser.get(_pkce_query(app, state="second"))
        assert again.status_code == 302
        params = redirect_params(again)
        assert params["state"] == "second" and params["code"]
        assert params["iss"] == services.settings.issuer
        services.apps.withdraw(world.ext_user, app.client_id)
        assert browser.get(_pkce_query(app)).status_code == 200


def test_forged_consent_post_is_refused(
    live_server: LiveServer, services: Services, world: World
) -> None:
    app = make_app(services, world, "public")
    with logged_in_browser(live_server.url, world.ext_user) as browser:
        fields = consent_fields(browser.get(_pkce_query(app)).text)
        forged = [(k, v) for k, v in fields if k != "csrf_token"]
        for extra in ([], [("csrf_token", "0" * 64)]):
            answer = post_form(
                browser, "/oauth/authorize", [*forged, *extra, ("decision", "allow")]
            )
            assert answer.status_code == 403
            assert "location" not in answer.headers
    assert _code_count(services) == 0
    assert "consent_given" not in audit_kinds(services)


def test_bad_client_or_redirect_uri_shows_an_error_page_and_never_redirects(
    live_server: LiveServer, services: Services, world: World
) -> None:
    app = make_app(services, world, "public")
    two_uris = make_app(
        services, world, "public", redirect_uris=f"{REDIRECT_URI} http://127.0.0.1:9/other"
    )
    trusted = make_app(services, world, "trusted")
    suspended = make_app(services, world, "public")
    services.apps.set_status(world.admin, suspended.client_id, "suspended")
    _, challenge = pkce_pair()
    pkce = f"&code_challenge={challenge}&code_challenge_method=S256"
    evil = quote("https://evil.example/cb", safe="")
    paths = [
        f"/oauth/authorize?response_type=code&client_id={'0' * 32}&redirect_uri={evil}{pkce}",
        f"/oauth/authorize?response_type=code&client_id={app.client_id}&redirect_uri={evil}",
        # Exact match only: a prefix, a different port or a trailing slash is another URI.
        _pkce_query(app, redirect_uri=REDIRECT_URI + "/x"),
        _pkce_query(app, redirect_uri=REDIRECT_URI.replace(":9/", ":10/")),
        f"/oauth/authorize?response_type=code&client_id={two_uris.client_id}{pkce}",
        f"/oauth/authorize?response_type=code&client_id={trusted.client_id}{pkce}",
        _pkce_query(trusted),
        _pkce_query(suspended),
        f"/oauth/authorize?response_type=code&redirect_uri={evil}{pkce}",
    ]
    with logged_in_browser(live_server.url, world.ext_user) as browser:
        for path in paths:
            page = browser.get(path)
            assert page.status_code == 400, path
            assert "location" not in page.headers, path
            assert "text/html" in page.headers["content-type"]
            assert "not been sent back" in page.text
        # Missing redirect_uri is fine when exactly one is registered.
        single = f"/oauth/authorize?response_type=code&client_id={app.client_id}{pkce}"
        assert browser.get(single).status_code == 200
        # The consent POST is validated again: a tampered redirect_uri is refused there too.
        fields = consent_fields(browser.get(_pkce_query(app)).text)
        tampered = [(k, "https://evil.example/cb" if k == "redirect_uri" else v) for k, v in fields]
        answer = post_form(browser, "/oauth/authorize", [*tampered, ("decision", "allow")])
        assert answer.status_code == 400 and "location" not in answer.headers
    assert _code_count(services) == 0


def test_pkce_plain_or_missing_challenge_is_refused_at_authorize(
    live_server: LiveServer, services: Services, world: World
) -> None:
    app = make_app(services, world, "public")
    verifier, _ = pkce_pair()
    with logged_in_browser(live_server.url, world.ext_user) as browser:
        for path in (
            authorize_query(app, code_challenge=verifier, code_challenge_method="plain"),
            authorize_query(app, code_challenge=verifier),
            authorize_query(app),
        ):
            answer = browser.get(path)
            assert answer.status_code == 302, path
            params = redirect_params(answer)
            assert params["error"] == "invalid_request"
            assert params["iss"] == services.settings.issuer
            assert params["state"] == parse_qs(urlsplit(path).query)["state"][0]
        with services.database.write() as session:
            session.execute(
                update(Application)
                .where(Application.app_id == app.client_id)
                .values(require_pkce=False)
            )
        # An app that does not require PKCE may skip it, but still never with "plain".
        assert browser.get(authorize_query(app)).status_code == 200
        plain = authorize_query(app, code_challenge=verifier, code_challenge_method="plain")
        assert redirect_params(browser.get(plain))["error"] == "invalid_request"
    assert _code_count(services) == 0


def test_unknown_scope_is_refused_at_authorize(
    live_server: LiveServer, services: Services, world: World
) -> None:
    app = make_app(services, world, "public")
    with logged_in_browser(live_server.url, world.ext_user) as browser:
        answer = browser.get(_pkce_query(app, scope="all admin"))
    assert redirect_params(answer)["error"] == "invalid_scope"
