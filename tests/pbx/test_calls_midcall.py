"""What phones do during a call, with real baresip phones: hold and resume (re-INVITE with
sendonly, music on hold to the other side), blind transfer (REFER), and the engine's callback
(several source phones, first answer wins, a duration limit)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import pytest

from callgate.calls.live import CallbackRequest, CallEvent, CallStatus
from callgate.calls.repository import CallFilter
from callgate.events.models import EventType
from callgate.pbx.service import RunningPbx
from callgate.services import Services
from tests.pbx.baresip import AVAILABLE
from tests.pbx.phones import (
    PhoneSpec,
    ensure_extension,
    make_tones,
    pbx_with_phones,
    write_tone,
)
from tests.pbx.test_calls_basic import events_of, run, until_no_calls
from tests.support.factories import World

pytestmark = pytest.mark.skipif(not AVAILABLE, reason="needs Debian's baresip")

MOH_HZ = 425  # settings.moh_tone_hz default


def sent_to_caller(pbx: RunningPbx) -> int:
    """RTP packets the relay sent to the caller's phone so far (its leg is named ``…/a``)."""
    assert pbx.relay is not None
    return sum(c["packets_out"] for name, c in pbx.relay.counters().items() if "/a:" in name)


async def until(condition: Callable[[], bool], limit: float = 5.0) -> None:
    loop = asyncio.get_running_loop()
    end = loop.time() + limit
    while not condition():
        if loop.time() > end:
            raise TimeoutError("condition not met in time")
        await asyncio.sleep(0.05)  # polling relay counters


def test_hold_plays_music_and_resume_reconnects(
    services: Services, world: World, tmp_path: Path
) -> None:
    tones = make_tones(tmp_path / "tones")
    # the caller plays 1000 Hz, far from the 425 Hz music (440 Hz would pass for it)
    specs = [PhoneSpec(world.ext101, tones.a1000), PhoneSpec(world.ext102, tones.a440)]

    async def main() -> None:
        async with pbx_with_phones(services, specs, tmp_path) as rig:
            caller, callee = rig["101"], rig["102"]
            engine = rig.pbx.engine
            assert engine is not None
            await caller.dial("102")
            await caller.wait_event("CALL_ESTABLISHED", limit=15)
            assert await callee.hears(1000)
            await caller.hold()  # re-INVITE a=sendonly
            assert await callee.hears(MOH_HZ, tolerance=8), await callee.heard()
            (live,) = engine.live_calls()
            assert live.state == "held"
            muted = sent_to_caller(rig.pbx)
            await caller.resume()  # re-INVITE a=sendrecv
            assert await callee.hears(1000), await callee.heard()
            # baresip 1.0's sndfile closes its "received" recording when the call is held and
            # does not reopen it: count what the relay sends the caller instead
            await until(lambda: sent_to_caller(rig.pbx) >= muted + 25)
            assert engine.live_calls()[0].state == "answered"
            await caller.hangup()
            await callee.wait_event("CALL_CLOSED", limit=10)
            await until_no_calls(rig.pbx)

    run(main)
    page = services.calls.list(CallFilter(client_id=world.client.id), page=1, per_page=10)
    assert [row.result for row in page.items] == ["answered"]


