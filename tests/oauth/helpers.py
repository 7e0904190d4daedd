"""Helpers for the OAuth2 tests: apps, raw token requests, a browser-like login and consent."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from html.parser import HTMLParser
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
from sqlalchemy import select, update

from callgate.apps.service import RegisteredApp
from callgate.audit.models import AuditEvent
from callgate.common.clock import utcnow
from callgate.common.security import hash_secret
from callgate.identity.models import User
from callgate.oauth.models import Token
from callgate.services import Services
from tests.support.factories import PASSWORD, World, register_app

REDIRECT_URI = "http://127.0.0.1:9/callback"


@dataclass
class App:
    """A registered app with its clear secret, as a client developer holds it."""

    client_id: str
    client_secret: str
    registered: RegisteredApp


def make_app(
    services: Services,
    world: World,
    type_: str,
    *,
    owner: User | None = None,
    redirect_uris: str = REDIRECT_URI,
) -> App:
    registered = register_app(
        services,
        owner or world.manager,
        type_=type_,
        redirect_uris=redirect_uris if type_ == "public" else "",
        actor=world.admin,
    )
    return App(registered.application.app_id, registered.app_secret, registered)


def token_request(url: str, app: App, **data: str) -> httpx.Response:
    """POST /oauth/token with the client's credentials in the body (client_secret_post)."""
    body = {"client_id": app.client_id, "client_secret": app.client_secret, **data}
    return httpx.post(f"{url}/oauth/token", data=body)


def introspect(url: str, app: App, token: str, hint: str | None = None) -> dict[str, Any]:
    data = {"token": token, **({"token_type_hint": hint} if hint else {})}
    response = httpx.post(
        f"{url}/oauth/introspect", data=data, auth=(app.client_id, app.client_secret)
    )
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


def password_token(url: str, app: App, user: User) -> dict[str, Any]:
    response = token_request(
        url, app, grant_type="password", username=user.login, password=PASSWORD
    )
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


def refresh(url: str, app: App, refresh_token: str) -> httpx.Response:
    return token_request(url, app, grant_type="refresh_token", refresh_token=refresh_token)


def pkce_pair() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode()).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def authorize_query(app: App, **extra: str) -> str:
    params = {
        "response_type": "code",
        "client_id": app.client_id,
        "redirect_uri": REDIRECT_URI,
        "scope": "all",
        "state": "st-" + secrets.token_hex(4),
        **extra,
    }
    return "/oauth/authorize?" + urlencode(params)


class _Forms(HTMLParser):
    """Collects the named inputs and buttons of every form on a page."""

    def __init__(self) -> None:
        super().__init__()
        self.forms: list[dict[str, Any]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {k: v or "" for k, v in attrs}
        if tag == "form":
            self.forms.append({"action": values.get("action", ""), "fields": []})
        elif tag in ("input", "button") and self.forms and "name" in values:
            self.forms[-1]["fields"].append((values["name"], values.get("value", "")))


def forms(html: str) -> list[dict[str, Any]]:
    parser = _Forms()
    parser.feed(html)
    return parser.forms


def consent_fields(html: str) -> list[tuple[str, str]]:
    """The consent form's fields, without its two buttons."""
    (form,) = [f for f in forms(html) if f["action"] == "/oauth/authorize"]
    return [(k, v) for k, v in form["fields"] if k != "decision"]


@contextmanager
def logged_in_browser(url: str, user: User) -> Iterator[httpx.Client]:
    """An httpx client that has logged in through the login form, as a browser would."""
    with httpx.Client(base_url=url, follow_redirects=False) as browser:
        page = browser.get("/login")
        (form,) = [f for f in forms(page.text) if f["action"] == "/login"]
        fields = dict(form["fields"])
        response = browser.post(
            "/login",
            data={"csrf_token": fields["csrf_token"], "login": user.login, "password": PASSWORD},
        )
        assert response.status_code == 303, response.text
        yield browser


def approve(browser: httpx.Client, authorize_path: str, decision: str = "allow") -> httpx.Response:
    """Open the authorization URL and answer the consent page; the final redirect.

    When the user's consent is remembered, the redirect comes at once and is returned.
    """
    page = browser.get(authorize_path)
    if page.status_code == 302 and decision == "allow":
        return page
    assert page.status_code == 200, page.text
    fields = consent_fields(page.text)
    return post_form(browser, "/oauth/authorize", [*fields, ("decision", decision)])


def post_form(browser: httpx.Client, path: str, pairs: list[tuple[str, str]]) -> httpx.Response:
    """POST url-encoded fields in order, repeated names included (httpx wants a mapping)."""
    return browser.post(
        path,
        content=urlencode(pairs),
        headers={"content-type": "application/x-www-form-urlencoded"},
    )


def redirect_params(response: httpx.Response) -> dict[str, str]:
    location = response.headers["location"]
    assert location.startswith(REDIRECT_URI + "?"), location
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


def code_flow_tokens(url: str, app: App, user: User) -> dict[str, Any]:
    """Log in, allow, exchange the code with PKCE: the token response."""
    verifier, challenge = pkce_pair()
    with logged_in_browser(url, user) as browser:
        answer = approve(
            browser,
            authorize_query(app, code_challenge=challenge, code_challenge_method="S256"),
        )
    code = redirect_params(answer)["code"]
    response = token_request(
        url,
        app,
        grant_type="authorization_code",
        code=code,
        redirect_uri=REDIRECT_URI,
        code_verifier=verifier,
    )
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    result["_code"] = code
    return result


def set_token_times(services: Services, access_token: str, **values: Any) -> None:
    """Move a token's timestamps (e.g. expiry) in the database, as time passing would."""
    with services.database.write() as session:
        session.execute(
            update(Token)
            .where(Token.access_token_hash == hash_secret(access_token))
            .values(**values)
        )


def ago(seconds: int) -> dt.datetime:
    return utcnow() - dt.timedelta(seconds=seconds)


def audit_kinds(services: Services) -> list[str]:
    with services.database.read() as session:
        return list(session.scalars(select(AuditEvent.kind).order_by(AuditEvent.id)))
