"""Call events reach a real HTTP receiver: fields, form encoding, signature, event id; which
handlers match; the events of one call reach one URL in order."""

from __future__ import annotations

import asyncio
import logging
import time
from urllib.parse import parse_qsl

import pytest

from callgate.events.models import EventType
from callgate.events.signing import verify
from callgate.identity.models import ExtensionType
from callgate.services import Services
from tests.support.factories import World
from tests.webhooks.helpers import add_handler, deliveries, delivering, event, fast
from tests.webhooks.receiver import Received, Receiver, Reply, wait_until_async


def test_a_post_event_arrives_signed_with_the_fields_of_spec_6(
    services: Services, world: World
) -> None:
    settings = fast(services.settings)
    with Receiver() as receiver:
        handler_id, secret = add_handler(services, receiver.url("/crm"), extension=world.ext101)
        raised = event(world.ext101, EventType.DIAL_IN, callback_id="cb-7")

        async def main() -> None:
            async with delivering(services, settings) as running:
                running.sink.emit(raised)
                await wait_until_async(lambda: len(receiver.received) == 1, 10, "the request")

        asyncio.run(asyncio.wait_for(main(), 30))
        [request] = receiver.received
    assert (request.method, request.path) == ("POST", "/crm")
    assert request.headers["content-type"] == "application/x-www-form-urlencoded"
    assert request.event_id == raised.event_id
    header = request.headers["x-callgate-signature"]
    assert verify(secret, header, request.body.decode())
    assert not verify("another secret", header, request.body.decode())
    timestamp = int(header.split(",")[0].removeprefix("t="))
    assert abs(time.time() - timestamp) < 60
    assert request.fields == raised.fields()
    assert request.fields["EventType"] == "dial-in"
    assert request.fields["CallStatus"] == "CALLING"
    assert request.fields["CallBackID"] == "cb-7"
    [row] = deliveries(services)
    assert (row.state, row.attempts, row.last_status, row.handler_id) == (
        "delivered",
        1,
        200,
        handler_id,
    )


def test_a_get_event_carries_the_fields_in_the_query_after_the_urls_own(
    services: Services, world: World, caplog: pytest.LogCaptureFixture
) -> None:
    settings = fast(services.settings)
    with Receiver() as receiver:
        handler_id, secret = add_handler(
            services,
            receiver.url("/hook") + "?token=abc%20def&x=1",
            extension=world.ext101,
            event_type="hangup",
            method="GET",
        )
        raised = event(world.ext101, EventType.HANGUP, duration_us=4_500_000, rec_id="rec-1")

        async def main() -> None:
            async with delivering(services, settings) as running:
                running.sink.emit(raised)
                await wait_until_async(lambda: len(receiver.received) == 1, 10, "the request")

        with caplog.at_level(logging.INFO, logger="callgate.webhooks"):
            asyncio.run(asyncio.wait_for(main(), 30))
        [request] = receiver.received
    # One log line per attempt, without the secret or the URL's query.
    [line] = [r.getMessage() for r in caplog.records if r.name == "callgate.webhooks"]
    url = receiver.url("/hook")
    prefix = f"webhook event {raised.event_id} handler {handler_id} GET {url} -> 200 in "
    assert line.startswith(prefix) and line.endswith(" ms"), line
    assert secret not in line and "token" not in line
    assert request.method == "GET" and request.body == b""
    assert request.query.startswith("token=abc%20def&x=1&")
    assert verify(secret, request.headers["x-callgate-signature"], request.query)
    fields = dict(parse_qsl(request.query, keep_blank_values=True))
    assert fields["token"] == "abc def"
    assert {k: fields[k] for k in raised.fields()} == raised.fields()
    assert (fields["Duration"], fields["RecID"]) == ("4500000", "rec-1")


def test_handlers_match_by_extension_event_type_and_phone_events(
    services: Services, world: World
) -> None:
    settings = fast(services.settings)
    fax = services.identity.create_extension(world.client.id, "150", type_=ExtensionType.FAX)
    with Receiver() as receiver:
        add_handler(services, receiver.url("/ext101-dial-in"), extension=world.ext101)
        add_handler(
            services, receiver.url("/ext101-hangup"), extension=world.ext101, event_type="hangup"
        )
        add_handler(services, receiver.url("/ext102-dial-in"), extension=world.ext102)
        add_handler(services, receiver.url("/phones"), client_id=world.client.id)
        add_handler(services, receiver.url("/other-client"), client_id=world.other_client.id)
        add_handler(services, receiver.url("/fax"), extension=fax)

        async def main() -> None:
            async with delivering(services, settings) as running:
                running.sink.emit(event(world.ext101, EventType.DIAL_IN))  # ext101 + phones
                running.sink.emit(event(fax, EventType.DIAL_IN))  # fax only: not a phone
                await running.sink.drained()
                await wait_until_async(lambda: running.worker.attempts == 3, 10, "3 attempts")

        asyncio.run(asyncio.wait_for(main(), 30))
        paths = sorted(r.path for r in receiver.received)
    assert paths == ["/ext101-dial-in", "/fax", "/phones"]
    assert len(deliveries(services)) == 3  # nothing else is to come


def test_events_of_one_call_reach_one_url_in_order_and_a_failing_url_holds_up_no_other(
    services: Services, world: World
) -> None:
    settings = fast(services.settings, webhook_retry_base=0.2, webhook_retry_cap=0.4)
    order = [EventType.DIAL_IN, EventType.ANSWER, EventType.HANGUP]

    def respond(request: Received) -> Reply:
        # The CRM's first request fails twice: the call's later events must wait for it.
        if request.path == "/crm" and request.index < 2:
            return Reply(status=503)
        return Reply(status=200, delay=0.01)

    with Receiver(respond) as receiver:
        for kind in order:  # one URL, a handler per event type, as CRMs usually set it up
            add_handler(services, receiver.url("/crm"), extension=world.ext101, event_type=kind)
        add_handler(services, receiver.url("/other"), extension=world.ext101, event_type="hangup")
        calls = ["call-a", "call-b"]

        async def main() -> None:
            async with delivering(services, settings) as running:
                for call_id in calls:
                    for kind in order:
                        running.sink.emit(event(world.ext101, kind, call_id=call_id))
                await wait_until_async(
                    lambda: len(receiver.requests("/crm")) == 8, 15, "every CRM request"
                )

        asyncio.run(asyncio.wait_for(main(), 30))
        crm = receiver.requests("/crm")
        other = receiver.requests("/other")
    for call_id in calls:
        seen = [r.fields["EventType"] for r in crm if r.fields["CallID"] == call_id]
        firsts = list(dict.fromkeys(seen))
        assert firsts == [str(kind) for kind in order], seen
    # The CRM's first two requests failed (each call's dial-in, retried later) ...
    assert [r.fields["EventType"] for r in crm[:2]] == ["dial-in", "dial-in"]
    # ... and /other got both hangups before the CRM's first success: it was not held up.
    assert len(other) == 2
    assert max(r.at for r in other) < min(r.at for r in crm if r.index >= 2)
    assert all(row.state == "delivered" for row in deliveries(services))
