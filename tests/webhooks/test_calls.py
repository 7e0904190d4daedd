"""End to end: real baresip phones on the PBX, the PBX's call events reach a real HTTP receiver
through the outbox (sink, then the delivery worker).

* 101 calls 102, answered: each extension's events in order, signed, and the client's
  phone_events for both extensions;
* a callback by the engine's ``originate``: every event carries the call's ``CallBackID`` and
  ``CallAPIID``;
* busy and no answer: the hangup ``CallStatus`` of docs/calls.md's outcome table, no answer event.

In the last three every extension has a handler of each of the four call event types (101's by
POST, 102's by GET), so an event the engine should not raise would show up as an extra delivery.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path

import pytest

from callgate.calls.live import CallbackRequest
from callgate.calls.models import CallRecord
from callgate.calls.repository import CallFilter
from callgate.events.delivery import start_delivery
from callgate.events.signing import verify
from callgate.events.sink import OutboxSink
from callgate.services import Services
from tests.pbx.baresip import AVAILABLE
from tests.pbx.phones import PhoneSpec, Rig, make_tones, pbx_with_phones
from tests.pbx.test_calls_basic import until_no_calls
from tests.pbx.test_calls_outcomes import closed_with, set_rule
from tests.support.factories import World
from tests.webhooks.helpers import add_handler, deliveries, delivering, fast
from tests.webhooks.receiver import Received, Receiver, wait_until_async

pytestmark = pytest.mark.skipif(not AVAILABLE, reason="needs Debian's baresip")


def test_a_call_between_two_phones_reaches_the_handlers_in_order(
    services: Services, world: World, tmp_path: Path
) -> None:
    settings = fast(services.settings)
    tones = make_tones(tmp_path / "tones")
    specs = [PhoneSpec(world.ext101, tones.a440), PhoneSpec(world.ext102, tones.a1000)]
    with Receiver() as receiver:
        secrets = {}
        for kind in ("dial-out", "answer", "hangup"):
            _, secrets[("101", kind)] = add_handler(
                services, receiver.url("/101"), extension=world.ext101, event_type=kind
            )
        for kind in ("dial-in", "answer", "hangup"):
            _, secrets[("102", kind)] = add_handler(
                services, receiver.url("/102"), extension=world.ext102, event_type=kind
            )
        add_handler(
            services,
            receiver.url("/phones"),
            client_id=world.client.id,
            event_type="hangup",
            method="GET",
        )

        async def main() -> None:
            sink = OutboxSink(services.database, settings)
            await sink.start()
            delivery = await start_delivery(settings, services.database)
            try:
                async with pbx_with_phones(
                    services, specs, tmp_path, pbx_options={"events": sink}
                ) as rig:
                    caller, callee = rig["101"], rig["102"]
                    await caller.dial("102")
                    await callee.wait_event("CALL_ESTABLISHED", limit=15)
                    await caller.wait_event("CALL_ESTABLISHED", limit=15)
                    await asyncio.sleep(0.5)
                    await caller.hangup()
                    await callee.wait_event("CALL_CLOSED", limit=10)
                await wait_until_async(lambda: len(receiver.received) == 8, 20, "8 requests")
            finally:
                await sink.stop()
                await delivery.stop()

        asyncio.run(asyncio.wait_for(main(), 120))
        received = receiver.requests()

    def kinds(path: str) -> list[str]:
        return [r.fields["EventType"] for r in received if r.path == path]

    assert kinds("/101") == ["dial-out", "answer", "hangup"]
    assert kinds("/102") == ["dial-in", "answer", "hangup"]
    assert kinds("/phones") == ["hangup", "hangup"]
    assert len({r.fields["CallID"] for r in received}) == 1
    # Six events; the phone_events requests carry the ids of the two hangup events.
    assert len({r.event_id for r in received}) == 6
    phone_ids = {r.event_id for r in received if r.path == "/phones"}
    assert phone_ids == {
        r.event_id for r in received if r.path != "/phones" and r.fields["EventType"] == "hangup"
    }
    for request in received:
        if request.path == "/phones":
            continue
        number = request.path.strip("/")
        secret = secrets[(number, request.fields["EventType"])]
        assert verify(secret, request.headers["x-callgate-signature"], request.body.decode())
    dial_in = next(r for r in received if r.fields["EventType"] == "dial-in")
    assert dial_in.fields["CallStatus"] == "CALLING" and dial_in.fields["CallFlow"] == "in"
    assert dial_in.fields["CallerExtension"] == "101"
    assert dial_in.fields["CalledExtensionID"] == str(world.ext102.id)
    hangups = [r for r in received if r.fields["EventType"] == "hangup"]
    assert all(r.fields["CallStatus"] == "ANSWER" for r in hangups)
    assert all(int(r.fields["Duration"]) > 0 for r in hangups)
    assert all(row.state == "delivered" for row in deliveries(services))


# --- callback, busy, no answer ---------------------------------------------------------------

EVENT_TYPES = ("dial-in", "dial-out", "answer", "hangup")
METHODS = {"101": "POST", "102": "GET"}
TEST_LIMIT = 90  # seconds for a whole test


def every_handler(
    services: Services, world: World, receiver: Receiver
) -> dict[tuple[str, str], str]:
    """A handler of every event type on 101 (POST to /101) and 102 (GET to /102): the secrets
    by (number, event type)."""
    secrets = {}
    for extension in (world.ext101, world.ext102):
        number = extension.name
        for kind in EVENT_TYPES:
            _, secrets[(number, kind)] = add_handler(
                services,
                receiver.url(f"/{number}"),
                extension=extension,
                event_type=kind,
                method=METHODS[number],
            )
    return secrets


def run_call(
    services: Services,
    specs: Sequence[PhoneSpec],
    tmp_path: Path,
    receiver: Receiver,
    scenario: Callable[[Rig], Awaitable[None]],
    expected: int,
) -> None:
    """Run ``scenario`` on a PBX whose events go to the outbox, until the call is over, every
    event is stored and ``expected`` requests reached the receiver."""
    settings = fast(services.settings)

    async def main() -> None:
        async with delivering(services, settings) as running:
            async with pbx_with_phones(
                services, specs, tmp_path, pbx_options={"events": running.sink}
            ) as rig:
                await scenario(rig)
                await until_no_calls(rig.pbx)
            assert await running.sink.drained(10), "events not stored within 10 s"
            await wait_until_async(
                lambda: len(receiver.received) >= expected, 20, f"{expected} requests"
            )

    asyncio.run(asyncio.wait_for(main(), TEST_LIMIT))


def check_requests(
    services: Services, received: list[Received], secrets: dict[tuple[str, str], str]
) -> None:
    """Each request once, by its handler's method, signed with its handler's secret; every
    stored delivery delivered (none left over for an event that has not arrived)."""
    assert len({r.event_id for r in received}) == len(received)
    for request in received:
        number = request.path.strip("/")
        assert request.method == METHODS[number]
        payload = request.body.decode() if request.method == "POST" else request.query
        secret = secrets[(number, request.fields["EventType"])]
        assert verify(secret, request.headers["x-callgate-signature"], payload), request
    rows = deliveries(services)
    assert len(rows) == len(received)
    assert all(row.state == "delivered" for row in rows)


def kinds(received: list[Received], path: str) -> list[tuple[str, str]]:
    """(EventType, CallStatus) of the requests to ``path``, in arrival order."""
    return [(r.fields["EventType"], r.fields["CallStatus"]) for r in received if r.path == path]


def only_row(services: Services, world: World) -> CallRecord:
    page = services.calls.list(CallFilter(client_id=world.client.id), page=1, per_page=10)
    (row,) = page.items
    return row


def test_a_callback_carries_its_callback_id_to_both_extensions(
    services: Services, world: World, tmp_path: Path
) -> None:
    tones = make_tones(tmp_path / "tones")
    specs = [PhoneSpec(world.ext101, tones.a440), PhoneSpec(world.ext102, tones.a1000)]
    started: list[tuple[str, str]] = []
    with Receiver() as receiver:
        secrets = every_handler(services, world, receiver)

        async def scenario(rig: Rig) -> None:
            request = CallbackRequest(
                client_id=world.client.id,
                extension_id=world.ext101.id,
                src_num=["101"],
                dst_num="102",
            )
            originated = await rig.control.originate(request)
            started.append((originated.call_api_id, originated.call_id))
            await rig["101"].wait_event("CALL_ESTABLISHED", limit=15)
            await rig["102"].wait_event("CALL_ESTABLISHED", limit=15)
            await rig.live_call(world.client.id)  # bridged
            await rig.control.hangup(world.client.id, None, originated.call_api_id)
            await rig["101"].wait_event("CALL_CLOSED", limit=10)
            await rig["102"].wait_event("CALL_CLOSED", limit=10)

        run_call(services, specs, tmp_path, receiver, scenario, expected=6)
        received = receiver.requests()

    check_requests(services, received, secrets)
    assert kinds(received, "/101") == [
        ("dial-out", "CALLING"),
        ("answer", "ANSWER"),
        ("hangup", "ANSWER"),
    ]
    assert kinds(received, "/102") == [
        ("dial-in", "CALLING"),
        ("answer", "ANSWER"),
        ("hangup", "ANSWER"),
    ]
    ((call_api_id, call_id),) = started
    row = only_row(services, world)
    assert row.call_uuid == call_id and row.callback_id
    assert {r.fields.get("CallBackID") for r in received} == {row.callback_id}
    assert {r.fields["CallID"] for r in received} == {call_id}
    assert {r.fields["CallAPIID"] for r in received} == {call_api_id}
    assert {r.fields["CallFlow"] for r in received if r.path == "/101"} == {"out"}
    assert {r.fields["CallFlow"] for r in received if r.path == "/102"} == {"in"}
    hangups = [r for r in received if r.fields["EventType"] == "hangup"]
    assert all(int(r.fields["Duration"]) > 0 for r in hangups)


def test_a_busy_callee_gives_busy_hangups_and_no_answer_event(
    services: Services, world: World, tmp_path: Path
) -> None:
    tones = make_tones(tmp_path / "tones")
    specs = [
        PhoneSpec(world.ext101, tones.a440),
        PhoneSpec(world.ext102, tones.a1000, answermode="manual"),
    ]
    with Receiver() as receiver:
        secrets = every_handler(services, world, receiver)

        async def scenario(rig: Rig) -> None:
            await rig["101"].dial("102")
            await rig["102"].wait_event("CALL_INCOMING", limit=10)
            await rig["102"].hangup()  # rejects the incoming call: 486 Busy Here
            await closed_with(rig["101"], "486")

        run_call(services, specs, tmp_path, receiver, scenario, expected=4)
        received = receiver.requests()

    check_requests(services, received, secrets)
    assert kinds(received, "/101") == [("dial-out", "CALLING"), ("hangup", "BUSY")]
    assert kinds(received, "/102") == [("dial-in", "CALLING"), ("hangup", "BUSY")]
    assert len({r.fields["CallID"] for r in received}) == 1
    assert all("CallBackID" not in r.fields for r in received)
    assert only_row(services, world).result == "busy"


def test_an_unanswered_call_gives_noanswer_hangups_with_a_duration(
    services: Services, world: World, tmp_path: Path
) -> None:
    set_rule(services, world.ext102.id, ring_seconds=2)  # below the API's minimum of 5 s
    tones = make_tones(tmp_path / "tones")
    specs = [
        PhoneSpec(world.ext101, tones.a440),
        PhoneSpec(world.ext102, tones.a1000, answermode="manual"),
    ]
    with Receiver() as receiver:
        secrets = every_handler(services, world, receiver)

        async def scenario(rig: Rig) -> None:
            await rig["101"].dial("102")
            await rig["102"].wait_event("CALL_INCOMING", limit=10)
            await closed_with(rig["101"], "480", limit=10)
            await rig["102"].wait_event("CALL_CLOSED", limit=5)  # its ringing was cancelled

        run_call(services, specs, tmp_path, receiver, scenario, expected=4)
        received = receiver.requests()

    check_requests(services, received, secrets)
    assert kinds(received, "/101") == [("dial-out", "CALLING"), ("hangup", "NOANSWER")]
    assert kinds(received, "/102") == [("dial-in", "CALLING"), ("hangup", "NOANSWER")]
    assert len({r.fields["CallID"] for r in received}) == 1
    hangups = [r for r in received if r.fields["EventType"] == "hangup"]
    # from the start of the call, so at least the 2 s the callee rang
    assert all(int(r.fields["Duration"]) >= 1_900_000 for r in hangups)
    assert all("Duration" not in r.fields for r in received if r.fields["EventType"] != "hangup")
    assert only_row(services, world).result == "not answered"
