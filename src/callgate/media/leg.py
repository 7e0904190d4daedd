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
     port); that same SSRC from elsewhere is a duplicate or a spoof and is dropped. Latching
     reads the SSRC only on this slow path; the real protection against injection is the IP
     restriction above;
   - :meth:`Leg.expect` (a re-INVITE with new SDP) forgets the latch.
3. **Tap** the packet to an optional recorder (a cheap byte copy, see :mod:`.recorder`).
4. **Forward** it to the peer leg's phone through the peer's socket, unless the peer's output is
   switched to a local source (hold/announcement) or silenced. The payload is never touched; the
   header is rewritten into the peer's output stream (below).

**One output stream per leg.** What a leg sends to its phone is one RTP stream: the leg's own
random SSRC, sequence numbers that continue by one and timestamps that advance with time, whatever
the source — the peer's packets, a :class:`~callgate.media.player.Player` (music on hold,
announcements), a new peer after a transfer. Real phones (baresip 1.0) drop a stream whose SSRC
changes mid-session, so the relay never shows them a second one. Per source the rewrite is two
constant offsets (mod 2**16 and 2**32) and the leg's SSRC, written over header bytes 2-11, so the
source's own gaps, reordering and RFC 4733 events (timestamps relative to its audio) survive. A
*source switch* — another SSRC arriving, or :meth:`Leg.set_output`, :func:`link`/:func:`unlink`
announcing a new source — recomputes the offsets so that the next packet gets the last sent
sequence number + 1, the last sent timestamp + the wall time since that packet in samples (at
least one frame), and the marker bit.

