"""Calls that are not answered, with real baresip phones: busy, no answer (and forward), the
caller gives up, the callee is not registered, the number does not exist. Each one gives the
caller the right SIP answer, the hangup events their CallStatus and the history row its result."""

from __future__ import annotations

from pathlib import Path

import pytest

from callgate.calls.live import CallEvent, CallStatus
from callgate.calls.models import CallRecord
from callgate.calls.repository import CallFilter
from callgate.events.models import EventType
from callgate.phones.models import IncomingRule
from callgate.services import Services
from tests.pbx.baresip import AVAILABLE
from tests.pbx.phones import Phone, PhoneSpec, ensure_extension, make_tones, pbx_with_phones
from tests.pbx.test_calls_basic import events_of, run, until_no_calls
from tests.support.factories import World

pytestmark = pytest.mark.skipif(not AVAILABLE, reason="needs Debian's baresip")


def set_rule(services: Services, extension_id: int, **values: object) -> None:
    """An incom_rule row as the API would store it (ring times below the API's minimum of 5 s
    keep these tests short)."""
    with services.database.write() as session:
        session.add(IncomingRule(extension_id=extension_id, **values))


def only_row(services: Services, world: World) -> CallRecord:
    page = services.calls.list(CallFilter(client_id=world.client.id), page=1, per_page=10)
    (row,) = page.items
    return row


async def closed_with(phone: Phone, code: str, limit: float = 15.0) -> str:
    event = await phone.wait_event("CALL_CLOSED", limit=limit)
    reason = str(event.get("param", ""))
    assert reason.startswith(code), reason
    return reason


def hangup_statuses(events: list[CallEvent]) -> list[tuple[int, CallStatus]]:
    return [(e.extension_id, e.call_status) for e in events if e.event_type is EventType.HANGUP]


def test_busy_callee(services: Services, world: World, tmp_path: Path) -> None:
    tones = make_tones(tmp_path / "tones")
    specs = [
        PhoneSpec(world.ext101, tones.a440),
        PhoneSpec(world.ext102, tones.a1000, answermode="manual"),
    ]
    events: list[CallEvent] = []

    async def main() -> None:
        async with pbx_with_phones(services, specs, tmp_path) as rig:
            await rig["101"].dial("102")
            await rig["102"].wait_event("CALL_INCOMING", limit=10)
            await rig["102"].hangup()  # rejects the incoming call: 486 Busy Here
            await closed_with(rig["101"], "486")
            await until_no_calls(rig.pbx)
            events.extend(events_of(rig.pbx))

    run(main)
    row = only_row(services, world)
    assert (row.result, row.hangup_cause, row.answer_time) == ("busy", "user_busy", None)
    assert hangup_statuses(events) == [
        (world.ext101.id, CallStatus.BUSY),
        (world.ext102.id, CallStatus.BUSY),
    ]


def test_no_answer_within_ring_time(services: Services, world: World, tmp_path: Path) -> None:
    set_rule(services, world.ext102.id, ring_seconds=2)
    tones = make_tones(tmp_path / "tones")
    specs = [
        PhoneSpec(world.ext101, tones.a440),
        PhoneSpec(world.ext102, tones.a1000, answermode="manual"),
    ]
    events: list[CallEvent] = []

    async def main() -> None:
        async with pbx_with_phones(services, specs, tmp_path) as rig:
            await rig["101"].dial("102")
            await rig["102"].wait_event("CALL_INCOMING", limit=10)
            await closed_with(rig["101"], "480", limit=10)
            await rig["102"].wait_event("CALL_CLOSED", limit=5)  # its ringing was cancelled
            await until_no_calls(rig.pbx)
            events.extend(events_of(rig.pbx))

    run(main)
    row = only_row(services, world)
    assert (row.result, row.hangup_cause) == ("not answered", "no_answer")
    assert hangup_statuses(events) == [
        (world.ext101.id, CallStatus.NOANSWER),
        (world.ext102.id, CallStatus.NOANSWER),
    ]


