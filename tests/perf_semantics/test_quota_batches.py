"""The hourly quota with per-worker reservations of slots: never more requests than the quota,
exact counting close to the limit, one database write per batch far from it.

Several ``RateLimiter`` objects on one database stand for several worker processes.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import select

from callgate.config import Settings
from callgate.policy.models import RateCounter
from callgate.policy.principal import Principal, PrincipalApp, PrincipalClient, PrincipalUser
from callgate.policy.ratelimit import RateLimiter
from callgate.services import Services
from tests.support.factories import World

HOUR = 3600.0


def principal(world: World, limit: int) -> Principal:
    user = world.manager
    return Principal(
        token_id="t",
        user=PrincipalUser(
            user.id, user.login, "client", "full", "active", world.client.id, None, "UTC"
        ),
        app=PrincipalApp(1, "app", "trusted", "call_api", "active"),
        client=PrincipalClient(world.client.id, "active", limit),
    )


class Worker:
    """One worker's limiter, counting its database writes."""

    def __init__(self, services: Services, batch: int, clock: list[float]) -> None:
        settings = services.settings.model_copy(update={"rate_limit_batch": batch})
        assert isinstance(settings, Settings)
        self.limiter = RateLimiter(services.database, settings, clock=lambda: clock[0])
        self.writes = 0
        increment = self.limiter.counters.increment

        def counted(*args: object, **kwargs: object) -> int:
            self.writes += 1
            return increment(*args, **kwargs)  # type: ignore[arg-type]

        self.limiter.counters.increment = counted  # type: ignore[method-assign]

    def take(self, who: Principal) -> int | None:
        """The request's slot when admitted, None when refused (429)."""
        status = self.limiter.take(who)
        return None if status.exceeded else status.count


def stored_count(services: Services, world: World) -> int:
    with services.database.read() as session:
        counts = list(
            session.scalars(
                select(RateCounter.count).where(RateCounter.key == f"client:{world.client.id}")
            )
        )
    return sum(counts)


@contextmanager
def workers(services: Services, n: int, batch: int) -> Iterator[tuple[list[Worker], list[float]]]:
    clock = [1000 * HOUR + 5.0]
    yield [Worker(services, batch, clock) for _ in range(n)], clock


def test_a_small_quota_is_counted_exactly_across_workers(services: Services, world: World) -> None:
    who = principal(world, limit=7)
    with workers(services, 2, batch=5) as (pair, _):
        answers = [pair[i % 2].take(who) for i in range(20)]
    # Below twice the batch from the start: every request up to the limit is counted in the
    # database, in order, whichever worker serves it.
    assert answers[:7] == [1, 2, 3, 4, 5, 6, 7]
    assert answers[7:] == [None] * 13
    # Once past the limit every slot answers 429: the workers reserve in batches again.
    assert sum(worker.writes for worker in pair) < 20
    assert stored_count(services, world) >= 20


def test_a_large_quota_is_never_exceeded_and_costs_a_write_per_batch(
    services: Services, world: World
) -> None:
    limit, batch = 1000, 50
    who = principal(world, limit)
    randomly = random.Random(7)
    with workers(services, 3, batch) as (trio, _):
        answers = [randomly.choice(trio).take(who) for _ in range(1500)]
    admitted = [slot for slot in answers if slot is not None]
    # Every worker keeps getting requests, so no reserved slot is left over: exactly the quota.
    assert sorted(admitted) == list(range(1, limit + 1))
    writes = sum(worker.writes for worker in trio)
    # Far from the limit one write per batch; exact steps only in the last 2 x batch x workers.
    assert writes < limit / batch + 2 * batch * len(trio) + 500 / batch + 10
    assert writes < 500


def test_slots_a_worker_holds_can_refuse_early_but_never_overshoot(
    services: Services, world: World
) -> None:
    limit, batch = 300, 50
    who = principal(world, limit)
    with workers(services, 2, batch) as ((idle, busy), _):
        assert idle.take(who) == 1  # the first request of a window is an exact step
        assert idle.take(who) == 2  # ...then it reserves 3..51 for itself
        answers = [busy.take(who) for _ in range(400)]
        admitted = [slot for slot in answers if slot is not None]
        # The idle worker's 49 unused slots count as used: at most one batch refused early.
        assert len(admitted) == limit - 51
        assert max(admitted) <= limit
        # They are still valid slots for the worker that holds them.
        assert [idle.take(who) for _ in range(49)] == list(range(3, 52))
        assert idle.take(who) is None


def test_concurrent_requests_of_one_worker_get_distinct_slots(
    services: Services, world: World
) -> None:
    who = principal(world, limit=20_000)  # a thousandth of it is the batch of 20
    with workers(services, 1, batch=20) as ((worker,), _):
        slots: list[int | None] = []
        lock = threading.Lock()

        def run() -> None:
            mine = [worker.take(who) for _ in range(60)]
            with lock:
                slots.extend(mine)

        threads = [threading.Thread(target=run) for _ in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
    assert None not in slots
    assert len(set(slots)) == len(slots) == 360
    # Concurrent reservations wait for each other: at most one batch is left unused.
    assert stored_count(services, world) - 360 < 20


def test_a_new_hour_starts_a_new_count(services: Services, world: World) -> None:
    who = principal(world, limit=10**6)
    with workers(services, 1, batch=10) as ((worker,), clock):
        assert [worker.take(who) for _ in range(5)] == [1, 2, 3, 4, 5]
        clock[0] += HOUR
        # The reservation of the old window is dropped; the new window counts from 1.
        assert [worker.take(who) for _ in range(3)] == [1, 2, 3]
    with services.database.read() as session:
        windows = list(session.scalars(select(RateCounter.window_start)))
    assert windows == [int(clock[0] - clock[0] % HOUR)]  # the old window was pruned


def test_a_high_quota_is_reserved_a_thousandth_at_a_time(services: Services, world: World) -> None:
    who = principal(world, limit=200_000)
    with workers(services, 1, batch=5) as ((worker,), _):
        assert [worker.take(who) for _ in range(401)] == list(range(1, 402))
        # One exact step, then reservations of 200 slots (a thousandth), not of 5.
        assert worker.writes == 3
    assert stored_count(services, world) == 1 + 200 + 200
