"""A real browser (Debian's Chromium through Playwright) goes through the application pages.

It logs in, registers a public app, reads the App ID and secret shown once, authorizes the app on
the OAuth consent page (the callback to the app is intercepted, nothing listens there), exchanges
the code, then withdraws the permission on "authorized applications". Runs on SQLite only: the
pages are the subject here, the databases are covered by the other page tests.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest
from playwright.sync_api import Page, Route, expect, sync_playwright

from callgate.common.security import secret_matches
from callgate.oauth.repository import TokenRepository
from callgate.services import Services
from tests.conftest import LiveServer, free_port
from tests.pages.client import load_app
from tests.support.browser import chromium_available, launch_chromium
from tests.support.factories import PASSWORD, World

TIMEOUT_MS = 15_000


def pkce_pair() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def log_in(page: Page, base_url: str, login: str) -> None:
    page.goto(f"{base_url}/app/")
    expect(page).to_have_url(f"{base_url}/login?next=%2Fapp%2F")
    page.fill("#login", login)
    page.fill("#password", PASSWORD)
    page.click("#submit")
    expect(page).to_have_url(f"{base_url}/app/")


def register_public_app(page: Page, base_url: str, redirect_uri: str) -> tuple[str, str]:
    page.click("#register_link")
    expect(page).to_have_url(f"{base_url}/app/register")
    page.fill("#name", "Browser CRM")
    page.fill("#redirect_uris", redirect_uri)
    page.select_option("#type", "public")
    page.select_option("#access_level", "call_api")
    page.click("#register")
    expect(page.locator("#app_secret")).to_be_visible()
    app_id = (page.text_content("#app_id") or "").strip()
    app_secret = (page.text_content("#app_secret") or "").strip()
    return app_id, app_secret


@pytest.mark.browser
def test_register_authorize_and_withdraw_in_a_browser(
    request: pytest.FixtureRequest, services: Services, world: World, live_server: LiveServer
) -> None:
    if "postgresql" in request.node.callspec.id:
        pytest.skip("the browser flow runs on SQLite only")
    if not chromium_available():
        pytest.skip("Debian's chromium is not installed")
    base = live_server.url
    redirect_uri = f"http://127.0.0.1:{free_port()}/cb"
    verifier, challenge = pkce_pair()

    with sync_playwright() as playwright:
        browser = launch_chromium(playwright)
        try:
            page = browser.new_page()
            page.set_default_timeout(TIMEOUT_MS)
            log_in(page, base, world.manager.login)

            app_id, app_secret = register_public_app(page, base, redirect_uri)
            stored = load_app(services, app_id)
            assert stored is not None and stored.owner_id == world.manager.id
            assert secret_matches(app_secret, stored.secret_hash)
            page.goto(f"{base}/app/")
            row = page.locator(f'tr[data-app-id="{app_id}"]')
            expect(row).to_contain_text("Browser CRM")
            expect(row).to_contain_text("Call API")

            # --- authorize it: /oauth/authorize and its consent page (SPEC §3) ---
            callbacks: list[str] = []

            def at_callback(route: Route) -> None:
                callbacks.append(route.request.url)
                route.fulfill(status=200, content_type="text/plain", body="callback reached")

            page.route(f"{redirect_uri}**", at_callback)
            query = {
                "response_type": "code",
                "client_id": app_id,
                "redirect_uri": redirect_uri,
                "state": "xyz",
                "code_challenge": challenge,
                "code_challenge_method": "S256",
            }
            page.goto(f"{base}/oauth/authorize?{urlencode(query)}")
            expect(page.locator("body")).to_contain_text("Browser CRM")
            page.click('[name="decision"][value="allow"]')
            expect(page.locator("body")).to_contain_text("callback reached")
            assert len(callbacks) == 1
            callback = urlsplit(callbacks[0])
            assert f"{callback.scheme}://{callback.netloc}{callback.path}" == redirect_uri
            params = parse_qs(callback.query)
            assert params["state"] == ["xyz"]
            assert "error" not in params
            (code,) = params["code"]

            token = httpx.post(
                f"{base}/oauth/token",
                data={
                    "grant_type": "authorization_code",
                    "code": code,
                    "redirect_uri": redirect_uri,
                    "code_verifier": verifier,
                    "client_id": app_id,
                    "client_secret": app_secret,
                },
            )
            assert token.status_code == 200, token.text
            access_token = token.json()["access_token"]

            # --- see it among the authorized applications, and withdraw it ---
            page.goto(f"{base}/app/authorized")
            authorized = page.locator(f'tr[data-app-id="{app_id}"]')
            expect(authorized).to_contain_text("Browser CRM")
            expect(authorized).to_contain_text(world.manager.login)
            authorized.locator("button.withdraw").click()
            expect(page).to_have_url(f"{base}/app/authorized?notice=withdrawn")
            expect(page.locator(f'tr[data-app-id="{app_id}"]')).to_have_count(0)
            expect(page.locator("#notice")).to_be_visible()
        finally:
            browser.close()

    assert not services.apps.authorized_apps(world.manager)
    with services.database.read() as session:
        issued = TokenRepository(session).by_access_token(access_token)
        assert issued is not None and issued.revoked_at is not None
