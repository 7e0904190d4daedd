"""Durability: 1000 queued events, a slow receiver, the delivering process killed with SIGKILL
mid-delivery and started again: every event arrives at least once, in order per call. Also: a
sink writes what is queued when stopped, a stopped worker gives its leases back, and two
workers on one database never send the same delivery twice."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from callgate.calls.live import CallEvent
from callgate.config import Settings
from callgate.events.delivery import DeliveryWorker
from callgate.events.models import EventType
from callgate.events.signing import verify
from callgate.events.sink import OutboxSink
from callgate.services import Services
from tests.support.factories import World
from tests.webhooks.helpers import add_handler, deliveries, event, fast
from tests.webhooks.receiver import Receiver, Reply, wait_until, wait_until_async

EVENTS = 1000
ORDER = [EventType.DIAL_IN, EventType.ANSWER, EventType.HANGUP, EventType.DIAL_OUT]


def _queue(services: Services, settings: Settings, events: list[CallEvent]) -> None:
    async def main() -> None:
        sink = OutboxSink(services.database, settings)
        await sink.start()
        for raised in events:
            sink.emit(raised)
        await sink.stop()
        assert sink.written == len(events)

    asyncio.run(asyncio.wait_for(main(), 60))


@contextmanager
def deliver_process(
    settings: Settings, tmp_path: Path, name: str
) -> Iterator[subprocess.Popen[bytes]]:
    env = {
        **os.environ,
        "CALLGATE_DATABASE_URL": settings.effective_database_url,
        "CALLGATE_DATA_DIR": str(tmp_path / "data"),
        "CALLGATE_WEBHOOK_ALLOW_PRIVATE": "true",
        "CALLGATE_WEBHOOK_CONCURRENCY": "4",
        "CALLGATE_WEBHOOK_TIMEOUT": "2",
        "CALLGATE_WEBHOOK_CONNECT_TIMEOUT": "1",
        "CALLGATE_WEBHOOK_RETRY_BASE": "0.1",
        "CALLGATE_WEBHOOK_POLL_INTERVAL": "0.2",
    }
    log = open(tmp_path / f"{name}.log", "wb")  # noqa: SIM115 - closed below
    process = subprocess.Popen(
        [sys.executable, "-m", "callgate", "webhooks", "deliver", "--log-level", "warning"],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        yield process
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=10)
        log.close()


@pytest.mark.slow
def test_a_killed_delivery_process_loses_nothing(
    services: Services, world: World, tmp_path: Path
) -> None:
    settings = services.settings
    with Receiver(lambda r: Reply(status=200, delay=0.02)) as receiver:
        _, secret = add_handler(services, receiver.url("/crm"), extension=world.ext101)
        for kind in ORDER[1:]:
            add_handler(services, receiver.url("/crm"), extension=world.ext101, event_type=kind)
        raised = [
            event(world.ext101, ORDER[i % 4], call_id=f"call-{i // 4}") for i in range(EVENTS)
        ]
        _queue(services, settings, raised)
        assert len(deliveries(services)) == EVENTS

        with deliver_process(settings, tmp_path, "first") as first:
            wait_until(lambda: len(receiver.received) >= 150, 60, "150 deliveries")
            first.send_signal(signal.SIGKILL)
            first.wait(timeout=10)
        at_kill = len(receiver.event_ids())
        assert at_kill < EVENTS, "the process was not killed mid-delivery"

        with deliver_process(settings, tmp_path, "second") as second:
            wait_until(lambda: len(receiver.event_ids()) == EVENTS, 120, "every event")
            second.send_signal(signal.SIGTERM)
            assert second.wait(timeout=20) == 0
        received = receiver.requests()
    assert receiver.event_ids() == {e.event_id for e in raised}
    assert all(row.state == "delivered" for row in deliveries(services))
    # At least once: duplicates only of what was in flight at the kill (4 at most).
    assert len(received) - EVENTS <= 4
    # In order per call, counting each event's first arrival.
    firsts: dict[str, list[str]] = {}
    seen: set[str] = set()
    for request in received:
        if request.event_id not in seen:
            seen.add(request.event_id)
            firsts.setdefault(request.fields["CallID"], []).append(request.fields["EventType"])
    assert all(kinds == [str(k) for k in ORDER] for kinds in firsts.values())
    dial_in = next(r for r in received if r.fields["EventType"] == "dial-in")
    assert verify(secret, dial_in.headers["x-callgate-signature"], dial_in.body.decode())


def test_stopping_the_sink_writes_everything_queued(services: Services, world: World) -> None:
    add_handler(services, "http://127.0.0.1:9/never", extension=world.ext101)
    raised = [event(world.ext101) for _ in range(1200)]  # more than one batch

    async def main() -> None:
        sink = OutboxSink(services.database, services.settings)
        for item in raised[:10]:
            sink.emit(item)  # before start: kept
        await sink.start()
        for item in raised[10:]:
            sink.emit(item)
        await sink.stop()

    asyncio.run(asyncio.wait_for(main(), 60))
    assert [row.event_id for row in deliveries(services)] == [e.event_id for e in raised]


def test_a_stopped_worker_gives_back_its_leases(services: Services, world: World) -> None:
    settings = fast(services.settings, webhook_timeout=5.0)
    with Receiver(lambda r: Reply(status=200, delay=30 if r.index == 0 else 0)) as receiver:
        add_handler(services, receiver.url(), extension=world.ext101)
        _queue(services, settings, [event(world.ext101)])

        async def main() -> None:
            first = DeliveryWorker(settings, services.database)
            await first.start()
            await wait_until_async(lambda: len(receiver.received) == 1, 10, "the request")
            await first.stop()  # the request is cut short: not recorded, lease released
            second = DeliveryWorker(settings, services.database)
            await second.start()
            try:
                await wait_until_async(lambda: second.attempts == 1, 10, "the resend")
            finally:
                await second.stop()

        asyncio.run(asyncio.wait_for(main(), 60))
        assert len(receiver.received) == 2
    assert deliveries(services)[0].state == "delivered"


def test_two_workers_never_send_the_same_delivery(services: Services, world: World) -> None:
    settings = fast(services.settings, webhook_concurrency=8)
    with Receiver(lambda r: Reply(status=200, delay=0.005)) as receiver:
        add_handler(services, receiver.url(), extension=world.ext101)
        raised = [event(world.ext101) for _ in range(300)]
        _queue(services, settings, raised)

        async def main() -> None:
            workers = [DeliveryWorker(settings, services.database) for _ in range(2)]
            for worker in workers:
                await worker.start()
            try:
                await wait_until_async(
                    lambda: sum(w.attempts for w in workers) >= len(raised), 30, "all sent"
                )
            finally:
                for worker in workers:
                    await worker.stop()
            assert all(worker.attempts > 0 for worker in workers)

        asyncio.run(asyncio.wait_for(main(), 60))
        ids = [r.event_id for r in receiver.received]
    assert sorted(ids) == sorted(e.event_id for e in raised)  # each exactly once
