"""The engine's SIP answers to a hand-made phone on a UDP socket: INVITE authentication (407,
403, blocked), an INVITE without offer (488), requests outside any call (481), and a failure
inside one call (no relay port) that ends that call only."""

from __future__ import annotations

import asyncio
import gc
import logging
import secrets
import socket
from collections.abc import Awaitable, Callable

import pytest
from sqlalchemy import update

from callgate.calls.repository import CallFilter
from callgate.identity.models import Extension, Status
from callgate.pbx import service as pbx_service
from callgate.pbx.b2bua import CallEngine
from callgate.pbx.service import start_pbx
from callgate.services import Services
from callgate.sip.digest import answer_challenge
from callgate.sip.headers import AuthHeader
from callgate.sip.message import Request, Response
from callgate.sip.parser import parse
from tests.pbx.helpers import PASSWORD
from tests.support.factories import World

OFFER = (
    b"v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
    b"m=audio 40000 RTP/AVP 0 101\r\na=rtpmap:101 telephone-event/8000\r\na=sendrecv\r\n"
)


class Phone(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.finals: asyncio.Queue[Response] = asyncio.Queue()

    def datagram_received(self, data: bytes, addr: tuple[str | object, ...]) -> None:
        message = parse(data)
        if isinstance(message, Response) and message.status >= 200:
            self.finals.put_nowait(message)

    async def final(self, call_id: str, cseq: int, limit: float = 5.0) -> Response:
        """The final answer to one request, skipping retransmitted answers to earlier ones
        (this phone never ACKs them)."""
        async with asyncio.timeout(limit):
            while True:
                response = await self.finals.get()
                if (response.call_id, response.cseq.seq) == (call_id, cseq):
                    return response


def invite(
    user: str,
    port: int,
    *,
    number: str = "102",
    cseq: int = 1,
    call_id: str = "inv-1",
    body: bytes = OFFER,
    authorization: str | None = None,
) -> Request:
    lines = [
        f"INVITE sip:{number}@127.0.0.1 SIP/2.0",
        f"Via: SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bK{secrets.token_hex(6)};rport",
        "Max-Forwards: 70",
        f"From: <sip:{user}@127.0.0.1>;tag=f{call_id}",
        f"To: <sip:{number}@127.0.0.1>",
        f"Call-ID: {call_id}",
        f"CSeq: {cseq} INVITE",
        f"Contact: <sip:{user}@127.0.0.1:{port}>",
        "User-Agent: test-phone",
    ]
    if authorization is not None:
        lines.append(f"Proxy-Authorization: {authorization}")
    if body:
        lines.append("Content-Type: application/sdp")
    head = "\r\n".join(lines) + f"\r\nContent-Length: {len(body)}\r\n\r\n"
    message = parse(head.encode() + body)
    assert isinstance(message, Request)
    return message


def credentials(challenge: Response, user: str, password: str, number: str = "102") -> str:
    values = challenge.headers.get_all("Proxy-Authenticate")
    header = next(AuthHeader.parse(v) for v in values if "SHA-256" in v)
    return answer_challenge(
        header,
        method="INVITE",
        uri=f"sip:{number}@127.0.0.1",
        username=user,
        password=password,
        cnonce=secrets.token_hex(8),
        nc=1,
    )


def run(main: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(asyncio.wait_for(main(), timeout=20))


async def until_no_calls(engine: CallEngine, limit: float = 5.0) -> None:
    """Poll until the engine holds no call. A call refused after it started (404) answers
    first and is cleaned up after (media closed, history row committed in a thread), so the
    engine may still hold it when the phone has its answer."""
    loop = asyncio.get_running_loop()
    end = loop.time() + limit
    while engine.calls:
        if loop.time() > end:
            raise AssertionError(f"calls left in the engine after {limit} s: {list(engine.calls)}")
        await asyncio.sleep(0.02)  # polling state that changes on its own


def test_invite_is_challenged_and_refused_with_a_wrong_password_or_when_blocked(
    services: Services, world: World
) -> None:
    services.phones.update_phone(world.ext101.id, password=PASSWORD)
    user = f"{world.client.prefix}*101"

    async def main() -> None:
        pbx = await start_pbx(services.settings, services.database, port=0)
        loop = asyncio.get_running_loop()
        transport, phone = await loop.create_datagram_endpoint(Phone, local_addr=("127.0.0.1", 0))
        port = transport.get_extra_info("sockname")[1]

        async def ask(request: Request) -> Response:
            transport.sendto(bytes(request), pbx.address)
            return await phone.final(request.call_id, request.cseq.seq)

        try:
            challenge = await ask(invite(user, port, call_id="a"))
            assert challenge.status == 407
            algorithms = [
                AuthHeader.parse(v).get("algorithm")
                for v in challenge.headers.get_all("Proxy-Authenticate")
            ]
            assert algorithms == ["SHA-256", "MD5"]
            wrong = credentials(challenge, user, "not-the-password")
            refused = await ask(invite(user, port, call_id="a", cseq=2, authorization=wrong))
            assert refused.status == 403
            # an extension that does not exist, correct credentials: 404 after authentication
            right = credentials(challenge, user, PASSWORD, number="999")
            unknown = await ask(
                invite(user, port, number="999", call_id="b", cseq=3, authorization=right)
            )
            assert unknown.status == 404
            # no SDP offer: 488; then a blocked extension: 403 with its reason
            fresh = await ask(invite(user, port, call_id="c"))
            late = await ask(
                invite(
                    user,
                    port,
                    call_id="c",
                    cseq=2,
                    body=b"",
                    authorization=credentials(fresh, user, PASSWORD),
                )
            )
            assert late.status == 488
            with services.database.write() as session:
                session.execute(
                    update(Extension)
                    .where(Extension.id == world.ext101.id)
                    .values(status=Status.BLOCKED)
                )
            fresh = await ask(invite(user, port, call_id="d"))
            blocked = await ask(
                invite(
                    user,
                    port,
                    call_id="d",
                    cseq=2,
                    authorization=credentials(fresh, user, PASSWORD),
                )
            )
            assert blocked.status == 403 and "Blocked" in blocked.reason
            assert pbx.engine is not None
            await until_no_calls(pbx.engine)
        finally:
            transport.close()
            await pbx.stop()

    run(main)


def test_start_pbx_leaves_the_garbage_collector_alone(
    services: Services, world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """gc.freeze is for the processes that run the PBX (callgate sip, serve), not start_pbx."""
    monkeypatch.setattr(pbx_service, "_heap_frozen", False)  # as in a fresh process
    frozen = gc.get_freeze_count()

    async def main() -> None:
        pbx = await start_pbx(services.settings, services.database, port=0)
        await pbx.stop()

    run(main)
    assert gc.get_freeze_count() == frozen


@pytest.mark.parametrize("method", ["BYE", "REFER", "NOTIFY"])
def test_requests_for_a_call_that_does_not_exist_get_481(
    services: Services, world: World, method: str
) -> None:
    async def main() -> None:
        pbx = await start_pbx(services.settings, services.database, port=0)
        loop = asyncio.get_running_loop()
        transport, phone = await loop.create_datagram_endpoint(Phone, local_addr=("127.0.0.1", 0))
        port = transport.get_extra_info("sockname")[1]
        try:
            request = invite("00012*101", port, body=b"")
            request.method = method
            request.headers.set("CSeq", f"5 {method}")
            request.headers.set("To", "<sip:102@127.0.0.1>;tag=nosuchdialog")
            transport.sendto(bytes(request), pbx.address)
            response = await phone.final(request.call_id, 5)
            assert response.status == 481
        finally:
            transport.close()
            await pbx.stop()

    run(main)


def _taken_port_range() -> tuple[int, list[socket.socket]]:
    """Four consecutive UDP ports (from an even one) held by this test: no relay leg fits."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.bind(("127.0.0.1", 0))
            first = int(probe.getsockname()[1]) & ~1
        if not 1024 <= first <= 65000:
            continue
        held: list[socket.socket] = []
        try:
            for port in range(first, first + 4):
                sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                held.append(sock)
                sock.bind(("127.0.0.1", port))
        except OSError:
            for sock in held:
                sock.close()
            continue
        return first, held
    raise RuntimeError("no free port range")


def test_a_failure_inside_one_call_ends_that_call_only(
    services: Services, world: World, caplog: pytest.LogCaptureFixture
) -> None:
    """No relay port free: the call fails with 500 and a history row; the engine goes on."""
    services.phones.update_phone(world.ext101.id, password=PASSWORD)
    user = f"{world.client.prefix}*101"
    first, held = _taken_port_range()
    settings = services.settings.model_copy(
        update={"rtp_port_min": first, "rtp_port_max": first + 3}
    )

    async def main() -> None:
        pbx = await start_pbx(settings, services.database, port=0)
        loop = asyncio.get_running_loop()
        transport, phone = await loop.create_datagram_endpoint(Phone, local_addr=("127.0.0.1", 0))
        port = transport.get_extra_info("sockname")[1]

        async def call(call_id: str, number: str) -> Response:
            transport.sendto(bytes(invite(user, port, call_id=call_id, number=number)), pbx.address)
            challenge = await phone.final(call_id, 1)
            auth = credentials(challenge, user, PASSWORD, number=number)
            request = invite(user, port, call_id=call_id, number=number, cseq=2, authorization=auth)
            transport.sendto(bytes(request), pbx.address)
            return await phone.final(call_id, 2)

        try:
            failed = await call("x1", "102")
            assert failed.status == 500
            for sock in held:
                sock.close()
            # the same engine still handles calls (102 is not registered: 480)
            unavailable = await call("x2", "102")
            assert unavailable.status == 480
        finally:
            transport.close()
            await pbx.stop()

    with caplog.at_level(logging.INFO, logger="callgate.sip"):
        run(main)
    page = services.calls.list(CallFilter(client_id=world.client.id), page=1, per_page=10)
    results = sorted((row.result, row.hangup_cause) for row in page.items)
    assert results == [("failed", "system_error"), ("failed", "unregistered")]
    assert any("failed" in r.getMessage() and r.exc_info for r in caplog.records)
