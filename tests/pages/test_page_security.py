"""Protections of the pages: CSRF, local-only redirects after login, lockout, framing, logout."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from callgate.common.security import secret_matches
from callgate.config import Settings
from callgate.services import Services
from tests.pages.client import PageClient, count_apps, load_app
from tests.support.factories import PASSWORD, World, register_app

LoggedIn = Callable[[str], PageClient]
NewClient = Callable[[], PageClient]
REGISTRATION = {"name": "Forged", "redirect_uris": "https://crm.example.com/cb", "type": "public"}


def test_forged_posts_are_refused_and_change_nothing(
    services: Services, world: World, logged_in: LoggedIn
) -> None:
    victim = logged_in(world.manager.login)
    attacker = logged_in(world.ext_user.login)
    registered = register_app(
        services, world.manager, type_="public", redirect_uris="https://crm.example.com/cb"
    )
    app_id = registered.application.app_id
    before = count_apps(services)
    # A real token, but of another session: CSRF tokens are bound to the session.
    foreign = attacker.csrf_token()
    for token in ("", "0" * 64, foreign):
        assert victim.post("/app/register", REGISTRATION, csrf=token).status_code == 403
        delete = victim.post(f"/app/{app_id}/delete", {"confirm": "yes"}, csrf=token)
        assert delete.status_code == 403
        assert victim.post(f"/app/{app_id}/regenerate", csrf=token).status_code == 403
        edit = victim.post(f"/app/{app_id}/edit", {"name": "X", "redirect_uris": ""}, csrf=token)
        assert edit.status_code == 403
        assert victim.post("/logout", csrf=token).status_code == 403
    assert count_apps(services) == before
    stored = load_app(services, app_id)
    assert stored is not None and stored.name == registered.application.name
    assert secret_matches(registered.app_secret, stored.secret_hash)
    assert victim.get("/app/").status_code == 200  # still logged in


def test_admin_forms_are_csrf_protected(
    services: Services, world: World, logged_in: LoggedIn
) -> None:
    app_id = register_app(services, world.manager).application.app_id
    admin = logged_in(world.admin.login)
    wanted = {"type": "password_credentials", "access_level": "all"}
    assert admin.post(f"/app/admin/{app_id}/settings", wanted, csrf="").status_code == 403
    status = admin.post(f"/app/admin/{app_id}/status", {"status": "suspended"}, csrf="0" * 64)
    assert status.status_code == 403
    stored = load_app(services, app_id)
    assert stored is not None
    assert (stored.type, stored.access_level, stored.status) == ("trusted", "call_api", "active")


@pytest.mark.parametrize(
    "target", ["https://evil.example/", "//evil.example/app/", "/\\evil.example", "javascript:x"]
)
def test_login_redirects_only_to_local_paths(
    world: World, new_client: NewClient, target: str
) -> None:
    client = new_client()
    form = client.get("/login", params={"next": target})
    assert 'name="next" value="/app/"' in form.text
    response = client.submit_login(world.manager.login, next=target)
    assert response.status_code == 303
    assert response.headers["location"] == "/app/"


def test_login_returns_to_the_local_page_asked_for(world: World, new_client: NewClient) -> None:
    client = new_client()
    asked = client.get("/app/register")
    assert asked.headers["location"] == "/login?next=%2Fapp%2Fregister"
    response = client.submit_login(world.manager.login, next="/app/register")
    assert response.headers["location"] == "/app/register"
    assert client.get("/app/register").status_code == 200


def test_login_lockout_refuses_even_the_right_password(
    settings: Settings, world: World, new_client: NewClient
) -> None:
    client = new_client()
    for _ in range(settings.login_max_failures):
        wrong = client.submit_login(world.manager.login, password="not the password")
        assert wrong.status_code == 401
        assert "Wrong login or password" in wrong.text
    locked = client.submit_login(world.manager.login, password=PASSWORD)
    assert locked.status_code == 429
    assert int(locked.headers["retry-after"]) > 0
    assert client.get("/app/").status_code == 303  # not logged in
    # Another user is not affected by this login's lockout.
    assert new_client().submit_login(world.admin.login).status_code == 303


def test_pages_may_not_be_framed(services: Services, world: World, logged_in: LoggedIn) -> None:
    client = logged_in(world.admin.login)
    app_id = register_app(services, world.admin).application.app_id
    responses = [
        client.get(path)
        for path in ("/login", "/app/", "/app/register", f"/app/{app_id}", "/app/authorized")
    ]
    responses.append(client.get("/app/admin"))
    responses.append(client.post(f"/app/{app_id}/regenerate"))
    for response in responses:
        # /login redirects a logged-in user; redirects carry the headers too.
        assert response.status_code in (200, 303), response.request.url
        assert response.headers["x-frame-options"] == "DENY"
        assert "frame-ancestors 'none'" in response.headers["content-security-policy"]


def test_logout_ends_the_session(world: World, logged_in: LoggedIn, new_client: NewClient) -> None:
    client = logged_in(world.manager.login)
    old_cookie = client.session_cookie
    assert old_cookie
    response = client.post("/logout")
    assert response.status_code == 303 and response.headers["location"] == "/login"

    replay = new_client()
    replay.http.cookies.set("callgate_session", old_cookie)
    after = replay.get("/app/")
    assert after.status_code == 303
    assert after.headers["location"].startswith("/login")
    assert client.get("/app/").status_code == 303
