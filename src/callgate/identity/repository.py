"""Storage of clients, extensions and users."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from callgate.fax.models import FaxJob, ReceivedFax
from callgate.identity.models import Client, Extension, User, UserLevel
from callgate.voicemail.models import Voicemail


class IdentityRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def client(self, client_id: int) -> Client | None:
        return self.session.get(Client, client_id)

    def client_for_update(self, client_id: int) -> Client | None:
        """The client, its row locked until the unit of work ends (PostgreSQL; SQLite writers
        are serialized anyway), so that quota checks of concurrent writers queue."""
        return self.session.scalar(select(Client).where(Client.id == client_id).with_for_update())

    def client_by_prefix(self, prefix: str) -> Client | None:
        return self.session.scalar(select(Client).where(Client.prefix == prefix))

    def extension(self, extension_id: int) -> Extension | None:
        return self.session.get(Extension, extension_id)

    def extension_of_client(self, client_id: int, extension_id: int) -> Extension | None:
        return self.session.scalar(
            select(Extension).where(Extension.id == extension_id, Extension.client_id == client_id)
        )

    def extension_by_name(self, client_id: int, name: str) -> Extension | None:
        return self.session.scalar(
            select(Extension).where(Extension.client_id == client_id, Extension.name == name)
        )

    def extensions_of_client(
        self, client_id: int, type_: str | None, offset: int, limit: int
    ) -> Sequence[Extension]:
        query = select(Extension).where(Extension.client_id == client_id)
        if type_ is not None:
            query = query.where(Extension.type == type_)
        return self.session.scalars(query.order_by(Extension.id).offset(offset).limit(limit)).all()

    def count_extensions(self, client_id: int, type_: str | None = None) -> int:
        query = select(func.count()).select_from(Extension).where(Extension.client_id == client_id)
        if type_ is not None:
            query = query.where(Extension.type == type_)
        return int(self.session.scalar(query) or 0)

    def user(self, user_id: int) -> User | None:
        return self.session.get(User, user_id)

    def user_by_login(self, login: str) -> User | None:
        return self.session.scalar(select(User).where(User.login == login))

    def user_of_client(self, client_id: int, user_id: int) -> User | None:
        """A client's user (client or extension level); admins belong to no client."""
        return self.session.scalar(
            select(User).where(
                User.id == user_id, User.client_id == client_id, User.level != UserLevel.ADMIN
            )
        )

    def users_of_client(self, client_id: int, offset: int, limit: int) -> Sequence[User]:
        return self.session.scalars(
            select(User)
            .where(User.client_id == client_id, User.level != UserLevel.ADMIN)
            .order_by(User.id)
            .offset(offset)
            .limit(limit)
        ).all()

    def count_users_of_client(self, client_id: int) -> int:
        count = self.session.scalar(
            select(func.count())
            .select_from(User)
            .where(User.client_id == client_id, User.level != UserLevel.ADMIN)
        )
        return int(count or 0)

    def count_users_of_extension(self, extension_id: int) -> int:
        count = self.session.scalar(
            select(func.count()).select_from(User).where(User.extension_id == extension_id)
        )
        return int(count or 0)

    def add(self, obj: Client | Extension | User) -> None:
        self.session.add(obj)
        self.session.flush()

    def delete(self, obj: Extension | User) -> None:
        self.session.delete(obj)
        self.session.flush()


def artefact_paths_of_extension(session: Session, extension_id: int) -> list[str]:
    """Files of the rows that deleting the extension removes with it (foreign-key cascade):
    its voicemail and faxes. Recordings and call history stay (their extension becomes null)."""
    queries = (
        select(Voicemail.storage_path).where(Voicemail.extension_id == extension_id),
        select(ReceivedFax.storage_path).where(ReceivedFax.extension_id == extension_id),
        select(FaxJob.storage_path).where(FaxJob.extension_id == extension_id),
    )
    return [path for query in queries for path in session.scalars(query).all()]
