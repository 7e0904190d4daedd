"""Live calls through the HTTP API, the way a deployment with separate API workers runs them:
routes → ``RemoteCallControl`` → control channel → ``LocalCallControl`` → the engine, with two
real baresip phones in a call."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest

from callgate.pbx.channel import RemoteCallControl, start_control_server
from callgate.services import Services
from tests.api.helpers import API, token_for
from tests.conftest import LiveServer
from tests.pbx.baresip import AVAILABLE
from tests.pbx.phones import PhoneSpec, Rig, make_tones, pbx_with_phones
from tests.pbx.test_call_control import MOH_HZ
from tests.support.factories import World

pytestmark = pytest.mark.skipif(not AVAILABLE, reason="needs Debian's baresip")


@asynccontextmanager
async def over_channel(rig: Rig, services: Services) -> AsyncIterator[None]:
    """The API reaches the engine through the control channel while this lasts."""
    channel = await start_control_server(rig.control, services.settings, port=0)
    services.call_control = RemoteCallControl(services.settings, port=channel.address[1])
    try:
        yield
    finally:
        services.call_control = None
        await channel.stop()


def test_list_hold_offhold_and_hang_up_a_call_over_http(
    services: Services, world: World, tmp_path: Path, live_server: LiveServer
) -> None:
    client, ext101, ext102 = world.client.id, world.ext101.id, world.ext102.id
    manager = {"Authorization": f"Bearer {token_for(services, world.manager)}"}
    owner = {"Authorization": f"Bearer {token_for(services, world.ext_user)}"}  # of ext 101
    reader = {"Authorization": f"Bearer {token_for(services, world.reader)}"}
    tones = make_tones(tmp_path)
    phones = [PhoneSpec(world.ext101, tones.a440), PhoneSpec(world.ext102, tones.a1000)]

    async def main() -> None:
        async with (
            pbx_with_phones(services, phones, tmp_path) as rig,
            over_channel(rig, services),
            httpx.AsyncClient(base_url=live_server.url + API, timeout=20) as http,
        ):
            p101, p102 = rig["101"], rig["102"]
            await p101.dial("102")
            await p102.wait_event("CALL_ESTABLISHED")
            await p101.wait_event("CALL_ESTABLISHED")
            # audio first: baresip 1.0 drops a new stream (SSRC) that starts while its
            # jitter buffer is still filling, so hold at once can leave it deaf to the music
            assert await p102.hears(440), p102.received()

            listed = (await http.get(f"/client/{client}/current_calls/", headers=manager)).json()
            assert [c["state"] for c in listed] == ["answered"], listed
            call = listed[0]
            assert (call["call_flow"], call["caller_id_number"], call["called_number"]) == (
                "out",
                "101",
                "102",
            )
            assert call["extension_id"] == ext101 and call["answer_time_gmt"]
            path = f"/extension/{ext101}/current_calls/{call['call_api_id']}"
            mine = (await http.get(f"/extension/{ext101}/current_calls/", headers=owner)).json()
            assert [c["call_api_id"] for c in mine] == [call["call_api_id"]]

            refused = await http.put(path, json={"action": "hold"}, headers=reader)
            assert refused.status_code == 403, refused.text
            unknown = await http.put(path, json={"action": "park"}, headers=owner)
            assert unknown.status_code == 422, unknown.text

            held = await http.put(path, json={"action": "hold"}, headers=owner)
            assert held.status_code == 200, held.text
            assert await p102.hears(MOH_HZ, hold_for=0.5), p102.received()
            again = await http.put(path, json={"action": "hold"}, headers=owner)
            assert again.status_code == 409 and again.json()["status"] == "conflict"
            resumed = await http.put(path, json={"action": "offhold"}, headers=owner)
            assert resumed.status_code == 200, resumed.text
            assert await p102.hears(440), p102.received()

            other = f"/extension/{ext102}/current_calls/{call['call_api_id']}x"
            assert (await http.delete(other, headers=manager)).status_code == 404
            gone = await http.delete(path, headers=owner)
            assert gone.status_code == 204, gone.text
            await p101.wait_event("CALL_CLOSED")
            await p102.wait_event("CALL_CLOSED")
            await rig.no_calls(client)
            after = await http.get(f"/client/{client}/current_calls/", headers=manager)
            assert after.json() == []

    asyncio.run(asyncio.wait_for(main(), 90))


def test_callback_over_http_connects_two_phones(
    services: Services, world: World, tmp_path: Path, live_server: LiveServer
) -> None:
    client, ext101 = world.client.id, world.ext101.id
    owner = {"Authorization": f"Bearer {token_for(services, world.ext_user)}"}  # of ext 101
    manager = {"Authorization": f"Bearer {token_for(services, world.manager)}"}
    tones = make_tones(tmp_path)
    phones = [PhoneSpec(world.ext101, tones.a440), PhoneSpec(world.ext102, tones.a1000)]

    async def main() -> None:
        async with (
            pbx_with_phones(services, phones, tmp_path) as rig,
            over_channel(rig, services),
            httpx.AsyncClient(base_url=live_server.url + API, timeout=20) as http,
        ):
            p101, p102 = rig["101"], rig["102"]
            nowhere = await http.post(
                f"/extension/{ext101}/callback/",
                json={"src_num": "101", "dst_num": "999"},
                headers=owner,
            )
            assert nowhere.status_code == 422, nowhere.text
            started = await http.post(
                f"/extension/{ext101}/callback/",
                json={"src_num": "101", "dst_num": "102"},
                headers=owner,
            )
            assert started.status_code == 201, started.text
            api_id = started.json()["call_api_id"]
            await p101.wait_event("CALL_ESTABLISHED")
            await p102.wait_event("CALL_ESTABLISHED")
            assert await p101.hears(1000), p101.received()
            assert await p102.hears(440), p102.received()
            listed = (await http.get(f"/client/{client}/current_calls/", headers=manager)).json()
            assert [c["call_api_id"] for c in listed] == [api_id]
            assert listed[0]["call_id"] == started.json()["call_id"]

            gone = await http.delete(f"/client/{client}/current_calls/{api_id}", headers=manager)
            assert gone.status_code == 204, gone.text
            await p101.wait_event("CALL_CLOSED")
            await p102.wait_event("CALL_CLOSED")
            await rig.no_calls(client)

    asyncio.run(asyncio.wait_for(main(), 90))
