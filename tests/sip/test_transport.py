"""The asyncio UDP and TCP adapters on 127.0.0.1: delivery, 400 for bad requests, no crashes."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Awaitable, Callable

from callgate.sip.message import Request, Response
from callgate.sip.parser import StreamFramer, make_response, parse
from callgate.sip.transport import TcpTransport, Transport, open_udp
from tests.sip.torture import INVALID, VALID

Received = list[tuple[Request | Response, tuple[str, int]]]


async def _until(check: Callable[[], bool], limit: float = 5.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + limit
    while not check():
        assert loop.time() < deadline, "condition not met in time"
        await asyncio.sleep(0.005)


def _run(coro: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(coro())  # type: ignore[arg-type]


def test_udp_delivers_answers_400_and_survives_garbage() -> None:
    async def main() -> None:
        received: Received = []

        def handler(message: Request | Response, source: tuple[str, int], t: Transport) -> None:
            received.append((message, source))
            if isinstance(message, Request):
                t.send(make_response(message, 200), source)

        server = await open_udp("127.0.0.1", 0, handler)
        client_sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        client_sock.bind(("127.0.0.1", 0))
        client_sock.setblocking(False)
        loop = asyncio.get_running_loop()
        try:
            for junk in (b"\r\n\r\n", b"\x00\xff garbage", INVALID["insuf"]):
                client_sock.sendto(junk, server.local_address)
            client_sock.sendto(INVALID["clerr"], server.local_address)
            reply = parse(await asyncio.wait_for(loop.sock_recv(client_sock, 65535), 5))
            assert isinstance(reply, Response) and reply.status == 400
            client_sock.sendto(VALID["lwsdisp"], server.local_address)
            reply = parse(await asyncio.wait_for(loop.sock_recv(client_sock, 65535), 5))
            assert isinstance(reply, Response) and reply.status == 200
            await _until(lambda: len(received) == 1)
            assert received[0][1] == client_sock.getsockname()
        finally:
            client_sock.close()
            server.close()

    _run(main)


def test_tcp_frames_dribbled_bytes_and_closes_on_framing_errors() -> None:
    async def main() -> None:
        received: Received = []

        def handler(message: Request | Response, source: tuple[str, int], t: Transport) -> None:
            received.append((message, source))
            if isinstance(message, Request):
                t.send(make_response(message, 200), source)

        server = TcpTransport(handler)
        host, port = await server.listen("127.0.0.1", 0)
        try:
            reader, writer = await asyncio.open_connection(host, port)
            data = VALID["lwsdisp"] + VALID["wsinv"]
            for i in range(0, len(data), 50):
                writer.write(data[i : i + 50])
                await writer.drain()
            framer = StreamFramer()
            replies: list[Request | Response] = []
            while len(replies) < 2:
                chunk = await asyncio.wait_for(reader.read(4096), 5)
                assert chunk
                replies += [r for r in framer.feed(chunk) if not isinstance(r, Exception)]
            assert [r.status for r in replies if isinstance(r, Response)] == [200, 200]
            # a message without Content-Length cannot be framed: 400 then close
            writer.write(VALID["lwsdisp"].replace(b"l: 0\r\n", b""))
            rest = await asyncio.wait_for(reader.read(), 5)
            assert rest.startswith(b"SIP/2.0 400")
            writer.close()
            await _until(lambda: server.connections == 0)
            assert len(received) == 2
        finally:
            await server.close()

    _run(main)


def test_tcp_client_side_connects_on_send() -> None:
    async def main() -> None:
        got: Received = []
        server = TcpTransport(lambda m, s, t: got.append((m, s)))
        addr = await server.listen("127.0.0.1", 0)
        client_got: Received = []
        client = TcpTransport(lambda m, s, t: client_got.append((m, s)))
        try:
            client.send(parse(VALID["lwsdisp"]), addr)
            await _until(lambda: len(got) == 1)
            request = got[0][0]
            assert isinstance(request, Request)
            server.send(make_response(request, 200), got[0][1])
            await _until(lambda: len(client_got) == 1)
        finally:
            await client.close()
            await server.close()

    _run(main)
