"""The relay end to end on 127.0.0.1: two real UDP sockets play the phones."""

from __future__ import annotations

from itertools import pairwise
from pathlib import Path

import pytest

from callgate.media import g711
from callgate.media.relay import MediaLeg, MediaRelay, NoPortAvailable
from callgate.media.rtp import DtmfReceiver, RtpPacket, RtpStream, dtmf_packets, parse_rtp
from callgate.media.wav import G711Audio, read_wav
from tests.media.phones import Phone, run_relay_test, until


async def call(relay: MediaRelay) -> tuple[Phone, Phone, MediaLeg, MediaLeg]:
    """Two phones bridged through two legs; each leg knows its phone from (pretend) SDP."""
    phone_a, phone_b = await Phone.open(), await Phone.open()
    leg_a, leg_b = await relay.open_leg("a"), await relay.open_leg("b")
    leg_a.expect(*phone_a.address)
    leg_b.expect(*phone_b.address)
    relay.bridge(leg_a, leg_b)
    return phone_a, phone_b, leg_a, leg_b


def frames(audio: bytes, stream: RtpStream) -> list[bytes]:
    return [stream.packet(audio[i : i + 160], 160) for i in range(0, len(audio) - 159, 160)]


def same_stream_payloads(received: list[RtpPacket], sent: list[bytes]) -> None:
    """``received`` is one RTP stream (one SSRC, seq +1, ts +160) carrying ``sent``'s payloads."""
    assert [p.payload for p in received] == [parse_rtp(d).payload for d in sent]
    assert len({p.ssrc for p in received}) == 1
    assert all((q.sequence - p.sequence) & 0xFFFF == 1 for p, q in pairwise(received))
    assert all((q.timestamp - p.timestamp) & 0xFFFFFFFF == 160 for p, q in pairwise(received))


def test_packets_arrive_both_ways_as_one_stream_per_phone() -> None:
    async def scenario(relay: MediaRelay) -> None:
        phone_a, phone_b, leg_a, leg_b = await call(relay)
        assert leg_a.local[1] % 2 == 0
        sent_a = frames(bytes(range(256)) * 10, RtpStream(0xA, 0))
        sent_b = frames(bytes(range(255, -1, -1)) * 10, RtpStream(0xB, 0))
        for packet in sent_a:
            phone_a.send(packet, leg_a.local)
        for packet in sent_b:
            phone_b.send(packet, leg_b.local)
        await phone_b.wait_for(len(sent_a))
        await phone_a.wait_for(len(sent_b))
        same_stream_payloads(phone_b.packets(), sent_a)
        same_stream_payloads(phone_a.packets(), sent_b)
        assert phone_b.packets()[0].ssrc == leg_b.core.out_ssrc != leg_a.core.out_ssrc
        # Symmetric RTP: each phone hears from the port it sends to.
        assert {src for _, src in phone_b.received} == {leg_b.local}
        assert {src for _, src in phone_a.received} == {leg_a.local}
        assert leg_a.counters.packets_in == len(sent_a) == leg_b.counters.packets_out

    run_relay_test(scenario)


def test_latching_follows_a_changed_source_port() -> None:
    async def scenario(relay: MediaRelay) -> None:
        phone_a, phone_b, leg_a, leg_b = await call(relay)
        leg_a.expect("127.0.0.1", 9)  # SDP said port 9: nobody listens there
        moved = await Phone.open()
        phone_a.send(RtpStream(1, 0).packet(b"\xff" * 160, 160), leg_a.local)
        await phone_b.wait_for(1)
        assert leg_a.remote == phone_a.address
        moved.send(RtpStream(2, 0).packet(b"\xff" * 160, 160), leg_a.local)  # new port, new SSRC
        await phone_b.wait_for(2)
        phone_b.send(RtpStream(3, 0).packet(b"\x00" * 160, 160), leg_b.local)
        await moved.wait_for(1)
        assert leg_a.remote == moved.address and leg_a.counters.relatched == 1
        assert phone_a.received == []
        moved.close()

    run_relay_test(scenario)


def test_tone_from_a_is_measured_at_b() -> None:
    async def scenario(relay: MediaRelay) -> None:
        phone_a, phone_b, leg_a, _ = await call(relay)
        tone = g711.encode(g711.tone(440, 0.5))
        for packet in frames(tone, RtpStream(7, 0)):
            phone_a.send(packet, leg_a.local)
        await phone_b.wait_for(25)
        audio = g711.decode(b"".join(p.payload for p in phone_b.packets()))
        assert g711.estimate_frequency(audio[:2000], 200, 2000) == pytest.approx(440, abs=5)

    run_relay_test(scenario)


def test_dtmf_events_pass_through() -> None:
    async def scenario(relay: MediaRelay) -> None:
        phone_a, phone_b, leg_a, _ = await call(relay)
        stream = RtpStream(9, 0)
        sent = dtmf_packets(stream, "5", 101) + dtmf_packets(stream, "#", 101)
        for packet in sent:
            phone_a.send(packet, leg_a.local)
        await phone_b.wait_for(len(sent))
        receiver = DtmfReceiver(101)
        assert [k for k in map(receiver.feed, phone_b.packets()) if k] == ["5", "#"]

    run_relay_test(scenario)


