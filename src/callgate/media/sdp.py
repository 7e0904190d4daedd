"""SDP (RFC 4566) and the offer/answer model (RFC 3264), sans-I/O, for G.711 voice calls.

The SIP engine uses it in three ways:

- :func:`parse_sdp` on the body of an INVITE, 200 or re-INVITE (raises :class:`SdpError`; the
  engine answers 400/488);
- :func:`build_offer` for the SDP Callgate sends to the callee (the relay leg's local address and
  port), and :func:`build_answer` for the SDP it answers with: it picks the codec, mirrors the
  offer's telephone-event payload type, derives the direction, and rejects streams it cannot carry
  with port 0 (when ``answer.codec`` is None nothing was accepted: answer 488);
- :func:`media_target` reads what the relay leg needs from the peer's SDP: address, port, codec,
  telephone-event payload type, direction and whether it is a hold (:func:`is_hold`).

Only what a G.711 PBX needs is modelled (``c=``, ``m=``, ``a=rtpmap``, ``a=fmtp``, the four
direction attributes, ``a=ptime``); every other attribute is kept verbatim and written back.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass, field, replace


class SdpError(ValueError):
    """The SDP cannot be parsed or used."""


@dataclass(frozen=True, slots=True)
class Codec:
    """A payload format: its RTP payload type, encoding name, clock rate and optional fmtp."""

    payload_type: int
    name: str
    rate: int = 8000
    channels: int = 1
    fmtp: str | None = None

    def same_format(self, other: Codec) -> bool:
        """Equal encoding (names compare case-insensitively, RFC 4566 §6), whatever the PT."""
        return (
            self.name.lower() == other.name.lower()
            and self.rate == other.rate
            and self.channels == other.channels
        )


PCMU = Codec(0, "PCMU")
PCMA = Codec(8, "PCMA")
TELEPHONE_EVENT = Codec(101, "telephone-event", fmtp="0-16")

# Static payload types a peer may list without an rtpmap line (RFC 3551 table 4).
STATIC_CODECS: dict[int, Codec] = {0: PCMU, 8: PCMA}


class Direction(enum.Enum):
    SENDRECV = "sendrecv"
    SENDONLY = "sendonly"
    RECVONLY = "recvonly"
    INACTIVE = "inactive"

    @property
    def sends(self) -> bool:
        return self in (Direction.SENDRECV, Direction.SENDONLY)

    @property
    def receives(self) -> bool:
        return self in (Direction.SENDRECV, Direction.RECVONLY)

    @classmethod
    def of(cls, sends: bool, receives: bool) -> Direction:
        if sends and receives:
            return cls.SENDRECV
        if sends:
            return cls.SENDONLY
        return cls.RECVONLY if receives else cls.INACTIVE


_DIRECTIONS = {d.value: d for d in Direction}


@dataclass(frozen=True, slots=True)
class Origin:
    username: str = "callgate"
    session_id: int = 0
    session_version: int = 0
    address_type: str = "IP4"
    address: str = "127.0.0.1"

    def line(self) -> str:
        return (
            f"o={self.username} {self.session_id} {self.session_version} IN "
            f"{self.address_type} {self.address}"
        )


@dataclass(frozen=True, slots=True)
class Connection:
    address: str
    address_type: str = "IP4"

    @property
    def is_null(self) -> bool:
        """``c=0.0.0.0``: the RFC 2543 way of putting a call on hold, still sent by old phones."""
        return self.address in ("0.0.0.0", "::")  # noqa: S104 - compared, never bound


@dataclass(slots=True)
class MediaDescription:
    media: str
    port: int
    proto: str
    formats: list[str]
    connection: Connection | None = None
    rtpmap: dict[int, Codec] = field(default_factory=dict)
    direction: Direction | None = None
    ptime: int | None = None
    attributes: list[tuple[str, str | None]] = field(default_factory=list)

    @property
    def payload_types(self) -> list[int]:
        return [int(f) for f in self.formats if f.isdigit()]

    @property
    def codecs(self) -> list[Codec]:
        """The listed formats in order of preference, resolved via rtpmap or static types."""
        out: list[Codec] = []
        for pt in self.payload_types:
            codec = self.rtpmap.get(pt) or STATIC_CODECS.get(pt)
            if codec is not None:
                out.append(codec)
        return out

    def lines(self) -> list[str]:
        out = [f"m={self.media} {self.port} {self.proto} {' '.join(self.formats)}"]
        if self.connection is not None:
            out.append(f"c=IN {self.connection.address_type} {self.connection.address}")
        for pt in self.payload_types:
            codec = self.rtpmap.get(pt)
            if codec is None:
                continue
            channels = f"/{codec.channels}" if codec.channels != 1 else ""
            out.append(f"a=rtpmap:{pt} {codec.name}/{codec.rate}{channels}")
            if codec.fmtp:
                out.append(f"a=fmtp:{pt} {codec.fmtp}")
        if self.ptime is not None:
            out.append(f"a=ptime:{self.ptime}")
        out.extend(f"a={n}" if v is None else f"a={n}:{v}" for n, v in self.attributes)
        if self.direction is not None:
            out.append(f"a={self.direction.value}")
        return out


@dataclass(slots=True)
class SessionDescription:
    origin: Origin = field(default_factory=Origin)
    session_name: str = "-"
    connection: Connection | None = None
    media: list[MediaDescription] = field(default_factory=list)
    direction: Direction | None = None
    attributes: list[tuple[str, str | None]] = field(default_factory=list)
    timing: str = "0 0"

    def to_bytes(self) -> bytes:
        lines = ["v=0", self.origin.line(), f"s={self.session_name}"]
        if self.connection is not None:
            lines.append(f"c=IN {self.connection.address_type} {self.connection.address}")
        lines.append(f"t={self.timing}")
        lines.extend(f"a={n}" if v is None else f"a={n}:{v}" for n, v in self.attributes)
        if self.direction is not None:
            lines.append(f"a={self.direction.value}")
        for m in self.media:
            lines.extend(m.lines())
        return ("\r\n".join(lines) + "\r\n").encode()

    def direction_of(self, media: MediaDescription) -> Direction:
        """Media-level attribute, else session-level, else sendrecv (RFC 4566 §6)."""
        return media.direction or self.direction or Direction.SENDRECV

    def connection_of(self, media: MediaDescription) -> Connection | None:
        return media.connection or self.connection


def _int(text: str, what: str) -> int:
    if not text.isdigit():
        raise SdpError(f"bad {what}: {text!r}")
    return int(text)


def _connection(value: str) -> Connection:
    parts = value.split()
    if len(parts) != 3 or parts[0] != "IN" or parts[1] not in ("IP4", "IP6"):
        raise SdpError(f"bad c= line: {value!r}")
    # Multicast TTL/count suffixes (a.b.c.d/ttl) are not used by phones; keep the address only.
    return Connection(parts[2].split("/")[0], parts[1])


def _rtpmap(value: str) -> tuple[int, Codec]:
    pt_text, _, encoding = value.partition(" ")
    parts = encoding.strip().split("/")
    if len(parts) < 2 or not parts[0]:
        raise SdpError(f"bad rtpmap: {value!r}")
    pt = _int(pt_text, "payload type")
    channels = _int(parts[2], "channels") if len(parts) > 2 else 1
    return pt, Codec(pt, parts[0], _int(parts[1], "clock rate"), channels)


def parse_sdp(data: bytes | str) -> SessionDescription:
    """Parse an SDP body. Unknown line types and attributes are tolerated and kept."""
    if isinstance(data, bytes):
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise SdpError("SDP is not UTF-8") from exc
    else:
        text = data
    session = SessionDescription()
    current: MediaDescription | None = None
    fmtps: list[tuple[MediaDescription, int, str]] = []
    seen_version = False
    for raw in text.splitlines():
        line = raw.strip()
        if not line:
            continue
        if len(line) < 2 or line[1] != "=":
            raise SdpError(f"bad SDP line: {line[:40]!r}")
        kind, value = line[0], line[2:]
        if kind == "v":
            if value != "0":
                raise SdpError("unsupported SDP version")
            seen_version = True
        elif kind == "o":
            parts = value.split()
            if len(parts) != 6:
                raise SdpError("bad o= line")
            session.origin = Origin(
                parts[0],
                _int(parts[1], "session id"),
                _int(parts[2], "version"),
                parts[4],
                parts[5],
            )
        elif kind == "s":
            session.session_name = value
        elif kind == "t":
            session.timing = value
        elif kind == "c":
            if current is None:
                session.connection = _connection(value)
            else:
                current.connection = _connection(value)
        elif kind == "m":
            parts = value.split()
            if len(parts) < 3:
                raise SdpError("bad m= line")
            port = _int(parts[1].split("/")[0], "port")
            if port > 65535:
                raise SdpError("port out of range")
            current = MediaDescription(parts[0], port, parts[2], parts[3:])
            session.media.append(current)
        elif kind == "a":
            name, sep, attr = value.partition(":")
            attr_value = attr if sep else None
            if name in _DIRECTIONS and attr_value is None:
                if current is None:
                    session.direction = _DIRECTIONS[name]
                else:
                    current.direction = _DIRECTIONS[name]
            elif current is None:
                session.attributes.append((name, attr_value))
            elif name == "rtpmap" and attr_value is not None:
                pt, codec = _rtpmap(attr_value)
                current.rtpmap[pt] = codec
            elif name == "fmtp" and attr_value is not None:
                pt_text, _, params = attr_value.partition(" ")
                fmtps.append((current, _int(pt_text, "payload type"), params.strip()))
            elif name == "ptime" and attr_value is not None:
                current.ptime = _int(attr_value.strip(), "ptime")
            else:
                current.attributes.append((name, attr_value))
        # Other line types (i=, u=, e=, b=, k=, r=, z=) do not matter to a G.711 relay.
    if not seen_version:
        raise SdpError("missing v= line")
    for media, pt, params in fmtps:
        mapped = media.rtpmap.get(pt)
        if mapped is not None:
            media.rtpmap[pt] = replace(mapped, fmtp=params)
    return session


@dataclass(frozen=True, slots=True)
class MediaTarget:
    """What a relay leg needs from a peer's SDP for its (first) audio stream."""

    address: str | None
    port: int
    codec: Codec | None
    dtmf_payload_type: int | None
    direction: Direction
    ptime: int | None
    hold: bool


