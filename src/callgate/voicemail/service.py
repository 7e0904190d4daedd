"""Voicemail: messages callers leave for an extension that did not answer (SPEC §7), stored by
the engine (``add``) as WAV files and listed, downloaded and deleted through the API.

Files and rows are kept as for recordings (``common/artefacts.py``); a message also carries the
caller's id and whether it was heard.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from sqlalchemy.orm import Session

from callgate.common.artefacts import ArtefactService, StoredAudio, check_aware
from callgate.common.clock import utcnow
from callgate.voicemail.models import Voicemail
from callgate.voicemail.repository import VoicemailFilter, VoicemailRepository


class VoicemailService(ArtefactService[Voicemail, VoicemailFilter, Voicemail, Voicemail]):
    kind = "voicemail"
    noun = "voicemail message"

    def _repository(self, session: Session) -> VoicemailRepository:
        return VoicemailRepository(session)

    def _item(self, found: Voicemail) -> Voicemail:
        return found

    def _view(self, session: Session, row: Voicemail) -> Voicemail:
        return row

    def key_of(self, row: Voicemail) -> str:
        return row.uuid

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
        check_aware(left_at, "left_at")

        def row(name: str, stored: StoredAudio) -> Voicemail:
            return Voicemail(
                uuid=name,
                client_id=client_id,
                extension_id=extension_id,
                call_uuid=call_uuid,
                # Caller ids come from SIP headers: cut to the column rather than lose the message.
                caller_id_number=caller_id_number[:64],
                caller_id_name=caller_id_name[:100],
                storage_path=stored.relative,
                size_bytes=stored.size,
                duration_ms=stored.duration_ms,
                heard=False,
                created_at=left_at or utcnow(),
            )

        return self._store(
            client_id=client_id,
            extension_id=extension_id,
            given_id=uuid,
            id_field="uuid",
            audio=audio,
            row=row,
        )
