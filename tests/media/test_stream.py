"""One output stream per leg: SSRC, sequence numbers and timestamps across source switches.

The legs run in memory with a fake clock; each test reads what leg ``b`` sends to phone B (the
peer's packets from leg ``a``, or local packets) and checks the stream a real phone would see.
"""

from __future__ import annotations

import itertools

from hypothesis import given, settings
from hypothesis import strategies as st

from callgate.media.leg import Address, Leg, Output, link, unlink
from callgate.media.player import Player
from callgate.media.rtp import RtpPacket, RtpStream, TelephoneEvent, dtmf_packets, parse_rtp
from callgate.media.wav import G711Audio

PHONE_A: Address = ("10.0.0.1", 4000)
PHONE_B: Address = ("10.0.0.2", 5000)
PHONE_C: Address = ("10.0.0.3", 6000)
OUT_SSRC = 0x0B0B0B0B


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class Wire:
    def __init__(self) -> None:
        self.sent: list[bytes] = []

    def __call__(self, data: bytes | bytearray, address: Address) -> None:
        self.sent.append(bytes(data))

    def packets(self) -> list[RtpPacket]:
        return [parse_rtp(d) for d in self.sent]


def setup(*, sequence: int = 1000, timestamp: int = 50_000) -> tuple[Leg, Leg, Wire, Clock]:
    clock, wire_b = Clock(), Wire()
    a = Leg("a", Wire(), clock=clock)
    b = Leg("b", wire_b, clock=clock, ssrc=OUT_SSRC, sequence=sequence, timestamp=timestamp)
    a.expect(*PHONE_A)
    b.expect(*PHONE_B)
    link(a, b)
    return a, b, wire_b, clock


def talk(leg: Leg, stream: RtpStream, clock: Clock, count: int, address: Address = PHONE_A) -> None:
    """``count`` 20 ms frames from a phone, one per 20 ms of the fake clock."""
    for _ in range(count):
        leg.datagram_received(stream.packet(b"\x55" * 160, 160), address)
        clock.now += 0.02


def play(b: Leg, player: Player, clock: Clock, count: int) -> None:
    player.start(clock.now)
    for _ in range(count):
        for packet in player.due(clock.now + 1e-9):  # float sums vs the player's deadlines
            b.send_local(packet)
        clock.now += 0.02


def assert_one_stream(packets: list[RtpPacket]) -> None:
    assert {p.ssrc for p in packets} <= {OUT_SSRC}
    assert all((q.sequence - p.sequence) & 0xFFFF == 1 for p, q in itertools.pairwise(packets))
    # Non-decreasing timestamps, mod 2**32 (a step "backwards" would be >= 2**31).
    assert all(
        (q.timestamp - p.timestamp) & 0xFFFFFFFF < 2**31 for p, q in itertools.pairwise(packets)
    )


def test_peer_player_peer_is_one_stream_advancing_with_time() -> None:
    a, b, wire, clock = setup()
    peer = RtpStream(0xA, 0, sequence=40_000, timestamp=7)
    talk(a, peer, clock, 5)
    clock.now += 0.1  # 100 ms without packets, then music on hold
    b.set_output(Output.LOCAL)
    player = Player(G711Audio.tone(425, seconds=0.2), 0, ssrc=0xCAFE, sequence=9, timestamp=123_456)
    play(b, player, clock, 5)
    clock.now += 0.04
    a.datagram_received(RtpStream(0xA, 0).packet(b"x" * 160, 160), PHONE_A)  # not forwarded
    b.set_output(Output.PEER)  # resume: the peer's stream, which went on meanwhile
    peer.sequence, peer.timestamp = peer.sequence + 12, peer.timestamp + 12 * 160
    talk(a, peer, clock, 5)

    packets = wire.packets()
    assert len(packets) == 15
    assert_one_stream(packets)
    assert packets[0].sequence == 1000 and packets[0].timestamp == 50_000
    assert [i for i, p in enumerate(packets) if p.marker] == [0, 5, 10]
    steps = [(q.timestamp - p.timestamp) & 0xFFFFFFFF for p, q in itertools.pairwise(packets)]
    # Within a source the source's own steps; across a switch the wall time since the last packet:
    # 20 ms frame + 100 ms silence before the music, 20 ms frame + 40 ms before the peer again.
    assert steps == [160] * 4 + [960] + [160] * 4 + [480] + [160] * 4
    assert packets[5].payload == G711Audio.tone(425, seconds=0.2).data[:160]
    assert a.counters.not_forwarded == 1 and b.counters.source_switches == 3


def test_switch_soon_after_the_last_packet_advances_at_least_one_frame() -> None:
    a, b, wire, _ = setup()
    a.datagram_received(RtpStream(1, 0).packet(b"\x01" * 160, 160), PHONE_A)
    b.set_output(Output.LOCAL)
    b.send_local(RtpStream(2, 0, 5, 5).packet(b"\x02" * 160, 160))  # same clock instant
    first, second = wire.packets()
    assert second.sequence == first.sequence + 1 and second.timestamp == first.timestamp + 160


