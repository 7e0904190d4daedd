"""The endpoint on real sockets (127.0.0.1) with accounts from the database (SQLite, PostgreSQL)."""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Awaitable, Callable

import pytest
from sqlalchemy import update

from callgate.identity.models import Extension, Status
from callgate.pbx.repository import DatabaseDirectory
from callgate.pbx.service import start_pbx
from callgate.services import Services
from callgate.sip.message import Response
from callgate.sip.parser import parse
from tests.pbx.helpers import PASSWORD, answer, register
from tests.support.factories import World


def _run(main: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(asyncio.wait_for(main(), timeout=20))


class UdpPhone(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.received: asyncio.Queue[Response] = asyncio.Queue()

    def datagram_received(self, data: bytes, addr: tuple[str | object, ...]) -> None:
        message = parse(data)
        assert isinstance(message, Response)
        if message.status >= 200:
            self.received.put_nowait(message)


async def _phone() -> tuple[asyncio.DatagramTransport, UdpPhone, int]:
    loop = asyncio.get_running_loop()
    transport, phone = await loop.create_datagram_endpoint(UdpPhone, local_addr=("127.0.0.1", 0))
    return transport, phone, transport.get_extra_info("sockname")[1]


def _user(services: Services, world: World) -> str:
    services.phones.update_phone(world.ext101.id, password=PASSWORD)
    return f"{world.client.prefix}*101"


def test_directory_reads_accounts_and_blocked_state(services: Services, world: World) -> None:
    directory = DatabaseDirectory(services.database)
    user = f"{world.client.prefix}*101"
    assert directory.account(user) is None  # no password yet
    _user(services, world)
    account = directory.account(user)
    assert account is not None and account.extension_id == world.ext101.id
    assert not account.blocked and len(account.ha1.sha256) == 64
    assert directory.account("nobody") is None and directory.account(f"{user}9") is None
    with services.database.write() as session:
        session.execute(
            update(Extension).where(Extension.id == world.ext101.id).values(status=Status.BLOCKED)
        )
    blocked = directory.account(user)
    assert blocked is not None and blocked.blocked


def test_register_over_udp_logs_one_line_each(
    services: Services, world: World, caplog: pytest.LogCaptureFixture
) -> None:
    user = _user(services, world)

    async def main() -> None:
        pbx = await start_pbx(services.settings, services.database, port=0)
        transport, phone, port = await _phone()
        try:
            first = register(user=user, port=port)
            transport.sendto(bytes(first), pbx.address)
            challenge = await phone.received.get()
            assert challenge.status == 401
            retry = register(
                user=user, port=port, cseq=2, authorization=answer(challenge, user=user)
            )
            transport.sendto(bytes(retry), pbx.address)
            ok = await phone.received.get()
            assert ok.status == 200 and f":{port}>;expires=300" in (ok.headers.get("Contact") or "")
            [binding] = pbx.service.registrar.bindings.lookup(user, pbx.service.clock())
            assert binding.source == ("127.0.0.1", port)
            bad = register(
                user=user,
                port=port,
                cseq=3,
                authorization=answer(challenge, user=user, password="x" * 9),
            )
            transport.sendto(bytes(bad), pbx.address)
            assert (await phone.received.get()).status == 403
        finally:
            transport.close()
            await pbx.stop()

    with caplog.at_level(logging.INFO, logger="callgate.sip"):
        _run(main)
    lines = [r.getMessage() for r in caplog.records if r.name == "callgate.sip"]
    assert any(
        line.startswith(f"sip register {user} from 127.0.0.1:") and "expires=300" in line
        for line in lines
    )
    assert any(
        line.startswith(f"sip register failed {user} from") and "wrong password" in line
        for line in lines
    )


def test_options_invite_and_unknown_methods_over_udp_and_tcp(
    services: Services, world: World
) -> None:
    async def main() -> None:
        pbx = await start_pbx(services.settings, services.database, port=0)
        transport, phone, port = await _phone()
        try:
            for method, status in (
                ("OPTIONS", 200),
                ("INVITE", 407),  # calls need credentials, like REGISTER
                ("FOO", 501),
                ("SUBSCRIBE", 405),
            ):
                request = register(port=port, call_id=f"c-{method}")
                request.method = method
                request.headers.set("CSeq", f"1 {method}")
                transport.sendto(bytes(request), pbx.address)
                response = await phone.received.get()
                assert response.status == status, method
                if method == "OPTIONS":
                    assert "REGISTER" in (response.headers.get("Allow") or "")
                    assert response.headers.get("Accept") == "application/sdp"
                if method == "INVITE":
                    assert "Digest" in (response.headers.get("Proxy-Authenticate") or "")
            transport.sendto(b"garbage\r\n\r\n", pbx.address)  # dropped; the endpoint lives on
            # TCP: OPTIONS on a stream
            reader, writer = await asyncio.open_connection(*pbx.address)
            options = register(port=port, call_id="tcp-1", transport="TCP")
            options.method = "OPTIONS"
            options.headers.set("CSeq", "1 OPTIONS")
            writer.write(bytes(options))
            head = await reader.readuntil(b"\r\n\r\n")
            assert head.startswith(b"SIP/2.0 200 OK\r\n")
            writer.close()
        finally:
            transport.close()
            await pbx.stop()

    _run(main)


def test_port_in_use_is_reported(services: Services) -> None:
    async def main() -> None:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as busy:
            busy.bind(("127.0.0.1", 0))
            with pytest.raises(OSError):
                await start_pbx(
                    services.settings,
                    services.database,
                    port=busy.getsockname()[1],
                )

    _run(main)
