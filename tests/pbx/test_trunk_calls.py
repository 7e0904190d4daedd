"""Calls through a trunk, end to end: a real baresip phone, the PBX, a real SIPp "provider".

* Outgoing: extension 101 dials an outside number; the PBX sends the INVITE to the client's trunk
  (a SIPp UAS), answers its 401/407 with the trunk's credentials, the provider answers and echoes
  the media, so the phone hears its own tone come back through the relay; the phone hangs up.
* Incoming: the provider (a SIPp UAC) calls a DID routed to extension 102 without any
  authentication; the phone answers; the provider hangs up; the history row has flow "in".
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from callgate.calls.models import CallRecord
from callgate.calls.repository import CallFilter
from callgate.routing.service import TrunkSpec
from callgate.services import Services
from tests.pbx.baresip import AVAILABLE as BARESIP_AVAILABLE
from tests.pbx.phones import PhoneSpec, make_tones, pbx_with_phones
from tests.pbx.sippeer import AVAILABLE as SIPP_AVAILABLE
from tests.pbx.sippeer import SippPeer, free_udp_port
from tests.support.factories import World

pytestmark = pytest.mark.skipif(
    not (BARESIP_AVAILABLE and SIPP_AVAILABLE), reason="needs baresip and SIPp"
)

USER = "trunkuser"
PASSWORD = "trunk-s3cret"
CALLER_ID = "4930123456"
DIALLED = "4930999"
DID = "4930777"


def media_args() -> list[str]:
    return ["-mi", "127.0.0.1", "-mp", str(free_udp_port()), "-rtp_echo"]


async def history(
    services: Services, client_id: int, count: int, limit: float = 10.0
) -> list[CallRecord]:
    """The client's call-history rows once there are ``count`` (written when a call ends)."""
    loop = asyncio.get_running_loop()
    end = loop.time() + limit
    while True:
        page = await asyncio.to_thread(
            services.calls.list, CallFilter(client_id=client_id), page=1, per_page=10
        )
        if len(page.items) >= count or loop.time() > end:
            return list(page.items)
        await asyncio.sleep(0.1)


@pytest.mark.parametrize("challenge", ["401", "407"])
def test_outgoing_call_leaves_through_the_trunk_with_digest(
    services: Services, world: World, tmp_path: Path, challenge: str
) -> None:
    provider = SippPeer(
        f"trunk_uas_{challenge}.xml", tmp_path / "sipp", args=media_args(), timeout=40
    )
    services.routing.create_trunk(
        world.client.id,
        TrunkSpec(
            name="provider",
            host="127.0.0.1",
            port=provider.port,
            username=USER,
            password=PASSWORD,
            caller_id_number=CALLER_ID,
        ),
    )
    tones = make_tones(tmp_path / "tones")

    async def main() -> None:
        await provider.start()
        try:
            specs = [PhoneSpec(world.ext101, tones.a440)]
            async with pbx_with_phones(services, specs, tmp_path) as rig:
                phone = rig["101"]
                await phone.dial(DIALLED)
                await phone.wait_event("CALL_ESTABLISHED", limit=15)
                # the provider echoes what it gets: the phone's own 440 Hz, relayed both ways
                assert await phone.hears(440), await phone.heard()
                await phone.hangup()
                await phone.wait_event("CALL_CLOSED", limit=10)
                assert await provider.wait(15) == 0, provider.output()
                events = rig.pbx.events.events  # type: ignore[attr-defined]
            # only the extension has events (a trunk leg has none), from its side: "out"
            assert [(e.event_type, e.extension_id, e.call_flow) for e in events] == [
                ("dial-out", world.ext101.id, "out"),
                ("answer", world.ext101.id, "out"),
                ("hangup", world.ext101.id, "out"),
            ]
            assert events[0].called_number == DIALLED
            rows = await history(services, world.client.id, 1)
            assert len(rows) == 1
            row = rows[0]
            assert (row.flow, row.result, row.extension_id) == ("out", "answered", world.ext101.id)
            assert DIALLED in row.to_username
        finally:
            await provider.stop()

    asyncio.run(asyncio.wait_for(main(), timeout=90))


def test_outgoing_call_with_a_wrong_trunk_password_fails(
    services: Services, world: World, tmp_path: Path
) -> None:
    provider = SippPeer("trunk_uas_401.xml", tmp_path / "sipp", args=media_args(), timeout=40)
    services.routing.create_trunk(
        world.client.id,
        TrunkSpec(
            name="provider",
            host="127.0.0.1",
            port=provider.port,
            username=USER,
            password="not-the-password",
            caller_id_number=CALLER_ID,
        ),
    )
    tones = make_tones(tmp_path / "tones")

    async def main() -> None:
        await provider.start()
        try:
            specs = [PhoneSpec(world.ext101, tones.a440)]
            async with pbx_with_phones(services, specs, tmp_path) as rig:
                phone = rig["101"]
                await phone.dial(DIALLED)
                await phone.wait_event("CALL_CLOSED", limit=15)
                assert not phone.seen("CALL_ESTABLISHED")
                assert await provider.wait(15) == 0, provider.output()  # it refused with 403
            rows = await history(services, world.client.id, 1)
            assert [(r.flow, r.result) for r in rows] == [("out", "failed")]
        finally:
            await provider.stop()

    asyncio.run(asyncio.wait_for(main(), timeout=90))


def test_incoming_call_for_a_did_rings_its_extension(
    services: Services, world: World, tmp_path: Path
) -> None:
    provider_port = free_udp_port()
    services.routing.create_trunk(
        world.client.id,
        TrunkSpec(name="provider", host="127.0.0.1", port=provider_port, username=USER),
    )
    services.routing.create_did(world.client.id, "+" + DID, world.ext102.id)
    tones = make_tones(tmp_path / "tones")

    async def main() -> None:
        specs = [PhoneSpec(world.ext102, tones.a1000)]
        async with pbx_with_phones(services, specs, tmp_path) as rig:
            host, port = rig.pbx.address
            provider = SippPeer(
                "trunk_uac_did.xml",
                tmp_path / "sipp",
                port=provider_port,
                remote=f"{host}:{port}",
                args=[*media_args(), "-key", "did", DID],
                timeout=40,
            )
            await provider.start()
            try:
                phone = rig["102"]
                await phone.wait_event("CALL_ESTABLISHED", limit=15)  # answermode=auto
                # the provider echoes the phone's 1000 Hz back to it through the relay
                assert await phone.hears(1000), await phone.heard()
                await phone.wait_event("CALL_CLOSED", limit=15)  # the provider hangs up
                assert await provider.wait(15) == 0, provider.output()
                events = rig.pbx.events.events  # type: ignore[attr-defined]
            finally:
                await provider.stop()
        assert [(e.event_type, e.extension_id, e.call_flow) for e in events] == [
            ("dial-in", world.ext102.id, "in"),
            ("answer", world.ext102.id, "in"),
            ("hangup", world.ext102.id, "in"),
        ]
        rows = await history(services, world.client.id, 1)
        assert len(rows) == 1
        row = rows[0]
        assert (row.flow, row.result, row.extension_id) == ("in", "answered", world.ext102.id)
        assert (row.did_number.lstrip("+"), row.from_username) == (DID, "+4930555000")

    asyncio.run(asyncio.wait_for(main(), timeout=90))
