"""A real baresip phone registers to the PBX over UDP on 127.0.0.1: right and wrong password."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest

from callgate.pbx.service import start_pbx
from callgate.services import Services
from tests.conftest import free_port
from tests.pbx.baresip import AVAILABLE, Baresip, free_udp_tcp_pair, write_config
from tests.pbx.helpers import PASSWORD
from tests.support.factories import World

pytestmark = pytest.mark.skipif(not AVAILABLE, reason="needs Debian's baresip")


@pytest.mark.parametrize(
    ("password", "event"), [(PASSWORD, "REGISTER_OK"), ("wrong-pass", "REGISTER_FAIL")]
)
def test_baresip_registers_with_the_right_password_only(
    services: Services,
    world: World,
    tmp_path: Path,
    password: str,
    event: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    services.phones.update_phone(world.ext101.id, password=PASSWORD)
    user = f"{world.client.prefix}*101"

    async def main() -> None:
        pbx = await start_pbx(services.settings, services.database, port=0)
        sip_port, ctrl_port = free_udp_tcp_pair(), free_port()
        host, port = pbx.address
        account = (
            f"<sip:{user}@{host}:{port}>;auth_pass={password};answermode=auto;regint=300;"
            "audio_codecs=pcmu"
        )
        write_config(tmp_path / "phone", account, sip_port, ctrl_port)
        phone = Baresip(tmp_path / "phone", ctrl_port)
        try:
            await phone.start()
            assert await phone.registration() == event
            bindings = pbx.service.registrar.bindings.lookup(user, pbx.service.clock())
            if event == "REGISTER_OK":
                assert [b.source for b in bindings] == [("127.0.0.1", sip_port)]
            else:
                assert bindings == []
        finally:
            await phone.stop()  # before the registrar (PEERS.md trap)
            await pbx.stop()

    with caplog.at_level(logging.INFO, logger="callgate.sip"):
        asyncio.run(asyncio.wait_for(main(), timeout=30))
    lines = [r.getMessage() for r in caplog.records if r.name == "callgate.sip"]
    if event == "REGISTER_OK":
        assert any(line.startswith(f"sip register {user} from 127.0.0.1:") for line in lines), lines
    else:
        assert any(line.startswith(f"sip register failed {user}") for line in lines), lines
