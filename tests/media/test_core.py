"""The relay's sans-I/O core in memory: latching, forwarding, hold outputs, players, recorder."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from callgate.media import g711
from callgate.media.leg import Address, Leg, Output, link, unlink
from callgate.media.player import Player
from callgate.media.recorder import Recorder
from callgate.media.rtp import RtpStream, parse_rtp
from callgate.media.wav import G711Audio, WavError, g711_wav, read_wav

PHONE_A: Address = ("10.0.0.1", 4000)
PHONE_B: Address = ("10.0.0.2", 5000)


class Wire:
    """Records what a leg sends: the in-memory stand-in for its socket."""

    def __init__(self) -> None:
        self.sent: list[tuple[bytes, Address]] = []

    def __call__(self, data: bytes | bytearray, address: Address) -> None:
        self.sent.append((bytes(data), address))


def pair(*, restrict: bool = True) -> tuple[Leg, Leg, Wire, Wire]:
    wire_a, wire_b = Wire(), Wire()
    a, b = Leg("a", wire_a), Leg("b", wire_b)
    a.expect(*PHONE_A, restrict=restrict)
    b.expect(*PHONE_B, restrict=restrict)
    link(a, b)
    return a, b, wire_a, wire_b


def rtp(ssrc: int = 1, seq: int = 0, payload: bytes = b"\xff" * 160, pt: int = 0) -> bytes:
    return RtpStream(ssrc, pt, seq, seq * 160).packet(payload, 160)


def test_forwards_through_the_peer_socket_payload_untouched() -> None:
    a, b, wire_a, wire_b = pair()
    packet = rtp(payload=bytes(range(160)))
    a.datagram_received(packet, PHONE_A)
    [(sent, address)] = wire_b.sent
    assert address == PHONE_B and wire_a.sent == []
    # Only sequence, timestamp and SSRC are rewritten (into b's output stream, see test_stream).
    assert sent[12:] == packet[12:] and sent[0] == packet[0] and sent[1] == packet[1] | 0x80
    assert parse_rtp(sent).ssrc == b.out_ssrc
    assert (a.counters.packets_in, a.counters.bytes_in) == (1, len(packet))
    assert (b.counters.packets_out, b.counters.bytes_out) == (1, len(packet))
    assert a.latched and a.remote == PHONE_A


def test_latches_to_the_source_port_and_relatches_on_new_ssrc() -> None:
    a, b, wire_a, _ = pair()
    nat: Address = ("10.0.0.1", 40000)
    a.datagram_received(rtp(ssrc=1), nat)  # same IP, other port than the SDP said
    b.datagram_received(rtp(ssrc=2), PHONE_B)
    assert wire_a.sent[-1][1] == nat
    # The same SSRC from yet another port is a duplicate or a spoof: dropped.
    a.datagram_received(rtp(ssrc=1, seq=1), ("10.0.0.1", 40002))
    assert a.counters.dropped_foreign == 1
    assert a.remote == nat
    # A new SSRC from a new port: the phone restarted its stream there.
    a.datagram_received(rtp(ssrc=3), ("10.0.0.1", 40004))
    b.datagram_received(rtp(ssrc=2, seq=1), PHONE_B)
    assert wire_a.sent[-1][1] == ("10.0.0.1", 40004)
    assert a.counters.relatched == 1
    # A new SSRC from the latched address is simply accepted.
    a.datagram_received(rtp(ssrc=4), ("10.0.0.1", 40004))
    assert a.counters.packets_in == 3


def test_restricted_leg_ignores_other_ips_unrestricted_does_not() -> None:
    a, _, _, _ = pair()
    a.datagram_received(rtp(), ("192.0.2.9", 4000))
    assert a.counters.dropped_foreign == 1 and not a.latched
    a2, _, _, _ = pair(restrict=False)
    a2.datagram_received(rtp(), ("192.0.2.9", 4000))
    assert a2.remote == ("192.0.2.9", 4000)


def test_expect_again_forgets_the_latch() -> None:
    a, _, _, _ = pair()
    a.datagram_received(rtp(), PHONE_A)
    a.expect("10.0.0.1", 4100)
    assert not a.latched and a.remote == ("10.0.0.1", 4100)


@pytest.mark.parametrize(
    ("data", "counter"),
    [
        (b"", "dropped_invalid"),
        (b"\x80\x00\x00", "dropped_invalid"),
        (b"GET / HTTP/1.1\r\n\r\n", "dropped_invalid"),
        (bytes.fromhex("80c8000c") + bytes(24), "dropped_rtcp"),
    ],
)
def test_garbage_is_counted_not_forwarded(data: bytes, counter: str) -> None:
    for latched_first in (False, True):
        a, _, _, wire_b = pair()
        if latched_first:
            a.datagram_received(rtp(), PHONE_A)
            wire_b.sent.clear()
        a.datagram_received(data, PHONE_A)
        assert wire_b.sent == []
        assert getattr(a.counters, counter) == 1


def test_unlatched_peer_without_sdp_address_drops() -> None:
    a, b = Leg("a", Wire()), Leg("b", Wire())
    link(a, b)
    a.datagram_received(rtp(), PHONE_A)
    assert b.counters.dropped_unlatched == 1
    with pytest.raises(ValueError, match="already bridged"):
        link(a, Leg("c"))
    unlink(a)
    assert a.peer is None and b.peer is None


def test_output_switch_suppresses_forwarding() -> None:
    a, b, _, wire_b = pair()
    b.output = Output.LOCAL
    a.datagram_received(rtp(), PHONE_A)
    assert wire_b.sent == [] and a.counters.not_forwarded == 1
    b.send_local(rtp(ssrc=9, payload=b"x" * 160))
    assert [(parse_rtp(d).payload, address) for d, address in wire_b.sent] == [
        (b"x" * 160, PHONE_B)
    ]


def test_player_paces_frames_and_skips_when_far_behind() -> None:
    audio = G711Audio.tone(440, seconds=0.05)  # 400 samples: frames wrap around
    player = Player(audio, 0, ssrc=77, sequence=65534, timestamp=1000)
    assert player.due(0.0) == []  # not started
    player.start(10.0)
    first = [parse_rtp(p) for p in player.due(10.0)]
    assert len(first) == 1 and first[0].marker and first[0].ssrc == 77
    assert player.due(10.019) == []
    assert player.next_deadline == pytest.approx(10.02)
    later = [parse_rtp(p) for p in player.due(10.041)]
    assert [p.sequence for p in later] == [65535, 0]
    assert [p.timestamp for p in later] == [1160, 1320]
    assert not any(p.marker for p in later)
    assert b"".join(p.payload for p in first + later) == (audio.data * 2)[:480]
    skipped = [parse_rtp(p) for p in player.due(20.0)]  # the loop stalled for 10 s
    assert len(skipped) == 1
    assert skipped[0].timestamp == (1000 + 500 * 160) & 0xFFFFFFFF


def test_player_without_loop_finishes_and_pads() -> None:
    player = Player(G711Audio("alaw", b"\x01" * 200), 8, ssrc=1, loop=False)
    player.start(0.0)
    packets = [parse_rtp(p) for p in player.due(0.021)]
    assert len(packets) == 2 and not player.finished
    assert player.due(0.041) == []
    assert player.finished and player.next_deadline is None
    assert packets[1].payload == b"\x01" * 40 + b"\xd5" * 120
    with pytest.raises(ValueError, match="payload type"):
        Player(G711Audio("ulaw", b"\xff"), 101, ssrc=1)


def test_recorder_places_audio_by_timestamp_and_mixes() -> None:
    a, b, _, _ = pair()
    now = [0.0]
    recorder = Recorder(a, b, lambda: now[0])
    a.tap = b.tap = recorder
    tone_a = g711.encode(g711.tone(440, 0.2))
    tone_b = g711.encode(g711.tone(1000, 0.2), "alaw")
    stream_a, stream_b = RtpStream(1, 0), RtpStream(2, 8)
    for i in range(10):
        now[0] = i * 0.02 + (0.005 if i % 2 else 0.0)  # jitter must not move the audio
        a.datagram_received(stream_a.packet(tone_a[i * 160 : i * 160 + 160], 160), PHONE_A)
        b.datagram_received(stream_b.packet(tone_b[i * 160 : i * 160 + 160], 160), PHONE_B)
        b.datagram_received(RtpStream(2, 101).packet(b"\x01\x00\x00\xa0", 0), PHONE_B)
    first, second = recorder.tracks()
    assert first == tone_a[:1600]
    assert second == g711.convert(tone_b[:1600], "alaw", "ulaw")
    mixed = read_wav(recorder.wav("mixed")).data
    samples = g711.decode(mixed)
    assert g711.goertzel_ratio(samples, 440) > 0.3 and g711.goertzel_ratio(samples, 1000) > 0.3
    stereo = recorder.wav("stereo")
    assert stereo[20:24] == bytes([7, 0, 2, 0])  # format tag 7 (µ-law), two channels
    assert stereo.endswith(bytes(x for pair_ in zip(first, second, strict=True) for x in pair_))


def test_wav_read_and_write() -> None:
    data = g711_wav([b"\x01\x02\x03"])
    assert read_wav(data) == G711Audio("ulaw", b"\x01\x02\x03")
    assert read_wav(data, law="alaw").law == "alaw"
    pcm = g711.tone(440, 0.01)
    header = (
        b"fmt "
        + (16).to_bytes(4, "little")
        + bytes.fromhex("0100 0100 401f0000 803e0000 0200 1000")
    )
    body = pcm.tobytes()
    wav = b"RIFF" + (4 + len(header) + 8 + len(body)).to_bytes(4, "little") + b"WAVE" + header
    wav += b"data" + len(body).to_bytes(4, "little") + body
    assert read_wav(wav).data == g711.encode(pcm)
    for bad in (b"", b"RIFF\x00\x00\x00\x00WAVE", wav.replace(b"\x40\x1f", b"\x44\xac", 1)):
        with pytest.raises(WavError):
            read_wav(bad)


# No deadline: on a shared, loaded machine a slow example is not a failure.
@settings(deadline=None)
@given(
    st.lists(
        st.binary(max_size=60)
        | st.binary(min_size=12, max_size=40).map(
            lambda b: bytes([0x80 | b[0] & 0x3F, b[1] & 0x7F | 0x80 * (b[1] >> 7)]) + b[2:]
        ),
        max_size=20,
    ),
    st.sampled_from([PHONE_A, ("10.0.0.1", 4002), ("192.0.2.1", 4000)]),
)
def test_core_and_recorder_never_raise_on_arbitrary_datagrams(
    datagrams: list[bytes], source: Address
) -> None:
    a, b, _, _ = pair(restrict=False)
    recorder = Recorder(a, b, lambda: 0.0)
    a.tap = b.tap = recorder
    for data in datagrams:
        a.datagram_received(data, source)
        b.datagram_received(data, PHONE_B)
    counters = a.counters
    handled = counters.packets_in + counters.dropped_invalid + counters.dropped_rtcp
    assert handled + counters.dropped_foreign == len(datagrams)
    recorder.wav("stereo")
