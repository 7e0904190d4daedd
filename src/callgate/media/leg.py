"""The relay's per-packet core, sans-I/O: one :class:`Leg` per call leg, latching and forwarding.

A leg is the relay's side of one phone's RTP session: a local port pair (owned by the asyncio
layer) and the phone's address. :meth:`Leg.datagram_received` is the hot path; it is given every
datagram that arrives on the leg's RTP port and does, in order:

1. **Validate** from the first two bytes: RTP version 2, at least 12 bytes. RTCP multiplexed on
   the RTP port (RFC 5761) is counted in ``dropped_rtcp``, anything else in ``dropped_invalid``.
2. **Latch** (symmetric RTP, RFC 4961: send to where packets come from). The rule:

   - if the SDP gave an address and ``restrict`` was set, packets from another IP are dropped
     (``dropped_foreign``) — ports are not restricted, NATs rewrite them;
   - the first valid packet latches the leg to its source address and SSRC; until then the leg
     sends to the SDP address (so early media flows before the phone has sent anything);
   - packets from the latched address are accepted whatever their SSRC;
   - a packet from another address is accepted, and the leg **re-latches**, only if its SSRC
     differs from the one seen when the leg latched (a phone that restarted its stream from a new
     port); that same SSRC from elsewhere is a duplicate or a spoof and is dropped. The SSRC is
     only read on this slow path, never per forwarded packet; the real protection against
     injection is the IP restriction above;
   - :meth:`Leg.expect` (a re-INVITE with new SDP) forgets the latch.
3. **Tap** the packet to an optional recorder (a cheap byte copy, see :mod:`.recorder`).
4. **Forward** it untouched to the peer leg's phone through the peer's socket, unless the peer's
   output is switched to a local source (hold/announcement) or silenced.

I/O is injected: the asyncio layer gives each leg a ``send(data, address)`` callable (the
transport's ``sendto``), so the core itself opens nothing, reads no clock, and tests drive two legs
in memory. Counters are plain integers updated in place.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass

Address = tuple[str, int]
SendFunction = Callable[[bytes, Address], None]
Tap = Callable[["Leg", bytes], None]


class Output(enum.Enum):
    """What a leg's phone receives."""

    PEER = "peer"  # the bridged peer's packets
    LOCAL = "local"  # a local Player (music on hold, announcement)
    SILENT = "silent"  # nothing (the holder of a call, a muted leg)


@dataclass(slots=True)
class LegCounters:
    packets_in: int = 0
    bytes_in: int = 0
    packets_out: int = 0
    bytes_out: int = 0
    dropped_invalid: int = 0  # too short, not RTP version 2
    dropped_rtcp: int = 0  # RTCP, on either port: terminated here (see rtp module)
    dropped_foreign: int = 0  # wrong source IP, or a known SSRC from a new address
    dropped_unlatched: int = 0  # nowhere to send yet (no SDP address, nothing received)
    not_forwarded: int = 0  # valid packets not forwarded: no peer, or the peer is on hold
    relatched: int = 0

    def as_dict(self) -> dict[str, int]:
        return {name: getattr(self, name) for name in self.__slots__}


def _unbound(data: bytes, address: Address) -> None:
    raise RuntimeError("leg has no transport")


class Leg:
    """One side of a relayed call; see the module docstring for the rules."""

    __slots__ = (
        "counters",
        "expected_ip",
        "latched",
        "name",
        "output",
        "payload_type",
        "peer",
        "remote",
        "send",
        "ssrc",
        "tap",
    )

    def __init__(self, name: str = "", send: SendFunction = _unbound) -> None:
        self.name = name
        self.send = send
        self.remote: Address | None = None
        self.latched = False
        self.ssrc: int | None = None
        self.expected_ip: str | None = None
        self.peer: Leg | None = None
        self.output = Output.PEER
        self.tap: Tap | None = None
        self.payload_type = 0
        self.counters = LegCounters()

    def expect(
        self,
        address: str | None,
        port: int | None,
        *,
        payload_type: int = 0,
        restrict: bool = True,
    ) -> None:
        """Take the phone's SDP: send there until latched; optionally accept only that IP.

        Called again on every new SDP from the phone; it forgets the previous latch.
        """
        self.remote = (address, port) if address is not None and port else None
        self.expected_ip = address if restrict else None
        self.latched = False
        self.ssrc = None
        self.payload_type = payload_type

    def _admit(self, data: bytes, address: Address) -> bool:
        # Slow path: not latched yet, or a packet from somewhere else than the latched address.
        counters = self.counters
        if len(data) < 12 or data[0] >> 6 != 2:
            counters.dropped_invalid += 1
            return False
        if 192 <= data[1] <= 223:
            counters.dropped_rtcp += 1
            return False
        if self.expected_ip is not None and address[0] != self.expected_ip:
            counters.dropped_foreign += 1
            return False
        ssrc = int.from_bytes(data[8:12], "big")
        if self.latched and address != self.remote:
            if ssrc == self.ssrc:
                counters.dropped_foreign += 1
                return False
            counters.relatched += 1
        self.remote = address
        self.latched = True
        self.ssrc = ssrc
        return True

    def datagram_received(self, data: bytes, address: Address) -> None:
        """The hot path: one datagram that arrived on this leg's RTP port from ``address``."""
        if not self.latched or address != self.remote:
            if not self._admit(data, address):
                return
        elif len(data) < 12 or data[0] >> 6 != 2 or 192 <= data[1] <= 223:
            self._admit(data, address)  # counts the reason
            return
        counters = self.counters
        counters.packets_in += 1
        counters.bytes_in += len(data)
        if self.tap is not None:
            self.tap(self, data)
        peer = self.peer
        if peer is None or peer.output is not Output.PEER:
            counters.not_forwarded += 1
            return
        destination = peer.remote
        if destination is None:
            peer.counters.dropped_unlatched += 1
            return
        peer.send(data, destination)
        peer_counters = peer.counters
        peer_counters.packets_out += 1
        peer_counters.bytes_out += len(data)

    def send_local(self, data: bytes) -> None:
        """Send a locally generated packet (a Player's) to this leg's phone."""
        if self.remote is None:
            self.counters.dropped_unlatched += 1
            return
        self.send(data, self.remote)
        self.counters.packets_out += 1
        self.counters.bytes_out += len(data)

    def rtcp_received(self, data: bytes, address: Address) -> None:
        """A datagram on the RTCP port: terminated here (see :mod:`callgate.media.rtp`)."""
        self.counters.dropped_rtcp += 1


def link(a: Leg, b: Leg) -> None:
    """Make ``a`` and ``b`` each other's peer (a two-party bridge)."""
    if a is b:
        raise ValueError("a leg cannot be bridged to itself")
    for leg in (a, b):
        if leg.peer is not None:
            raise ValueError(f"leg {leg.name!r} is already bridged")
    a.peer, b.peer = b, a


def unlink(a: Leg) -> None:
    peer = a.peer
    a.peer = None
    if peer is not None and peer.peer is a:
        peer.peer = None
