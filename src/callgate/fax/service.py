"""Faxes of an extension: received documents, and outgoing fax jobs with their state machine.

Faxes belong to ``fax`` and ``phone`` extensions (``docs/decisions.md``); on a queue or IVR
extension every fax route answers 404. Received faxes are PDF files the fax receiver stores
with ``store_received``. An outgoing job is created from an uploaded PDF or TIFF (two steps
around the HTTP edge, as for sounds: ``plan_job_upload``, then ``create_job``, which removes the
file whenever it refuses) and then moves only through ``fax/states.py``'s table: the API cancels
and retries, the fax sender (a later issue) calls ``next_due_job`` and the ``mark_*`` methods.
Deleting a row deletes its file after the commit.
"""

from __future__ import annotations

import datetime as dt
import re
import struct
import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import BinaryIO

from callgate.api.schemas import Page
from callgate.common.clock import utcnow
from callgate.common.db import Database
from callgate.common.errors import InvalidInput, NotFound
from callgate.common.quota import UploadPlan, check_room, plan_upload
from callgate.common.storage import FileStore
from callgate.config import Settings
from callgate.fax.models import FaxJob, ReceivedFax
from callgate.fax.repository import FaxRepository
from callgate.fax.states import FaxEvent, FaxState, next_state
from callgate.identity.models import Extension, ExtensionType

FAX_EXTENSION_TYPES = (ExtensionType.FAX, ExtensionType.PHONE)
DST_NUM = re.compile(r"^\+?[0-9]{1,30}$")
PDF = "application/pdf"
TIFF = "image/tiff"
MAGIC = ((b"%PDF-", PDF), (b"II*\0", TIFF), (b"MM\0*", TIFF))
MAGIC_SIZE = 5
MAX_REASON = 500
MAX_TIFF_PAGES = 10000


def document_type(head: bytes) -> str | None:
    """``application/pdf`` or ``image/tiff`` by the file's first bytes, else None."""
    for magic, media_type in MAGIC:
        if head.startswith(magic):
            return media_type
    return None


def document_problem(head: bytes) -> str | None:
    if not head:
        return "The file is empty."
    if document_type(head) is None:
        return "The file is neither a PDF nor a TIFF document."
    return None


def tiff_pages(handle: BinaryIO, size: int) -> int:
    """Pages of a TIFF: its chain of image directories (0 when the chain is unreadable)."""
    handle.seek(0)
    header = handle.read(8)
    endian = "<" if header[:2] == b"II" else ">"
    (offset,) = struct.unpack(endian + "I", header[4:8])
    seen: set[int] = set()
    while offset and len(seen) < MAX_TIFF_PAGES:
        if offset in seen or offset + 2 > size:
            return 0
        seen.add(offset)
        handle.seek(offset)
        (entries,) = struct.unpack(endian + "H", handle.read(2))
        next_at = offset + 2 + entries * 12
        if next_at + 4 > size:
            return 0
        handle.seek(next_at)
        (offset,) = struct.unpack(endian + "I", handle.read(4))
    return len(seen)


def valid_dst_num(value: str | None) -> str:
    if value is None or not value.strip():
        raise InvalidInput("The dst_num field is required.", {"dst_num": "required"})
    value = value.strip()
    if not DST_NUM.match(value):
        raise InvalidInput(
            "The dst_num must be 1 to 30 digits, optionally after a +.", {"dst_num": "not digits"}
        )
    return value


def valid_document_name(filename: str) -> str:
    name = filename.replace("\\", "/").rsplit("/", 1)[-1]
    return "".join(c for c in name if c.isprintable()).strip()[:255]


