"""Conversation recordings: WAV files the engine writes (``add``), listed, downloaded and
deleted through the API.

A recording belongs to a client and to the extension whose ``record_enabled`` made it. The
file lives under ``CALLGATE_DATA_DIR`` (``recordings/<client>/<record_uuid>-<random>.wav``); the
row keeps the relative path. The file is written before the row and removed when the row cannot
be stored; on delete the row goes first and the file after the commit, so a failure can leave
at worst an orphan file, never a row whose file was deleted by a transaction that then rolled
back.

``store_wav`` and ``wav_duration_ms`` serve voicemail as well.
"""

from __future__ import annotations

import datetime as dt
import re
import secrets
import struct
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.exc import IntegrityError

from callgate.api.schemas import Page
from callgate.calls.models import CallRecord
from callgate.common.clock import utcnow
from callgate.common.db import Database
from callgate.common.errors import Conflict, InvalidInput, NotFound
from callgate.common.storage import FileStore
from callgate.identity.models import Extension
from callgate.recordings.models import Recording
from callgate.recordings.repository import RecordingFilter, RecordingRepository

ARTEFACT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9-]{0,35}$")
_HEADER_BYTES = 1 << 16


class NotWav(InvalidInput):
    """Bytes that are not a RIFF/WAVE file with a format and a data chunk."""


def wav_duration_ms(path: Path) -> int:
    """The playing time of a WAV file, from its header (PCM, µ-law, A-law alike)."""
    size = path.stat().st_size
    with path.open("rb") as handle:
        head = handle.read(_HEADER_BYTES)
    if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
        raise NotWav("The audio is not a WAV file.", {"audio": "not RIFF/WAVE"})
    byte_rate = 0
    position = 12
    while position + 8 <= len(head):
        chunk_id = head[position : position + 4]
        (chunk_size,) = struct.unpack_from("<I", head, position + 4)
        body = position + 8
        if chunk_id == b"fmt " and chunk_size >= 16 and body + 16 <= len(head):
            (byte_rate,) = struct.unpack_from("<I", head, body + 8)
        elif chunk_id == b"data":
            if byte_rate <= 0:
                break
            # A writer that streams may leave the size unset (0 or 0xFFFFFFFF): trust the file.
            available = size - body
            data_size = chunk_size if 0 < chunk_size <= available else available
            return data_size * 1000 // byte_rate
        position = body + chunk_size + (chunk_size & 1)
    raise NotWav("The WAV file has no usable format or data chunk.", {"audio": "malformed WAV"})


@dataclass(frozen=True)
class StoredAudio:
    relative: str
    size: int
    duration_ms: int


def store_wav(
    files: FileStore, kind: str, client_id: int, name: str, audio: Iterable[bytes]
) -> StoredAudio:
    """Write a WAV under the data directory and read its length; nothing is left if it is bad.

    The file name carries a random suffix, so that storing an id twice (refused later, when the
    row is written) never overwrites the first file.
    """
    relative = files.new_relative_path(kind, client_id, f"{name}-{secrets.token_hex(4)}", "wav")
    size = files.write_bytes(relative, audio)
    try:
        duration = wav_duration_ms(files.path_of(relative))
    except BaseException:
        files.delete(relative)
        raise
    return StoredAudio(relative, size, duration)


def new_artefact_id(given: str | None, field: str) -> str:
    if given is None:
        return uuid.uuid4().hex
    if not ARTEFACT_ID.match(given):
        raise InvalidInput(
            f"{field} must be 1 to 36 letters, digits or dashes.", {field: "invalid"}
        )
    return given


def check_extension(session_extension: Extension | None, client_id: int, extension_id: int) -> None:
    if session_extension is None or session_extension.client_id != client_id:
        raise InvalidInput(
            f"Extension {extension_id} is not an extension of client {client_id}.",
            {"extension_id": "not in this client"},
        )


@dataclass(frozen=True)
class RecordingView:
    """A recording with its call's history row, when the call is in the history."""

    recording: Recording
    call: CallRecord | None


class RecordingService:
    def __init__(self, database: Database, files: FileStore) -> None:
        self.database = database
        self.files = files

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
        if started_at is not None and started_at.tzinfo is None:
            raise InvalidInput("started_at must be an aware datetime.", {"started_at": "naive"})
        name = new_artefact_id(record_uuid, "record_uuid")
        stored = store_wav(self.files, "recordings", client_id, name, audio)
        try:
            with self.database.write() as session:
                if extension_id is not None:
                    check_extension(session.get(Extension, extension_id), client_id, extension_id)
                repo = RecordingRepository(session)
                if repo.get(name) is not None:
                    raise Conflict(f"Recording {name} already exists.")
                recording = Recording(
                    record_uuid=name,
                    client_id=client_id,
                    extension_id=extension_id,
                    call_uuid=call_uuid,
                    storage_path=stored.relative,
                    size_bytes=stored.size,
                    duration_ms=stored.duration_ms,
                    created_at=started_at or utcnow(),
                )
                repo.add(recording)
        except BaseException as exc:
            self.files.delete(stored.relative)
            if isinstance(exc, IntegrityError):
                raise Conflict(f"Recording {name} could not be stored.") from None
            raise
        return recording

    def list(
        self, where: RecordingFilter, *, page: int, per_page: int, newest_first: bool = True
    ) -> Page[RecordingView]:
        with self.database.read() as session:
            repo = RecordingRepository(session)
            rows = repo.find(
                where, newest_first=newest_first, offset=(page - 1) * per_page, limit=per_page
            )
            total = repo.count(where)
        return Page([RecordingView(r, c) for r, c in rows], total, page, per_page)

    def _find(
        self, repo: RecordingRepository, client_id: int, record_uuid: str, extension_id: int | None
    ) -> Recording:
        recording = repo.get(record_uuid)
        if (
            recording is None
            or recording.client_id != client_id
            or (extension_id is not None and recording.extension_id != extension_id)
        ):
            raise NotFound(f"There is no recording {record_uuid} here.")
        return recording

    def get(
        self, client_id: int, record_uuid: str, extension_id: int | None = None
    ) -> RecordingView:
        with self.database.read() as session:
            repo = RecordingRepository(session)
            recording = self._find(repo, client_id, record_uuid, extension_id)
            return RecordingView(recording, repo.call_of(recording))

    def open(
        self, client_id: int, record_uuid: str, extension_id: int | None = None
    ) -> tuple[Recording, Path]:
        """The row and its file; ``NotFound`` when either is missing."""
        with self.database.read() as session:
            repo = RecordingRepository(session)
            recording = self._find(repo, client_id, record_uuid, extension_id)
        return recording, self.files.open_existing(recording.storage_path)

    def delete(self, client_id: int, record_uuid: str, extension_id: int | None = None) -> None:
        with self.database.write() as session:
            repo = RecordingRepository(session)
            recording = self._find(repo, client_id, record_uuid, extension_id)
            relative = recording.storage_path
            repo.delete(recording)
        self.files.delete(relative)
