"""Whole calls between hand-made UDP phones: the caller moves its media to a new port with a
re-INVITE and the relay follows (RTP checked packet by packet); early media before the answer;
the phones' codec settings; a callee with two phones (the one that only rings gets CANCEL); a
caller that never ACKs the 200 is hung up."""

from __future__ import annotations

import asyncio
import secrets
import socket
from collections.abc import Callable
from typing import TypeVar, cast

from callgate.calls.repository import CallFilter
from callgate.media.rtp import RtpStream, parse_rtp
from callgate.media.sdp import media_target, parse_sdp
from callgate.pbx.registrar import Binding
from callgate.pbx.service import RunningPbx, start_pbx
from callgate.services import Services
from callgate.sip.message import Request, Response
from callgate.sip.parser import make_response, parse
from callgate.sip.transaction import TimerConfig
from tests.pbx.helpers import PASSWORD
from tests.pbx.test_calls_basic import until_no_calls
from tests.pbx.test_calls_sip import Phone, credentials, invite, run
from tests.support.factories import World


def sdp(port: int, formats: str = "0") -> bytes:
    return (
        f"v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
        f"m=audio {port} RTP/AVP {formats}\r\na=sendrecv\r\n"
    ).encode()


class Callee(asyncio.DatagramProtocol):
    """Answers every INVITE 200 with ``body`` (or, with ``early``, 183 with ``body`` first and
    200 on :meth:`answer`) and every BYE 200; keeps the requests."""

    def __init__(self, body: bytes, port: int, *, early: bool = False) -> None:
        self.body = body
        self.port = port
        self.early = early
        self.requests: asyncio.Queue[Request] = asyncio.Queue()
        self.transport: asyncio.DatagramTransport | None = None
        self.pending: tuple[Request, tuple[str, int]] | None = None

    def _send(self, request: Request, status: int, body: bytes, to: tuple[str, int]) -> None:
        assert self.transport is not None
        kind = "application/sdp" if body else None
        response = make_response(request, status, to_tag="callee", body=body, content_type=kind)
        response.headers.add("Contact", f"<sip:102@127.0.0.1:{self.port}>")
        self.transport.sendto(bytes(response), to)

    def answer(self) -> None:
        assert self.pending is not None
        request, to = self.pending
        self._send(request, 200, self.body, to)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)  # not a subclass on 3.11

    def datagram_received(self, data: bytes, addr: tuple[str | object, ...]) -> None:
        message = parse(data)
        if not isinstance(message, Request):
            return
        self.requests.put_nowait(message)
        to = (str(addr[0]), int(str(addr[1])))
        if message.method == "INVITE" and self.early:
            self.pending = (message, to)
            self._send(message, 183, self.body, to)
        elif message.method in ("INVITE", "BYE"):
            self._send(message, 200, self.body if message.method == "INVITE" else b"", to)


P = TypeVar("P", bound=asyncio.DatagramProtocol)
C = TypeVar("C", bound="Callee")


def bind(pbx: RunningPbx, aor: str, port: int, call_id: str = "r") -> None:
    """Bind ``aor`` to a hand-made phone on 127.0.0.1:``port``, as its REGISTER would."""
    contact = f"sip:{aor}@127.0.0.1:{port}"
    binding = Binding(contact, ("127.0.0.1", port), "udp", pbx.service.clock() + 300, call_id, 1)
    pbx.service.registrar.bindings.put(aor, binding)


async def open_pair(
    pbx: RunningPbx, caller: Callable[[], P], callee: Callable[[], C], callee_user: str
) -> tuple[asyncio.DatagramTransport, P, int, asyncio.DatagramTransport, C]:
    """A caller socket and a callee socket on 127.0.0.1; the callee bound as ``callee_user``."""
    loop = asyncio.get_running_loop()
    a_sip, phone = await loop.create_datagram_endpoint(caller, local_addr=("127.0.0.1", 0))
    b_sip, far_phone = await loop.create_datagram_endpoint(callee, local_addr=("127.0.0.1", 0))
    far_phone.port = b_sip.get_extra_info("sockname")[1]
    bind(pbx, callee_user, far_phone.port)
    return a_sip, phone, a_sip.get_extra_info("sockname")[1], b_sip, far_phone


