"""The "authorized applications" page: what a user allowed, and withdrawing it.

The consent is stored directly here (the browser test gives it through the real consent page).
"""

from __future__ import annotations

from collections.abc import Callable

from callgate.apps.models import Application
from callgate.apps.repository import ApplicationRepository
from callgate.identity.models import User
from callgate.oauth.models import Token
from callgate.oauth.repository import TokenRepository
from callgate.services import Services
from tests.pages.client import PageClient
from tests.support.factories import World, register_app

LoggedIn = Callable[[str], PageClient]


def consent_with_token(services: Services, user: User, application: Application) -> str:
    """Record the user's consent and a token issued under it; the token's id."""
    with services.database.write() as session:
        ApplicationRepository(session).add_consent(user.id, application.id)
        issued = TokenRepository(session).issue(
            application=application,
            user=user,
            grant_type="authorization_code",
            access_lifetime=3600,
            refresh_lifetime=86400,
        )
        return issued.token.id


def token_revoked(services: Services, token_id: str) -> bool:
    with services.database.read() as session:
        token = session.get(Token, token_id)
        assert token is not None
        return token.revoked_at is not None


def test_authorized_apps_are_listed_and_withdrawn(
    services: Services, world: World, logged_in: LoggedIn
) -> None:
    uri = "https://crm.example.com/cb"
    application = register_app(
        services, world.other_manager, type_="public", redirect_uris=uri
    ).application
    kept = register_app(services, world.admin, type_="public", redirect_uris=uri).application
    token_id = consent_with_token(services, world.ext_user, application)
    kept_token = consent_with_token(services, world.ext_user, kept)
    other_user_token = consent_with_token(services, world.manager, application)

    client = logged_in(world.ext_user.login)
    page = client.get("/app/authorized")
    assert page.status_code == 200
    assert f'data-app-id="{application.app_id}"' in page.text
    assert application.name in page.text and world.other_manager.login in page.text
    assert "Call API" in page.text

    response = client.post(f"/app/authorized/{application.app_id}/withdraw")
    assert response.status_code == 303
    assert response.headers["location"] == "/app/authorized?notice=withdrawn"
    after = client.get(response.headers["location"])
    assert f'data-app-id="{application.app_id}"' not in after.text
    assert f'data-app-id="{kept.app_id}"' in after.text
    assert token_revoked(services, token_id)
    # Only this user's permission for this app is gone.
    assert not token_revoked(services, kept_token)
    assert not token_revoked(services, other_user_token)
    assert services.apps.authorized_apps(world.manager)

    again = client.post(f"/app/authorized/{application.app_id}/withdraw")
    assert again.status_code == 404


def test_withdraw_needs_the_csrf_token(
    services: Services, world: World, logged_in: LoggedIn
) -> None:
    application = register_app(
        services, world.manager, type_="public", redirect_uris="https://crm.example.com/cb"
    ).application
    token_id = consent_with_token(services, world.ext_user, application)
    client = logged_in(world.ext_user.login)
    forged = client.post(f"/app/authorized/{application.app_id}/withdraw", csrf="")
    assert forged.status_code == 403
    assert not token_revoked(services, token_id)
    assert len(services.apps.authorized_apps(world.ext_user)) == 1