def _audio(session: SessionDescription) -> MediaDescription:
    for media in session.media:
        if media.media == "audio" and media.port != 0:
            return media
    raise SdpError("no active audio stream")


def is_hold(session: SessionDescription) -> bool:
    """True when the peer puts the audio stream on hold.

    That is ``a=sendonly`` or ``a=inactive`` (RFC 3264 §8.4), or the RFC 2543 ``c=0.0.0.0``.
    """
    media = _audio(session)
    connection = session.connection_of(media)
    direction = session.direction_of(media)
    null = connection is not None and connection.is_null
    return null or direction in (Direction.SENDONLY, Direction.INACTIVE)


def media_target(session: SessionDescription) -> MediaTarget:
    """The peer's audio endpoint: where to send, which codec and DTMF PT, and hold state."""
    media = _audio(session)
    connection = session.connection_of(media)
    address = None if connection is None or connection.is_null else connection.address
    audio = [c for c in media.codecs if c.name.lower() != "telephone-event"]
    dtmf = next((c for c in media.codecs if c.name.lower() == "telephone-event"), None)
    return MediaTarget(
        address=address,
        port=media.port,
        codec=audio[0] if audio else None,
        dtmf_payload_type=dtmf.payload_type if dtmf else None,
        direction=session.direction_of(media),
        ptime=media.ptime,
        hold=is_hold(session),
    )


