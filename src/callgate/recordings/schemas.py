"""Wire shape of a recording, as in the original API's record list: the call's fields
(``flow``, ``init_time_gmt``, ``from_username``, …; null when the call is not in the history)
with ``record_uuid``, ``record_file_size`` and ``file_name``."""

from __future__ import annotations

from pydantic import BaseModel, Field

from callgate.api.schemas import format_optional_time, format_time
from callgate.recordings.service import RecordingView


class RecordOut(BaseModel):
    record_uuid: str
    call_uuid: str | None
    client_owner_id: int
    extension_id: int | None
    start_time_gmt: str = Field(description="UTC time the recording started")
    duration: int = Field(description="Length of the recording in whole seconds")
    duration_ms: int
    record_file_size: int = Field(description="Bytes of the WAV file")
    file_name: str = Field(description="The name the download is offered under")
    flow: str | None
    init_time_gmt: str | None
    hangup_time_gmt: str | None
    from_username: str | None
    from_screen_name: str | None
    to_username: str | None
    did_number: str | None
    result: str | None
    hangup_cause: str | None

    @classmethod
    def of(cls, view: RecordingView) -> RecordOut:
        recording, call = view.recording, view.call
        return cls(
            record_uuid=recording.record_uuid,
            call_uuid=recording.call_uuid,
            client_owner_id=recording.client_id,
            extension_id=recording.extension_id,
            start_time_gmt=format_time(recording.created_at),
            duration=recording.duration_ms // 1000,
            duration_ms=recording.duration_ms,
            record_file_size=recording.size_bytes,
            file_name=f"{recording.record_uuid}.wav",
            flow=None if call is None else call.flow,
            init_time_gmt=None if call is None else format_time(call.init_time),
            hangup_time_gmt=None if call is None else format_optional_time(call.hangup_time),
            from_username=None if call is None else call.from_username,
            from_screen_name=None if call is None else call.from_screen_name,
            to_username=None if call is None else call.to_username,
            did_number=None if call is None else (call.did_number or None),
            result=None if call is None else call.result,
            hangup_cause=None if call is None else call.hangup_cause,
        )
