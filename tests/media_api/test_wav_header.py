"""The WAV header reader on its own: formats accepted and refused, without a server."""

from __future__ import annotations

import io
import struct

import pytest

from callgate.sounds.wav import WavError, inspect_wav
from tests.media_api.media import wav_by_hand, wav_pcm


def _inspect(data: bytes) -> tuple[str, int, int]:
    info = inspect_wav(io.BytesIO(data), len(data))
    return info.audio_format, info.sample_rate, info.duration_ms


def _extensible(subformat: int, bits: int = 8) -> bytes:
    fmt = struct.pack("<HHIIHH", 0xFFFE, 1, 8000, 8000 * bits // 8, bits // 8, bits)
    guid = (
        struct.pack("<H", subformat) + b"\x00\x00\x00\x00\x10\x00\x80\x00\x00\xaa\x00\x38\x9b\x71"
    )
    fmt += struct.pack("<HHI", 22, bits, 0) + guid
    audio = b"\xd5" * 8000
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt
    body += b"LIST" + struct.pack("<I", 3) + b"abc\0"  # an odd-sized chunk, padded
    body += b"data" + struct.pack("<I", len(audio)) + audio
    return b"RIFF" + struct.pack("<I", len(body)) + body


def test_accepted_headers() -> None:
    assert _inspect(wav_pcm(0.5)) == ("pcm16", 8000, 500)
    assert _inspect(wav_by_hand(7, seconds=1.25, rate=16000)) == ("ulaw", 16000, 1250)
    assert _inspect(_extensible(6)) == ("alaw", 8000, 1000)
    # Chunks after the audio (a trailing LIST) are allowed.
    assert _inspect(wav_pcm(0.5) + b"LIST" + struct.pack("<I", 2) + b"ab") == ("pcm16", 8000, 500)


@pytest.mark.parametrize(
    ("data", "words"),
    [
        (_extensible(3, bits=32), "audio format 3"),
        (b"RIFF\0\0\0\0WAVE", "no fmt chunk"),
        (wav_by_hand(7, data=b"\xff" * 9)[:-9], "truncated"),
        (b"RIFF\0\0\0\0WAVEfmt " + struct.pack("<I", 4) + b"\1\0\1\0", "too short"),
    ],
    ids=["float extensible", "no fmt", "cut audio", "short fmt"],
)
def test_refused_headers(data: bytes, words: str) -> None:
    with pytest.raises(WavError, match=words):
        _inspect(data)
