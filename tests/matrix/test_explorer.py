"""The API explorer at /api/ver1.0/client_api_explorer/: served entirely by Callgate, and usable
in a real browser with the network to anything but 127.0.0.1 cut off."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import httpx
import pytest
from playwright.sync_api import Route, expect, sync_playwright

from callgate.services import Services
from tests.conftest import LiveServer
from tests.support.browser import chromium_available, launch_chromium
from tests.support.factories import World, register_app

EXPLORER = "/api/ver1.0/client_api_explorer/"
TIMEOUT_MS = 15_000
ASSETS = {
    "swagger-ui-bundle.js": "text/javascript",
    "swagger-ui.css": "text/css",
    "explorer.js": "text/javascript",
    "explorer.css": "text/css",
    "favicon.png": "image/png",
}


def test_the_page_loads_only_what_this_server_serves(http: httpx.Client) -> None:
    page = http.get(EXPLORER)  # public: no token
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    csp = page.headers["content-security-policy"]
    assert "default-src 'self'" in csp and "unsafe-inline" not in csp and "unsafe-eval" not in csp
    references = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assert set(ASSETS) <= set(references)
    for reference in references:
        assert not urlsplit(reference).netloc, reference  # nothing from another host
    assert "<script>" not in page.text  # no inline script: the CSP would block it anyway
    for name, media_type in ASSETS.items():
        asset = http.get(EXPLORER + name)
        assert asset.status_code == 200, name
        assert asset.headers["content-type"].startswith(media_type), name
        assert len(asset.content) > 100, name
    missing = http.get(EXPLORER + "../../etc/passwd")
    assert missing.status_code == 404
    unknown = http.get(EXPLORER + "secrets.txt")
    assert unknown.status_code == 404 and unknown.json()["status"] == "not_found"
    bare = http.get(EXPLORER.rstrip("/"), follow_redirects=False)
    assert bare.status_code == 308 and bare.headers["location"].endswith("client_api_explorer/")


@pytest.mark.browser
def test_a_trusted_app_gets_a_token_and_calls_the_api_from_the_explorer(
    request: pytest.FixtureRequest, services: Services, world: World, live_server: LiveServer
) -> None:
    if "postgresql" in request.node.callspec.id:
        pytest.skip("the browser runs on SQLite only")
    if not chromium_available():
        pytest.skip("Debian's chromium is not installed")
    registered = register_app(services, world.manager, type_="trusted", level="call_api")
    app_id = registered.application.app_id
    local = urlsplit(live_server.url).netloc
    foreign: list[str] = []
    token_requests: list[str] = []
    api_calls: list[int] = []

    def only_local(route: Route) -> None:
        url = urlsplit(route.request.url)
        if url.scheme in ("data", "blob") or url.netloc == local:
            if url.path == "/oauth/token":
                token_requests.append(route.request.post_data or "")
            route.continue_()
        else:
            foreign.append(route.request.url)
            route.abort()

    with sync_playwright() as playwright:
        browser = launch_chromium(playwright)
        try:
            page = browser.new_page()
            page.set_default_timeout(TIMEOUT_MS)
            page.route("**/*", only_local)
            page.on(
                "response",
                lambda response: (
                    api_calls.append(response.status)
                    if urlsplit(response.url).path == "/api/ver1.0/user"
                    else None
                ),
            )
            page.goto(live_server.url + EXPLORER)
            expect(page.locator(".opblock").first).to_be_visible()

            # Authorize: the appCredentials scheme is OAuth2 client credentials at /oauth/token.
            page.locator("button.authorize").first.click()
            dialog = page.locator(".auth-container", has_text="appCredentials")
            dialog.locator("input#client_id_clientCredentials").fill(app_id)
            dialog.locator("input#client_secret_clientCredentials").fill(registered.app_secret)
            dialog.locator("button.authorize").click()
            expect(page.get_by_role("button", name="Remove authorization")).to_be_visible()
            page.locator("button.close-modal").click()

            # Try GET /user out.
            operation = page.locator("#operations-identity-get_user_api_ver1_0_user_get")
            operation.locator(".opblock-summary").click()
            # "Try it out" is on from the start (tryItOutEnabled in explorer.js).
            operation.locator("button.execute").click()
            live = operation.locator(".live-responses-table tbody .response-col_status")
            expect(live.first).to_have_text("200")
            expect(operation.locator(".live-responses-table")).to_contain_text(world.manager.login)
        finally:
            browser.close()

    assert foreign == []  # not one request left 127.0.0.1, not even attempted
    assert len(token_requests) == 1 and "grant_type=client_credentials" in token_requests[0]
    assert api_calls == [200]
