"""G.711 µ-law and A-law by lookup tables, tone generation and Goertzel tone detection.

This is the only place Callgate turns audio bytes into numbers. The relay's hot path never calls
it: payloads are forwarded untouched. It is used where audio is made or checked off the hot path:

- the :class:`~callgate.media.relay.Player` encodes a tone or a 16-bit WAV once, when it is
  loaded, and then only slices the encoded bytes;
- the :class:`~callgate.media.relay.Recorder` mixes the two directions when the recording is
  finished (:data:`MIX_ULAW`), or interleaves them untouched as two channels;
- tests and the future IVR measure tones and in-band DTMF with :func:`goertzel_ratio`,
  :func:`estimate_frequency` and :func:`detect_dtmf`.

Samples are signed 16-bit integers in an ``array('h')`` at 8 kHz. Encoding is one C-level ``map``
over a 65 536-entry table (indexed by the sample's 16 bits); decoding is two ``bytes.translate``
calls whose results are interleaved into native-order int16 — no Python loop per sample.
``audioop`` is not used: it is deprecated and removed in Python 3.13.
"""

from __future__ import annotations

import math
import sys
from array import array
from collections.abc import Sequence
from typing import Literal

Law = Literal["ulaw", "alaw"]

RATE = 8000
"""G.711 sample rate in Hz; also the RTP clock rate of PCMU/PCMA."""

ULAW_SILENCE = 0xFF
ALAW_SILENCE = 0xD5

_ULAW_BIAS = 0x84


_ULAW_SEG_END = (0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF, 0x1FFF)


def _ulaw_encode_one(sample: int) -> int:
    # ITU-T G.711 as in the Sun/CCITT reference code (14-bit input), bit-exact with audioop.
    value = sample >> 2
    if value < 0:
        value, mask = -value, 0x7F
    else:
        mask = 0xFF
    value = min(value, 8159) + 0x21
    segment = next((i for i, end in enumerate(_ULAW_SEG_END) if value <= end), 8)
    if segment >= 8:
        return 0x7F ^ mask
    return ((segment << 4) | ((value >> (segment + 1)) & 0x0F)) ^ mask


def _ulaw_decode_one(code: int) -> int:
    code = ~code & 0xFF
    exponent = (code >> 4) & 0x07
    sample = ((((code & 0x0F) << 3) + _ULAW_BIAS) << exponent) - _ULAW_BIAS
    return -sample if code & 0x80 else sample


_ALAW_SEG_END = (0x1F, 0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF)


def _alaw_encode_one(sample: int) -> int:
    value = sample >> 3  # A-law works on 13 bits
    if value >= 0:
        mask = 0xD5
    else:
        mask = 0x55
        value = -value - 1
    segment = next((i for i, end in enumerate(_ALAW_SEG_END) if value <= end), 8)
    if segment >= 8:
        return 0x7F ^ mask
    code = segment << 4
    code |= (value >> 1) & 0x0F if segment < 2 else (value >> segment) & 0x0F
    return code ^ mask


def _alaw_decode_one(code: int) -> int:
    code ^= 0x55
    value = (code & 0x0F) << 4
    segment = (code & 0x70) >> 4
    if segment == 0:
        value += 8
    elif segment == 1:
        value += 0x108
    else:
        value = (value + 0x108) << (segment - 1)
    return value if code & 0x80 else -value


# Tables built once at import: 2 x 64 KiB for encoding, 4 x 256 bytes for decoding.
_ULAW_ENCODE = bytes(_ulaw_encode_one(i - 65536 if i >= 32768 else i) for i in range(65536))
_ALAW_ENCODE = bytes(_alaw_encode_one(i - 65536 if i >= 32768 else i) for i in range(65536))
ULAW_TO_LINEAR: tuple[int, ...] = tuple(_ulaw_decode_one(c) for c in range(256))
ALAW_TO_LINEAR: tuple[int, ...] = tuple(_alaw_decode_one(c) for c in range(256))

_LITTLE = sys.byteorder == "little"


def _split_tables(linear: Sequence[int]) -> tuple[bytes, bytes]:
    values = [v & 0xFFFF for v in linear]
    low = bytes(v & 0xFF for v in values)
    high = bytes(v >> 8 for v in values)
    # Native order: the first byte of an int16 in memory is the low byte on little-endian.
    return (low, high) if _LITTLE else (high, low)


_ULAW_FIRST, _ULAW_SECOND = _split_tables(ULAW_TO_LINEAR)
_ALAW_FIRST, _ALAW_SECOND = _split_tables(ALAW_TO_LINEAR)

# µ-law <-> A-law by re-encoding the decoded value: a byte translation, no linear step at run time.
ULAW_TO_ALAW = bytes(_ALAW_ENCODE[ULAW_TO_LINEAR[c] & 0xFFFF] for c in range(256))
ALAW_TO_ULAW = bytes(_ULAW_ENCODE[ALAW_TO_LINEAR[c] & 0xFFFF] for c in range(256))


def encode(samples: array[int], law: Law = "ulaw") -> bytes:
    """Encode signed 16-bit samples (``array('h')``) to G.711 bytes, one byte per sample."""
    if samples.typecode != "h":
        raise ValueError("samples must be array('h')")
    unsigned = array("H")
    unsigned.frombytes(samples.tobytes())
    table = _ULAW_ENCODE if law == "ulaw" else _ALAW_ENCODE
    return bytes(map(table.__getitem__, unsigned))


