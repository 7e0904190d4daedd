"""WAV files of telephone audio: read 8 kHz mono G.711 or 16-bit PCM, write G.711 WAVs.

Music on hold and announcements are loaded with :func:`read_wav` (once, off the hot path) and
recordings are written with :func:`g711_wav`. Only what telephony needs: 8 kHz, G.711 (format tags
7 µ-law and 6 A-law, 8-bit) or PCM (tag 1, 16-bit, encoded to G.711 on load), one or two channels
for writing, one for reading. Pure functions on bytes; the caller does the file I/O.
"""

from __future__ import annotations

import struct
from array import array
from dataclasses import dataclass

from callgate.media import g711
from callgate.media.g711 import Law

FORMAT_PCM = 1
FORMAT_ALAW = 6
FORMAT_ULAW = 7

_TAG_OF_LAW: dict[Law, int] = {"ulaw": FORMAT_ULAW, "alaw": FORMAT_ALAW}


class WavError(ValueError):
    """Not a WAV file Callgate can play."""


@dataclass(frozen=True, slots=True)
class G711Audio:
    """Mono 8 kHz G.711 audio: one byte per sample in ``law``."""

    law: Law
    data: bytes

    def as_law(self, law: Law) -> G711Audio:
        return self if law == self.law else G711Audio(law, g711.convert(self.data, self.law, law))

    @property
    def seconds(self) -> float:
        return len(self.data) / g711.RATE

    @classmethod
    def tone(
        cls, frequency: float, *, seconds: float = 1.0, law: Law = "ulaw", amplitude: float = 0.5
    ) -> G711Audio:
        """A sine; pick ``seconds`` so that it holds whole periods if it is to loop seamlessly."""
        return cls(law, g711.encode(g711.tone(frequency, seconds, amplitude=amplitude), law))


def read_wav(data: bytes, *, law: Law = "ulaw") -> G711Audio:
    """Parse a mono 8 kHz WAV (G.711 or 16-bit PCM) into G.711 audio in ``law``."""
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise WavError("not a RIFF/WAVE file")
    offset = 12
    fmt: tuple[int, int, int, int] | None = None
    while offset + 8 <= len(data):
        chunk_id = data[offset : offset + 4]
        (size,) = struct.unpack_from("<I", data, offset + 4)
        body = data[offset + 8 : offset + 8 + size]
        if chunk_id == b"fmt ":
            if len(body) < 16:
                raise WavError("short fmt chunk")
            tag, channels, rate, _, _, bits = struct.unpack_from("<HHIIHH", body)
            fmt = (tag, channels, rate, bits)
        elif chunk_id == b"data":
            if fmt is None:
                raise WavError("data chunk before fmt chunk")
            return _decode(fmt, body, law)
        offset += 8 + size + (size & 1)  # chunks are word-aligned
    raise WavError("no data chunk")


def _decode(fmt: tuple[int, int, int, int], body: bytes, law: Law) -> G711Audio:
    tag, channels, rate, bits = fmt
    if channels != 1 or rate != g711.RATE:
        raise WavError(f"need mono 8000 Hz, got {channels} channel(s) at {rate} Hz")
    if tag in (FORMAT_ULAW, FORMAT_ALAW) and bits == 8:
        source: Law = "ulaw" if tag == FORMAT_ULAW else "alaw"
        return G711Audio(source, bytes(body)).as_law(law)
    if tag == FORMAT_PCM and bits == 16:
        samples = array("h")
        samples.frombytes(bytes(body[: len(body) & ~1]))
        if struct.pack("=h", 1) != struct.pack("<h", 1):
            samples.byteswap()  # WAV is little-endian
        return G711Audio(law, g711.encode(samples, law))
    raise WavError(f"unsupported WAV format tag {tag} with {bits} bits")


def g711_wav(channels: list[bytes], law: Law = "ulaw") -> bytes:
    """A G.711 WAV (tag 7 or 6, 8 kHz, 8 bit) from one or two equally long channels.

    Two channels are interleaved byte by byte: no decoding, only copying.
    """
    if len(channels) not in (1, 2) or len({len(c) for c in channels}) != 1:
        raise ValueError("one or two channels of equal length")
    if len(channels) == 1:
        frames = channels[0]
    else:
        joined = bytearray(2 * len(channels[0]))
        joined[0::2] = channels[0]
        joined[1::2] = channels[1]
        frames = bytes(joined)
    count = len(channels)
    # Non-PCM formats carry cbSize (0) and a fact chunk with the number of samples per channel.
    fmt = struct.pack(
        "<HHIIHHH", _TAG_OF_LAW[law], count, g711.RATE, g711.RATE * count, count, 8, 0
    )
    fact = struct.pack("<I", len(channels[0]))
    body = (
        b"WAVE"
        + b"fmt "
        + struct.pack("<I", len(fmt))
        + fmt
        + b"fact"
        + struct.pack("<I", len(fact))
        + fact
        + b"data"
        + struct.pack("<I", len(frames))
        + frames
        + (b"\x00" if len(frames) & 1 else b"")
    )
    return b"RIFF" + struct.pack("<I", len(body)) + body
