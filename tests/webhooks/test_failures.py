"""What the worker does when a receiver fails: retries with the same event id, 410 disables the
handler, other 4xx and redirects end a delivery, a hanging receiver is timed out, Retry-After is
honoured, private destinations are refused, and an event is given up when too old."""

from __future__ import annotations

import asyncio
import datetime as dt

import pytest

from callgate.common.errors import InvalidInput
from callgate.events.models import EventType, HandlerStatus
from callgate.events.repository import HandlerOwner
from callgate.events.service import EventHandlerService
from callgate.services import Services
from tests.support.factories import World
from tests.webhooks.helpers import add_handler, attempts, deliveries, delivering, event, fast
from tests.webhooks.receiver import HANG, Received, Receiver, Reply, wait_until_async


def test_500_twice_then_200_makes_three_requests_with_the_same_event_id(
    services: Services, world: World
) -> None:
    settings = fast(services.settings)
    with Receiver(lambda r: 500 if r.index < 2 else 200) as receiver:
        add_handler(services, receiver.url(), extension=world.ext101)
        raised = event(world.ext101)

        async def main() -> None:
            async with delivering(services, settings) as running:
                running.sink.emit(raised)
                await wait_until_async(lambda: len(receiver.received) == 3, 10, "3 requests")
                await wait_until_async(lambda: running.worker.attempts == 3, 10, "3 recorded")

        asyncio.run(asyncio.wait_for(main(), 30))
        signatures = {r.headers["x-callgate-signature"] for r in receiver.received}
        assert [r.event_id for r in receiver.received] == [raised.event_id] * 3
        assert [r.body for r in receiver.received] == [receiver.received[0].body] * 3
    assert len(signatures) >= 1  # re-signed per attempt; same second gives the same one
    [row] = deliveries(services)
    assert (row.state, row.attempts, row.last_status) == ("delivered", 3, 200)
    log = attempts(services)
    assert [(a.number, a.status_code, a.error) for a in log] == [
        (1, 500, None),
        (2, 500, None),
        (3, 200, None),
    ]
    assert log[0].next_retry_at is not None and log[1].next_retry_at is not None
    assert log[2].next_retry_at is None
    # The retry waited at least half its backoff ("equal jitter"): base 0.05 s, then 0.1 s.
    assert log[0].next_retry_at - log[0].attempted_at >= dt.timedelta(seconds=0.025)


def test_410_disables_the_handler_and_ends_its_pending_deliveries(
    services: Services, world: World
) -> None:
    settings = fast(services.settings, webhook_concurrency=1)
    with Receiver(lambda r: Reply(status=410, delay=0.05)) as receiver:
        handler_id, _ = add_handler(services, receiver.url(), extension=world.ext101)
        # The same call: the second event waits behind the first, then finds the handler gone.
        call = "call-410"

        async def main() -> None:
            async with delivering(services, settings) as running:
                running.sink.emit(event(world.ext101, call_id=call))
                running.sink.emit(event(world.ext101, call_id=call))
                await running.sink.drained()
                await wait_until_async(
                    lambda: [r.state for r in deliveries(services)] == ["failed"] * 2, 10, "the 410"
                )
                running.sink.emit(event(world.ext101))  # after: matches no handler
                await running.sink.drained()

        asyncio.run(asyncio.wait_for(main(), 30))
        assert len(receiver.received) == 1
    owner = HandlerOwner(world.client.id, world.ext101.id)
    assert services.events.get(owner, handler_id).status == HandlerStatus.DISABLED
    rows = deliveries(services)
    assert [(r.state, r.last_status) for r in rows] == [("failed", 410), ("failed", None)]
    assert rows[1].last_error == "handler disabled (410 Gone)"
    # Changing the handler makes it active again.
    services.events.update(owner, handler_id, url=receiver.url("/new"))
    assert services.events.get(owner, handler_id).status == HandlerStatus.ACTIVE


@pytest.mark.parametrize(
    ("reply", "status"),
    [(Reply(status=404), 404), (Reply(status=302, headers={"location": "/elsewhere"}), 302)],
)
def test_other_4xx_and_redirects_end_the_delivery_after_one_request(
    services: Services, world: World, reply: Reply, status: int
) -> None:
    settings = fast(services.settings)
    with Receiver(lambda r: reply) as receiver:
        add_handler(services, receiver.url(), extension=world.ext101)

        async def main() -> None:
            async with delivering(services, settings) as running:
                running.sink.emit(event(world.ext101))
                await wait_until_async(lambda: running.worker.attempts == 1, 10, "the attempt")

        asyncio.run(asyncio.wait_for(main(), 30))
        assert [r.path for r in receiver.received] == ["/hook"]  # the redirect is not followed
    [row] = deliveries(services)
    assert (row.state, row.attempts, row.last_status) == ("failed", 1, status)


