"""The hourly quota per client: counted in the database, shared inside a client only."""

from __future__ import annotations

import httpx
from sqlalchemy import select

from callgate.common.security import hash_secret
from callgate.policy.models import RateCounter
from callgate.policy.ratelimit import RateLimiter
from callgate.policy.repository import principal_by_token_hash
from callgate.services import Services
from tests.api.conftest import ActAs
from tests.api.helpers import Api, assert_error, issue_token, set_rate_limit, token_for
from tests.support.factories import World, register_app

QUOTA_HEADERS = ("x-ratelimit-limit", "x-ratelimit-remaining", "x-ratelimit-reset")


def quota(response: httpx.Response) -> tuple[int, int, int]:
    limit, remaining, reset = (int(response.headers[name]) for name in QUOTA_HEADERS)
    return limit, remaining, reset


def test_request_past_the_quota_gets_429(services: Services, world: World, act_as: ActAs) -> None:
    set_rate_limit(services, world.client.id, 3)
    api = act_as(world.manager)
    remaining = []
    for _ in range(3):
        response = api.get("/user")
        assert response.status_code == 200
        limit, left, reset = quota(response)
        assert limit == 3 and 0 < reset <= 3600
        remaining.append(left)
    assert remaining == [2, 1, 0]
    refused = api.get("/user")
    assert_error(refused, 429, "rate_limit_exceeded")
    assert quota(refused)[:2] == (3, 0)
    assert 0 < int(refused.headers["retry-after"]) <= 3600


def test_quota_is_shared_by_the_users_and_apps_of_one_client_only(
    services: Services, world: World, act_as: ActAs
) -> None:
    set_rate_limit(services, world.client.id, 4)
    set_rate_limit(services, world.other_client.id, 2)
    manager, ext_user, reader = (
        act_as(world.manager),
        act_as(world.ext_user),
        act_as(world.reader, "all"),
    )
    other = act_as(world.other_manager)
    assert manager.get("/user").status_code == 200
    assert ext_user.get("/user").status_code == 200
    assert reader.get("/user").status_code == 200
    # The other client has its own counter and limit.
    assert quota(other.get("/user"))[:2] == (2, 1)
    assert quota(manager.get("/user"))[:2] == (4, 0)
    assert_error(ext_user.get("/user"), 429, "rate_limit_exceeded")
    assert_error(reader.get("/extension/@me/event/"), 429, "rate_limit_exceeded")
    assert other.get("/user").status_code == 200


def test_errors_after_authentication_carry_the_quota(
    services: Services, world: World, act_as: ActAs
) -> None:
    api = act_as(world.manager)
    denied = api.get(f"/client/{world.other_client.id}/")
    assert_error(denied, 403, "access_denied")
    assert quota(denied)[0] == services.settings.rate_limit_per_hour
    invalid = api.post(f"/extension/{world.ext101.id}/event/", json={"url": "ftp://x"})
    assert invalid.status_code == 422
    assert quota(invalid)[1] == services.settings.rate_limit_per_hour - 2


def test_admin_without_client_counts_on_its_own_key(
    services: Services, world: World, http: httpx.Client
) -> None:
    api = Api(http, token_for(services, world.admin))
    limit = services.settings.rate_limit_per_hour
    assert quota(api.get("/user"))[:2] == (limit, limit - 1)
    with services.database.read() as session:
        keys = set(session.scalars(select(RateCounter.key)))
    assert f"user:{world.admin.id}" in keys


def test_windows_renew_and_old_ones_are_pruned(services: Services, world: World) -> None:
    registered = register_app(services, world.manager)
    token = issue_token(services, registered.application, world.manager)
    with services.database.engine.connect() as connection:
        record = principal_by_token_hash(connection, hash_secret(token))
    assert record is not None
    now = [7200.0 * 1000 + 10]
    limiter = RateLimiter(services.database, services.settings, clock=lambda: now[0])
    assert limiter.count(record.principal).count == 1
    status = limiter.count(record.principal)
    assert (status.count, status.reset) == (2, 3590)
    now[0] += 3600  # the next hour
    status = limiter.count(record.principal)
    assert (status.count, status.reset) == (1, 3590)
    with services.database.read() as session:
        windows = list(session.scalars(select(RateCounter.window_start)))
    assert windows == [7200 * 1000 + 3600]