async def place_call(
    pbx: RunningPbx,
    a_sip: asyncio.DatagramTransport,
    phone: Phone,
    user: str,
    a_port: int,
    call_id: str,
    offer: bytes,
) -> None:
    """INVITE, read the 407, INVITE again with digest credentials (CSeq 2)."""
    a_sip.sendto(bytes(invite(user, a_port, call_id=call_id, body=offer)), pbx.address)
    auth = credentials(await phone.final(call_id, 1), user, PASSWORD)
    request = invite(user, a_port, call_id=call_id, cseq=2, body=offer, authorization=auth)
    a_sip.sendto(bytes(request), pbx.address)


def in_dialog(method: str, ok: Response, port: int, cseq: int, body: bytes = b"") -> Request:
    """The caller's ACK/re-INVITE/BYE in the dialog the 200 ``ok`` made."""
    target = ok.contacts[0].uri
    lines = [
        f"{method} {target} SIP/2.0",
        f"Via: SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bK{secrets.token_hex(6)};rport",
        "Max-Forwards: 70",
        f"From: {ok.headers.get('From')}",
        f"To: {ok.headers.get('To')}",
        f"Call-ID: {ok.call_id}",
        f"CSeq: {cseq} {method}",
        f"Contact: <sip:101@127.0.0.1:{port}>",
    ]
    if body:
        lines.append("Content-Type: application/sdp")
    head = "\r\n".join(lines) + f"\r\nContent-Length: {len(body)}\r\n\r\n"
    message = parse(head.encode() + body)
    assert isinstance(message, Request)
    return message


def rtp_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.setblocking(False)
    return sock


async def payload_at(sock: socket.socket, limit: float = 3.0) -> bytes:
    """The payload of the next RTP packet ``sock`` receives (the relay may rewrite headers)."""
    loop = asyncio.get_running_loop()
    data, _ = await asyncio.wait_for(loop.sock_recvfrom(sock, 2048), limit)
    return parse_rtp(data).payload