def build_offer(
    address: str,
    port: int,
    *,
    codecs: Sequence[Codec] = (PCMU, PCMA),
    dtmf: Codec | None = TELEPHONE_EVENT,
    direction: Direction = Direction.SENDRECV,
    ptime: int | None = 20,
    session_id: int = 0,
    session_version: int = 0,
) -> SessionDescription:
    """An SDP offer for one audio stream at ``address:port``.

    For a re-offer in the same dialog keep ``session_id`` and increase ``session_version``
    (RFC 3264 §8). Hold is ``direction=SENDONLY`` (with music on hold) or ``INACTIVE``.
    """
    formats = list(codecs) + ([dtmf] if dtmf is not None else [])
    address_type = "IP6" if ":" in address else "IP4"
    media = MediaDescription(
        media="audio",
        port=port,
        proto="RTP/AVP",
        formats=[str(c.payload_type) for c in formats],
        rtpmap={c.payload_type: c for c in formats},
        direction=direction,
        ptime=ptime,
    )
    return SessionDescription(
        origin=Origin("callgate", session_id, session_version, address_type, address),
        connection=Connection(address, address_type),
        media=[media],
    )


@dataclass(frozen=True, slots=True)
class Answer:
    """The answer SDP and what was agreed; ``codec`` None means no stream accepted (488)."""

    sdp: SessionDescription
    codec: Codec | None
    dtmf: Codec | None
    direction: Direction


