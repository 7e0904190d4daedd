"""Call control through ``RunningPbx.control`` with real baresip phones and the engine in-process:
hang-up, blind transfer, hold/offhold and callback by API, and ``current_calls`` while it
happens. Audio is checked by measuring what each phone received (tests/pbx/phones.py)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import replace
from pathlib import Path

import pytest

from callgate.calls.live import CallAction, CallbackRequest
from callgate.common.errors import Conflict, NotFound
from callgate.events.models import EventType
from callgate.services import Services
from tests.pbx.baresip import AVAILABLE
from tests.pbx.phones import (
    PhoneSpec,
    ensure_extension,
    make_tones,
    pbx_with_phones,
    write_tone,
)
from tests.support.factories import World

pytestmark = pytest.mark.skipif(not AVAILABLE, reason="needs Debian's baresip")

MOH_HZ = 425  # Settings.moh_tone_hz default
TEST_LIMIT = 90  # seconds for a whole test


def specs(
    services: Services, world: World, tmp_path: Path, *, third: bool = False
) -> list[PhoneSpec]:
    tones = make_tones(tmp_path)
    out = [PhoneSpec(world.ext101, tones.a440), PhoneSpec(world.ext102, tones.a1000)]
    if third:
        ext103 = ensure_extension(services, world.client.id, "103")
        out.append(PhoneSpec(ext103, write_tone(tmp_path / "tone_700.wav", 700)))
    return out


def run(main: Callable[[], Awaitable[None]]) -> None:
    async def bounded() -> None:
        await asyncio.wait_for(main(), TEST_LIMIT)

    asyncio.run(bounded())


def test_hangup_by_api_ends_the_call_on_both_phones(
    services: Services, world: World, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    client = world.client.id
    api_ids: list[str] = []

    async def main() -> None:
        async with pbx_with_phones(services, specs(services, world, tmp_path), tmp_path) as rig:
            control = rig.control
            p101, p102 = rig["101"], rig["102"]
            call = await rig.call(p101, p102, client)
            api_ids.append(call.call_api_id)
            assert (call.client_id, call.call_flow, call.state) == (client, "out", "answered")
            assert (call.caller_id_number, call.called_number) == ("101", "102")
            assert call.extension_id == world.ext101.id
            assert set(call.extension_ids) == {world.ext101.id, world.ext102.id}
            assert call.answer_time is not None and call.init_time <= call.answer_time
            assert len(call.call_api_id) <= 36 and len(call.call_id) <= 36
            # the call shows for both extensions and for nobody else
            for extension in (world.ext101.id, world.ext102.id):
                seen = await control.current_calls(client, extension)
                assert [c.call_api_id for c in seen] == [call.call_api_id]
            assert await control.current_calls(world.other_client.id, None) == []
            assert await control.current_calls(client, world.other_ext.id) == []
            with pytest.raises(NotFound):
                await control.hangup(world.other_client.id, None, call.call_api_id)
            assert await p101.hears(1000), p101.received()
            assert await p102.hears(440), p102.received()

            await control.hangup(client, world.ext102.id, call.call_api_id)
            await p101.wait_event("CALL_CLOSED")
            await p102.wait_event("CALL_CLOSED")
            await rig.no_calls(client)
            with pytest.raises(NotFound):
                await control.hangup(client, None, call.call_api_id)
            hangups = [e for e in rig.events if e.event_type is EventType.HANGUP]
            assert {e.extension_id for e in hangups} == {world.ext101.id, world.ext102.id}
            assert {e.call_api_id for e in hangups} == {call.call_api_id}

    with caplog.at_level(logging.INFO, logger="callgate.sip"):
        run(main)
    lines = [r.getMessage() for r in caplog.records if r.name == "callgate.sip"]
    ok = f"call control hangup {api_ids[0]} by client {client} ext {world.ext102.id}: ok"
    assert ok in lines, lines


def test_blind_transfer_by_api_moves_the_caller_to_a_third_phone(
    services: Services, world: World, tmp_path: Path
) -> None:
    client = world.client.id

    async def main() -> None:
        phones = specs(services, world, tmp_path, third=True)
        async with pbx_with_phones(services, phones, tmp_path) as rig:
            control = rig.control
            p101, p102, p103 = rig["101"], rig["102"], rig["103"]
            call = await rig.call(p101, p102, client)
            assert await p101.hears(1000)
            with pytest.raises(NotFound):  # 103 takes no part in the call yet
                await control.act(
                    client, p103.extension.id, call.call_api_id, CallAction.TRANSFER, "101"
                )

            await control.act(client, world.ext102.id, call.call_api_id, CallAction.TRANSFER, "103")
            await p102.wait_event("CALL_CLOSED")
            await p103.wait_event("CALL_ESTABLISHED")
            assert await p103.hears(440), p103.received()  # the caller's tone
            assert await p101.hears(700), p101.received()  # the new party's tone
            moved = await rig.live_call(client)
            assert moved.call_id == call.call_id  # a transfer keeps the call
            assert set(moved.extension_ids) == {world.ext101.id, p103.extension.id}
            assert await control.current_calls(client, world.ext102.id) == []
            assert not p101.seen("CALL_CLOSED")

            await p101.hangup()
            await p103.wait_event("CALL_CLOSED")
            await rig.no_calls(client)

    run(main)


def test_hold_by_api_plays_music_to_the_other_party_and_offhold_resumes(
    services: Services, world: World, tmp_path: Path
) -> None:
    client = world.client.id

    async def main() -> None:
        async with pbx_with_phones(services, specs(services, world, tmp_path), tmp_path) as rig:
            control = rig.control
            p101, p102 = rig["101"], rig["102"]
            call = await rig.call(p101, p102, client)
            assert await p102.hears(440)

            await control.act(client, world.ext101.id, call.call_api_id, CallAction.HOLD)
            assert await p102.hears(MOH_HZ, hold_for=1.0), p102.received()
            assert (await rig.live_call(client, "held")).call_api_id == call.call_api_id
            with pytest.raises(Conflict):
                await control.act(client, world.ext101.id, call.call_api_id, CallAction.HOLD)

            await control.act(client, world.ext101.id, call.call_api_id, CallAction.OFFHOLD)
            assert await p102.hears(440, hold_for=1.0), p102.received()
            assert await p101.hears(1000)
            await rig.live_call(client, "answered")
            with pytest.raises(Conflict):
                await control.act(client, None, call.call_api_id, CallAction.OFFHOLD)
            assert not p101.seen("CALL_CLOSED") and not p102.seen("CALL_CLOSED")

            await p102.hangup()
            await p101.wait_event("CALL_CLOSED")
            await rig.no_calls(client)

    run(main)


def test_callback_rings_the_source_then_the_destination_and_connects_them(
    services: Services, world: World, tmp_path: Path
) -> None:
    client = world.client.id
    phones = specs(services, world, tmp_path)
    phones[1] = replace(phones[1], answermode="manual")

    async def main() -> None:
        async with pbx_with_phones(services, phones, tmp_path) as rig:
            control = rig.control
            p101, p102 = rig["101"], rig["102"]
            started = await control.originate(
                CallbackRequest(
                    client_id=client, extension_id=world.ext101.id, src_num=["101"], dst_num="102"
                )
            )
            await p101.wait_event("CALL_ESTABLISHED")
            await p102.wait_event("CALL_INCOMING")  # 102 answers manually
            ringing = await rig.live_call(client, "ringing")
            assert ringing.call_api_id == started.call_api_id and ringing.answer_time is None
            await p102.accept()
            await p102.wait_event("CALL_ESTABLISHED")
            call = await rig.live_call(client)
            assert (call.call_api_id, call.call_id) == (started.call_api_id, started.call_id)
            assert set(call.extension_ids) == {world.ext101.id, world.ext102.id}
            assert await p101.hears(1000), p101.received()
            assert await p102.hears(440), p102.received()
            tagged = [e for e in rig.events if e.call_id == started.call_id]
            assert tagged and all(e.callback_id for e in tagged)

            await control.hangup(client, world.ext101.id, started.call_api_id)
            await p101.wait_event("CALL_CLOSED")
            await p102.wait_event("CALL_CLOSED")
            await rig.no_calls(client)

    run(main)


def test_callback_calls_the_destination_only_after_the_source_answers(
    services: Services, world: World, tmp_path: Path
) -> None:
    """Both phones answer by hand: 102 must not ring while 101 does; a hang-up by API while
    102 rings ends the call on both phones (BYE to 101, CANCEL to 102)."""
    client = world.client.id
    phones = [replace(spec, answermode="manual") for spec in specs(services, world, tmp_path)]

    async def main() -> None:
        async with pbx_with_phones(services, phones, tmp_path) as rig:
            control = rig.control
            p101, p102 = rig["101"], rig["102"]
            started = await control.originate(
                CallbackRequest(
                    client_id=client, extension_id=world.ext101.id, src_num=["101"], dst_num="102"
                )
            )
            await p101.wait_event("CALL_INCOMING")
            with pytest.raises(TimeoutError):  # a bounded look: 102 stays quiet meanwhile
                await p102.wait_event("CALL_INCOMING", limit=1.0)
            assert (await rig.live_call(client, "ringing")).call_api_id == started.call_api_id
            await p101.accept()
            await p101.wait_event("CALL_ESTABLISHED")
            await p102.wait_event("CALL_INCOMING")
            await control.hangup(client, None, started.call_api_id)
            await p101.wait_event("CALL_CLOSED")
            await p102.wait_event("CALL_CLOSED")
            await rig.no_calls(client)
            assert not p102.seen("CALL_ESTABLISHED")

    run(main)
