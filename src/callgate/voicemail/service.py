"""Voicemail: messages callers leave for an extension that did not answer (SPEC §7), stored by
the engine (``add``) as WAV files and listed, downloaded and deleted through the API.

Files and rows are kept as for recordings (``recordings/service.py``): the file is written
first and removed when the row cannot be stored; on delete the row goes first, the file after
the commit.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from pathlib import Path

from sqlalchemy.exc import IntegrityError

from callgate.api.schemas import Page
from callgate.common.clock import utcnow
from callgate.common.db import Database
from callgate.common.errors import Conflict, InvalidInput, NotFound
from callgate.common.storage import FileStore
from callgate.identity.models import Extension
from callgate.recordings.service import check_extension, new_artefact_id, store_wav
from callgate.voicemail.models import Voicemail
from callgate.voicemail.repository import VoicemailFilter, VoicemailRepository


class VoicemailService:
    def __init__(self, database: Database, files: FileStore) -> None:
        self.database = database
        self.files = files

    def add(
        self,
        *,
        client_id: int,
        extension_id: int,
        audio: Iterable[bytes],
        call_uuid: str | None = None,
        caller_id_number: str = "",
        caller_id_name: str = "",
        left_at: dt.datetime | None = None,
        uuid: str | None = None,
    ) -> Voicemail:
        """Store a message (a WAV file's bytes, in chunks) left for ``extension_id``."""
        if left_at is not None and left_at.tzinfo is None:
            raise InvalidInput("left_at must be an aware datetime.", {"left_at": "naive"})
        name = new_artefact_id(uuid, "uuid")
        stored = store_wav(self.files, "voicemail", client_id, name, audio)
        try:
            with self.database.write() as session:
                check_extension(session.get(Extension, extension_id), client_id, extension_id)
                repo = VoicemailRepository(session)
                if repo.get(name) is not None:
                    raise Conflict(f"Voicemail message {name} already exists.")
                message = Voicemail(
                    uuid=name,
                    client_id=client_id,
                    extension_id=extension_id,
                    call_uuid=call_uuid,
                    # Caller ids come from SIP headers: cut to the column rather than lose the
                    # message.
                    caller_id_number=caller_id_number[:64],
                    caller_id_name=caller_id_name[:100],
                    storage_path=stored.relative,
                    size_bytes=stored.size,
                    duration_ms=stored.duration_ms,
                    heard=False,
                    created_at=left_at or utcnow(),
                )
                repo.add(message)
        except BaseException as exc:
            self.files.delete(stored.relative)
            if isinstance(exc, IntegrityError):
                raise Conflict(f"Voicemail message {name} could not be stored.") from None
            raise
        return message

    def list(
        self, where: VoicemailFilter, *, page: int, per_page: int, newest_first: bool = True
    ) -> Page[Voicemail]:
        with self.database.read() as session:
            repo = VoicemailRepository(session)
            items = repo.find(
                where, newest_first=newest_first, offset=(page - 1) * per_page, limit=per_page
            )
            total = repo.count(where)
        return Page(items, total, page, per_page)

    @staticmethod
    def _find(
        repo: VoicemailRepository, client_id: int, uuid: str, extension_id: int | None
    ) -> Voicemail:
        message = repo.get(uuid)
        if (
            message is None
            or message.client_id != client_id
            or (extension_id is not None and message.extension_id != extension_id)
        ):
            raise NotFound(f"There is no voicemail message {uuid} here.")
        return message

    def get(self, client_id: int, uuid: str, extension_id: int | None = None) -> Voicemail:
        with self.database.read() as session:
            return self._find(VoicemailRepository(session), client_id, uuid, extension_id)

    def open(
        self, client_id: int, uuid: str, extension_id: int | None = None
    ) -> tuple[Voicemail, Path]:
        """The row and its file; ``NotFound`` when either is missing."""
        message = self.get(client_id, uuid, extension_id)
        return message, self.files.open_existing(message.storage_path)

    def delete(self, client_id: int, uuid: str, extension_id: int | None = None) -> None:
        with self.database.write() as session:
            repo = VoicemailRepository(session)
            message = self._find(repo, client_id, uuid, extension_id)
            relative = message.storage_path
            repo.delete(message)
        self.files.delete(relative)
