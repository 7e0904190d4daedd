"""Storage of sound rows."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from callgate.sounds.models import Sound


class SoundRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def for_client(self, client_id: int, offset: int, limit: int) -> Sequence[Sound]:
        return self.session.scalars(
            select(Sound)
            .where(Sound.client_id == client_id)
            .order_by(Sound.id)
            .offset(offset)
            .limit(limit)
        ).all()

    def count_for_client(self, client_id: int) -> int:
        count = self.session.scalar(
            select(func.count()).select_from(Sound).where(Sound.client_id == client_id)
        )
        return int(count or 0)

    def get(self, client_id: int, sound_id: int) -> Sound | None:
        return self.session.scalar(
            select(Sound).where(Sound.id == sound_id, Sound.client_id == client_id)
        )

    def add(self, sound: Sound) -> None:
        self.session.add(sound)
        self.session.flush()

    def delete(self, sound: Sound) -> None:
        self.session.delete(sound)
        self.session.flush()
