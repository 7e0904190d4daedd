"""Helpers of the tests that check the caches keep the security semantics."""

from __future__ import annotations

import time
from collections.abc import Callable

from callgate.common.security import hash_secret
from callgate.services import Services
from tests.api.helpers import Api


def cached(services: Services, token: str) -> bool:
    """Whether this process would answer the token's next check from its cache."""
    cache = services.access.cache
    generation = cache.generation()
    return generation is not None and cache.principal(hash_secret(token), generation) is not None


def warm(services: Services, api: Api, token: str, path: str = "/user") -> None:
    """A few requests, until the token's check is served from the cache (so that the test
    below shows that the change took effect, not that nothing was cached)."""
    deadline = time.monotonic() + 10
    while True:
        assert api.get(path).status_code == 200
        if cached(services, token):
            return
        # The PostgreSQL listener may still be connecting: its first seconds are uncached.
        assert time.monotonic() < deadline, "the token's check was never cached"


def wait_for(condition: Callable[[], bool], seconds: float = 10, message: str = "") -> None:
    """Poll ``condition`` until it holds, failing after ``seconds``."""
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, message or "condition not met in time"
        time.sleep(0.005)
