"""Storage of clients, extensions and users."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from callgate.identity.models import Client, Extension, User


class IdentityRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def client(self, client_id: int) -> Client | None:
        return self.session.get(Client, client_id)

    def client_by_prefix(self, prefix: str) -> Client | None:
        return self.session.scalar(select(Client).where(Client.prefix == prefix))

    def extension(self, extension_id: int) -> Extension | None:
        return self.session.get(Extension, extension_id)

    def extension_by_name(self, client_id: int, name: str) -> Extension | None:
        return self.session.scalar(
            select(Extension).where(Extension.client_id == client_id, Extension.name == name)
        )

    def user(self, user_id: int) -> User | None:
        return self.session.get(User, user_id)

    def user_by_login(self, login: str) -> User | None:
        return self.session.scalar(select(User).where(User.login == login))

    def add(self, obj: Client | Extension | User) -> None:
        self.session.add(obj)
        self.session.flush()
