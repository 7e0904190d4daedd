"""Changes made through the services take effect on the very next API request of this process,
although the request before was answered from the per-worker cache (SPEC sections 2 to 4)."""

from __future__ import annotations

import time
from dataclasses import dataclass

import httpx
import pytest

from callgate.common.clock import utcnow
from callgate.common.security import hash_secret
from callgate.identity.models import Client, Status
from callgate.identity.service import Actor
from callgate.oauth.repository import TokenRepository
from callgate.services import Services
from tests.api.helpers import HANDLER, Api, assert_error, issue_token, set_status
from tests.perf_semantics.helpers import cached, warm
from tests.support.factories import World, register_app


@dataclass
class Caller:
    """A manager's token through a fresh trusted app, already served from the cache."""

    api: Api
    token: str
    app_id: str

    def get(self, path: str = "/user") -> httpx.Response:
        return self.api.get(path)


def caller(services: Services, http: httpx.Client, world: World, level: str = "call_api") -> Caller:
    registered = register_app(services, world.manager, level=level, actor=world.admin)
    token = issue_token(services, registered.application, world.manager)
    api = Api(http, token)
    warm(services, api, token)
    return Caller(api, token, registered.application.app_id)


@pytest.fixture
def api(services: Services, world: World, http: httpx.Client) -> Caller:
    return caller(services, http, world)


ADMIN = Actor(0, None, is_admin=True)


def test_revoking_the_token_refuses_the_next_request(
    services: Services, world: World, api: Caller
) -> None:
    with services.database.write() as session:
        repo = TokenRepository(session)
        row = repo.by_access_token(api.token)
        assert row is not None
        assert repo.revoke_token(row.id) == 1
    assert_error(api.get("/user"), 401, "invalid_token")


def test_blocking_the_user_or_its_client_refuses_the_next_request(
    services: Services, world: World, http: httpx.Client
) -> None:
    first = caller(services, http, world)
    services.identity.set_user_status(world.manager.id, Status.BLOCKED)
    assert_error(first.get("/user"), 401, "invalid_token")  # blocking revoked the tokens
    services.identity.set_user_status(world.manager.id, Status.ACTIVE)
    second = caller(services, http, world)
    services.identity.set_client_status(world.client.id, Status.BLOCKED)
    assert_error(second.get("/user"), 401, "invalid_token")


def test_a_status_changed_behind_the_services_back_is_seen_at_once(
    services: Services, world: World, api: Caller
) -> None:
    """No token is revoked here: only the cached principal's status would be stale."""
    set_status(services, Client, world.client.id, Status.BLOCKED)
    assert_error(api.get("/user"), 403, "user_blocked")
    set_status(services, Client, world.client.id, Status.ACTIVE)
    assert api.get("/user").status_code == 200


def test_password_change_refuses_the_next_request(
    services: Services, world: World, api: Caller
) -> None:
    services.identity.change_password(world.manager.id, "another long password")
    assert_error(api.get("/user"), 401, "invalid_token")


def test_suspending_regenerating_or_deleting_the_app_refuses_the_next_request(
    services: Services, world: World, http: httpx.Client
) -> None:
    suspended = caller(services, http, world)
    services.apps.set_status(world.admin, suspended.app_id, "suspended")
    assert_error(suspended.get(), 401, "invalid_token")
    regenerated = caller(services, http, world)
    services.apps.regenerate_secret(world.admin, regenerated.app_id)
    assert_error(regenerated.get(), 401, "invalid_token")
    deleted = caller(services, http, world)
    services.apps.delete(world.admin, deleted.app_id)
    assert_error(deleted.get(), 401, "invalid_token")


def test_revocation_through_the_oauth_endpoint_refuses_the_next_request(
    services: Services, world: World, http: httpx.Client
) -> None:
    registered = register_app(services, world.manager, actor=world.admin)
    app_id, secret = registered.application.app_id, registered.app_secret
    issued = http.post(
        "/oauth/token",
        data={"grant_type": "client_credentials", "client_id": app_id, "client_secret": secret},
    )
    assert issued.status_code == 200, issued.text
    token = issued.json()["access_token"]
    api = Api(http, token)
    warm(services, api, token)
    revoked = http.post(
        "/oauth/revoke", data={"token": token, "client_id": app_id, "client_secret": secret}
    )
    assert revoked.status_code == 200
    assert_error(api.get("/user"), 401, "invalid_token")