def test_reinvite_with_a_new_media_port_moves_the_relay(services: Services, world: World) -> None:
    services.phones.update_phone(world.ext101.id, password=PASSWORD)
    services.phones.update_phone(world.ext102.id, password=PASSWORD)
    user, callee_user = f"{world.client.prefix}*101", f"{world.client.prefix}*102"
    first, second, far = rtp_socket(), rtp_socket(), rtp_socket()

    async def main() -> None:
        pbx = await start_pbx(services.settings, services.database, port=0)
        a_sip, phone, a_port, b_sip, callee = await open_pair(
            pbx, Phone, lambda: Callee(sdp(far.getsockname()[1]), 0), callee_user
        )
        try:
            await place_call(pbx, a_sip, phone, user, a_port, "m1", sdp(first.getsockname()[1]))
            to_b = await asyncio.wait_for(callee.requests.get(), 5)
            assert to_b.method == "INVITE" and to_b.uri.user == callee_user  # type: ignore[union-attr]
            relay_b = media_target(parse_sdp(to_b.body))
            ok = await phone.final("m1", 2)
            assert ok.status == 200
            relay_a = media_target(parse_sdp(ok.body))
            assert relay_a.port != relay_b.port
            a_sip.sendto(bytes(in_dialog("ACK", ok, a_port, 2)), pbx.address)

            a_stream = RtpStream(ssrc=1111, payload_type=0, sequence=10, timestamp=0)
            b_stream = RtpStream(ssrc=2222, payload_type=0, sequence=90, timestamp=0)
            # payloads distinct per packet, so a stale packet cannot pass for the expected one
            b_dest = (str(relay_b.address), relay_b.port)
            a_dest = (str(relay_a.address), relay_a.port)
            # both ways through the relay, payloads untouched
            packet = a_stream.packet(b"\xff" * 160, 160)
            first.sendto(packet, a_dest)
            assert await payload_at(far) == packet[12:]
            back = b_stream.packet(b"\x7f" * 160, 160)
            far.sendto(back, b_dest)
            assert await payload_at(first) == back[12:]

            # re-INVITE: the caller's media now comes from (and goes to) another port
            moved = sdp(second.getsockname()[1])
            a_sip.sendto(bytes(in_dialog("INVITE", ok, a_port, 3, moved)), pbx.address)
            answer = await phone.final("m1", 3)
            assert answer.status == 200
            assert media_target(parse_sdp(answer.body)).port == relay_a.port
            a_sip.sendto(bytes(in_dialog("ACK", ok, a_port, 3)), pbx.address)
            packet = a_stream.packet(b"\xfe" * 160, 160)
            second.sendto(packet, a_dest)
            assert await payload_at(far) == packet[12:]
            back = b_stream.packet(b"\x7e" * 160, 160)
            far.sendto(back, b_dest)
            assert await payload_at(second) == back[12:]

            a_sip.sendto(bytes(in_dialog("BYE", ok, a_port, 4)), pbx.address)
            assert (await phone.final("m1", 4)).status == 200
            while (bye := await asyncio.wait_for(callee.requests.get(), 5)).method != "BYE":
                pass  # the ACK of the callee's 200 comes first
            assert bye.call_id == to_b.call_id
        finally:
            a_sip.close()
            b_sip.close()
            await pbx.stop()

    try:
        run(main)
    finally:
        for sock in (first, second, far):
            sock.close()
    page = services.calls.list(CallFilter(client_id=world.client.id), page=1, per_page=10)
    assert [(r.result, r.from_username, r.to_username) for r in page.items] == [
        ("answered", "101", "102")
    ]


class Caller(Phone):
    """A caller that also keeps the requests it receives (the PBX's BYE)."""

    def __init__(self) -> None:
        super().__init__()
        self.requests: asyncio.Queue[Request] = asyncio.Queue()

    def datagram_received(self, data: bytes, addr: tuple[str | object, ...]) -> None:
        message = parse(data)
        if isinstance(message, Request):
            self.requests.put_nowait(message)
        else:
            super().datagram_received(data, addr)


def test_a_caller_that_never_acks_the_200_is_hung_up(services: Services, world: World) -> None:
    """RFC 3261 §13.3.1.4: no ACK within 64·T1 → BYE both sides (T1 shortened for the test)."""
    services.phones.update_phone(world.ext101.id, password=PASSWORD)
    user, callee_user = f"{world.client.prefix}*101", f"{world.client.prefix}*102"
    media = rtp_socket()

    async def main() -> None:
        pbx = await start_pbx(services.settings, services.database, port=0)
        pbx.endpoint.layer.timers = TimerConfig(t1=0.05, t2=0.4, t4=0.5, timer_d=1.0)
        a_sip, phone, a_port, b_sip, callee = await open_pair(
            pbx, Caller, lambda: Callee(sdp(media.getsockname()[1]), 0), callee_user
        )
        try:
            await place_call(pbx, a_sip, phone, user, a_port, "n1", sdp(media.getsockname()[1]))
            assert (await phone.final("n1", 2)).status == 200  # ... and no ACK is sent
            bye = await asyncio.wait_for(phone.requests.get(), 10)
            assert (bye.method, bye.call_id) == ("BYE", "n1")
            while (await asyncio.wait_for(callee.requests.get(), 5)).method != "BYE":
                pass  # the ACK of the callee's 200 comes first
            await until_no_calls(pbx)
        finally:
            a_sip.close()
            b_sip.close()
            await pbx.stop()

    try:
        run(main)
    finally:
        media.close()
    page = services.calls.list(CallFilter(client_id=world.client.id), page=1, per_page=10)
    assert [(r.result, r.hangup_cause) for r in page.items] == [("failed", "system_error")]