def test_a_hanging_receiver_is_timed_out_and_retried(services: Services, world: World) -> None:
    settings = fast(services.settings, webhook_timeout=0.5)
    with Receiver(lambda r: HANG if r.index == 0 else 200) as receiver:
        add_handler(services, receiver.url(), extension=world.ext101)

        async def main() -> None:
            async with delivering(services, settings) as running:
                running.sink.emit(event(world.ext101))
                await wait_until_async(lambda: running.worker.attempts == 2, 10, "2 attempts")

        asyncio.run(asyncio.wait_for(main(), 30))
    first, second = attempts(services)
    assert (first.status_code, first.error) == (None, "timeout")
    assert first.duration_ms < 5000 and first.next_retry_at is not None
    assert second.status_code == 200
    assert deliveries(services)[0].state == "delivered"


def test_429_waits_at_least_retry_after(services: Services, world: World) -> None:
    settings = fast(services.settings)

    def respond(request: Received) -> Reply:
        if request.index == 0:
            return Reply(status=429, headers={"retry-after": "1"})
        return Reply(status=200)

    with Receiver(respond) as receiver:
        add_handler(services, receiver.url(), extension=world.ext101)

        async def main() -> None:
            async with delivering(services, settings) as running:
                running.sink.emit(event(world.ext101))
                await wait_until_async(lambda: len(receiver.received) == 2, 10, "the retry")

        asyncio.run(asyncio.wait_for(main(), 30))
        first, second = receiver.received
    assert second.at - first.at >= 0.9


def test_a_private_destination_is_refused_at_creation_and_at_delivery(
    services: Services, world: World
) -> None:
    strict = services.settings.model_copy(update={"webhook_allow_private": False})
    with pytest.raises(InvalidInput):
        EventHandlerService(services.database, strict).create(
            client_id=world.client.id,
            extension_id=world.ext101.id,
            url="http://10.1.2.3/hook",
            method="POST",
            event_type="dial-in",
        )
    with Receiver() as receiver:
        # Allowed when the handler was made (or a host name that resolves to loopback later).
        add_handler(services, f"http://localhost:{receiver.port}/hook", extension=world.ext101)

        async def main() -> None:
            async with delivering(services, fast(strict)) as running:
                running.sink.emit(event(world.ext101))
                await wait_until_async(lambda: running.worker.attempts == 1, 10, "the attempt")

        asyncio.run(asyncio.wait_for(main(), 30))
        assert receiver.received == []
    [attempt] = attempts(services)
    assert attempt.status_code is None
    assert attempt.error is not None and attempt.error.startswith("refused: ")
    assert "loopback or private" in attempt.error
    assert deliveries(services)[0].state == "failed"


def test_an_event_is_given_up_once_older_than_the_maximum_age(
    services: Services, world: World
) -> None:
    settings = fast(services.settings, webhook_max_age=1, webhook_retry_cap=0.3)
    with Receiver(lambda r: 503) as receiver:
        add_handler(services, receiver.url(), extension=world.ext101)

        async def main() -> None:
            async with delivering(services, settings) as running:
                running.sink.emit(event(world.ext101))
                await running.sink.drained()
                await wait_until_async(
                    lambda: deliveries(services)[0].state == "failed", 15, "giving up"
                )

        asyncio.run(asyncio.wait_for(main(), 30))
        count = len(receiver.received)
    [row] = deliveries(services)
    assert row.attempts == count >= 3
    assert attempts(services)[-1].next_retry_at is None


def test_a_connection_refused_is_retried(services: Services, world: World) -> None:
    settings = fast(services.settings)
    with Receiver() as receiver:
        port = receiver.port
    add_handler(services, f"http://127.0.0.1:{port}/gone", extension=world.ext101)

    async def main() -> None:
        async with delivering(services, settings) as running:
            running.sink.emit(event(world.ext101, EventType.DIAL_IN))
            await wait_until_async(lambda: running.worker.attempts >= 2, 10, "2 attempts")

    asyncio.run(asyncio.wait_for(main(), 30))
    first = attempts(services)[0]
    assert (first.status_code, first.error) == (None, "connection failed: Connection refused")
    assert first.next_retry_at is not None


def test_a_handler_deleted_while_its_request_is_in_flight_stops_nothing_else(
    services: Services, world: World
) -> None:
    settings = fast(services.settings)
    with Receiver(lambda r: Reply(status=200, delay=0.5 if r.path == "/doomed" else 0)) as receiver:
        doomed, _ = add_handler(services, receiver.url("/doomed"), extension=world.ext101)
        add_handler(services, receiver.url("/kept"), extension=world.ext102)

        async def main() -> None:
            async with delivering(services, settings) as running:
                running.sink.emit(event(world.ext101))
                await wait_until_async(lambda: len(receiver.received) == 1, 10, "the request")
                services.events.delete(HandlerOwner(world.client.id, world.ext101.id), doomed)
                # Its answer arrives for a delivery that is gone.
                await wait_until_async(lambda: running.worker.attempts == 1, 10, "the answer")
                running.sink.emit(event(world.ext102))
                await wait_until_async(lambda: running.worker.attempts == 2, 10, "both")

        asyncio.run(asyncio.wait_for(main(), 30))
        assert [r.path for r in receiver.received] == ["/doomed", "/kept"]
    assert [row.state for row in deliveries(services)] == ["delivered"]
    assert [a.status_code for a in attempts(services)] == [200]
