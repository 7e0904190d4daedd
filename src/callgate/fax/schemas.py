"""Wire shapes of received faxes and outgoing fax jobs.

The original API's field lists for these resources were not found; the names follow SPEC §5
(state, reason, pages, attempts, ``dst_num``) and the conventions of the other resources.
"""

from __future__ import annotations

from pydantic import BaseModel, Field

from callgate.api.schemas import format_optional_time, format_time
from callgate.fax.models import FaxJob, ReceivedFax


class ReceivedFaxOut(BaseModel):
    uuid: str
    extension_id: int
    from_number: str = Field(description="The sender's number, as the call presented it")
    pages: int
    size: int = Field(description="Bytes of the PDF")
    created: str = Field(description="UTC time the fax arrived, YYYY-MM-DD HH:MM:SS")

    @classmethod
    def of(cls, fax: ReceivedFax) -> ReceivedFaxOut:
        return cls(
            uuid=fax.uuid,
            extension_id=fax.extension_id,
            from_number=fax.from_number,
            pages=fax.pages,
            size=fax.size_bytes,
            created=format_time(fax.created_at),
        )


class FaxJobOut(BaseModel):
    id: int
    extension_id: int
    dst_num: str
    state: str = Field(description="queued, dialing, sending, sent, failed or cancelled")
    reason: str = Field(description="Why the job failed or was cancelled; empty otherwise")
    pages: int = Field(description="Pages of the document; 0 until a PDF has been converted")
    pages_sent: int
    attempts: int = Field(description="Calls made so far; a retry through the API resets it")
    max_attempts: int
    next_attempt: str | None = Field(description="UTC time of the automatic next attempt, if any")
    document_name: str = Field(description="The uploaded file's name")
    document_type: str = Field(description="application/pdf or image/tiff")
    size: int = Field(description="Bytes of the uploaded document")
    created: str = Field(description="UTC, YYYY-MM-DD HH:MM:SS")
    updated: str = Field(description="UTC time of the last state change")

    @classmethod
    def of(cls, job: FaxJob) -> FaxJobOut:
        return cls(
            id=job.id,
            extension_id=job.extension_id,
            dst_num=job.dst_num,
            state=job.state,
            reason=job.reason,
            pages=job.pages,
            pages_sent=job.pages_sent,
            attempts=job.attempts,
            max_attempts=job.max_attempts,
            next_attempt=format_optional_time(job.next_attempt_at),
            document_name=job.document_name,
            document_type=job.document_type,
            size=job.size_bytes,
            created=format_time(job.created_at),
            updated=format_time(job.updated_at),
        )
