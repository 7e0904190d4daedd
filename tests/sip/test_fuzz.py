"""Hypothesis fuzzing of the datagram parser and the stream framer: only ParseError escapes."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from callgate.sip.message import Response
from callgate.sip.parser import ParseError, StreamFramer, can_respond, error_response, parse
from tests.sip.torture import INVALID, VALID

SEEDS = sorted({**VALID, **INVALID}.values())
FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _check(data: bytes) -> None:
    try:
        message = parse(data)
    except ParseError as exc:
        if can_respond(exc):
            assert isinstance(error_response(exc), Response)
        return
    assert parse(bytes(message)).body == message.body  # what parses must re-serialize


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(1, 8))):
        op = draw(st.integers(0, 3))
        pos = draw(st.integers(0, max(len(data) - 1, 0)))
        if op == 0 and data:
            data[pos] = draw(st.integers(0, 255))
        elif op == 1:
            data[pos:pos] = draw(
                st.sampled_from(
                    [b"\r\n", b" ", b";", b",", b'"', b"<", b":", b"%", b"\r\n ", b"\x00", b"="]
                )
            )
        elif op == 2:
            del data[pos : pos + draw(st.integers(1, 20))]
        else:
            data[pos:pos] = draw(st.binary(max_size=12))
    return bytes(data)


@FUZZ
@given(st.binary(max_size=600))
def test_random_bytes_never_crash_the_parser(data: bytes) -> None:
    _check(data)


@FUZZ
@given(mutated())
def test_mutated_torture_messages_never_crash_the_parser(data: bytes) -> None:
    _check(data)


@FUZZ
@given(mutated(), st.lists(st.integers(1, 64), min_size=1, max_size=20))
def test_stream_framer_never_raises_anything_but_parse_error(data: bytes, cuts: list[int]) -> None:
    framer = StreamFramer(max_header_bytes=4096, max_body_bytes=4096)
    pos = 0
    try:
        for size in cuts * 4:
            framer.feed(data[pos : pos + size])
            pos += size
            if pos >= len(data):
                break
    except ParseError as exc:
        assert exc.fatal
