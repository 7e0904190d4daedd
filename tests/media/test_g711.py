"""G.711 tables against known values, round trips, tones, Goertzel and DTMF detection."""

from __future__ import annotations

from array import array

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from callgate.media import g711

ALL_CODES = bytes(range(256))


@pytest.mark.parametrize(
    ("law", "sample", "code"),
    # Values checked against audioop (the CPython reference) before its removal.
    [
        ("ulaw", 0, 0xFF),
        ("ulaw", -1, 0x7E),  # the reference code floors -1 >> 2 to -1
        ("ulaw", 32767, 0x80),
        ("ulaw", -32768, 0x00),
        ("ulaw", 1000, 0xCE),
        ("alaw", 0, 0xD5),
        ("alaw", -1, 0x55),
        ("alaw", 32767, 0xAA),
        ("alaw", -32768, 0x2A),
        ("alaw", 1000, 0xFA),
    ],
)
def test_encode_known_values(law: g711.Law, sample: int, code: int) -> None:
    assert g711.encode(array("h", [sample]), law) == bytes([code])


def test_decode_known_values() -> None:
    ulaw = g711.decode(bytes([0xFF, 0x7F, 0x80, 0x00, 0xCE]), "ulaw")
    assert list(ulaw) == [0, 0, 32124, -32124, 988]
    alaw = g711.decode(bytes([0xD5, 0x55, 0xAA, 0x2A]), "alaw")
    assert list(alaw) == [8, -8, 32256, -32256]


@pytest.mark.parametrize("law", ["ulaw", "alaw"])
def test_every_code_survives_decode_encode(law: g711.Law) -> None:
    decoded = g711.decode(ALL_CODES, law)
    assert g711.decode(g711.encode(decoded, law), law) == decoded


# No deadline: on a shared, loaded machine a slow example is not a failure.
@settings(deadline=None)
@given(st.lists(st.integers(-32768, 32767), max_size=200), st.sampled_from(["ulaw", "alaw"]))
def test_round_trip_error_is_bounded(samples: list[int], law: g711.Law) -> None:
    back = g711.decode(g711.encode(array("h", samples), law), law)
    assert len(back) == len(samples)
    for original, restored in zip(samples, back, strict=True):
        # Logarithmic quantisation: the step grows with the magnitude (about 1/16 of it).
        assert abs(original - restored) <= max(16, abs(original) // 15)


def test_law_conversion_keeps_values_close() -> None:
    alaw = g711.convert(ALL_CODES, "ulaw", "alaw")
    lin_u = g711.decode(ALL_CODES, "ulaw")
    lin_a = g711.decode(alaw, "alaw")
    for u, a in zip(lin_u, lin_a, strict=True):
        assert abs(u - a) <= max(16, abs(u) // 15)
    assert g711.convert(ALL_CODES, "ulaw", "ulaw") is ALL_CODES


def test_tone_measured_through_g711() -> None:
    samples = g711.decode(g711.encode(g711.tone(440, 0.25)))
    assert g711.goertzel_ratio(samples, 440) > 0.9
    assert g711.goertzel_ratio(samples, 1000) < 0.01
    assert g711.estimate_frequency(samples, 300, 600) == pytest.approx(440, abs=3)


def test_goertzel_of_silence_is_zero() -> None:
    assert g711.goertzel_ratio(array("h", bytes(320)), 440) == 0.0
    assert g711.goertzel_ratio(array("h"), 440) == 0.0


@pytest.mark.parametrize("key", list("159*0#D"))
def test_detect_dtmf(key: str) -> None:
    row = next(i for i, keys in enumerate(g711.DTMF_KEYS) if key in keys)
    col = g711.DTMF_KEYS[row].index(key)
    low = g711.tone(g711.DTMF_ROWS[row], 0.05, amplitude=0.3)
    high = g711.tone(g711.DTMF_COLUMNS[col], 0.05, amplitude=0.3)
    mixed = array("h", (a + b for a, b in zip(low, high, strict=True)))
    assert g711.detect_dtmf(g711.decode(g711.encode(mixed))) == key
    assert g711.detect_dtmf(g711.tone(440, 0.05)) is None


def test_mix_ulaw_adds_and_clips() -> None:
    tone = g711.encode(g711.tone(440, 0.1, amplitude=0.4))
    silence = bytes([g711.ULAW_SILENCE]) * len(tone)
    assert g711.mix_ulaw(tone, silence) == tone
    loud = g711.decode(g711.mix_ulaw(tone, tone))
    assert max(loud) > 0.7 * 32767 * 0.8
    full = bytes([0x80]) * 4  # +32124 each: the sum clips at full scale
    assert g711.mix_ulaw(full, full) == bytes([0x80]) * 4
    with pytest.raises(ValueError, match="same length"):
        g711.mix_ulaw(b"\xff", b"")
