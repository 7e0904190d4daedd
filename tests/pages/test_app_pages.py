"""The application pages over HTTP: list, register, details, edit, regenerate, delete, admin."""

from __future__ import annotations

import html
from collections.abc import Callable

from callgate.common.security import secret_matches
from callgate.services import Services
from tests.pages.client import PageClient, count_apps, load_app, text_of
from tests.support.factories import World, register_app

LoggedIn = Callable[[str], PageClient]
REDIRECT = "https://crm.example.com/cb"


def register(client: PageClient, **fields: str) -> tuple[str, str]:
    """Register through the form; the App ID and secret read from the page shown once."""
    data = {"name": "My CRM", "redirect_uris": REDIRECT, "type": "public"}
    data.update(fields)
    response = client.post("/app/register", data)
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    assert "will not be shown again" in response.text
    return text_of(response.text, "app_id"), text_of(response.text, "app_secret")


def test_anonymous_visitor_is_sent_to_login(new_client: Callable[[], PageClient]) -> None:
    response = new_client().get("/app/register")
    assert response.status_code == 303
    assert response.headers["location"] == "/login?next=%2Fapp%2Fregister"


def test_register_shows_secret_once_and_lists_the_app(
    services: Services, world: World, logged_in: LoggedIn
) -> None:
    client = logged_in(world.manager.login)
    form = client.get("/app/register")
    assert 'name="redirect_uris"' in form.text and 'name="access_level"' in form.text
    app_id, secret = register(client, name="Call center", access_level="call_api")

    stored = load_app(services, app_id)
    assert stored is not None and stored.owner_id == world.manager.id
    assert stored.type == "public" and stored.access_level == "call_api"
    assert stored.redirect_uris == REDIRECT
    assert secret_matches(secret, stored.secret_hash) and secret not in stored.secret_hash

    listing = client.get("/app/")
    assert listing.status_code == 200
    assert f'data-app-id="{app_id}"' in listing.text
    assert "Call center" in listing.text and "Call API" in listing.text
    assert REDIRECT in listing.text
    # The list and the details never show the secret again.
    assert secret not in listing.text
    details = client.get(f"/app/{app_id}")
    assert details.status_code == 200 and secret not in details.text


def test_list_shows_only_own_apps(services: Services, world: World, logged_in: LoggedIn) -> None:
    mine = register_app(services, world.manager).application
    theirs = register_app(services, world.other_manager).application
    listing = logged_in(world.manager.login).get("/app/")
    assert f'data-app-id="{mine.app_id}"' in listing.text
    assert theirs.app_id not in listing.text


def test_invalid_input_is_a_form_error(
    services: Services, world: World, logged_in: LoggedIn
) -> None:
    client = logged_in(world.manager.login)
    before = count_apps(services)
    response = client.post(
        "/app/register", {"name": "No URI", "redirect_uris": "", "type": "public"}
    )
    assert response.status_code == 400
    assert 'id="error"' in response.text and "redirect URI" in response.text
    assert 'value="No URI"' in response.text  # the form keeps what was typed
    bad_uri = client.post(
        "/app/register", {"name": "x", "redirect_uris": "http://evil.example/cb", "type": "public"}
    )
    assert bad_uri.status_code == 400 and "https" in bad_uri.text
    assert count_apps(services) == before


def test_non_admin_cannot_ask_for_admin_only_settings(
    services: Services, world: World, logged_in: LoggedIn
) -> None:
    client = logged_in(world.manager.login)
    form = client.get("/app/register").text
    assert 'value="password_credentials"' not in form and 'value="all"' not in form
    before = count_apps(services)
    for fields in ({"type": "password_credentials"}, {"access_level": "all"}):
        data = {"name": "Sneaky", "redirect_uris": REDIRECT, "type": "trusted"} | fields
        response = client.post("/app/register", data)
        assert response.status_code == 403
        assert 'id="error"' in response.text and "administrator" in response.text
        assert 'id="app_secret"' not in response.text
    assert count_apps(services) == before


def test_admin_may_register_with_admin_only_settings(
    services: Services, world: World, logged_in: LoggedIn
) -> None:
    client = logged_in(world.admin.login)
    form = client.get("/app/register").text
    assert 'value="password_credentials"' in form and 'value="all"' in form
    app_id, _ = register(client, type="password_credentials", access_level="all", redirect_uris="")
    stored = load_app(services, app_id)
    assert stored is not None
    assert (stored.type, stored.access_level) == ("password_credentials", "all")


def test_edit_name_and_redirect_uris(services: Services, world: World, logged_in: LoggedIn) -> None:
    client = logged_in(world.manager.login)
    app_id, _ = register(client)
    uris = "https://crm.example.com/new http://127.0.0.1:9999/cb"
    response = client.post(f"/app/{app_id}/edit", {"name": "Renamed", "redirect_uris": uris})
    assert response.status_code == 303
    assert response.headers["location"] == f"/app/{app_id}?notice=updated"
    page = client.get(response.headers["location"])
    assert "Renamed" in page.text and 'id="notice"' in page.text
    stored = load_app(services, app_id)
    assert stored is not None
    assert (stored.name, stored.redirect_uris) == ("Renamed", uris)

    refused = client.post(f"/app/{app_id}/edit", {"name": "", "redirect_uris": uris})
    assert refused.status_code == 400 and 'id="error"' in refused.text
    stored = load_app(services, app_id)
    assert stored is not None and stored.name == "Renamed"