I/O is injected: the asyncio layer gives each leg a ``send(data, address)`` callable (the
transport's ``sendto``) and a ``clock`` (the loop's), so the core itself opens nothing, and tests
drive two legs in memory with a fake clock. Counters are plain integers updated in place.
"""

from __future__ import annotations

import enum
import random
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass

Address = tuple[str, int]
SendFunction = Callable[[bytes | bytearray, Address], None]
Tap = Callable[["Leg", bytes], None]
Clock = Callable[[], float]

CLOCK_RATE = 8000  # G.711 (and G.722's RTP clock): samples per second of the RTP timestamp
FRAME = 160  # 20 ms at 8 kHz: the least a timestamp advances across a source switch

_SEQ_TS_SSRC = struct.Struct("!HII")  # header bytes 2-11: read, and rewritten, per packet
NO_SOURCE = -1  # not an SSRC: the next packet starts a new source


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
    source_switches: int = 0  # output stream: a new source (peer, player, new SSRC) took over

    def as_dict(self) -> dict[str, int]:
        return {name: getattr(self, name) for name in self.__slots__}


def _unbound(data: bytes | bytearray, address: Address) -> None:
    raise RuntimeError("leg has no transport")


class Leg:
    """One side of a relayed call; see the module docstring for the rules."""

    __slots__ = (
        "_last",
        "_last_time",
        "_seq_offset",
        "_source",
        "_ts_offset",
        "clock",
        "counters",
        "expected_ip",
        "latched",
        "name",
        "out_sequence",
        "out_ssrc",
        "out_timestamp",
        "output",
        "payload_type",
        "peer",
        "remote",
        "send",
        "ssrc",
        "tap",
    )

    def __init__(
        self,
        name: str = "",
        send: SendFunction = _unbound,
        *,
        clock: Clock = time.monotonic,
        ssrc: int | None = None,
        sequence: int | None = None,
        timestamp: int | None = None,
    ) -> None:
        self.name = name
        self.send = send
        self.clock = clock
        # The output stream towards this leg's phone: random SSRC and starting points (RFC 3550
        # §5.1); tests pass fixed ones.
        self.out_ssrc = random.getrandbits(32) if ssrc is None else ssrc & 0xFFFFFFFF
        self.out_sequence = random.getrandbits(16) if sequence is None else sequence & 0xFFFF
        self.out_timestamp = random.getrandbits(32) if timestamp is None else timestamp & 0xFFFFFFFF
        self._source = NO_SOURCE  # SSRC of the source being rewritten
        self._seq_offset = 0
        self._ts_offset = 0
        self._last: bytearray | None = None  # the last packet sent to the phone
        self._last_time = 0.0
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
        # Into the peer's output stream: the same source as the last packet costs two offsets and
        # one 10-byte write (this is inlined :meth:`rewrite`, the hot path).
        sequence, timestamp, ssrc = _SEQ_TS_SSRC.unpack_from(data, 2)
        if ssrc == peer._source:
            out = bytearray(data)
            _SEQ_TS_SSRC.pack_into(
                out,
                2,
                (sequence + peer._seq_offset) & 0xFFFF,
                (timestamp + peer._ts_offset) & 0xFFFFFFFF,
                peer.out_ssrc,
            )
            peer._last_time = peer.clock()
        else:
            out = peer._switch(data)
        peer._last = out
        peer.send(out, destination)
        peer_counters = peer.counters
        peer_counters.packets_out += 1
        peer_counters.bytes_out += len(data)

    def rewrite(self, data: bytes) -> bytearray:
        """An RTP packet as the next packet of the output stream (another SSRC is a switch)."""
        sequence, timestamp, ssrc = _SEQ_TS_SSRC.unpack_from(data, 2)
        if ssrc != self._source:
            out = self._switch(data)
        else:
            out = bytearray(data)
            _SEQ_TS_SSRC.pack_into(
                out,
                2,
                (sequence + self._seq_offset) & 0xFFFF,
                (timestamp + self._ts_offset) & 0xFFFFFFFF,
                self.out_ssrc,
            )
            self._last_time = self.clock()
        self._last = out
        return out

    def _switch(self, data: bytes) -> bytearray:
        # Slow path: a new source. Continue the output stream where the last packet left it.
        now = self.clock()
        last = self._last
        if last is None:
            sequence, timestamp = self.out_sequence, self.out_timestamp
        else:
            last_sequence, last_timestamp, _ = _SEQ_TS_SSRC.unpack_from(last, 2)
            advance = max(FRAME, round((now - self._last_time) * CLOCK_RATE))
            advance += max(0, self._event_duration(last) - FRAME)
            sequence = (last_sequence + 1) & 0xFFFF
            timestamp = (last_timestamp + advance) & 0xFFFFFFFF
        source_sequence, source_timestamp, source = _SEQ_TS_SSRC.unpack_from(data, 2)
        self._seq_offset = (sequence - source_sequence) & 0xFFFF
        self._ts_offset = (timestamp - source_timestamp) & 0xFFFFFFFF
        self._source = source
        self._last_time = now
        self.counters.source_switches += 1
        out = bytearray(data)
        _SEQ_TS_SSRC.pack_into(out, 2, sequence, timestamp, self.out_ssrc)
        out[1] |= 0x80  # marker: a new talkspurt starts here
        return out

    def _event_duration(self, packet: bytearray) -> int:
        """The duration of an RFC 4733 event packet (its timestamp is the event's start), else 0.

        Recognised without knowing the negotiated event payload type: a dynamic payload type other
        than the audio's, no extension, and exactly one 4-byte event after the CSRCs.
        """
        csrcs = packet[0] & 0x0F
        payload_type = packet[1] & 0x7F
        if payload_type < 96 or payload_type == self.payload_type or packet[0] & 0x30:
            return 0
        if len(packet) != 16 + 4 * csrcs:
            return 0
        return int.from_bytes(packet[14 + 4 * csrcs : 16 + 4 * csrcs], "big")

    def new_source(self) -> None:
        """The next packet sent to the phone starts a new source (a switch, see the module doc)."""
        self._source = NO_SOURCE

    def set_output(self, output: Output) -> None:
        """Switch what this leg's phone receives; the output stream continues across the switch."""
        if output is not self.output:
            self.output = output
            self._source = NO_SOURCE

    def send_local(self, data: bytes) -> None:
        """Send a locally generated RTP packet (a Player's) to this leg's phone."""
        if len(data) < 12:
            raise ValueError("a local packet must be RTP (at least 12 bytes)")
        if self.remote is None:
            self.counters.dropped_unlatched += 1
            return
        self.send(self.rewrite(data), self.remote)
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
    a.new_source()
    b.new_source()


def unlink(a: Leg) -> None:
    peer = a.peer
    a.peer = None
    a.new_source()
    if peer is not None and peer.peer is a:
        peer.peer = None
        peer.new_source()