def test_lowering_and_raising_the_app_level_applies_to_the_next_request(
    services: Services, world: World, http: httpx.Client
) -> None:
    api = caller(services, http, world, level="all")
    path = f"/client/{world.client.id}/"
    assert api.api.put(path, json={"name": "Renamed"}).status_code == 200
    warm(services, api.api, api.token, path)
    services.apps.set_access_level(world.admin, api.app_id, "call_api")
    assert_error(api.api.put(path, json={"name": "Again"}), 403, "app_access_type_deny")
    # Call API operations stay allowed, and raising the level again is seen at once too.
    handler = api.api.post(f"/extension/{world.ext101.id}/event/", json=HANDLER)
    assert handler.status_code == 201
    services.apps.set_access_level(world.admin, api.app_id, "all")
    assert api.api.put(path, json={"name": "Again"}).status_code == 200


def test_access_and_timezone_changes_apply_to_the_next_request(
    services: Services, world: World, api: Caller
) -> None:
    services.identity.update_client_user(
        world.client.id, world.manager.id, ADMIN, access="read_only", timezone="Europe/Moscow"
    )
    body = api.get().json()
    assert (body["access"], body["timezone"]) == ("read_only", "Europe/Moscow")
    assert_error(
        api.api.post(f"/extension/{world.ext101.id}/event/", json=HANDLER),
        403,
        "user_access_type_deny",
    )


def test_a_new_rate_limit_applies_to_the_next_request(
    services: Services, world: World, api: Caller
) -> None:
    services.identity.update_limits(world.client.id, ADMIN, {"rate_limit_per_hour": 5})
    response = api.get()
    assert response.headers["x-ratelimit-limit"] == "5"


def test_realm_facts_are_cached_until_the_extension_is_deleted(
    services: Services, world: World, http: httpx.Client
) -> None:
    api = caller(services, http, world)
    extension = services.identity.create_extension(world.client.id, "155")
    path = f"/extension/{extension.id}/event/"
    # The creation's own change notice (PostgreSQL NOTIFY) can arrive just after the first
    # request and move the generation on; the fact is then cached again by the next request.
    deadline = time.monotonic() + 5
    while True:
        assert api.get(path).status_code == 200
        generation = services.access.cache.generation()
        assert generation is not None
        fact = services.access.cache.fact(f"extension:{extension.id}", generation)
        if fact is not None or time.monotonic() > deadline:
            break
    assert fact == world.client.id
    services.identity.delete_extension(extension.id)
    assert_error(api.get(path), 403, "access_denied")


def test_an_expired_token_is_refused_although_its_check_is_cached(
    services: Services, world: World, http: httpx.Client
) -> None:
    registered = register_app(services, world.manager)
    with services.database.write() as session:
        issued = TokenRepository(session).issue(
            application=registered.application,
            user=world.manager,
            grant_type="client_credentials",
            access_lifetime=1,
            refresh_lifetime=None,
        )
    token, expires_at = issued.access_token, issued.token.access_expires_at
    api = Api(http, token)
    warm(services, api, token)
    # No database change announces an expiry: the cached expiry itself must refuse the token.
    deadline = time.monotonic() + 10
    while (response := api.get("/user")).status_code == 200:
        assert time.monotonic() < deadline, "an expired token was still accepted"
    assert utcnow() >= expires_at, "refused before it expired"
    assert_error(response, 401, "invalid_token")
    assert not cached(services, token)


def test_unknown_tokens_are_never_cached(services: Services, http: httpx.Client) -> None:
    api = Api(http, "not-a-token")
    for _ in range(3):
        assert_error(api.get("/user"), 401, "invalid_token")
    generation = services.access.cache.generation()
    if generation is not None:
        assert services.access.cache.principal(hash_secret("not-a-token"), generation) is None