def test_hold_plays_music_to_the_held_party_then_resumes() -> None:
    async def scenario(relay: MediaRelay) -> None:
        phone_a, phone_b, leg_a, leg_b = await call(relay)
        bridge = leg_a.bridge
        assert bridge is not None
        talk = RtpStream(1, 0, sequence=60_000, timestamp=9)
        for _ in range(3):
            phone_a.send(talk.packet(b"\x22" * 160, 160), leg_a.local)
        await phone_b.wait_for(3)
        bridge.hold(leg_b, G711Audio.tone(425, seconds=0.2))  # A put B on hold
        await phone_b.wait_for(18)
        music = phone_b.packets()[3:18]
        assert music[0].marker and {p.ssrc for p in music} == {music[0].ssrc}
        assert all((q.sequence - p.sequence) & 0xFFFF == 1 for p, q in pairwise(music))
        assert all((q.timestamp - p.timestamp) & 0xFFFFFFFF == 160 for p, q in pairwise(music))
        heard = g711.decode(b"".join(p.payload for p in music))
        assert g711.goertzel_ratio(heard, 425) > 0.8
        # While held, neither side's packets are forwarded.
        phone_a.send(RtpStream(1, 0).packet(b"\x00" * 160, 160), leg_a.local)
        phone_b.send(RtpStream(2, 0).packet(b"\x00" * 160, 160), leg_b.local)
        await until(lambda: leg_a.counters.not_forwarded == 1 == leg_b.counters.not_forwarded)
        assert all(p.ssrc == music[0].ssrc for p in phone_b.packets())
        assert phone_a.received == []

        bridge.resume(leg_b)
        phone_a.send(talk.packet(b"\x11" * 160, 160), leg_a.local)
        await until(lambda: phone_b.packets()[-1].payload == b"\x11" * 160)
        assert leg_b.player_task is None
        # What B heard: one stream throughout, the peer's voice continuing the music's numbering.
        heard_b = phone_b.packets()
        assert {p.ssrc for p in heard_b} == {leg_b.core.out_ssrc}
        assert all((q.sequence - p.sequence) & 0xFFFF == 1 for p, q in pairwise(heard_b))
        assert [i for i, p in enumerate(heard_b) if p.marker] == [0, 3, len(heard_b) - 1]
        steps = [(q.timestamp - p.timestamp) & 0xFFFFFFFF for p, q in pairwise(heard_b)]
        assert all(160 <= step < 2**31 for step in steps)

    run_relay_test(scenario)


def test_recorder_writes_both_directions(tmp_path: Path) -> None:
    async def scenario(relay: MediaRelay) -> None:
        phone_a, phone_b, leg_a, leg_b = await call(relay)
        bridge = leg_a.bridge
        assert bridge is not None
        bridge.record()
        sent_a = frames(g711.encode(g711.tone(440, 0.4)), RtpStream(1, 0))
        sent_b = frames(g711.encode(g711.tone(1000, 0.4)), RtpStream(2, 0))
        for packet_a, packet_b in zip(sent_a, sent_b, strict=True):
            phone_a.send(packet_a, leg_a.local)
            phone_b.send(packet_b, leg_b.local)
        await phone_a.wait_for(len(sent_b))
        await phone_b.wait_for(len(sent_a))
        recorder = bridge.stop_recording()
        assert recorder.packets == len(sent_a) + len(sent_b)
        (tmp_path / "call.wav").write_bytes(recorder.wav("mixed"))
        wav = (tmp_path / "call.wav").read_bytes()
        assert wav[20:22] == b"\x07\x00"  # WAVE_FORMAT_MULAW
        audio = g711.decode(read_wav(wav).data)
        assert len(audio) >= 3200
        assert g711.goertzel_ratio(audio[:3200], 440) > 0.25
        assert g711.goertzel_ratio(audio[:3200], 1000) > 0.25
        first, second = recorder.tracks()
        assert g711.goertzel_ratio(g711.decode(first[:3200]), 440) > 0.9
        assert g711.goertzel_ratio(g711.decode(second[:3200]), 1000) > 0.9

    run_relay_test(scenario)


def test_relay_survives_garbage() -> None:
    async def scenario(relay: MediaRelay) -> None:
        phone_a, phone_b, leg_a, _ = await call(relay)
        rtcp = bytes.fromhex("80c8000c") + bytes(24)
        garbage = [b"x", b"\x80" * 11, b"\xff" * 200, b"INVITE sip:x SIP/2.0\r\n\r\n", rtcp]
        for data in garbage:
            phone_a.send(data, leg_a.local)
            phone_a.send(data, (leg_a.local[0], leg_a.local[1] + 1))  # the RTCP port
        phone_a.send(b"", leg_a.local)  # uvloop does not even deliver empty datagrams
        await until(lambda: leg_a.counters.dropped_invalid + leg_a.counters.dropped_rtcp == 10)
        assert leg_a.counters.dropped_rtcp == 6
        assert not leg_a.core.latched
        assert phone_b.received == []
        packet = RtpStream(1, 0).packet(b"\xff" * 160, 160)
        phone_a.send(packet, leg_a.local)
        await phone_b.wait_for(1)
        assert phone_b.received[0][0][12:] == packet[12:]

    run_relay_test(scenario)


def test_port_range_is_bounded_and_released() -> None:
    async def scenario(relay: MediaRelay) -> None:
        small = MediaRelay("127.0.0.1", relay.port_min + 100, relay.port_min + 103)
        first = await small.open_leg()
        second = await small.open_leg()
        assert {first.local[1], second.local[1]} == {small.port_min, small.port_min + 2}
        with pytest.raises(NoPortAvailable):
            await small.open_leg()
        await first.close()
        third = await small.open_leg()
        assert third.local == first.local
        await small.close()
        assert small.legs == {}

    run_relay_test(scenario)
