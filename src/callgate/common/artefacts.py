"""Audio artefacts the call engine writes — recordings and voicemail messages: a row naming a WAV
file under ``CALLGATE_DATA_DIR`` (``<kind>/<client>/<id>-<random>.wav``; the row keeps the
relative path).

``ArtefactService`` does what every kind does alike (store, list, get, open, delete); a feature's
service names its kind, its repository and what its list and ``get`` answer, and keeps only what
differs: its own ``add`` with its own columns.

The file is written before the row and removed when the row cannot be stored; on delete the row
goes first and the file after the commit, so a failure can leave at worst an orphan file, never a
row whose file was deleted by a transaction that then rolled back.
"""

from __future__ import annotations

import datetime as dt
import re
import secrets
import struct
import uuid as uuids
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, Generic, Protocol, TypeVar

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from callgate.api.schemas import Page
from callgate.common.db import Database
from callgate.common.errors import Conflict, InvalidInput, NotFound
from callgate.common.storage import FileStore
from callgate.identity.models import Extension
from callgate.recordings.models import Recording
from callgate.voicemail.models import Voicemail

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
        return uuids.uuid4().hex
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


def check_aware(value: dt.datetime | None, field: str) -> None:
    """Refuse a naive time: which zone it meant cannot be known."""
    if value is not None and value.tzinfo is None:
        raise InvalidInput(f"{field} must be an aware datetime.", {field: "naive"})


# -- the shared service ----------------------------------------------------------------------------


# The kinds there are; a new kind joins this union (the shared code reads client_id,
# extension_id and storage_path of its rows).
RowT = TypeVar("RowT", bound=Recording | Voicemail)
WhereT = TypeVar("WhereT")
FoundT = TypeVar("FoundT")
ViewT = TypeVar("ViewT")

_Row = TypeVar("_Row")
_Where = TypeVar("_Where", contravariant=True)
_Found = TypeVar("_Found", covariant=True)


class ArtefactRepository(Protocol[_Row, _Where, _Found]):
    """What a feature's repository offers (``RecordingRepository``, ``VoicemailRepository``)."""

    def find(
        self, where: _Where, *, newest_first: bool, offset: int, limit: int
    ) -> Sequence[_Found]: ...

    def count(self, where: _Where) -> int: ...

    def get(self, key: str, /) -> _Row | None: ...

    def add(self, row: _Row, /) -> None: ...

    def delete(self, row: _Row, /) -> None: ...


class ArtefactService(ABC, Generic[RowT, WhereT, FoundT, ViewT]):
    """Rows of one kind of WAV artefact (``RowT``) and their files.

    ``list`` takes the repository's filter (``WhereT``) and turns each row it finds (``FoundT``)
    into the kind's list item (``ViewT``), which ``get`` answers as well.
    """

    kind: ClassVar[str]
    """The folder under the data directory."""
    noun: ClassVar[str]
    """What an artefact is called in messages (``There is no <noun> <id> here.``)."""

    def __init__(self, database: Database, files: FileStore) -> None:
        self.database = database
        self.files = files

    @abstractmethod
    def _repository(self, session: Session) -> ArtefactRepository[RowT, WhereT, FoundT]: ...

    @abstractmethod
    def _item(self, found: FoundT) -> ViewT:
        """A list item from what the repository found."""

    @abstractmethod
    def _view(self, session: Session, row: RowT) -> ViewT:
        """What ``get`` answers for ``row``."""

    @abstractmethod
    def key_of(self, row: RowT) -> str:
        """The row's id, which names the download too."""

    def _store(
        self,
        *,
        client_id: int,
        extension_id: int | None,
        given_id: str | None,
        id_field: str,
        audio: Iterable[bytes],
        row: Callable[[str, StoredAudio], RowT],
    ) -> RowT:
        """Store the WAV, then the row ``row(id, stored)`` builds; no file stays if that fails."""
        name = new_artefact_id(given_id, id_field)
        stored = store_wav(self.files, self.kind, client_id, name, audio)
        noun = self.noun[:1].upper() + self.noun[1:]
        try:
            with self.database.write() as session:
                if extension_id is not None:
                    check_extension(session.get(Extension, extension_id), client_id, extension_id)
                repo = self._repository(session)
                if repo.get(name) is not None:
                    raise Conflict(f"{noun} {name} already exists.")
                created = row(name, stored)
                repo.add(created)
        except BaseException as exc:
            self.files.delete(stored.relative)
            if isinstance(exc, IntegrityError):
                raise Conflict(f"{noun} {name} could not be stored.") from None
            raise
        return created

    def list(
        self, where: WhereT, *, page: int, per_page: int, newest_first: bool = True
    ) -> Page[ViewT]:
        with self.database.read() as session:
            repo = self._repository(session)
            found = repo.find(
                where, newest_first=newest_first, offset=(page - 1) * per_page, limit=per_page
            )
            total = repo.count(where)
            items = [self._item(each) for each in found]
        return Page(items, total, page, per_page)

    def _find(
        self,
        repo: ArtefactRepository[RowT, WhereT, FoundT],
        client_id: int,
        uuid: str,
        extension_id: int | None,
    ) -> RowT:
        row = repo.get(uuid)
        if (
            row is None
            or row.client_id != client_id
            or (extension_id is not None and row.extension_id != extension_id)
        ):
            raise NotFound(f"There is no {self.noun} {uuid} here.")
        return row

    def get(self, client_id: int, uuid: str, extension_id: int | None = None) -> ViewT:
        with self.database.read() as session:
            row = self._find(self._repository(session), client_id, uuid, extension_id)
            return self._view(session, row)

    def open(self, client_id: int, uuid: str, extension_id: int | None = None) -> tuple[RowT, Path]:
        """The row and its file; ``NotFound`` when either is missing."""
        with self.database.read() as session:
            row = self._find(self._repository(session), client_id, uuid, extension_id)
        return row, self.files.open_existing(row.storage_path)

    def delete(self, client_id: int, uuid: str, extension_id: int | None = None) -> None:
        with self.database.write() as session:
            repo = self._repository(session)
            row = self._find(repo, client_id, uuid, extension_id)
            relative = row.storage_path
            repo.delete(row)
        self.files.delete(relative)
