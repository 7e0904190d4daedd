"""Fixtures of the page tests: logged-in page clients against the live server."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from tests.conftest import LiveServer
from tests.pages.client import PageClient


@pytest.fixture
def new_client(live_server: LiveServer) -> Iterator[Callable[[], PageClient]]:
    made: list[PageClient] = []

    def make() -> PageClient:
        client = PageClient(live_server.url)
        made.append(client)
        return client

    yield make
    for client in made:
        client.close()


@pytest.fixture
def logged_in(new_client: Callable[[], PageClient]) -> Callable[[str], PageClient]:
    """A page client logged in as the user with this login."""

    def make(login: str) -> PageClient:
        return new_client().login(login)

    return make
