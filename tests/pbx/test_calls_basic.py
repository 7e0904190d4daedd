"""Two real baresip phones call each other through the PBX: answer, audio both ways, DTMF,
hang-up from either side, the call-history row and the call events."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from callgate.calls.live import CallEvent, CallStatus, ListSink
from callgate.calls.repository import CallFilter
from callgate.events.models import EventType
from callgate.media import g711
from callgate.media.wav import read_wav
from callgate.pbx.service import RunningPbx, start_pbx
from callgate.services import Services
from tests.pbx.baresip import AVAILABLE
from tests.pbx.helpers import PASSWORD
from tests.pbx.phones import (
    Phone,
    PhoneSpec,
    make_tones,
    pbx_with_phones,
    phone_config,
    running_phones,
    until,
    wait_registered,
)
from tests.support.factories import World

pytestmark = pytest.mark.skipif(not AVAILABLE, reason="needs Debian's baresip")


def run(main: Callable[[], Awaitable[None]], limit: float = 90) -> None:
    asyncio.run(asyncio.wait_for(main(), limit))


async def until_no_calls(pbx: RunningPbx, limit: float = 10.0) -> None:
    """Poll the engine until every call has ended (hangup events and history written)."""
    assert pbx.engine is not None
    loop = asyncio.get_running_loop()
    end = loop.time() + limit
    while pbx.engine.calls:
        if loop.time() > end:
            raise TimeoutError(f"calls still up: {list(pbx.engine.calls)}")
        await asyncio.sleep(0.05)
    # an ended call leaves nothing behind in the engine's look-up tables
    assert not pbx.engine._invites and not pbx.engine._dialogs and not pbx.engine._by_api


def events_of(pbx: RunningPbx) -> list[CallEvent]:
    assert isinstance(pbx.events, ListSink)
    return pbx.events.events


@pytest.mark.parametrize("who_hangs_up", ["caller", "callee"])
def test_extension_call_answered_with_audio_dtmf_and_hangup(
    services: Services,
    world: World,
    tmp_path: Path,
    who_hangs_up: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    tones = make_tones(tmp_path / "tones")
    specs = [PhoneSpec(world.ext101, tones.a440), PhoneSpec(world.ext102, tones.a1000)]
    seen: list[CallEvent] = []

    async def main() -> None:
        async with pbx_with_phones(services, specs, tmp_path) as rig:
            caller, callee = rig["101"], rig["102"]
            await caller.dial("102")
            await callee.wait_event("CALL_ESTABLISHED", limit=15)
            await caller.wait_event("CALL_ESTABLISHED", limit=15)
            # each side hears the other's tone through the relay
            # (and keeps hearing it: the relay goes on forwarding)
            assert await callee.hears(440, hold_for=1.0), await callee.heard()
            assert await caller.hears(1000), await caller.heard()
            # RFC 4733 digits pass through
            await caller.sndcode("5")
            digit = await callee.wait_event("CALL_DTMF_START", limit=5)
            assert digit.get("param") == "5"
            assert rig.pbx.engine is not None
            (live,) = rig.pbx.engine.live_calls()
            assert live.state == "answered" and live.called_number == "102"
            assert set(live.extension_ids) == {world.ext101.id, world.ext102.id}
            ending, other = (caller, callee) if who_hangs_up == "caller" else (callee, caller)
            await ending.hangup()
            await other.wait_event("CALL_CLOSED", limit=10)
            await until_no_calls(rig.pbx)
            assert rig.pbx.engine.live_calls() == []
            seen.extend(events_of(rig.pbx))

    with caplog.at_level(logging.INFO, logger="callgate.sip"):
        run(main)

    # events, in the order of SPEC §6, about both extensions
    kinds = [(e.event_type, e.extension_id, e.call_status) for e in seen]
    assert kinds == [
        (EventType.DIAL_OUT, world.ext101.id, CallStatus.CALLING),
        (EventType.DIAL_IN, world.ext102.id, CallStatus.CALLING),
        (EventType.ANSWER, world.ext101.id, CallStatus.ANSWER),
        (EventType.ANSWER, world.ext102.id, CallStatus.ANSWER),
        (EventType.HANGUP, world.ext101.id, CallStatus.ANSWER),
        (EventType.HANGUP, world.ext102.id, CallStatus.ANSWER),
    ]
    assert len({e.call_id for e in seen}) == 1 and len({e.call_api_id for e in seen}) == 1
    assert seen[0].sub_call_id != seen[1].sub_call_id
    assert [e.call_flow for e in seen[:2]] == ["out", "in"]
    dial_in = seen[1].fields()
    assert dial_in["CallerIDNum"] == "101" and dial_in["CalledNumber"] == "102"
    assert dial_in["CalledExtension"] == "102" and dial_in["CallerExtension"] == "101"
    assert dial_in["CalledExtensionID"] == str(world.ext102.id)
    hangup = seen[-1]
    assert hangup.duration_us is not None and hangup.duration_us > 1_000_000

    # one history row
    page = services.calls.list(CallFilter(client_id=world.client.id), page=1, per_page=10)
    (row,) = page.items
    assert row.call_uuid == seen[0].call_id
    assert (row.flow, row.result, row.hangup_cause) == ("internal", "answered", "normal_clearing")
    assert (row.from_username, row.to_username, row.extension_id) == ("101", "102", world.ext101.id)
    assert row.answer_time is not None and row.bridged_duration >= 1

    lines = [r.getMessage() for r in caplog.records if r.name == "callgate.sip"]
    user = f"{world.client.prefix}*101"
    assert f"call {row.call_uuid} {user} -> 102 started" in lines
    assert any(
        line.startswith(f"call {row.call_uuid} ended: answered,") and "normal_clearing" in line
        for line in lines
    ), lines


def test_recorded_call_stores_both_voices(services: Services, world: World, tmp_path: Path) -> None:
    services.phones.update_phone(world.ext101.id, record_enabled=True)
    tones = make_tones(tmp_path / "tones")
    specs = [PhoneSpec(world.ext101, tones.a440), PhoneSpec(world.ext102, tones.a1000)]
    seen: list[CallEvent] = []

    async def main() -> None:
        async with pbx_with_phones(services, specs, tmp_path) as rig:
            caller, callee = rig["101"], rig["102"]
            await caller.dial("102")
            await callee.wait_event("CALL_ESTABLISHED", limit=15)
            assert await callee.hears(440, hold_for=1.0)
            assert await caller.hears(1000)
            assert rig.pbx.engine is not None
            (live,) = rig.pbx.engine.live_calls()
            assert live.record_uuid is not None
            await caller.hangup()
            await until_no_calls(rig.pbx)
            seen.extend(events_of(rig.pbx))

    run(main)
    page = services.calls.list(CallFilter(client_id=world.client.id), page=1, per_page=10)
    (row,) = page.items
    assert row.record_uuid is not None
    assert [e.rec_id for e in seen if e.event_type is EventType.HANGUP] == [row.record_uuid] * 2
    recording, path = services.recordings.open(world.client.id, row.record_uuid)
    assert (recording.call_uuid, recording.extension_id) == (row.call_uuid, world.ext101.id)
    audio = read_wav(path.read_bytes())
    samples = g711.decode(audio.data, audio.law)
    assert len(samples) > g711.RATE  # more than a second of call
    middle = samples[len(samples) // 2 - 2000 : len(samples) // 2 + 2000]
    # mixed: both voices are in it, about equally loud
    assert g711.goertzel_ratio(middle, 440) > 0.3
    assert g711.goertzel_ratio(middle, 1000) > 0.3


def test_stopping_the_pbx_hangs_up_its_calls(
    services: Services, world: World, tmp_path: Path
) -> None:
    tones = make_tones(tmp_path / "tones")
    specs = [PhoneSpec(world.ext101, tones.a440), PhoneSpec(world.ext102, tones.a1000)]

    async def main() -> None:
        pbx = await start_pbx(services.settings, services.database, port=0)
        stopped = False
        try:
            async with running_phones(pbx, services, specs, tmp_path) as rig:
                await rig["101"].dial("102")
                await rig["102"].wait_event("CALL_ESTABLISHED", limit=15)
                await pbx.stop()  # BYE to both phones before the sockets close
                stopped = True
                await rig["101"].wait_event("CALL_CLOSED", limit=5)
                await rig["102"].wait_event("CALL_CLOSED", limit=5)
                for phone in rig.phones.values():
                    await phone.stop(limit=1.0)  # its registrar is gone: do not wait long
        finally:
            if not stopped:
                await pbx.stop()

    run(main)
    page = services.calls.list(CallFilter(client_id=world.client.id), page=1, per_page=10)
    assert [(r.result, r.hangup_cause) for r in page.items] == [("answered", "normal_clearing")]


class TcpPhone(Phone):
    """A rig phone whose account uses SIP over TCP."""

    async def start(self, pbx: tuple[str, int]) -> None:
        self.pbx = pbx
        host, port = pbx
        account = (
            f"<sip:{self.user}@{host}:{port};transport=tcp>;auth_pass={self.password};"
            f"answermode={self.answermode};regint=300;audio_codecs=pcmu"
        )
        phone_config(
            self.folder,
            sip_port=self.sip_port,
            ctrl_port=self.ctrl_port,
            tone=self.tone,
            account_line=account,
        )
        await self.baresip.start()
        self._reader = asyncio.create_task(self._read(), name=f"phone {self.user}")


def test_a_call_from_a_phone_on_tcp_to_a_phone_on_udp(
    services: Services, world: World, tmp_path: Path
) -> None:
    tones = make_tones(tmp_path / "tones")
    for extension in (world.ext101, world.ext102):
        services.phones.update_phone(extension.id, password=PASSWORD)
    prefix = world.client.prefix

    async def main() -> None:
        pbx = await start_pbx(services.settings, services.database, port=0)
        caller = TcpPhone(world.ext101, f"{prefix}*101", tmp_path / "p101", tones.a440)
        callee = Phone(world.ext102, f"{prefix}*102", tmp_path / "p102", tones.a1000)
        try:
            await caller.start(pbx.address)
            await callee.start(pbx.address)
            registrar = pbx.service.registrar

            async def registered() -> bool:
                now = pbx.service.clock()
                tcp = registrar.bindings.lookup(caller.user, now)
                return bool(tcp) and tcp[0].transport == "tcp"

            await until(registered, "the TCP phone registered")
            await wait_registered(pbx, callee)
            await caller.dial("102")
            await callee.wait_event("CALL_ESTABLISHED", limit=15)
            await caller.wait_event("CALL_ESTABLISHED", limit=15)
            assert await callee.hears(440) and await caller.hears(1000)
            await caller.hangup()  # BYE over the TCP connection
            await callee.wait_event("CALL_CLOSED", limit=10)
            await until_no_calls(pbx)
        finally:
            await asyncio.gather(caller.stop(), callee.stop(), return_exceptions=True)
            await pbx.stop()

    run(main)
    page = services.calls.list(CallFilter(client_id=world.client.id), page=1, per_page=10)
    assert [(r.result, r.hangup_cause) for r in page.items] == [("answered", "normal_clearing")]
