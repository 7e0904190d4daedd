"""RTP (RFC 3550) and telephone-event (RFC 4733) packets, sans-I/O: bytes in, values out.

What the relay needs per packet is deliberately tiny and lives in :func:`classify` (version and
RFC 5761 demultiplexing on the first two bytes) and :func:`ssrc_of`; everything else here parses
or builds whole packets and is used off the hot path:

- :func:`parse_rtp` / :meth:`RtpPacket.to_bytes` — the full fixed header, CSRC list, header
  extension and padding, for the recorder, tests and diagnostics;
- :class:`TelephoneEvent` — the 4-byte RFC 4733 payload (event, end bit, volume, duration);
- :class:`RtpStream` — a sender's state (SSRC, sequence number, timestamp) that turns payloads into
  packets; the relay's :class:`~callgate.media.relay.Player` and :func:`dtmf_packets` use it;
- :class:`DtmfReceiver` — collapses the redundant packets of RFC 4733 into one key per event.

RTCP decision: Callgate anchors media as a B2BUA and may replace a leg's audio by a local source
(music on hold, announcements), so the peer's RTCP reports would describe a stream the far end is
not receiving. The relay therefore *recognises* RTCP (on the odd port of each pair, or multiplexed
on the RTP port per RFC 5761) and *drops* it, counting it per leg. Phones keep working without
receiving RTCP (it is informational; baresip and SIPp do not require it).
"""

from __future__ import annotations

import enum
import struct
from dataclasses import dataclass, field

RTP_VERSION = 2
HEADER_SIZE = 12

_FIXED = struct.Struct("!BBHII")
_EVENT = struct.Struct("!BBH")


class RtpError(ValueError):
    """A datagram that is not a well-formed RTP packet (or telephone-event payload)."""


class PacketKind(enum.Enum):
    RTP = "rtp"
    RTCP = "rtcp"
    INVALID = "invalid"


def classify(data: bytes) -> PacketKind:
    """RTP, RTCP or neither, from the first two bytes only (RFC 3550 §5.1, RFC 5761 §4).

    RTCP packet types 192-223 occupy the byte where RTP keeps marker+PT; RTP payload types 64-95
    are therefore never used by RTP and the two can share a port.
    """
    if len(data) < HEADER_SIZE and not (len(data) >= 8 and 192 <= data[1] <= 223):
        return PacketKind.INVALID
    if data[0] >> 6 != RTP_VERSION:
        return PacketKind.INVALID
    if 192 <= data[1] <= 223:
        return PacketKind.RTCP
    return PacketKind.RTP


def ssrc_of(data: bytes) -> int:
    """The SSRC of an RTP packet already classified as RTP."""
    return int.from_bytes(data[8:12], "big")


@dataclass(frozen=True, slots=True)
class RtpExtension:
    """A header extension (RFC 3550 §5.3.1): a 16-bit profile value and 32-bit-aligned data."""

    profile: int
    data: bytes


