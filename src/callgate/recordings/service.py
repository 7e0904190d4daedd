"""Conversation recordings: WAV files the engine writes (``add``), listed, downloaded and
deleted through the API.

A recording belongs to a client and to the extension whose ``record_enabled`` made it. Its file
lives under ``CALLGATE_DATA_DIR`` (``recordings/<client>/<record_uuid>-<random>.wav``); how files
and rows are kept, listed and deleted is shared with voicemail (``common/artefacts.py``). A
recording's list item carries its call's history row, when the call is in the history.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy.orm import Session

from callgate.calls.models import CallRecord
from callgate.common.artefacts import ArtefactService, StoredAudio, check_aware
from callgate.common.clock import utcnow
from callgate.recordings.models import Recording
from callgate.recordings.repository import RecordingFilter, RecordingRepository


@dataclass(frozen=True)
class RecordingView:
    """A recording with its call's history row, when the call is in the history."""

    recording: Recording
    call: CallRecord | None


class RecordingService(
    ArtefactService[Recording, RecordingFilter, tuple[Recording, CallRecord | None], RecordingView]
):
    kind = "recordings"
    noun = "recording"

    def _repository(self, session: Session) -> RecordingRepository:
        return RecordingRepository(session)

    def _item(self, found: tuple[Recording, CallRecord | None]) -> RecordingView:
        return RecordingView(*found)

    def _view(self, session: Session, row: Recording) -> RecordingView:
        return RecordingView(row, RecordingRepository(session).call_of(row))

    def key_of(self, row: Recording) -> str:
        return row.record_uuid

    def add(
        self,
        *,
        client_id: int,
        audio: Iterable[bytes],
        extension_id: int | None = None,
        call_uuid: str | None = None,
        started_at: dt.datetime | None = None,
        record_uuid: str | None = None,
    ) -> Recording:
        """Store a finished recording (a WAV file's bytes, in chunks) and its row."""
        check_aware(started_at, "started_at")

        def row(name: str, stored: StoredAudio) -> Recording:
            return Recording(
                record_uuid=name,
                client_id=client_id,
                extension_id=extension_id,
                call_uuid=call_uuid,
                storage_path=stored.relative,
                size_bytes=stored.size,
                duration_ms=stored.duration_ms,
                created_at=started_at or utcnow(),
            )

        return self._store(
            client_id=client_id,
            extension_id=extension_id,
            given_id=record_uuid,
            id_field="record_uuid",
            audio=audio,
            row=row,
        )