def test_early_media_from_the_callee_reaches_the_caller_before_the_answer(
    services: Services, world: World
) -> None:
    services.phones.update_phone(world.ext101.id, password=PASSWORD)
    user, callee_user = f"{world.client.prefix}*101", f"{world.client.prefix}*102"
    mine, far = rtp_socket(), rtp_socket()

    async def main() -> None:
        pbx = await start_pbx(services.settings, services.database, port=0)
        a_sip, phone, a_port, b_sip, callee = await open_pair(
            pbx, Caller, lambda: Callee(sdp(far.getsockname()[1]), 0, early=True), callee_user
        )
        try:
            await place_call(pbx, a_sip, phone, user, a_port, "e1", sdp(mine.getsockname()[1]))
            to_b = await asyncio.wait_for(callee.requests.get(), 5)
            relay_b = media_target(parse_sdp(to_b.body))
            # ringback from the far end, before any answer
            ringback = RtpStream(ssrc=3333, payload_type=0, sequence=1, timestamp=0)
            packet = ringback.packet(b"\x55" * 160, 160)
            far.sendto(packet, (str(relay_b.address), relay_b.port))
            assert await payload_at(mine) == packet[12:]
            assert pbx.engine is not None
            (live,) = pbx.engine.live_calls()
            assert live.state == "ringing"  # not answered yet: this was early media
            callee.answer()
            ok = await phone.final("e1", 2)
            assert ok.status == 200
            a_sip.sendto(bytes(in_dialog("ACK", ok, a_port, 2)), pbx.address)
            packet = ringback.packet(b"\x56" * 160, 160)
            far.sendto(packet, (str(relay_b.address), relay_b.port))
            assert await payload_at(mine) == packet[12:]
            a_sip.sendto(bytes(in_dialog("BYE", ok, a_port, 3)), pbx.address)
            assert (await phone.final("e1", 3)).status == 200
            await until_no_calls(pbx)
        finally:
            a_sip.close()
            b_sip.close()
            await pbx.stop()

    try:
        run(main)
    finally:
        mine.close()
        far.close()
    page = services.calls.list(CallFilter(client_id=world.client.id), page=1, per_page=10)
    assert [r.result for r in page.items] == ["answered"]


def test_the_phones_codec_settings_choose_the_codec_of_both_legs(
    services: Services, world: World
) -> None:
    """101 prefers PCMA, 102 allows PCMA only: a caller offering PCMU and PCMA gets PCMA and the
    callee is offered PCMA alone; a caller offering PCMU only is refused 488."""
    services.phones.update_phone(world.ext101.id, password=PASSWORD, codecs=["PCMA", "PCMU"])
    services.phones.update_phone(world.ext102.id, password=PASSWORD, codecs=["PCMA"])
    user, callee_user = f"{world.client.prefix}*101", f"{world.client.prefix}*102"
    mine, far = rtp_socket(), rtp_socket()

    async def main() -> None:
        pbx = await start_pbx(services.settings, services.database, port=0)
        a_sip, phone, a_port, b_sip, callee = await open_pair(
            pbx, Caller, lambda: Callee(sdp(far.getsockname()[1], "8"), 0), callee_user
        )

        async def call(call_id: str, formats: str) -> Response:
            offer = sdp(mine.getsockname()[1], formats)
            await place_call(pbx, a_sip, phone, user, a_port, call_id, offer)
            return await phone.final(call_id, 2)

        try:
            refused = await call("c1", "0")
            assert refused.status == 488
            ok = await call("c2", "0 8")
            assert ok.status == 200
            assert media_target(parse_sdp(ok.body)).codec.name == "PCMA"  # type: ignore[union-attr]
            to_b = await asyncio.wait_for(callee.requests.get(), 5)
            assert parse_sdp(to_b.body).media[0].formats[0] == "8"
            assert "PCMU" not in to_b.body.decode()
            a_sip.sendto(bytes(in_dialog("ACK", ok, a_port, 2)), pbx.address)
            a_sip.sendto(bytes(in_dialog("BYE", ok, a_port, 3)), pbx.address)
            assert (await phone.final("c2", 3)).status == 200
            await until_no_calls(pbx)
        finally:
            a_sip.close()
            b_sip.close()
            await pbx.stop()

    try:
        run(main)
    finally:
        mine.close()
        far.close()


