"""Wire shape of a voicemail message. The original API's field list for voicemail was not
found; the names follow the record list (``duration``, ``extension_id``, ``client_owner_id``)
and the call events (``caller_id_number``/``caller_id_name``)."""

from __future__ import annotations

from pydantic import BaseModel, Field

from callgate.api.schemas import format_time
from callgate.voicemail.models import Voicemail


class VoicemailOut(BaseModel):
    uuid: str
    extension_id: int
    client_owner_id: int
    call_uuid: str | None
    caller_id_number: str
    caller_id_name: str
    created: str = Field(description="UTC time the message was left")
    duration: int = Field(description="Length in whole seconds")
    duration_ms: int
    file_size: int = Field(description="Bytes of the WAV file")
    file_name: str
    heard: bool

    @classmethod
    def of(cls, message: Voicemail) -> VoicemailOut:
        return cls(
            uuid=message.uuid,
            extension_id=message.extension_id,
            client_owner_id=message.client_id,
            call_uuid=message.call_uuid,
            caller_id_number=message.caller_id_number,
            caller_id_name=message.caller_id_name,
            created=format_time(message.created_at),
            duration=message.duration_ms // 1000,
            duration_ms=message.duration_ms,
            file_size=message.size_bytes,
            file_name=f"{message.uuid}.wav",
            heard=message.heard,
        )