def test_source_gaps_and_reordering_survive_within_a_source() -> None:
    a, _, wire, _ = setup()
    sent = {n: RtpStream(7, 0, 100 + n, 160 * n).packet(bytes([n]) * 160, 160) for n in range(6)}
    for n in (0, 1, 3, 2, 5):  # 4 lost, 2 and 3 swapped
        a.datagram_received(sent[n], PHONE_A)
    packets = wire.packets()
    assert [(p.sequence - 1000) & 0xFFFF for p in packets] == [0, 1, 3, 2, 5]
    assert [(p.timestamp - 50_000) // 160 for p in packets] == [0, 1, 3, 2, 5]
    assert [p.payload[0] for p in packets] == [0, 1, 3, 2, 5]  # payloads untouched


def test_new_ssrc_from_the_peer_is_a_switch() -> None:
    a, _, wire, clock = setup()
    talk(a, RtpStream(1, 0, 500, 0), clock, 3)
    talk(a, RtpStream(2, 0, 9, 999_999), clock, 3)  # the phone restarted its stream
    packets = wire.packets()
    assert_one_stream(packets)
    assert [p.marker for p in packets] == [True, False, False, True, False, False]
    assert packets[3].timestamp - packets[2].timestamp == 160


def test_transfer_to_a_new_peer_continues_the_stream() -> None:
    a, b, wire, clock = setup()
    talk(a, RtpStream(1, 0), clock, 3)
    unlink(b)
    clock.now += 1.0  # the transfer takes a second
    c = Leg("c", Wire(), clock=clock)
    c.expect(*PHONE_C)
    link(c, b)
    talk(c, RtpStream(1, 0), clock, 3, PHONE_C)  # even the same SSRC is a new source
    packets = wire.packets()
    assert_one_stream(packets)
    assert packets[3].marker and packets[3].timestamp - packets[2].timestamp == 160 + 8000


def test_sequence_and_timestamp_wrap_around() -> None:
    a, b, wire, clock = setup(sequence=65534, timestamp=2**32 - 320)
    peer = RtpStream(1, 0, sequence=65535, timestamp=2**32 - 160)  # wraps itself, elsewhere
    talk(a, peer, clock, 4)
    b.set_output(Output.LOCAL)
    b.send_local(RtpStream(2, 0, 65535, 2**32 - 1).packet(b"\x00" * 160, 160))
    b.send_local(RtpStream(2, 0, 0, 159).packet(b"\x00" * 160, 160))
    packets = wire.packets()
    assert [p.sequence for p in packets] == [65534, 65535, 0, 1, 2, 3]
    assert [p.timestamp for p in packets] == [2**32 - 320, 2**32 - 160, 0, 160, 320, 480]
    assert_one_stream(packets)


def test_dtmf_keeps_its_relation_to_the_audio_of_its_source() -> None:
    a, _, wire, clock = setup()
    peer = RtpStream(3, 0, 10, 8000)
    talk(a, peer, clock, 2)
    sent = [*dtmf_packets(peer, "5", 101), peer.packet(b"\x55" * 160, 160)]
    for packet in sent:
        a.datagram_received(packet, PHONE_A)
    inputs = [RtpStream(3, 0, 11, 8160).packet(b"\x55" * 160, 160), *sent]
    packets = wire.packets()[1:]
    assert len(packets) == len(inputs)
    for original, rewritten in zip(map(parse_rtp, inputs), packets, strict=True):
        assert (rewritten.timestamp - original.timestamp) & 0xFFFFFFFF == 50_000 - 8000
        assert (rewritten.sequence - original.sequence) & 0xFFFF == 1000 - 10
        assert rewritten.payload == original.payload
    events = [p for p in packets if p.payload_type == 101]
    assert len({p.timestamp for p in events}) == 1 and events[0].marker


def test_switch_right_after_a_dtmf_event_starts_after_the_event() -> None:
    a, b, wire, clock = setup()
    peer = RtpStream(3, 0, 10, 0)
    talk(a, peer, clock, 1)
    for packet in dtmf_packets(peer, "#", 101, duration_ms=200):
        a.datagram_received(packet, PHONE_A)
    event = wire.packets()[-1]
    assert TelephoneEvent.parse(event.payload).duration == 1600
    b.set_output(Output.LOCAL)
    b.send_local(RtpStream(9, 0).packet(b"\x00" * 160, 160))
    music = wire.packets()[-1]
    assert music.marker and music.sequence == event.sequence + 1
    assert music.timestamp - event.timestamp >= 1600  # not inside the event's duration


def test_local_packets_must_be_rtp() -> None:
    _, b, _, _ = setup()
    try:
        b.send_local(b"short")
    except ValueError as error:
        assert "RTP" in str(error)
    else:
        raise AssertionError("a 5-byte local packet was accepted")


@settings(deadline=None, max_examples=60)
@given(
    st.integers(0, 0xFFFF),
    st.integers(0, 0xFFFFFFFF),
    st.lists(
        st.tuples(
            st.sampled_from(["peer", "local", "hold", "new-ssrc"]),
            st.integers(1, 8),  # packets from the source
            st.floats(0.0, 3.0),  # seconds before it starts
            st.integers(0, 0xFFFF),
            st.integers(0, 0xFFFFFFFF),
        ),
        max_size=12,
    ),
)
def test_any_sequence_of_switches_is_one_continuous_stream(
    sequence: int,
    timestamp: int,
    script: list[tuple[str, int, float, int, int]],
) -> None:
    a, b, wire, clock = setup(sequence=sequence, timestamp=timestamp)
    ssrcs = itertools.count(100)
    peer = RtpStream(next(ssrcs), 0)
    for kind, count, pause, seq, ts in script:
        clock.now += pause
        if kind == "hold":
            b.set_output(Output.SILENT)
            continue
        if kind == "local":
            b.set_output(Output.LOCAL)
            source = RtpStream(next(ssrcs), 0, seq, ts)
            for _ in range(count):
                b.send_local(source.packet(b"\x01" * 160, 160))
                clock.now += 0.02
            continue
        b.set_output(Output.PEER)
        if kind == "new-ssrc":
            peer = RtpStream(next(ssrcs), 0, seq, ts)
        talk(a, peer, clock, count)
    packets = wire.packets()
    assert_one_stream(packets)
    if packets:
        assert packets[0].sequence == sequence and packets[0].timestamp == timestamp
