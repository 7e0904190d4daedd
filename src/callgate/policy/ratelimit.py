"""The hourly request quota of a client, counted in the database (SPEC §5, "Rate limit").

The counter lives in the database, not in process memory, so that several API workers share one
quota. Windows are fixed clock hours; the first request of a window also deletes the counters of
windows that have ended, so the table stays as small as the number of active clients.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy.orm import Session

from callgate.common.clock import utcnow
from callgate.common.db import Database
from callgate.common.errors import RateLimitExceeded
from callgate.config import Settings
from callgate.policy.principal import Principal, RateStatus
from callgate.policy.repository import RateCounterRepository

WINDOW_SECONDS = 3600


class RateLimiter:
    def __init__(
        self,
        database: Database,
        settings: Settings,
        clock: Callable[[], float] = lambda: utcnow().timestamp(),
    ) -> None:
        self.database = database
        self.settings = settings
        self.clock = clock
        self.counters = RateCounterRepository(database.engine.dialect.name)

    def limit_for(self, principal: Principal) -> int:
        if principal.client is not None and principal.client.rate_limit_per_hour is not None:
            return principal.client.rate_limit_per_hour
        return self.settings.rate_limit_per_hour

    def count(self, principal: Principal) -> RateStatus:
        """Count this request in a unit of work of its own."""
        with self.database.write() as session:
            return self.count_in(session, principal)

    def count_in(self, session: Session, principal: Principal) -> RateStatus:
        """Count this request against the principal's quota (one statement, atomic)."""
        now = int(self.clock())
        window_start = now - now % WINDOW_SECONDS
        count = self.counters.increment(session, principal.quota_key, window_start)
        if count == 1:
            self.counters.prune(session, window_start)
        return RateStatus(
            limit=self.limit_for(principal),
            count=count,
            reset=max(1, window_start + WINDOW_SECONDS - now),
        )

    @staticmethod
    def enforce(status: RateStatus) -> None:
        if status.exceeded:
            raise RateLimitExceeded(
                f"The hourly quota of {status.limit} requests is used up; "
                f"it renews in {status.reset} seconds.",
                retry_after=status.reset,
            )