def decode(data: bytes, law: Law = "ulaw") -> array[int]:
    """Decode G.711 bytes to signed 16-bit samples (``array('h')``)."""
    first, second = (_ULAW_FIRST, _ULAW_SECOND) if law == "ulaw" else (_ALAW_FIRST, _ALAW_SECOND)
    raw = bytearray(2 * len(data))
    raw[0::2] = data.translate(first)
    raw[1::2] = data.translate(second)
    out = array("h")
    out.frombytes(bytes(raw))
    return out


def convert(data: bytes, source: Law, target: Law) -> bytes:
    """Re-encode G.711 bytes from one law to the other (identity when they match)."""
    if source == target:
        return data
    return data.translate(ULAW_TO_ALAW if source == "ulaw" else ALAW_TO_ULAW)


def _build_mix_table() -> bytes:
    # Entry (b << 8) | a is µ-law(clip(linear(a) + linear(b))): mixing two µ-law streams becomes
    # one table lookup per sample pair, done in C by map().
    lin = ULAW_TO_LINEAR
    enc = _ULAW_ENCODE
    out = bytearray(65536)
    for b in range(256):
        lb = lin[b]
        base = b << 8
        for a in range(256):
            s = lin[a] + lb
            s = 32767 if s > 32767 else -32768 if s < -32768 else s
            out[base | a] = enc[s & 0xFFFF]
    return bytes(out)


_mix_table: bytes | None = None


def mix_ulaw(first: bytes, second: bytes) -> bytes:
    """Sum two equally long µ-law byte strings sample by sample (with clipping), as µ-law."""
    global _mix_table
    if len(first) != len(second):
        raise ValueError("streams to mix must have the same length")
    if _mix_table is None:
        _mix_table = _build_mix_table()
    pairs = bytearray(2 * len(first))
    # Little-endian uint16 of (first[i], second[i]) is second[i] << 8 | first[i].
    pairs[0::2] = first
    pairs[1::2] = second
    index = array("H")
    index.frombytes(bytes(pairs))
    if not _LITTLE:
        index.byteswap()
    return bytes(map(_mix_table.__getitem__, index))


def tone(
    frequency: float, seconds: float, *, amplitude: float = 0.5, rate: int = RATE
) -> array[int]:
    """A sine at ``frequency`` Hz as 16-bit samples; ``amplitude`` is a fraction of full scale."""
    count = round(seconds * rate)
    step = 2.0 * math.pi * frequency / rate
    peak = amplitude * 32767.0
    return array("h", (round(peak * math.sin(step * i)) for i in range(count)))


def goertzel_power(samples: Sequence[int], frequency: float, rate: int = RATE) -> float:
    """Squared magnitude of the DFT of ``samples`` at ``frequency`` (Goertzel recurrence)."""
    coeff = 2.0 * math.cos(2.0 * math.pi * frequency / rate)
    s1 = s2 = 0.0
    for x in samples:
        s1, s2 = x + coeff * s1 - s2, s1
    return s1 * s1 + s2 * s2 - coeff * s1 * s2


def goertzel_ratio(samples: Sequence[int], frequency: float, rate: int = RATE) -> float:
    """Fraction (about 0..1) of the signal's energy found at ``frequency``.

    A pure sine at exactly ``frequency`` gives about 1.0; silence gives 0.0. Spectral leakage when
    the window is not a whole number of periods lowers it a little, so compare with about 0.6.
    """
    energy = sum(x * x for x in samples)
    if not samples or energy == 0:
        return 0.0
    return 2.0 * goertzel_power(samples, frequency, rate) / (len(samples) * energy)


def estimate_frequency(
    samples: Sequence[int], low: float = 100.0, high: float = 3900.0, *, rate: int = RATE
) -> float:
    """The frequency in ``[low, high]`` holding the most energy: a coarse then a fine Goertzel scan.

    Meant for tone checks on a fraction of a second of audio (it is O(samples x steps)).
    """

    def best(lo: float, hi: float, step: float) -> float:
        candidates = [lo + i * step for i in range(int((hi - lo) / step) + 1)]
        return max(candidates, key=lambda f: goertzel_power(samples, f, rate))

    coarse = best(low, high, 10.0)
    return best(max(low, coarse - 10.0), min(high, coarse + 10.0), 0.5)


DTMF_ROWS = (697.0, 770.0, 852.0, 941.0)
DTMF_COLUMNS = (1209.0, 1336.0, 1477.0, 1633.0)
DTMF_KEYS = ("123A", "456B", "789C", "*0#D")


def detect_dtmf(samples: Sequence[int], rate: int = RATE, threshold: float = 0.25) -> str | None:
    """The DTMF key sounding in ``samples`` (about 40 ms or more), or None.

    Both the row and the column tone must each hold at least ``threshold`` of the energy.
    """
    rows = [goertzel_ratio(samples, f, rate) for f in DTMF_ROWS]
    cols = [goertzel_ratio(samples, f, rate) for f in DTMF_COLUMNS]
    row = max(range(4), key=rows.__getitem__)
    col = max(range(4), key=cols.__getitem__)
    if rows[row] < threshold or cols[col] < threshold:
        return None
    return DTMF_KEYS[row][col]
