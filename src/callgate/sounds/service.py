"""A client's sounds: uploaded WAV files for greetings and announcements.

An upload happens in two steps around the HTTP edge, which streams the file to disk:
``plan_upload`` (before a byte is read: where the file goes, how large it may be — the size
limit or the room left in the storage quota) and ``create`` (the file is on disk: check it, then
store the row). ``create`` removes the file whenever it refuses, so a bad upload leaves neither
a row nor a file. Deleting a sound deletes the row first and the file after the commit.
"""

from __future__ import annotations

import uuid
from pathlib import Path

from callgate.api.schemas import Page
from callgate.common.db import Database
from callgate.common.errors import InvalidInput, NotFound
from callgate.common.quota import UploadPlan, check_room, plan_upload
from callgate.common.storage import FileStore
from callgate.config import Settings
from callgate.sounds.models import Sound
from callgate.sounds.repository import SoundRepository
from callgate.sounds.wav import WavError, inspect_wav

MAX_NAME = 200


def valid_name(name: str) -> str:
    """A sound's name: 1 to 200 printable characters, surrounding spaces dropped."""
    name = name.strip()
    if not name:
        raise InvalidInput("The sound needs a name.", {"name": "required"})
    if len(name) > MAX_NAME:
        raise InvalidInput(f"The name must be at most {MAX_NAME} characters.", {"name": "too long"})
    if not name.isprintable():
        raise InvalidInput(
            "The name must not contain control characters.", {"name": "control characters"}
        )
    return name


def name_from_filename(filename: str) -> str:
    base = filename.replace("\\", "/").rsplit("/", 1)[-1]
    stem, dot, _ = base.rpartition(".")
    return stem if dot and stem else base


class SoundService:
    def __init__(self, database: Database, settings: Settings, files: FileStore) -> None:
        self.database = database
        self.settings = settings
        self.files = files

    def plan_upload(self, client_id: int) -> UploadPlan:
        relative = self.files.new_relative_path("sounds", client_id, uuid.uuid4().hex, "wav")
        with self.database.read() as session:
            return plan_upload(
                session,
                client_id,
                relative,
                self.settings.sound_max_bytes,
                self.settings.storage_quota_mb,
            )

    def create(self, plan: UploadPlan, *, name: str | None, filename: str, size: int) -> Sound:
        """Check the uploaded file and store its row; on any refusal the file is removed."""
        try:
            return self._create(plan, name, filename, size)
        except BaseException:
            self.files.delete(plan.relative)
            raise

    def _create(self, plan: UploadPlan, name: str | None, filename: str, size: int) -> Sound:
        sound_name = valid_name(name if name is not None else name_from_filename(filename))
        path = self.files.open_existing(plan.relative)
        try:
            with path.open("rb") as handle:
                info = inspect_wav(handle, size)
        except WavError as exc:
            raise InvalidInput(str(exc), {"file": str(exc)}) from None
        limit = self.settings.sound_max_seconds
        if info.duration_ms > limit * 1000:
            message = f"The sound lasts {info.duration_ms / 1000:.1f} s; the limit is {limit} s."
            raise InvalidInput(message, {"file": "too long"})
        with self.database.write() as session:
            check_room(session, plan, size, self.settings.storage_quota_mb)
            sound = Sound(
                client_id=plan.client_id,
                name=sound_name,
                storage_path=plan.relative,
                size_bytes=size,
                duration_ms=info.duration_ms,
                sample_rate=info.sample_rate,
                channels=info.channels,
                audio_format=info.audio_format,
            )
            SoundRepository(session).add(sound)
            return sound

    def list_for_client(self, client_id: int, page: int, per_page: int) -> Page[Sound]:
        with self.database.read() as session:
            repo = SoundRepository(session)
            items = repo.for_client(client_id, (page - 1) * per_page, per_page)
            total = repo.count_for_client(client_id)
        return Page(items, total, page, per_page)

    def get(self, client_id: int, sound_id: int) -> Sound:
        with self.database.read() as session:
            sound = SoundRepository(session).get(client_id, sound_id)
        if sound is None:
            raise NotFound(f"Client {client_id} has no sound {sound_id}.")
        return sound

    def file_of(self, client_id: int, sound_id: int) -> tuple[Sound, Path]:
        """The sound and its file; ``NotFound`` when either is gone."""
        sound = self.get(client_id, sound_id)
        return sound, self.files.open_existing(sound.storage_path)

    def delete(self, client_id: int, sound_id: int) -> None:
        with self.database.write() as session:
            repo = SoundRepository(session)
            sound = repo.get(client_id, sound_id)
            if sound is None:
                raise NotFound(f"Client {client_id} has no sound {sound_id}.")
            relative = sound.storage_path
            repo.delete(sound)
        self.files.delete(relative)
