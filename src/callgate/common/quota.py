"""A client's storage quota (``clients.storage_quota_mb``, else ``CALLGATE_STORAGE_QUOTA_MB``)
and what its stored files take.

Every artefact row keeps the size of its file, so the bytes a client uses are one sum per
artefact table: sounds, recordings, voicemail, received faxes and outgoing fax documents.
Uploads check the room left before they read a byte (and stream no further than it), then again
in the unit of work that inserts their row, so two uploads at once cannot both take the last room.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from callgate.common.errors import InvalidInput
from callgate.fax.models import FaxJob, ReceivedFax
from callgate.identity.models import Client
from callgate.recordings.models import Recording
from callgate.sounds.models import Sound
from callgate.voicemail.models import Voicemail

MIB = 1024 * 1024
_ARTEFACTS = (Sound, Recording, Voicemail, ReceivedFax, FaxJob)


def storage_used_bytes(session: Session, client_id: int) -> int:
    total = 0
    for model in _ARTEFACTS:
        used = session.scalar(
            select(func.coalesce(func.sum(model.size_bytes), 0)).where(model.client_id == client_id)
        )
        total += int(used or 0)
    return total


def storage_quota_mb(session: Session, client_id: int, default_mb: int) -> int:
    """The client's quota in MB: its own (``clients.storage_quota_mb``) or the system default."""
    own = session.scalar(select(Client.storage_quota_mb).where(Client.id == client_id))
    return default_mb if own is None else int(own)


def storage_room_bytes(session: Session, client_id: int, default_mb: int) -> int:
    """Bytes the client may still store."""
    quota = storage_quota_mb(session, client_id, default_mb) * MIB
    return max(0, quota - storage_used_bytes(session, client_id))


@dataclass(frozen=True)
class UploadPlan:
    """Where an upload goes and how large it may be: its own limit, or the quota's room."""

    client_id: int
    relative: str
    max_bytes: int
    too_large: str  # the sentence of the refusal when the file passes max_bytes


def plan_upload(
    session: Session, client_id: int, relative: str, limit: int, default_quota_mb: int
) -> UploadPlan:
    """Refuses at once (``InvalidInput`` on ``file``) when the client has no room left."""
    room = storage_room_bytes(session, client_id, default_quota_mb)
    quota = storage_quota_mb(session, client_id, default_quota_mb)
    if room <= 0:
        raise InvalidInput(quota_full(client_id, quota), {"file": "storage quota exceeded"})
    if room < limit:
        return UploadPlan(client_id, relative, room, quota_full(client_id, quota))
    return UploadPlan(
        client_id, relative, limit, f"The file is larger than the limit of {limit} bytes."
    )


def check_room(session: Session, plan: UploadPlan, size: int, default_quota_mb: int) -> None:
    """The last check, in the unit of work that stores the row."""
    if size > storage_room_bytes(session, plan.client_id, default_quota_mb):
        quota = storage_quota_mb(session, plan.client_id, default_quota_mb)
        raise InvalidInput(quota_full(plan.client_id, quota), {"file": "storage quota exceeded"})


def quota_full(client_id: int, quota_mb: int) -> str:
    return f"The file does not fit in the {quota_mb} MB storage quota of client {client_id}."
