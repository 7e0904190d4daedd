"""End to end: real baresip phones, 101 calls 102 through the PBX, the PBX's call events reach a
real HTTP receiver through the outbox — each extension's events in order, signed, and the
client's phone_events for both extensions."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from callgate.events.delivery import start_delivery
from callgate.events.signing import verify
from callgate.events.sink import OutboxSink
from callgate.services import Services
from tests.pbx.baresip import AVAILABLE
from tests.pbx.phones import PhoneSpec, make_tones, pbx_with_phones
from tests.support.factories import World
from tests.webhooks.helpers import add_handler, deliveries, fast
from tests.webhooks.receiver import Receiver, wait_until_async

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
