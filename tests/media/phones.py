"""Test phones: real UDP sockets on 127.0.0.1 driven by the test's event loop, and a runner.

A :class:`Phone` sends whatever bytes the test gives it and keeps every datagram it receives;
tests wait for arrivals with :meth:`Phone.wait_for` (an event and a deadline, never a sleep).
:func:`run_relay_test` runs a scenario against a fresh relay on uvloop and fails the test if the
loop saw any exception (a relay callback that raised).
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from typing import Any, cast

from callgate.media import relay as relay_module
from callgate.media.leg import Address
from callgate.media.relay import MediaRelay
from callgate.media.rtp import RtpPacket, parse_rtp


class Phone(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.received: list[tuple[bytes, Address]] = []
        self.transport: asyncio.DatagramTransport | None = None
        self._arrived = asyncio.Event()

    @classmethod
    async def open(cls) -> Phone:
        loop = asyncio.get_running_loop()
        transport, phone = await loop.create_datagram_endpoint(cls, local_addr=("127.0.0.1", 0))
        phone.transport = transport
        return phone

    @property
    def address(self) -> Address:
        assert self.transport is not None
        host, port = self.transport.get_extra_info("sockname")[:2]
        return (str(host), int(port))

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's UDPTransport is not a subclass of asyncio.DatagramTransport: no isinstance.
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: Address) -> None:
        self.received.append((data, addr))
        self._arrived.set()

    def send(self, data: bytes, destination: Address) -> None:
        assert self.transport is not None
        self.transport.sendto(data, destination)

    def packets(self) -> list[RtpPacket]:
        return [parse_rtp(data) for data, _ in self.received]

    async def wait_for(self, count: int, within: float = 3.0) -> None:
        """Until ``count`` datagrams have arrived; fails after ``within`` seconds."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        while len(self.received) < count:
            self._arrived.clear()
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise AssertionError(f"got {len(self.received)} of {count} datagrams in {within}s")
            try:
                await asyncio.wait_for(self._arrived.wait(), remaining)
            except TimeoutError:
                continue

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


async def until(condition: Callable[[], bool], within: float = 3.0) -> None:
    """Poll ``condition`` (e.g. a relay counter) until true; fails after ``within`` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not condition():
        if loop.time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.002)  # yields to the relay's callbacks; bounded by the deadline


def run_relay_test(scenario: Callable[[MediaRelay], Awaitable[None]]) -> None:
    errors: list[dict[str, Any]] = []

    async def main() -> None:
        asyncio.get_running_loop().set_exception_handler(lambda _loop, ctx: errors.append(ctx))
        start = random.randrange(30000, 60000, 2)
        relay = MediaRelay("127.0.0.1", start, start + 99)
        try:
            await scenario(relay)
        finally:
            await relay.close()

    relay_module.run(main())
    assert errors == []
