"""Storage of DIDs and SIP trunks."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from callgate.routing.models import Did, Trunk


class RoutingRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def dids_of_client(self, client_id: int, offset: int, limit: int) -> Sequence[Did]:
        return self.session.scalars(
            select(Did)
            .where(Did.client_id == client_id)
            .order_by(Did.id)
            .offset(offset)
            .limit(limit)
        ).all()

    def count_dids(self, client_id: int) -> int:
        count = self.session.scalar(
            select(func.count()).select_from(Did).where(Did.client_id == client_id)
        )
        return int(count or 0)

    def did(self, client_id: int, did_id: int) -> Did | None:
        return self.session.scalar(select(Did).where(Did.id == did_id, Did.client_id == client_id))

    def did_by_number(self, number: str) -> Did | None:
        return self.session.scalar(select(Did).where(Did.number == number))

    def trunks_of_client(self, client_id: int, offset: int, limit: int) -> Sequence[Trunk]:
        return self.session.scalars(
            select(Trunk)
            .where(Trunk.client_id == client_id)
            .order_by(Trunk.priority, Trunk.id)
            .offset(offset)
            .limit(limit)
        ).all()

    def count_trunks(self, client_id: int) -> int:
        count = self.session.scalar(
            select(func.count()).select_from(Trunk).where(Trunk.client_id == client_id)
        )
        return int(count or 0)

    def trunk(self, client_id: int, trunk_id: int) -> Trunk | None:
        return self.session.scalar(
            select(Trunk).where(Trunk.id == trunk_id, Trunk.client_id == client_id)
        )

    def trunk_by_name(self, client_id: int, name: str) -> Trunk | None:
        return self.session.scalar(
            select(Trunk).where(Trunk.client_id == client_id, Trunk.name == name).limit(1)
        )

    def add(self, obj: Did | Trunk) -> None:
        self.session.add(obj)
        self.session.flush()

    def delete(self, obj: Did | Trunk) -> None:
        self.session.delete(obj)
        self.session.flush()