def build_answer(
    offer: SessionDescription,
    address: str,
    port: int,
    *,
    codecs: Sequence[Codec] = (PCMU, PCMA),
    dtmf: Codec | None = TELEPHONE_EVENT,
    direction: Direction = Direction.SENDRECV,
    prefer: str = "offer",
    session_id: int = 0,
    session_version: int = 0,
) -> Answer:
    """Answer ``offer`` with one accepted audio stream at ``address:port`` (RFC 3264 §6).

    The codec is the first common one in the offerer's order (``prefer="offer"``) or in ours
    (``prefer="local"``); its payload type and the telephone-event one are the offer's numbers.
    ``direction`` is what we want; the answer's is its intersection with the offer's, seen from
    our side (offer sendonly -> recvonly). Every other m-line is rejected with port 0.
    """
    if prefer not in ("offer", "local"):
        raise ValueError("prefer must be 'offer' or 'local'")
    answer_media: list[MediaDescription] = []
    chosen: Codec | None = None
    chosen_dtmf: Codec | None = None
    agreed = Direction.INACTIVE
    address_type = "IP6" if ":" in address else "IP4"
    for media in offer.media:
        usable = chosen is None and media.media == "audio" and media.port != 0
        usable = usable and media.proto.upper() in ("RTP/AVP", "RTP/AVPF")
        offered = media.codecs if usable else []
        common: list[Codec] = []
        if prefer == "offer":
            common = [c for c in offered if any(c.same_format(mine) for mine in codecs)]
        else:
            common = [o for mine in codecs for o in offered if o.same_format(mine)]
        if not common:
            answer_media.append(MediaDescription(media.media, 0, media.proto, media.formats[:1]))
            continue
        chosen = common[0]
        if dtmf is not None:
            chosen_dtmf = next((c for c in offered if c.same_format(dtmf)), None)
        if chosen_dtmf is not None and dtmf is not None and chosen_dtmf.fmtp is None:
            chosen_dtmf = replace(chosen_dtmf, fmtp=dtmf.fmtp)
        theirs = offer.direction_of(media)
        agreed = Direction.of(
            sends=direction.sends and theirs.receives,
            receives=direction.receives and theirs.sends,
        )
        formats = [chosen] + ([chosen_dtmf] if chosen_dtmf is not None else [])
        answer_media.append(
            MediaDescription(
                media="audio",
                port=port,
                proto=media.proto,
                formats=[str(c.payload_type) for c in formats],
                rtpmap={c.payload_type: c for c in formats},
                direction=agreed,
                ptime=media.ptime or 20,
            )
        )
    sdp = SessionDescription(
        origin=Origin("callgate", session_id, session_version, address_type, address),
        connection=Connection(address, address_type),
        media=answer_media,
    )
    return Answer(sdp, chosen, chosen_dtmf, agreed)
