"""The hourly request quota of a client, counted in the database (SPEC §5, "Rate limit").

The counter lives in the database, not in process memory, so that several API workers share one
quota. Windows are fixed clock hours; the first request of a window also deletes the counters of
windows that have ended, so the table stays as small as the number of active clients.

Every request gets a **slot**: its number in the window's count. A worker does not write the
counter for every request. While a quota is far from its limit (as the worker last saw it), the
worker **reserves** a batch of slots at once with one atomic ``count = count + batch`` and hands
them out from memory; the batch is ``CALLGATE_RATE_LIMIT_BATCH`` (50), or a thousandth of the
quota when that is larger. Close to the limit (fewer than twice the batch left) it reserves one
slot per request, in the request, exactly as before. A request is refused with 429 when its slot
is past the limit, so no more requests than the quota are ever admitted, however many workers
share it. The price: slots a worker has reserved but not used yet count as used for the others,
so a client may be refused up to (workers - 1) * batch requests early when its traffic leaves
the worker holding them; and ``X-RateLimit-Remaining`` is exact per worker but not monotonic
across workers.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import Connection
from sqlalchemy.orm import Session

from callgate.common.db import Database
from callgate.common.errors import RateLimitExceeded
from callgate.config import Settings
from callgate.policy.principal import Principal, RateStatus
from callgate.policy.repository import RateCounterRepository

WINDOW_SECONDS = 3600
# A worker reserves at most this share of a quota at once (beyond CALLGATE_RATE_LIMIT_BATCH).
QUOTA_SHARE = 1000


@dataclass(slots=True)
class _Reservation:
    """The slots ``next_slot .. last_slot`` of one window that this worker may hand out."""

    window_start: int
    next_slot: int
    last_slot: int


class RateLimiter:
    def __init__(
        self,
        database: Database,
        settings: Settings,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.database = database
        self.settings = settings
        self.clock = clock
        self.batch = settings.rate_limit_batch
        self.counters = RateCounterRepository(database.engine.dialect.name)
        self._reservations: dict[str, _Reservation] = {}
        self._lock = threading.Lock()
        # One reservation at a time per quota: concurrent requests wait for it, not reserve more.
        self._reserving: dict[str, threading.Lock] = {}

    def limit_for(self, principal: Principal) -> int:
        if principal.client is not None and principal.client.rate_limit_per_hour is not None:
            return principal.client.rate_limit_per_hour
        return self.settings.rate_limit_per_hour

    def _window(self) -> tuple[int, int]:
        """(start of the current window, seconds until it ends)."""
        now = int(self.clock())
        start = now - now % WINDOW_SECONDS
        return start, max(1, start + WINDOW_SECONDS - now)

    def take_reserved(self, principal: Principal) -> RateStatus | None:
        """A slot this worker reserved before, without the database; None when it has none."""
        start, reset = self._window()
        with self._lock:
            reservation = self._reservations.get(principal.quota_key)
            if (
                reservation is None
                or reservation.window_start != start
                or reservation.next_slot > reservation.last_slot
            ):
                return None
            slot = reservation.next_slot
            reservation.next_slot += 1
        return RateStatus(limit=self.limit_for(principal), count=slot, reset=reset)

    def take(self, principal: Principal) -> RateStatus:
        """A slot for this request: reserved before, or reserved now in the database."""
        status = self.take_reserved(principal)
        if status is not None:
            return status
        key = principal.quota_key
        with self._lock:
            reserving = self._reserving.setdefault(key, threading.Lock())
        with reserving:
            # Another thread may have reserved while this one waited.
            status = self.take_reserved(principal)
            if status is not None:
                return status
            limit = self.limit_for(principal)
            start, reset = self._window()
            amount = self._amount(key, start, limit)
            with self.database.write_connection() as connection:
                last = self._reserve_in(connection, key, start, amount)
            first = last - amount + 1
            with self._lock:
                self._reservations[key] = _Reservation(start, first + 1, last)
            return RateStatus(limit=limit, count=first, reset=reset)

    def _amount(self, key: str, window_start: int, limit: int) -> int:
        """How many slots to reserve: one (exact) unless the limit is far or already passed."""
        with self._lock:
            reservation = self._reservations.get(key)
        if reservation is None or reservation.window_start != window_start:
            return 1  # the shared count is unknown: learn it with an exact step
        seen = reservation.last_slot
        size = self.batch_for(limit)
        if limit - seen > 2 * size or seen > limit:
            # Far from the limit, or past it (every slot of the batch answers 429 anyway,
            # unless the limit is raised meanwhile, and then they are genuinely free).
            return size
        return 1

    def batch_for(self, limit: int) -> int:
        """Slots reserved at once: the configured batch, or a thousandth of a larger quota.

        Only high quotas see traffic where one write per 50 requests shows; for them the
        bound on early refusals stays the same share of the quota (0.1 % per other worker).
        """
        return max(self.batch, limit // QUOTA_SHARE)

    def count(self, principal: Principal) -> RateStatus:
        """Count exactly this one request in a unit of work of its own."""
        with self.database.write() as session:
            return self.count_in(session, principal)

    def count_in(self, session: Session, principal: Principal) -> RateStatus:
        """Count this request against the principal's quota (one statement, atomic)."""
        start, reset = self._window()
        count = self._reserve_in(session, principal.quota_key, start, 1)
        return RateStatus(limit=self.limit_for(principal), count=count, reset=reset)

    def _reserve_in(
        self, session: Session | Connection, key: str, window_start: int, amount: int
    ) -> int:
        """Add ``amount`` to the window's count; return the count after it."""
        count = self.counters.increment(session, key, window_start, amount)
        if count == amount:  # this statement created the window's row
            self.counters.prune(session, window_start)
        return count

    @staticmethod
    def enforce(status: RateStatus) -> None:
        if status.exceeded:
            raise RateLimitExceeded(
                f"The hourly quota of {status.limit} requests is used up; "
                f"it renews in {status.reset} seconds.",
                retry_after=status.reset,
            )