class FaxService:
    def __init__(self, database: Database, settings: Settings, files: FileStore) -> None:
        self.database = database
        self.settings = settings
        self.files = files

    @staticmethod
    def _fax_extension(repo: FaxRepository, extension_id: int) -> Extension:
        extension = repo.session.get(Extension, extension_id)
        if extension is None:
            raise NotFound(f"There is no extension {extension_id}.")
        if extension.type not in FAX_EXTENSION_TYPES:
            raise NotFound(
                f"Extension {extension_id} is a {extension.type} extension; faxes belong to "
                "fax and phone extensions."
            )
        return extension

    # -- received faxes --------------------------------------------------------------------------

    def list_received(
        self, extension_id: int, page: int, per_page: int, *, newest_first: bool = True
    ) -> Page[ReceivedFax]:
        with self.database.read() as session:
            repo = FaxRepository(session)
            self._fax_extension(repo, extension_id)
            items = repo.received(extension_id, (page - 1) * per_page, per_page, newest_first)
            total = repo.count_received(extension_id)
        return Page(items, total, page, per_page)

    def get_received(self, extension_id: int, fax_uuid: str) -> ReceivedFax:
        with self.database.read() as session:
            repo = FaxRepository(session)
            self._fax_extension(repo, extension_id)
            fax = repo.received_one(extension_id, fax_uuid)
        if fax is None:
            raise NotFound(f"Extension {extension_id} has no received fax {fax_uuid}.")
        return fax

    def received_file(self, extension_id: int, fax_uuid: str) -> tuple[ReceivedFax, Path]:
        """The fax and its PDF; ``NotFound`` when either is gone."""
        fax = self.get_received(extension_id, fax_uuid)
        return fax, self.files.open_existing(fax.storage_path)

    def delete_received(self, extension_id: int, fax_uuid: str) -> None:
        with self.database.write() as session:
            repo = FaxRepository(session)
            self._fax_extension(repo, extension_id)
            fax = repo.received_one(extension_id, fax_uuid)
            if fax is None:
                raise NotFound(f"Extension {extension_id} has no received fax {fax_uuid}.")
            relative = fax.storage_path
            repo.delete(fax)
        self.files.delete(relative)

    def store_received(
        self, extension_id: int, pdf: Iterable[bytes], *, from_number: str = "", pages: int = 0
    ) -> ReceivedFax:
        """Store a received fax (the fax receiver calls this with the converted PDF)."""
        fax_uuid = str(uuid.uuid4())
        with self.database.read() as session:
            client_id = self._fax_extension(FaxRepository(session), extension_id).client_id
        relative = self.files.new_relative_path("fax/received", client_id, fax_uuid, "pdf")
        size = self.files.write_bytes(relative, pdf)
        try:
            with self.database.write() as session:
                fax = ReceivedFax(
                    uuid=fax_uuid,
                    client_id=client_id,
                    extension_id=extension_id,
                    from_number=from_number[:64],
                    pages=pages,
                    storage_path=relative,
                    size_bytes=size,
                )
                FaxRepository(session).add(fax)
                return fax
        except BaseException:
            self.files.delete(relative)
            raise

    # -- outgoing jobs: the API ------------------------------------------------------------------

    def plan_job_upload(self, extension_id: int) -> UploadPlan:
        with self.database.read() as session:
            client_id = self._fax_extension(FaxRepository(session), extension_id).client_id
            relative = self.files.new_relative_path(
                "fax/outgoing", client_id, uuid.uuid4().hex, "document"
            )
            return plan_upload(
                session,
                client_id,
                relative,
                self.settings.fax_max_bytes,
                self.settings.storage_quota_mb,
            )

    def create_job(
        self, plan: UploadPlan, extension_id: int, *, dst_num: str | None, filename: str, size: int
    ) -> FaxJob:
        """Queue a job for the uploaded document; on any refusal the file is removed."""
        try:
            return self._create_job(plan, extension_id, dst_num, filename, size)
        except BaseException:
            self.files.delete(plan.relative)
            raise

    def _create_job(
        self, plan: UploadPlan, extension_id: int, dst_num: str | None, filename: str, size: int
    ) -> FaxJob:
        number = valid_dst_num(dst_num)
        with self.files.open_existing(plan.relative).open("rb") as handle:
            media_type = document_type(handle.read(MAGIC_SIZE))
            if media_type is None:
                problem = "The file is neither a PDF nor a TIFF document."
                raise InvalidInput(problem, {"file": problem})
            # A PDF's pages are known once the sender converts it to TIFF-F.
            try:
                pages = tiff_pages(handle, size) if media_type == TIFF else 0
            except struct.error:
                pages = 0
        with self.database.write() as session:
            check_room(session, plan, size, self.settings.storage_quota_mb)
            now = utcnow()
            job = FaxJob(
                client_id=plan.client_id,
                extension_id=extension_id,
                dst_num=number,
                state=FaxState.QUEUED,
                reason="",
                pages=pages,
                max_attempts=self.settings.fax_max_attempts,
                document_name=valid_document_name(filename),
                document_type=media_type,
                storage_path=plan.relative,
                size_bytes=size,
                created_at=now,
                updated_at=now,
            )
            FaxRepository(session).add(job)
            return job

    def list_jobs(
        self, extension_id: int, page: int, per_page: int, *, newest_first: bool = True
    ) -> Page[FaxJob]:
        with self.database.read() as session:
            repo = FaxRepository(session)
            self._fax_extension(repo, extension_id)
            items = repo.jobs(extension_id, (page - 1) * per_page, per_page, newest_first)
            total = repo.count_jobs(extension_id)
        return Page(items, total, page, per_page)

    def get_job(self, extension_id: int, job_id: int) -> FaxJob:
        with self.database.read() as session:
            repo = FaxRepository(session)
            self._fax_extension(repo, extension_id)
            job = repo.job(job_id, extension_id)
        if job is None:
            raise NotFound(f"Extension {extension_id} has no fax job {job_id}.")
        return job

    def cancel(self, extension_id: int, job_id: int) -> FaxJob:
        return self._apply(job_id, FaxEvent.CANCEL, extension_id, reason="Cancelled.")

    def retry(self, extension_id: int, job_id: int) -> FaxJob:
        """Queue a failed or cancelled job again, with its attempts counted from zero."""
        return self._apply(job_id, FaxEvent.RETRY, extension_id)

    # -- outgoing jobs: the fax sender -----------------------------------------------------------

    def next_due_job(self, now: dt.datetime | None = None) -> FaxJob | None:
        """The oldest queued job, after queuing again the failed jobs whose retry time came.

        The job is not claimed: the sender claims it with ``mark_dialing``, which refuses
        (``IllegalTransition``) when another sender was first.
        """
        now = now or utcnow()
        with self.database.write() as session:
            repo = FaxRepository(session)
            for job in repo.due_for_requeue(now):
                self._move(job, FaxEvent.REQUEUE, now)
            return repo.oldest_queued()

    def mark_dialing(self, job_id: int) -> FaxJob:
        """Claim a queued job and count the attempt."""
        return self._apply(job_id, FaxEvent.DIAL)

    def mark_sending(self, job_id: int, pages: int | None = None) -> FaxJob:
        return self._apply(job_id, FaxEvent.CONNECT, pages=pages)

    def mark_sent(self, job_id: int, pages_sent: int | None = None) -> FaxJob:
        return self._apply(job_id, FaxEvent.SUCCEED, pages_sent=pages_sent)

    def mark_failed(self, job_id: int, reason: str, pages_sent: int | None = None) -> FaxJob:
        """End the attempt; with attempts left the job is due again after a growing delay."""
        return self._apply(job_id, FaxEvent.FAIL, reason=reason, pages_sent=pages_sent)

    # -- the one place a job's state changes -----------------------------------------------------

    def _apply(
        self,
        job_id: int,
        event: FaxEvent,
        extension_id: int | None = None,
        *,
        reason: str | None = None,
        pages: int | None = None,
        pages_sent: int | None = None,
    ) -> FaxJob:
        with self.database.write() as session:
            repo = FaxRepository(session)
            if extension_id is not None:
                self._fax_extension(repo, extension_id)
            job = repo.job(job_id, extension_id, lock=True)
            if job is None:
                where = f"Extension {extension_id} has" if extension_id is not None else "There is"
                raise NotFound(f"{where} no fax job {job_id}.")
            self._move(job, event, utcnow(), reason=reason, pages=pages, pages_sent=pages_sent)
            session.flush()
            return job

    def _move(
        self,
        job: FaxJob,
        event: FaxEvent,
        now: dt.datetime,
        *,
        reason: str | None = None,
        pages: int | None = None,
        pages_sent: int | None = None,
    ) -> None:
        job.state = next_state(job.state, event)
        job.updated_at = now
        if reason is not None:
            job.reason = reason[:MAX_REASON]
        if pages is not None:
            job.pages = pages
        if pages_sent is not None:
            job.pages_sent = pages_sent
        if event is FaxEvent.DIAL:
            job.attempts += 1
            job.next_attempt_at = None
        elif event is FaxEvent.FAIL:
            job.next_attempt_at = (
                now + self._retry_delay(job.attempts) if job.attempts < job.max_attempts else None
            )
        elif event is FaxEvent.CANCEL:
            job.next_attempt_at = None
        elif event is FaxEvent.RETRY:
            job.attempts = 0
            job.pages_sent = 0
            job.reason = ""
            job.next_attempt_at = None
        elif event is FaxEvent.REQUEUE:
            job.next_attempt_at = None

    def _retry_delay(self, attempts: int) -> dt.timedelta:
        # Doubling per attempt: a busy line or a fragile G.711 call gets longer to clear.
        return dt.timedelta(seconds=self.settings.fax_retry_delay * 2 ** max(0, attempts - 1))