@dataclass(frozen=True, slots=True)
class RtpPacket:
    """One RTP packet. ``padding`` is the number of padding bytes (0 when the P bit is clear)."""

    payload_type: int
    sequence: int
    timestamp: int
    ssrc: int
    payload: bytes = b""
    marker: bool = False
    csrcs: tuple[int, ...] = ()
    extension: RtpExtension | None = None
    padding: int = 0

    def to_bytes(self) -> bytes:
        if not 0 <= self.payload_type <= 127:
            raise RtpError("payload type out of range")
        if len(self.csrcs) > 15:
            raise RtpError("at most 15 CSRCs")
        if not 0 <= self.padding <= 255:
            raise RtpError("padding length out of range")
        first = (RTP_VERSION << 6) | len(self.csrcs)
        if self.padding:
            first |= 0x20
        if self.extension is not None:
            first |= 0x10
        second = (0x80 if self.marker else 0) | self.payload_type
        parts = [
            _FIXED.pack(
                first,
                second,
                self.sequence & 0xFFFF,
                self.timestamp & 0xFFFFFFFF,
                self.ssrc & 0xFFFFFFFF,
            )
        ]
        parts.extend(c.to_bytes(4, "big") for c in self.csrcs)
        if self.extension is not None:
            ext = self.extension
            if len(ext.data) % 4:
                raise RtpError("extension data must be a multiple of 4 bytes")
            parts.append(struct.pack("!HH", ext.profile, len(ext.data) // 4) + ext.data)
        parts.append(self.payload)
        if self.padding:
            parts.append(bytes(self.padding - 1) + bytes([self.padding]))
        return b"".join(parts)


def parse_rtp(data: bytes) -> RtpPacket:
    """Parse a whole RTP packet; raises :class:`RtpError` on anything malformed."""
    if len(data) < HEADER_SIZE:
        raise RtpError("shorter than the RTP fixed header")
    first, second, sequence, timestamp, ssrc = _FIXED.unpack_from(data)
    if first >> 6 != RTP_VERSION:
        raise RtpError("not RTP version 2")
    if 192 <= second <= 223:
        raise RtpError("an RTCP packet")
    offset = HEADER_SIZE
    csrc_count = first & 0x0F
    end = len(data)
    if offset + 4 * csrc_count > end:
        raise RtpError("CSRC list runs past the end")
    csrcs = tuple(
        int.from_bytes(data[offset + 4 * i : offset + 4 * i + 4], "big") for i in range(csrc_count)
    )
    offset += 4 * csrc_count
    extension = None
    if first & 0x10:
        if offset + 4 > end:
            raise RtpError("extension header runs past the end")
        profile, words = struct.unpack_from("!HH", data, offset)
        offset += 4
        if offset + 4 * words > end:
            raise RtpError("extension runs past the end")
        extension = RtpExtension(profile, bytes(data[offset : offset + 4 * words]))
        offset += 4 * words
    padding = 0
    if first & 0x20:
        padding = data[-1]
        if padding == 0 or offset + padding > end:
            raise RtpError("bad padding length")
        end -= padding
    return RtpPacket(
        payload_type=second & 0x7F,
        sequence=sequence,
        timestamp=timestamp,
        ssrc=ssrc,
        payload=bytes(data[offset:end]),
        marker=bool(second & 0x80),
        csrcs=csrcs,
        extension=extension,
        padding=padding,
    )


# RFC 4733 §3.2: events 0-9 are the digits, then *, #, A-D, and 16 is flash.
DTMF_KEYS = "0123456789*#ABCD"
FLASH_EVENT = 16


def key_to_event(key: str) -> int:
    """RFC 4733 event code of a DTMF key (``0-9 * # A-D``; ``!`` for flash)."""
    if key == "!":
        return FLASH_EVENT
    index = DTMF_KEYS.find(key.upper())
    if len(key) != 1 or index < 0:
        raise ValueError(f"not a DTMF key: {key!r}")
    return index


def event_to_key(event: int) -> str | None:
    if 0 <= event < len(DTMF_KEYS):
        return DTMF_KEYS[event]
    return "!" if event == FLASH_EVENT else None


@dataclass(frozen=True, slots=True)
class TelephoneEvent:
    """An RFC 4733 §2.3 event payload. ``volume`` is in -dBm0 (0-63), ``duration`` in samples."""

    event: int
    end: bool = False
    volume: int = 10
    duration: int = 0

    def to_bytes(self) -> bytes:
        if not (0 <= self.event <= 255 and 0 <= self.volume <= 63 and 0 <= self.duration <= 0xFFFF):
            raise RtpError("telephone-event field out of range")
        return _EVENT.pack(self.event, (0x80 if self.end else 0) | self.volume, self.duration)

    @classmethod
    def parse(cls, payload: bytes) -> TelephoneEvent:
        if len(payload) < 4:
            raise RtpError("telephone-event payload shorter than 4 bytes")
        event, flags, duration = _EVENT.unpack_from(payload)
        # Bit 0x40 is reserved: senders set it to 0 and receivers ignore it (RFC 4733 §2.3.4).
        return cls(event, bool(flags & 0x80), flags & 0x3F, duration)


@dataclass(slots=True)
class RtpStream:
    """The sending state of one RTP source: successive packets with increasing seq and timestamp.

    Initial values should be random (RFC 3550 §5.1); the caller supplies them so that this class
    stays deterministic in tests.
    """

    ssrc: int
    payload_type: int
    sequence: int = 0
    timestamp: int = 0
    started: bool = field(default=False)

    def packet(self, payload: bytes, samples: int, *, marker: bool = False) -> bytes:
        """The next packet carrying ``payload``; the timestamp then advances by ``samples``.

        The very first packet of the stream carries the marker bit (start of a talkspurt).
        """
        marker = marker or not self.started
        self.started = True
        data = _FIXED.pack(
            0x80,
            (0x80 if marker else 0) | self.payload_type,
            self.sequence,
            self.timestamp,
            self.ssrc,
        )
        self.sequence = (self.sequence + 1) & 0xFFFF
        self.timestamp = (self.timestamp + samples) & 0xFFFFFFFF
        return data + payload


def dtmf_packets(
    stream: RtpStream,
    key: str,
    event_payload_type: int,
    *,
    duration_ms: int = 100,
    volume: int = 10,
    ptime_ms: int = 20,
    rate: int = 8000,
) -> list[bytes]:
    """The RFC 4733 packets for one key press, to send one per ``ptime_ms``.

    All packets share the event's start timestamp; the first has the marker bit, the last three
    (sent together, as RFC 4733 §2.5.1.4 recommends for loss) have the end bit. Afterwards
    ``stream.timestamp`` is past the event, so audio may continue on the same stream.
    """
    event = key_to_event(key)
    step = rate * ptime_ms // 1000
    total = max(step, rate * duration_ms // 1000)
    start = stream.timestamp
    out: list[bytes] = []
    first = True
    for duration in range(step, total + 1, step):
        end = duration >= total
        repeats = 3 if end else 1
        payload = TelephoneEvent(event, end, volume, duration).to_bytes()
        for _ in range(repeats):
            header = _FIXED.pack(
                0x80,
                (0x80 if first else 0) | event_payload_type,
                stream.sequence,
                start,
                stream.ssrc,
            )
            stream.sequence = (stream.sequence + 1) & 0xFFFF
            out.append(header + payload)
            first = False
    stream.started = True
    stream.timestamp = (start + total) & 0xFFFFFFFF
    return out


@dataclass(slots=True)
class DtmfReceiver:
    """Turns RFC 4733 packets of one payload type into key presses, once per event.

    An event is identified by (SSRC, timestamp): the redundant updates and end packets of the same
    event share them (RFC 4733 §2.5.1), a new press gets a new timestamp.
    """

    payload_type: int
    _last: tuple[int, int] | None = None

    def feed(self, packet: RtpPacket) -> str | None:
        """The key of a newly started event, or None (other payload type, repeat, unknown event)."""
        if packet.payload_type != self.payload_type:
            return None
        try:
            event = TelephoneEvent.parse(packet.payload)
        except RtpError:
            return None
        ident = (packet.ssrc, packet.timestamp)
        if ident == self._last:
            return None
        self._last = ident
        return event_to_key(event.event)
