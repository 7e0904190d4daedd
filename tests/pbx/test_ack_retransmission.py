"""A callee whose 200 OK is retransmitted gets the same ACK again, byte for byte (RFC 3261
§13.2.2.4, §17.1.1.2): the engine keeps the ACK it built for the first 2xx of the dialog."""

from __future__ import annotations

import asyncio

from callgate.pbx.service import start_pbx
from callgate.services import Services
from callgate.sip.message import Request
from callgate.sip.parser import parse
from tests.pbx.helpers import PASSWORD
from tests.pbx.test_calls_basic import until_no_calls
from tests.pbx.test_calls_raw import Callee, in_dialog, open_pair, place_call, rtp_socket, sdp
from tests.pbx.test_calls_sip import Phone, run
from tests.support.factories import World


class Retransmitting(Callee):
    """Answers the INVITE 200 and re-sends the very same 200 datagram after each ACK, twice;
    keeps every ACK datagram as received."""

    def __init__(self, body: bytes, port: int) -> None:
        super().__init__(body, port)
        self.ok: bytes | None = None
        self.acks: list[bytes] = []
        self.acked = asyncio.Event()

    def datagram_received(self, data: bytes, addr: tuple[str | object, ...]) -> None:
        message = parse(data)
        to = (str(addr[0]), int(str(addr[1])))
        assert self.transport is not None
        if isinstance(message, Request) and message.method == "ACK":
            self.acks.append(data)
            if len(self.acks) < 3 and self.ok is not None:
                self.transport.sendto(self.ok, to)  # "our 200 was lost": retransmit it
            else:
                self.acked.set()
            self.requests.put_nowait(message)
            return
        if isinstance(message, Request) and message.method == "INVITE":
            original = self.transport.sendto

            def keep(payload: bytes, target: object = None) -> None:
                self.ok = bytes(payload)
                original(payload, target)

            self.transport.sendto = keep  # type: ignore[method-assign]
            try:
                super().datagram_received(data, addr)
            finally:
                self.transport.sendto = original  # type: ignore[method-assign]
            return
        super().datagram_received(data, addr)


def test_a_retransmitted_200_gets_the_same_ack(services: Services, world: World) -> None:
    services.phones.update_phone(world.ext101.id, password=PASSWORD)
    user, callee_user = f"{world.client.prefix}*101", f"{world.client.prefix}*102"
    media = rtp_socket()

    async def main() -> None:
        pbx = await start_pbx(services.settings, services.database, port=0)
        a_sip, phone, a_port, b_sip, callee = await open_pair(
            pbx, Phone, lambda: Retransmitting(sdp(media.getsockname()[1]), 0), callee_user
        )
        try:
            await place_call(pbx, a_sip, phone, user, a_port, "r1", sdp(media.getsockname()[1]))
            ok = await phone.final("r1", 2)
            assert ok.status == 200
            a_sip.sendto(bytes(in_dialog("ACK", ok, a_port, 2)), pbx.address)
            await asyncio.wait_for(callee.acked.wait(), 5)
            assert callee.ok is not None and b" 200 " in callee.ok.split(b"\r\n", 1)[0]
            assert len(callee.acks) == 3
            assert callee.acks[0] == callee.acks[1] == callee.acks[2]
            first = parse(callee.acks[0])
            assert isinstance(first, Request) and first.method == "ACK"
            assert first.cseq.seq == parse(callee.ok).cseq.seq

            a_sip.sendto(bytes(in_dialog("BYE", ok, a_port, 3)), pbx.address)
            assert (await phone.final("r1", 3)).status == 200
            while (await asyncio.wait_for(callee.requests.get(), 5)).method != "BYE":
                pass
            await until_no_calls(pbx)
        finally:
            a_sip.close()
            b_sip.close()
            await pbx.stop()

    try:
        run(main)
    finally:
        media.close()
