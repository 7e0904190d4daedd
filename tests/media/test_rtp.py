"""RTP header and RFC 4733 telephone-event parsing and building, including a fuzzed parser."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from callgate.media.rtp import (
    DtmfReceiver,
    PacketKind,
    RtpError,
    RtpExtension,
    RtpPacket,
    RtpStream,
    TelephoneEvent,
    classify,
    dtmf_packets,
    event_to_key,
    key_to_event,
    parse_rtp,
    ssrc_of,
)

# A PCMU packet as a phone sends it: V=2, marker, PT 0, seq 0x1234, ts 0x0000A0, SSRC 0xDEADBEEF.
KNOWN = bytes.fromhex("80 80 1234 000000a0 deadbeef") + b"\xff" * 160


def test_parse_known_packet() -> None:
    packet = parse_rtp(KNOWN)
    assert packet == RtpPacket(0, 0x1234, 0xA0, 0xDEADBEEF, b"\xff" * 160, marker=True)
    assert packet.to_bytes() == KNOWN
    assert ssrc_of(KNOWN) == 0xDEADBEEF


def test_csrc_extension_and_padding() -> None:
    packet = RtpPacket(
        payload_type=8,
        sequence=65535,
        timestamp=2**32 - 1,
        ssrc=1,
        payload=b"abc",
        csrcs=(7, 8),
        extension=RtpExtension(0xBEDE, b"\x10\x01\x00\x00"),
        padding=4,
    )
    data = packet.to_bytes()
    assert data[0] == 0x80 | 0x20 | 0x10 | 2
    assert len(data) == 12 + 8 + 4 + 4 + 3 + 4
    assert data[-1] == 4
    assert parse_rtp(data) == packet


rtp_packets = st.builds(
    RtpPacket,
    payload_type=st.integers(0, 127).filter(lambda pt: not 64 <= pt <= 95),
    sequence=st.integers(0, 0xFFFF),
    timestamp=st.integers(0, 0xFFFFFFFF),
    ssrc=st.integers(0, 0xFFFFFFFF),
    payload=st.binary(max_size=64),
    marker=st.booleans(),
    csrcs=st.lists(st.integers(0, 0xFFFFFFFF), max_size=15).map(tuple),
    extension=st.none()
    | st.builds(RtpExtension, st.integers(0, 0xFFFF), st.binary(max_size=12).map(lambda b: b * 4)),
    padding=st.integers(0, 255),
)


# No deadline: on a shared, loaded machine a slow example is not a failure.
@settings(deadline=None)
@given(rtp_packets)
def test_build_parse_round_trip(packet: RtpPacket) -> None:
    data = packet.to_bytes()
    assert classify(data) is PacketKind.RTP
    assert parse_rtp(data) == packet


looks_like_rtp = st.binary(min_size=1, max_size=80).map(
    lambda b: bytes([0x80 | b[0] & 0x3F]) + b[1:]
)


@settings(deadline=None)
@given(st.binary(max_size=80) | looks_like_rtp)
def test_parser_fuzz_raises_only_rtp_error(data: bytes) -> None:
    try:
        packet = parse_rtp(data)
    except RtpError:
        return
    assert classify(data) is PacketKind.RTP
    assert len(packet.payload) <= len(data) - 12


@pytest.mark.parametrize(
    ("data", "kind"),
    [
        (b"", PacketKind.INVALID),
        (b"\x80\x00", PacketKind.INVALID),
        (b"hello world!", PacketKind.INVALID),  # version 1
        (bytes.fromhex("80c8000c") + bytes(24), PacketKind.RTCP),  # sender report
        (bytes.fromhex("81c9 0007") + bytes(28), PacketKind.RTCP),  # receiver report
        (KNOWN, PacketKind.RTP),
    ],
)
def test_classify(data: bytes, kind: PacketKind) -> None:
    assert classify(data) is kind


@pytest.mark.parametrize(
    "data",
    [
        b"\x80" * 11,
        bytes.fromhex("8f00 0000 00000000 00000000"),  # 15 CSRCs announced, none present
        bytes.fromhex("9000 0000 00000000 00000000 0000"),  # truncated extension header
        bytes.fromhex("9000 0000 00000000 00000000 0000 0009"),  # extension past the end
        bytes.fromhex("a000 0000 00000000 00000000 00"),  # zero padding length
        bytes.fromhex("a000 0000 00000000 00000000 ff"),  # padding longer than the packet
    ],
)
def test_malformed_packets(data: bytes) -> None:
    with pytest.raises(RtpError):
        parse_rtp(data)


def test_telephone_event_payload() -> None:
    event = TelephoneEvent(event=11, end=True, volume=10, duration=800)
    assert event.to_bytes() == bytes([11, 0x80 | 10]) + (800).to_bytes(2, "big")
    assert TelephoneEvent.parse(event.to_bytes()) == event
    assert TelephoneEvent.parse(bytes([5, 0x40 | 7, 0, 160])) == TelephoneEvent(5, False, 7, 160)
    with pytest.raises(RtpError):
        TelephoneEvent.parse(b"\x01\x02")
    with pytest.raises(RtpError):
        TelephoneEvent(1, volume=64).to_bytes()


def test_keys_and_events() -> None:
    assert [key_to_event(k) for k in "09*#Ad!"] == [0, 9, 10, 11, 12, 15, 16]
    assert event_to_key(11) == "#"
    assert event_to_key(16) == "!"
    assert event_to_key(40) is None
    with pytest.raises(ValueError, match="not a DTMF key"):
        key_to_event("x")


def test_stream_sequence_and_timestamp_wrap() -> None:
    stream = RtpStream(ssrc=9, payload_type=0, sequence=0xFFFF, timestamp=0xFFFFFF60)
    first = parse_rtp(stream.packet(b"\xff" * 160, 160))
    second = parse_rtp(stream.packet(b"\xff" * 160, 160))
    assert (first.sequence, first.timestamp, first.marker) == (0xFFFF, 0xFFFFFF60, True)
    assert (second.sequence, second.timestamp, second.marker) == (0, 0, False)


def test_dtmf_packets_and_receiver() -> None:
    stream = RtpStream(ssrc=5, payload_type=0, sequence=10, timestamp=1000)
    packets = [parse_rtp(p) for p in dtmf_packets(stream, "7", 101, duration_ms=100)]
    events = [TelephoneEvent.parse(p.payload) for p in packets]
    assert [p.sequence for p in packets] == list(range(10, 10 + len(packets)))
    assert {p.timestamp for p in packets} == {1000}
    assert [p.marker for p in packets] == [True] + [False] * (len(packets) - 1)
    assert [e.end for e in events] == [False] * 4 + [True] * 3
    assert events[-1].duration == 800
    assert stream.timestamp == 1800

    receiver = DtmfReceiver(101)
    keys = [receiver.feed(p) for p in packets]
    assert [k for k in keys if k] == ["7"]
    again = [parse_rtp(p) for p in dtmf_packets(stream, "7", 101)]
    assert [k for k in map(receiver.feed, again) if k] == ["7"]  # a second press of the same key
    assert receiver.feed(parse_rtp(KNOWN)) is None
