"""Thin asyncio transports: SIP over UDP and TCP on top of the sans-I/O parser.

They only move bytes. Every well-formed message goes to a handler
``handler(message, source, transport)``; malformed input never raises out of them: a request that
can still be answered gets ``400``/``505`` (built by :func:`~callgate.sip.parser.error_response`),
anything else is logged at debug level and dropped. On TCP a framing error also closes the
connection. The engine feeds what the handler receives into its
:class:`~callgate.sip.transaction.TransactionLayer` and performs the ``Send`` actions with
``transport.send(message, destination)``. Responses to a request that came over TCP are sent back on
that connection (it is keyed by the peer's address); ``send`` to an unknown TCP address opens a
connection first.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Protocol, cast

from callgate.sip.message import Request, Response
from callgate.sip.parser import ParseError, StreamFramer, can_respond, error_response, parse

log = logging.getLogger(__name__)

Addr = tuple[str, int]


class Transport(Protocol):
    reliable: bool

    def send(self, message: Request | Response | bytes, destination: Addr) -> None: ...


Handler = Callable[[Request | Response, Addr, Transport], None]


def _call(
    handler: Handler, message: Request | Response, source: Addr, transport: Transport
) -> None:
    try:
        handler(message, source, transport)
    except Exception:  # a bug above must not take the socket down with it
        log.exception("SIP handler failed on a message from %s:%s", *source)


def _encode(message: Request | Response | bytes) -> bytes:
    return message if isinstance(message, bytes) else bytes(message)


class UdpTransport(asyncio.DatagramProtocol):
    """One UDP socket; open it with :func:`open_udp`."""

    reliable = False

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self._transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # selector transports do not subclass DatagramTransport, so cast rather than check
        self._transport = cast(asyncio.DatagramTransport, transport)

    @property
    def local_address(self) -> Addr:
        assert self._transport is not None
        host, port = self._transport.get_extra_info("sockname")[:2]
        return (str(host), int(port))

    def datagram_received(self, data: bytes, addr: tuple[str | object, ...]) -> None:
        source = (str(addr[0]), int(str(addr[1])))
        if not data.strip(b"\r\n\x00 "):
            return  # RFC 5626 / NAT keep-alive
        try:
            message = parse(data)
        except ParseError as exc:
            log.debug("bad SIP datagram from %s:%s: %s", *source, exc)
            if can_respond(exc):
                self.send(error_response(exc), source)
            return
        _call(self.handler, message, source, self)

    def error_received(self, exc: Exception) -> None:
        log.debug("UDP error: %s", exc)

    def send(self, message: Request | Response | bytes, destination: Addr) -> None:
        if self._transport is None or self._transport.is_closing():
            raise ConnectionError("UDP transport is closed")
        self._transport.sendto(_encode(message), destination)

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()


async def open_udp(host: str, port: int, handler: Handler) -> UdpTransport:
    loop = asyncio.get_running_loop()
    _, protocol = await loop.create_datagram_endpoint(
        lambda: UdpTransport(handler), local_addr=(host, port)
    )
    return protocol


class _Connection(asyncio.Protocol):
    def __init__(self, owner: TcpTransport) -> None:
        self.owner = owner
        self.framer = StreamFramer(
            max_header_bytes=owner.max_header_bytes, max_body_bytes=owner.max_body_bytes
        )
        self.transport: asyncio.Transport | None = None
        self.peer: Addr = ("", 0)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        host, port = transport.get_extra_info("peername")[:2]
        self.peer = (str(host), int(port))
        self.owner._connections[self.peer] = self

    def data_received(self, data: bytes) -> None:
        pings = self.framer.pings
        try:
            items = self.framer.feed(data)
        except ParseError as exc:
            log.debug("SIP framing error from %s:%s: %s", *self.peer, exc)
            if can_respond(exc):
                self.write(bytes(error_response(exc)))
            self.close()
            return
        if self.framer.pings > pings:
            self.write(b"\r\n")  # RFC 5626 pong
        for item in items:
            if isinstance(item, ParseError):
                log.debug("bad SIP message from %s:%s: %s", *self.peer, item)
                if can_respond(item):
                    self.write(bytes(error_response(item)))
            else:
                _call(self.owner.handler, item, self.peer, self.owner)

    def write(self, data: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        if self.owner._connections.get(self.peer) is self:
            del self.owner._connections[self.peer]


class TcpTransport:
    """A TCP listener plus the connections it accepted or opened, keyed by peer address."""

    reliable = True

    def __init__(
        self,
        handler: Handler,
        *,
        max_header_bytes: int = 16 * 1024,
        max_body_bytes: int = 1024 * 1024,
    ) -> None:
        self.handler = handler
        self.max_header_bytes = max_header_bytes
        self.max_body_bytes = max_body_bytes
        self._connections: dict[Addr, _Connection] = {}
        self._server: asyncio.Server | None = None
        self._pending: set[asyncio.Task[None]] = set()

    async def listen(self, host: str, port: int) -> Addr:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(lambda: _Connection(self), host, port)
        sockname = self._server.sockets[0].getsockname()
        return (str(sockname[0]), int(sockname[1]))

    async def connect(self, destination: Addr) -> None:
        if destination in self._connections:
            return
        loop = asyncio.get_running_loop()
        _, connection = await loop.create_connection(lambda: _Connection(self), *destination)
        # key the connection by the address we dialled as well as by what the socket reports
        self._connections[destination] = connection

    def send(self, message: Request | Response | bytes, destination: Addr) -> None:
        data = _encode(message)
        connection = self._connections.get(destination)
        if connection is not None:
            connection.write(data)
            return
        task = asyncio.get_running_loop().create_task(self._connect_and_send(destination, data))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _connect_and_send(self, destination: Addr, data: bytes) -> None:
        try:
            await self.connect(destination)
        except OSError as exc:
            log.info("SIP TCP connection to %s:%s failed: %s", *destination, exc)
            return
        connection = self._connections.get(destination)
        if connection is not None:
            connection.write(data)

    @property
    def connections(self) -> int:
        return len({id(c) for c in self._connections.values()})

    async def close(self) -> None:
        for task in list(self._pending):
            task.cancel()
        for connection in list(self._connections.values()):
            connection.close()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