@pytest.mark.parametrize("transferor", ["callee", "caller"])
def test_blind_transfer_by_refer(
    services: Services, world: World, tmp_path: Path, transferor: str
) -> None:
    ext103 = ensure_extension(services, world.client.id, "103")
    tones = make_tones(tmp_path / "tones")
    tone_700 = write_tone(tmp_path / "tones" / "tone_700.wav", 700)
    specs = [
        PhoneSpec(world.ext101, tones.a440),
        PhoneSpec(world.ext102, tones.a1000),
        PhoneSpec(ext103, tone_700),
    ]
    events: list[CallEvent] = []
    # who leaves, who stays (and the tone the staying phone plays)
    leaves, stays, stays_hz = (
        ("102", "101", 440) if transferor == "callee" else ("101", "102", 1000)
    )
    ids = {"101": world.ext101.id, "102": world.ext102.id, "103": ext103.id}

    async def main() -> None:
        async with pbx_with_phones(services, specs, tmp_path) as rig:
            engine = rig.pbx.engine
            assert engine is not None
            await rig["101"].dial("102")
            await rig["102"].wait_event("CALL_ESTABLISHED", limit=15)
            # the call is under way before the transfer (the caller hears the callee)
            assert await rig["101"].hears(1000), await rig["101"].heard()
            (before,) = engine.live_calls()
            await rig[leaves].transfer("103")  # REFER: hands its peer over to 103
            await rig[leaves].wait_event("CALL_CLOSED", limit=10)
            await rig["103"].wait_event("CALL_ESTABLISHED", limit=10)
            assert await rig["103"].hears(stays_hz), await rig["103"].heard()
            assert await rig[stays].hears(700), await rig[stays].heard()
            (after,) = engine.live_calls()
            assert after.call_id == before.call_id and after.call_api_id == before.call_api_id
            assert set(after.extension_ids) == {ids[stays], ext103.id}
            await rig[stays].hangup()
            await rig["103"].wait_event("CALL_CLOSED", limit=10)
            await until_no_calls(rig.pbx)
            events.extend(events_of(rig.pbx))

    run(main)
    kinds = [(e.event_type, e.extension_id, e.call_status) for e in events]
    assert kinds == [
        (EventType.DIAL_OUT, world.ext101.id, CallStatus.CALLING),
        (EventType.DIAL_IN, world.ext102.id, CallStatus.CALLING),
        (EventType.ANSWER, world.ext101.id, CallStatus.ANSWER),
        (EventType.ANSWER, world.ext102.id, CallStatus.ANSWER),
        (EventType.HANGUP, ids[leaves], CallStatus.ANSWER),
        (EventType.DIAL_IN, ext103.id, CallStatus.CALLING),
        (EventType.ANSWER, ext103.id, CallStatus.ANSWER),
        (EventType.HANGUP, ids[stays], CallStatus.ANSWER),
        (EventType.HANGUP, ext103.id, CallStatus.ANSWER),
    ]
    assert len({e.call_id for e in events}) == 1
    page = services.calls.list(CallFilter(client_id=world.client.id), page=1, per_page=10)
    (row,) = page.items
    assert (row.result, row.from_username, row.to_username, row.bridged_username) == (
        "answered",
        "101",
        "102",
        "103",
    )


def test_callback_rings_every_source_first_answer_wins_and_duration_is_limited(
    services: Services, world: World, tmp_path: Path
) -> None:
    ext103 = ensure_extension(services, world.client.id, "103")
    tones = make_tones(tmp_path / "tones")
    specs = [
        PhoneSpec(world.ext101, tones.a1000),  # answers at once
        PhoneSpec(ext103, tones.a440, answermode="manual"),  # rings, then is cancelled
        PhoneSpec(world.ext102, tones.a1000, answermode="manual"),
    ]
    events: list[CallEvent] = []

    async def main() -> None:
        async with pbx_with_phones(services, specs, tmp_path) as rig:
            engine = rig.pbx.engine
            assert engine is not None
            request = CallbackRequest(
                client_id=world.client.id,
                extension_id=world.ext101.id,
                src_num=["101", "103"],
                dst_num="102",
                call_duration=3,
            )
            started = await engine.originate(request)
            await rig["103"].wait_event("CALL_INCOMING", limit=10)
            await rig["103"].wait_event("CALL_CLOSED", limit=10)  # 101 won: CANCEL
            await rig["102"].wait_event("CALL_INCOMING", limit=10)
            assert await rig["101"].hears(425, tolerance=8)  # ringback while 102 rings
            await rig["102"].accept()
            await rig["102"].wait_event("CALL_ESTABLISHED", limit=10)
            assert await rig["102"].hears(1000)
            (live,) = engine.live_calls()
            assert live.call_api_id == started.call_api_id
            # call_duration: the PBX hangs up both phones by itself
            await rig["101"].wait_event("CALL_CLOSED", limit=10)
            await rig["102"].wait_event("CALL_CLOSED", limit=5)
            await until_no_calls(rig.pbx)
            events.extend(events_of(rig.pbx))

    run(main)
    kinds = [(e.event_type, e.extension_id) for e in events]
    assert kinds == [
        (EventType.DIAL_OUT, world.ext101.id),
        (EventType.DIAL_IN, world.ext102.id),
        (EventType.ANSWER, world.ext101.id),
        (EventType.ANSWER, world.ext102.id),
        (EventType.HANGUP, world.ext101.id),
        (EventType.HANGUP, world.ext102.id),
    ]
    callback_ids = {e.callback_id for e in events}
    assert len(callback_ids) == 1 and None not in callback_ids
    page = services.calls.list(CallFilter(client_id=world.client.id), page=1, per_page=10)
    (row,) = page.items
    assert (row.result, row.callback_id, row.to_username) == ("answered", *callback_ids, "102")
    assert row.bridged_duration >= 2