def test_no_answer_forwards_to_another_extension(
    services: Services, world: World, tmp_path: Path
) -> None:
    ext103 = ensure_extension(services, world.client.id, "103")
    set_rule(services, world.ext102.id, ring_seconds=2, action="forward", forward_to="103")
    tones = make_tones(tmp_path / "tones")
    specs = [
        PhoneSpec(world.ext101, tones.a440),
        PhoneSpec(world.ext102, tones.a1000, answermode="manual"),
        PhoneSpec(ext103, tones.a1000),
    ]
    events: list[CallEvent] = []

    async def main() -> None:
        async with pbx_with_phones(services, specs, tmp_path) as rig:
            await rig["101"].dial("102")
            await rig["102"].wait_event("CALL_INCOMING", limit=10)
            await rig["103"].wait_event("CALL_ESTABLISHED", limit=10)
            await rig["101"].wait_event("CALL_ESTABLISHED", limit=5)
            assert await rig["103"].hears(440)
            await rig["101"].hangup()
            await rig["103"].wait_event("CALL_CLOSED", limit=5)
            await until_no_calls(rig.pbx)
            events.extend(events_of(rig.pbx))

    run(main)
    row = only_row(services, world)
    assert (row.result, row.to_username, row.bridged_username) == ("answered", "102", "103")
    kinds = [(e.event_type, e.extension_id, e.call_status) for e in events]
    assert kinds == [
        (EventType.DIAL_OUT, world.ext101.id, CallStatus.CALLING),
        (EventType.DIAL_IN, world.ext102.id, CallStatus.CALLING),
        (EventType.HANGUP, world.ext102.id, CallStatus.NOANSWER),
        (EventType.DIAL_IN, ext103.id, CallStatus.CALLING),
        (EventType.ANSWER, world.ext101.id, CallStatus.ANSWER),
        (EventType.ANSWER, ext103.id, CallStatus.ANSWER),
        (EventType.HANGUP, world.ext101.id, CallStatus.ANSWER),
        (EventType.HANGUP, ext103.id, CallStatus.ANSWER),
    ]


def test_caller_cancels(services: Services, world: World, tmp_path: Path) -> None:
    tones = make_tones(tmp_path / "tones")
    specs = [
        PhoneSpec(world.ext101, tones.a440),
        PhoneSpec(world.ext102, tones.a1000, answermode="manual"),
    ]
    events: list[CallEvent] = []

    async def main() -> None:
        async with pbx_with_phones(services, specs, tmp_path) as rig:
            await rig["101"].dial("102")
            await rig["102"].wait_event("CALL_INCOMING", limit=10)
            await rig["101"].wait_event("CALL_RINGING", limit=5)  # our 180 reached the caller
            await rig["101"].hangup()  # CANCEL
            await rig["102"].wait_event("CALL_CLOSED", limit=10)
            await until_no_calls(rig.pbx)
            events.extend(events_of(rig.pbx))

    run(main)
    row = only_row(services, world)
    assert (row.result, row.hangup_cause) == ("not answered", "originator_cancel")
    assert hangup_statuses(events) == [
        (world.ext101.id, CallStatus.CANCEL),
        (world.ext102.id, CallStatus.CANCEL),
    ]


@pytest.mark.parametrize(("number", "code"), [("103", "480"), ("999", "404")])
def test_unregistered_or_unknown_number(
    services: Services, world: World, tmp_path: Path, number: str, code: str
) -> None:
    ensure_extension(services, world.client.id, "103")  # exists, no phone registered
    tones = make_tones(tmp_path / "tones")
    events: list[CallEvent] = []

    async def main() -> None:
        specs = [PhoneSpec(world.ext101, tones.a440)]
        async with pbx_with_phones(services, specs, tmp_path) as rig:
            await rig["101"].dial(number)
            await closed_with(rig["101"], code)
            await until_no_calls(rig.pbx)
            events.extend(events_of(rig.pbx))

    run(main)
    row = only_row(services, world)
    cause = "unregistered" if code == "480" else "unallocated_number"
    assert (row.result, row.hangup_cause) == ("failed", cause)
    assert hangup_statuses(events) == [(world.ext101.id, CallStatus.CHANUNAVAIL)]