class Ringing(asyncio.DatagramProtocol):
    """A second phone of the callee: rings (180) and never answers; a CANCEL gets 200 + 487."""

    def __init__(self) -> None:
        self.requests: asyncio.Queue[Request] = asyncio.Queue()
        self.transport: asyncio.DatagramTransport | None = None
        self.invite: Request | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str | object, ...]) -> None:
        message = parse(data)
        if not isinstance(message, Request) or self.transport is None:
            return
        self.requests.put_nowait(message)
        to = (str(addr[0]), int(str(addr[1])))
        if message.method == "INVITE":
            self.invite = message
            self.transport.sendto(bytes(make_response(message, 180, to_tag="second")), to)
        elif message.method == "CANCEL" and self.invite is not None:
            self.transport.sendto(bytes(make_response(message, 200, to_tag="second")), to)
            terminated = make_response(self.invite, 487, to_tag="second")
            self.transport.sendto(bytes(terminated), to)


def test_a_callee_with_two_phones_first_answer_wins_the_other_is_cancelled(
    services: Services, world: World
) -> None:
    services.phones.update_phone(world.ext101.id, password=PASSWORD)
    user, callee_user = f"{world.client.prefix}*101", f"{world.client.prefix}*102"
    mine, far = rtp_socket(), rtp_socket()

    async def main() -> None:
        pbx = await start_pbx(services.settings, services.database, port=0)
        loop = asyncio.get_running_loop()
        a_sip, phone = await loop.create_datagram_endpoint(Caller, local_addr=("127.0.0.1", 0))
        a_port = a_sip.get_extra_info("sockname")[1]
        b_sip, answering = await loop.create_datagram_endpoint(
            lambda: Callee(sdp(far.getsockname()[1]), 0), local_addr=("127.0.0.1", 0)
        )
        answering.port = b_sip.get_extra_info("sockname")[1]
        c_sip, ringing = await loop.create_datagram_endpoint(Ringing, local_addr=("127.0.0.1", 0))
        c_port = c_sip.get_extra_info("sockname")[1]
        for port in (answering.port, c_port):
            bind(pbx, callee_user, port, f"r{port}")
        try:
            await place_call(pbx, a_sip, phone, user, a_port, "f1", sdp(mine.getsockname()[1]))
            ok = await phone.final("f1", 2)
            assert ok.status == 200
            a_sip.sendto(bytes(in_dialog("ACK", ok, a_port, 2)), pbx.address)
            # the phone that only rang gets CANCEL for its own INVITE
            got = [await asyncio.wait_for(ringing.requests.get(), 5) for _ in range(2)]
            assert [r.method for r in got] == ["INVITE", "CANCEL"]
            assert got[1].branch == got[0].branch and got[1].call_id == got[0].call_id
            assert pbx.engine is not None
            (live,) = pbx.engine.live_calls()
            assert live.state == "answered"
            a_sip.sendto(bytes(in_dialog("BYE", ok, a_port, 3)), pbx.address)
            assert (await phone.final("f1", 3)).status == 200
            await until_no_calls(pbx)
        finally:
            for transport in (a_sip, b_sip, c_sip):
                transport.close()
            await pbx.stop()

    try:
        run(main)
    finally:
        mine.close()
        far.close()