def test_regenerate_secret_replaces_the_old_one(
    services: Services, world: World, logged_in: LoggedIn
) -> None:
    client = logged_in(world.manager.login)
    app_id, old_secret = register(client)
    response = client.post(f"/app/{app_id}/regenerate")
    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"
    assert text_of(response.text, "app_id") == app_id
    new_secret = text_of(response.text, "app_secret")
    assert new_secret != old_secret
    stored = load_app(services, app_id)
    assert stored is not None
    assert secret_matches(new_secret, stored.secret_hash)
    assert not secret_matches(old_secret, stored.secret_hash)


def test_delete_needs_confirmation(services: Services, world: World, logged_in: LoggedIn) -> None:
    client = logged_in(world.manager.login)
    app_id, _ = register(client)
    unconfirmed = client.post(f"/app/{app_id}/delete")
    assert unconfirmed.status_code == 400 and 'id="error"' in unconfirmed.text
    assert load_app(services, app_id) is not None

    confirmed = client.post(f"/app/{app_id}/delete", {"confirm": "yes"})
    assert confirmed.status_code == 303
    assert confirmed.headers["location"] == "/app/?notice=deleted"
    assert load_app(services, app_id) is None
    assert app_id not in client.get("/app/").text
    assert client.get(f"/app/{app_id}").status_code == 404


def test_another_users_app_is_not_found(
    services: Services, world: World, logged_in: LoggedIn
) -> None:
    registered = register_app(services, world.other_manager, type_="public", redirect_uris=REDIRECT)
    app_id = registered.application.app_id
    client = logged_in(world.manager.login)
    assert client.get(f"/app/{app_id}").status_code == 404
    assert client.get("/app/0123456789abcdef0123456789abcdef").status_code == 404
    edit = client.post(f"/app/{app_id}/edit", {"name": "Mine now", "redirect_uris": REDIRECT})
    assert edit.status_code == 404
    assert client.post(f"/app/{app_id}/regenerate").status_code == 404
    assert client.post(f"/app/{app_id}/delete", {"confirm": "yes"}).status_code == 404
    stored = load_app(services, app_id)
    assert stored is not None and stored.name == registered.application.name
    assert secret_matches(registered.app_secret, stored.secret_hash)


def test_admin_page_is_for_admins_only(
    services: Services, world: World, logged_in: LoggedIn
) -> None:
    app_id = register_app(services, world.manager).application.app_id
    client = logged_in(world.manager.login)
    assert client.get("/app/admin").status_code == 403
    response = client.post(
        f"/app/admin/{app_id}/settings", {"type": "password_credentials", "access_level": "all"}
    )
    assert response.status_code == 403
    assert client.post(f"/app/admin/{app_id}/status", {"status": "suspended"}).status_code == 403
    stored = load_app(services, app_id)
    assert stored is not None
    assert (stored.type, stored.access_level, stored.status) == ("trusted", "call_api", "active")


def test_admin_finds_apps_and_changes_type_level_and_status(
    services: Services, world: World, logged_in: LoggedIn
) -> None:
    target = register_app(services, world.manager).application
    other = register_app(services, world.other_manager).application
    client = logged_in(world.admin.login)

    everything = client.get("/app/admin")
    assert everything.status_code == 200
    assert f'data-app-id="{target.app_id}"' in everything.text
    assert f'data-app-id="{other.app_id}"' in everything.text
    assert world.manager.login in everything.text  # the owner is shown
    found = client.get("/app/admin", params={"q": target.name})
    assert target.app_id in found.text and other.app_id not in found.text

    settings = client.post(
        f"/app/admin/{target.app_id}/settings",
        {"type": "password_credentials", "access_level": "all", "q": target.name},
    )
    assert settings.status_code == 303
    assert settings.headers["location"].startswith("/app/admin?")
    stored = load_app(services, target.app_id)
    assert stored is not None
    assert (stored.type, stored.access_level) == ("password_credentials", "all")

    suspended = client.post(f"/app/admin/{target.app_id}/status", {"status": "suspended"})
    assert suspended.status_code == 303
    stored = load_app(services, target.app_id)
    assert stored is not None and stored.status == "suspended"
    client.post(f"/app/admin/{target.app_id}/status", {"status": "active"})
    stored = load_app(services, target.app_id)
    assert stored is not None and stored.status == "active"

    # A rule of the service (a public app needs a redirect URI) comes back as a form error.
    refused = client.post(f"/app/admin/{target.app_id}/settings", {"type": "public"})
    assert refused.status_code == 400
    assert "redirect URI" in html.unescape(refused.text)
    stored = load_app(services, target.app_id)
    assert stored is not None and stored.type == "password_credentials"
