"""Storage of PBX applications and consents."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import delete, or_, select
from sqlalchemy.orm import Session

from callgate.apps.models import Application, Consent


class ApplicationRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def by_app_id(self, app_id: str) -> Application | None:
        return self.session.scalar(select(Application).where(Application.app_id == app_id))

    def owned_by(self, owner_id: int) -> Sequence[Application]:
        return self.session.scalars(
            select(Application)
            .where(Application.owner_id == owner_id)
            .order_by(Application.created_at, Application.id)
        ).all()

    def search(self, text: str = "", limit: int = 200) -> Sequence[Application]:
        query = select(Application).order_by(Application.created_at, Application.id).limit(limit)
        if text:
            like = f"%{text}%"
            query = query.where(or_(Application.name.ilike(like), Application.app_id.ilike(like)))
        return self.session.scalars(query).all()

    def add(self, application: Application) -> None:
        self.session.add(application)
        self.session.flush()

    def delete(self, application: Application) -> None:
        self.session.delete(application)
        self.session.flush()

    def consent(self, user_id: int, application_id: int) -> Consent | None:
        return self.session.scalar(
            select(Consent).where(
                Consent.user_id == user_id, Consent.application_id == application_id
            )
        )

    def add_consent(self, user_id: int, application_id: int) -> Consent:
        consent = Consent(user_id=user_id, application_id=application_id)
        self.session.add(consent)
        self.session.flush()
        return consent

    def remove_consent(self, user_id: int, application_id: int) -> int:
        result = self.session.execute(
            delete(Consent).where(
                Consent.user_id == user_id, Consent.application_id == application_id
            )
        )
        return int(result.rowcount)  # type: ignore[attr-defined]

    def authorized_by(self, user_id: int) -> Sequence[tuple[Application, Consent]]:
        rows = self.session.execute(
            select(Application, Consent)
            .join(Consent, Consent.application_id == Application.id)
            .where(Consent.user_id == user_id)
            .order_by(Consent.created_at)
        ).all()
        return [(row[0], row[1]) for row in rows]
