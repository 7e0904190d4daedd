"""SDP parsing and building, RFC 3264 answers, hold detection, and a fuzzed parser."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from callgate.media.sdp import (
    PCMA,
    PCMU,
    TELEPHONE_EVENT,
    Codec,
    Direction,
    SdpError,
    build_answer,
    build_offer,
    is_hold,
    media_target,
    parse_sdp,
)

# Shaped like baresip 1.0's offer (with its extra attributes), LF line ends on purpose.
BARESIP_OFFER = """v=0
o=- 1917263054 1510533946 IN IP4 127.0.0.1
s=-
c=IN IP4 127.0.0.1
t=0 0
a=tool:baresip 1.0.0
m=audio 10142 RTP/AVP 8 0 101
b=AS:64
a=rtpmap:8 PCMA/8000
a=rtpmap:0 PCMU/8000
a=rtpmap:101 telephone-event/8000
a=fmtp:101 0-15
a=rtcp-rsize
a=ptime:20
a=sendrecv
a=label:1
"""


def test_parse_baresip_offer() -> None:
    sdp = parse_sdp(BARESIP_OFFER.encode())
    (audio,) = sdp.media
    assert sdp.connection is not None and sdp.connection.address == "127.0.0.1"
    assert sdp.origin.session_id == 1917263054
    assert (audio.media, audio.port, audio.proto) == ("audio", 10142, "RTP/AVP")
    assert [c.name for c in audio.codecs] == ["PCMA", "PCMU", "telephone-event"]
    assert audio.rtpmap[101].fmtp == "0-15"
    assert audio.ptime == 20
    assert audio.direction is Direction.SENDRECV
    assert ("rtcp-rsize", None) in audio.attributes
    assert ("tool", "baresip 1.0.0") in sdp.attributes
    target = media_target(sdp)
    assert (target.address, target.port, target.codec, target.dtmf_payload_type) == (
        "127.0.0.1",
        10142,
        PCMA,
        101,
    )
    assert not target.hold


def test_static_payload_types_without_rtpmap() -> None:
    sdp = parse_sdp("v=0\r\nc=IN IP4 10.0.0.1\r\nm=audio 4000 RTP/AVP 0 18\r\n")
    assert media_target(sdp).codec == PCMU  # 18 (G.729) is unknown without rtpmap and skipped


def test_offer_round_trip() -> None:
    offer = build_offer("127.0.0.1", 20000, session_id=7, session_version=2)
    text = offer.to_bytes().decode()
    assert "m=audio 20000 RTP/AVP 0 8 101\r\n" in text
    assert "a=fmtp:101 0-16\r\n" in text
    assert "a=sendrecv\r\n" in text
    parsed = parse_sdp(text)
    assert parsed == offer
    assert parsed.to_bytes() == offer.to_bytes()


def test_answer_takes_offer_order_and_mirrors_dtmf_type() -> None:
    offer = parse_sdp(BARESIP_OFFER)
    answer = build_answer(offer, "127.0.0.1", 30000)
    assert answer.codec == PCMA
    assert answer.dtmf is not None and answer.dtmf.payload_type == 101
    assert answer.direction is Direction.SENDRECV
    text = answer.sdp.to_bytes().decode()
    assert "m=audio 30000 RTP/AVP 8 101\r\n" in text
    assert "c=IN IP4 127.0.0.1\r\n" in text


def test_answer_with_local_preference() -> None:
    offer = parse_sdp(BARESIP_OFFER)
    answer = build_answer(offer, "127.0.0.1", 30000, codecs=[PCMU, PCMA], prefer="local")
    assert answer.codec == PCMU


def test_dynamic_dtmf_type_of_the_offer_is_kept() -> None:
    offer = build_offer("10.0.0.2", 5004, dtmf=Codec(96, "TELEPHONE-EVENT"))
    answer = build_answer(offer, "10.0.0.1", 6000)
    assert answer.dtmf is not None and answer.dtmf.payload_type == 96
    assert answer.dtmf.fmtp == "0-16"


def test_no_common_codec_rejects_with_port_zero() -> None:
    offer = build_offer("10.0.0.2", 5004, codecs=[Codec(9, "G722")], dtmf=None)
    answer = build_answer(offer, "10.0.0.1", 6000)
    assert answer.codec is None
    assert answer.sdp.media[0].port == 0


def test_video_stream_is_rejected_audio_accepted() -> None:
    text = BARESIP_OFFER + "m=video 10144 RTP/AVP 96\na=rtpmap:96 H264/90000\n"
    answer = build_answer(parse_sdp(text), "127.0.0.1", 30000)
    assert [(m.media, m.port) for m in answer.sdp.media] == [("audio", 30000), ("video", 0)]


@pytest.mark.parametrize(
    ("offered", "wanted", "agreed"),
    [
        (Direction.SENDRECV, Direction.SENDRECV, Direction.SENDRECV),
        (Direction.SENDONLY, Direction.SENDRECV, Direction.RECVONLY),
        (Direction.RECVONLY, Direction.SENDRECV, Direction.SENDONLY),
        (Direction.INACTIVE, Direction.SENDRECV, Direction.INACTIVE),
        (Direction.SENDRECV, Direction.SENDONLY, Direction.SENDONLY),
        (Direction.SENDONLY, Direction.SENDONLY, Direction.INACTIVE),
    ],
)
def test_answer_direction(offered: Direction, wanted: Direction, agreed: Direction) -> None:
    offer = build_offer("10.0.0.2", 5004, direction=offered)
    answer = build_answer(offer, "10.0.0.1", 6000, direction=wanted)
    assert answer.direction is agreed
    assert parse_sdp(answer.sdp.to_bytes()).media[0].direction is agreed


@pytest.mark.parametrize(
    ("change", "hold"),
    [
        (("a=sendrecv", "a=sendonly"), True),
        (("a=sendrecv", "a=inactive"), True),
        (("a=sendrecv", "a=recvonly"), False),
        (("c=IN IP4 127.0.0.1", "c=IN IP4 0.0.0.0"), True),
        (("a=sendrecv\n", ""), False),  # no attribute at all means sendrecv
    ],
)
def test_hold_detection(change: tuple[str, str], hold: bool) -> None:
    sdp = parse_sdp(BARESIP_OFFER.replace(*change))
    assert is_hold(sdp) is hold
    assert media_target(sdp).hold is hold


def test_session_level_direction_applies_to_media() -> None:
    text = BARESIP_OFFER.replace("a=sendrecv\n", "").replace("t=0 0\n", "t=0 0\na=sendonly\n")
    assert is_hold(parse_sdp(text))
    assert media_target(parse_sdp(text)).direction is Direction.SENDONLY


def test_null_connection_has_no_target_address() -> None:
    sdp = parse_sdp(BARESIP_OFFER.replace("IN IP4 127.0.0.1", "IN IP4 0.0.0.0"))
    assert media_target(sdp).address is None


@pytest.mark.parametrize(
    "text",
    [
        "",
        "v=1\n",
        "o=- 1 1 IN IP4 1.2.3.4\n",  # no v=
        "v=0\nm=audio\n",
        "v=0\nm=audio 99999 RTP/AVP 0\n",
        "v=0\nc=IN IP4\n",
        "v=0\nm=audio 1 RTP/AVP 0\na=rtpmap:x PCMU/8000\n",
        "v=0\nbogus\n",
    ],
)
def test_malformed_sdp(text: str) -> None:
    with pytest.raises(SdpError):
        parse_sdp(text)


def test_no_audio_stream() -> None:
    with pytest.raises(SdpError, match="no active audio"):
        media_target(parse_sdp(BARESIP_OFFER.replace("m=audio 10142", "m=audio 0")))


sdp_lines = st.lists(
    st.sampled_from(BARESIP_OFFER.splitlines())
    | st.text(alphabet="vocmat=:/ 0123456789INP4RTAVPCMU-\r\n", max_size=30),
    max_size=20,
)


# No deadline: on a shared, loaded machine a slow example is not a failure.
@settings(deadline=None)
@given(sdp_lines, st.binary(max_size=10))
def test_parser_fuzz_raises_only_sdp_error(lines: list[str], junk: bytes) -> None:
    for data in ("\n".join(lines).encode(), "\n".join(["v=0", *lines]).encode() + junk):
        try:
            sdp = parse_sdp(data)
        except SdpError:
            continue
        # Whatever parsed must serialise and parse back to the same thing.
        assert parse_sdp(sdp.to_bytes()) == sdp


def test_answer_uses_default_dtmf_and_codecs() -> None:
    answer = build_answer(build_offer("10.0.0.2", 5004), "10.0.0.1", 6000)
    assert (answer.codec, answer.dtmf) == (PCMU, TELEPHONE_EVENT)
