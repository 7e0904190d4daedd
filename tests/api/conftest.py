"""Fixtures of the API tests: an httpx client on the live server and a way to act as a user."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import httpx
import pytest

from callgate.identity.models import User
from callgate.services import Services
from tests.api.helpers import Api, http_client, token_for
from tests.conftest import LiveServer
from tests.support.factories import World

ActAs = Callable[..., Api]


@pytest.fixture
def http(live_server: LiveServer) -> Iterator[httpx.Client]:
    with http_client(live_server.url) as client:
        yield client


@pytest.fixture
def act_as(services: Services, world: World, http: httpx.Client) -> ActAs:
    """``act_as(user, level="call_api")``: an Api acting through a fresh trusted app."""

    def make(user: User, level: str = "call_api") -> Api:
        return Api(http, token_for(services, user, level=level, admin=world.admin))

    return make
