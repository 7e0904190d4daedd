"""Wire shape of a sound. The original API's sound fields were not found; these are Callgate's."""

from __future__ import annotations

from pydantic import BaseModel, Field

from callgate.api.schemas import format_time
from callgate.sounds.models import Sound


class SoundOut(BaseModel):
    id: int
    client_id: int
    name: str
    format: str = Field(description="pcm16, alaw or ulaw")
    sample_rate: int = Field(description="Hz: 8000, 16000 or 48000")
    channels: int
    duration: float = Field(description="Playing time in seconds")
    size: int = Field(description="Bytes of the WAV file")
    created: str = Field(description="UTC, YYYY-MM-DD HH:MM:SS")

    @classmethod
    def of(cls, sound: Sound) -> SoundOut:
        return cls(
            id=sound.id,
            client_id=sound.client_id,
            name=sound.name,
            format=sound.audio_format,
            sample_rate=sound.sample_rate,
            channels=sound.channels,
            duration=sound.duration_ms / 1000,
            size=sound.size_bytes,
            created=format_time(sound.created_at),
        )
