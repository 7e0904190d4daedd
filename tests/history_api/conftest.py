"""Fixtures of the history API tests: the API tests' client and tokens, and test data written
through the services the SIP engine will use."""

from __future__ import annotations

import datetime as dt
import io
import math
import struct
import wave

from callgate.calls.service import FinishedCall
from callgate.services import Services
from tests.api.conftest import act_as, http  # noqa: F401 - fixtures reused as they are

T0 = dt.datetime(2024, 3, 1, 12, 0, 0, tzinfo=dt.UTC)


def at(minutes: float) -> dt.datetime:
    return T0 + dt.timedelta(minutes=minutes)


def pcm_wav(milliseconds: int, rate: int = 8000) -> bytes:
    """A mono 16-bit PCM tone of the given length, made with the standard library."""
    frames = rate * milliseconds // 1000
    samples = b"".join(
        struct.pack("<h", int(8000 * math.sin(2 * math.pi * 440 * n / rate))) for n in range(frames)
    )
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(samples)
    return buffer.getvalue()


def ulaw_wav(milliseconds: int) -> bytes:
    """A µ-law WAV (format 7), as the engine keeps recordings; ``wave`` cannot write these."""
    data = bytes([0xFF]) * (8 * milliseconds)
    fmt = struct.pack("<HHIIHH", 7, 1, 8000, 8000, 1, 8)
    return (
        b"RIFF"
        + struct.pack("<I", 4 + 8 + len(fmt) + 8 + len(data))
        + b"WAVE"
        + b"fmt "
        + struct.pack("<I", len(fmt))
        + fmt
        + b"data"
        + struct.pack("<I", len(data))
        + data
    )


def add_call(
    services: Services,
    client_id: int,
    minutes: float,
    *,
    extension_id: int | None = None,
    flow: str = "out",
    result: str = "answered",
    **fields: object,
) -> str:
    """A finished call of one minute starting ``minutes`` after T0; returns its call_uuid."""
    answered = result == "answered"
    call = FinishedCall(
        client_id=client_id,
        extension_id=extension_id,
        flow=flow,
        init_time=at(minutes),
        answer_time=at(minutes) + dt.timedelta(seconds=10) if answered else None,
        hangup_time=at(minutes + 1),
        result=result,
        **fields,  # type: ignore[arg-type]
    )
    return services.calls.record(call).call_uuid
