"""Reading the header of a RIFF/WAVE file: what the PBX can play without transcoding.

Accepted: mono, 8000/16000/48000 Hz, 16-bit linear PCM (format 1), A-law (6) or µ-law (7),
also inside ``WAVE_FORMAT_EXTENSIBLE``. The standard library's ``wave`` module reads PCM only,
so the chunks are walked here; only chunk headers and the ``fmt `` body are read, never the audio.
Every refusal is a sentence about the file, for the API's 422.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import BinaryIO

SAMPLE_RATES = (8000, 16000, 48000)
FORMATS = {1: ("pcm16", 16), 6: ("alaw", 8), 7: ("ulaw", 8)}
EXTENSIBLE = 0xFFFE
MAX_CHUNKS = 64
MAX_FMT_SIZE = 1024


class WavError(ValueError):
    """The file is not a WAV the PBX accepts; the message says why."""


@dataclass(frozen=True)
class WavInfo:
    audio_format: str  # pcm16 | alaw | ulaw
    sample_rate: int
    channels: int
    duration_ms: int
    data_bytes: int


def looks_like_wav(head: bytes) -> str | None:
    """Why the first 12 bytes are not a RIFF/WAVE header, or None when they are."""
    if not head:
        return "The file is empty."
    if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
        return "The file is not a WAV file (no RIFF/WAVE header)."
    return None


def _format(body: bytes) -> tuple[str, int, int, int]:
    if len(body) < 16:
        raise WavError("The WAV file's fmt chunk is too short.")
    tag, channels, rate, _byte_rate, block_align, bits = struct.unpack("<HHIIHH", body[:16])
    if tag == EXTENSIBLE:
        if len(body) < 26:
            raise WavError("The WAV file's extensible fmt chunk is too short.")
        tag = struct.unpack("<H", body[24:26])[0]
    if tag not in FORMATS:
        raise WavError(
            f"The WAV file's audio format {tag} is not accepted; use 16-bit PCM, A-law or µ-law."
        )
    name, expected_bits = FORMATS[tag]
    if bits != expected_bits:
        raise WavError(f"A {name} WAV file must have {expected_bits} bits per sample, not {bits}.")
    if channels != 1:
        raise WavError(f"The WAV file must be mono, not {channels} channels.")
    if rate not in SAMPLE_RATES:
        rates = ", ".join(str(r) for r in SAMPLE_RATES)
        raise WavError(f"The WAV file's sample rate {rate} Hz is not one of {rates} Hz.")
    if block_align != expected_bits // 8:
        raise WavError(f"The WAV file's block size {block_align} does not match its format.")
    return name, rate, channels, block_align


def inspect_wav(handle: BinaryIO, size: int) -> WavInfo:
    """Check a whole WAV file of ``size`` bytes; raises ``WavError``."""
    problem = looks_like_wav(handle.read(12))
    if problem is not None:
        raise WavError(problem)
    fmt: tuple[str, int, int, int] | None = None
    data_bytes: int | None = None
    offset = 12
    for _ in range(MAX_CHUNKS):
        if offset + 8 > size or (fmt is not None and data_bytes is not None):
            break
        handle.seek(offset)
        chunk_id, chunk_size = struct.unpack("<4sI", handle.read(8))
        body_at = offset + 8
        if chunk_id == b"fmt ":
            if fmt is not None or chunk_size > MAX_FMT_SIZE:
                raise WavError("The WAV file's fmt chunk is malformed.")
            fmt = _format(handle.read(chunk_size))
        elif chunk_id == b"data":
            if body_at + chunk_size > size:
                raise WavError("The WAV file is truncated: its data chunk is longer than the file.")
            data_bytes = chunk_size
        offset = body_at + chunk_size + (chunk_size & 1)
    if fmt is None:
        raise WavError("The WAV file has no fmt chunk.")
    if data_bytes is None:
        raise WavError("The WAV file has no data chunk.")
    name, rate, channels, block_align = fmt
    if data_bytes < block_align:
        raise WavError("The WAV file holds no audio.")
    frames = data_bytes // block_align
    return WavInfo(
        audio_format=name,
        sample_rate=rate,
        channels=channels,
        duration_ms=frames * 1000 // rate,
        data_bytes=data_bytes,
    )
