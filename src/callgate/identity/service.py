"""Creating and changing clients, extensions and users."""

from __future__ import annotations

import re

from callgate.common.clock import utcnow
from callgate.common.db import Database
from callgate.common.errors import Conflict, InvalidInput, NotFound
from callgate.common.security import Passwords
from callgate.identity.models import (
    Client,
    Extension,
    ExtensionType,
    Status,
    User,
    UserAccess,
    UserLevel,
)
from callgate.identity.repository import IdentityRepository
from callgate.oauth.repository import TokenRepository

_PREFIX = re.compile(r"^[0-9]{1,20}$")
_EXTENSION_NAME = re.compile(r"^[0-9]{1,20}$")
_LOGIN = re.compile(r"^[A-Za-z0-9_.@+-]{1,150}$")
MIN_PASSWORD_LENGTH = 8


class IdentityService:
    def __init__(self, database: Database, passwords: Passwords) -> None:
        self.database = database
        self.passwords = passwords

    def create_client(self, name: str, prefix: str) -> Client:
        if not name.strip():
            raise InvalidInput("The client name must not be empty.", {"name": "empty"})
        if not _PREFIX.match(prefix):
            raise InvalidInput("The prefix must be 1 to 20 digits.", {"prefix": "not digits"})
        with self.database.write() as session:
            repo = IdentityRepository(session)
            if repo.client_by_prefix(prefix) is not None:
                raise Conflict(f"A client with prefix {prefix} already exists.")
            client = Client(name=name.strip(), prefix=prefix, status=Status.ACTIVE)
            repo.add(client)
            return client

    def create_extension(
        self, client_id: int, name: str, type_: str = ExtensionType.PHONE, label: str = ""
    ) -> Extension:
        if not _EXTENSION_NAME.match(name):
            raise InvalidInput("The extension name must be 1 to 20 digits.", {"name": "not digits"})
        if type_ not in set(ExtensionType):
            raise InvalidInput(
                f"The extension type must be one of {', '.join(ExtensionType)}.", {"type": type_}
            )
        with self.database.write() as session:
            repo = IdentityRepository(session)
            if repo.client(client_id) is None:
                raise NotFound(f"There is no client {client_id}.")
            if repo.extension_by_name(client_id, name) is not None:
                raise Conflict(f"Client {client_id} already has an extension {name}.")
            extension = Extension(client_id=client_id, name=name, type=type_, label=label)
            repo.add(extension)
            return extension

    def create_user(
        self,
        login: str,
        password: str,
        *,
        admin: bool = False,
        client_id: int | None = None,
        extension_id: int | None = None,
        read_only: bool = False,
    ) -> User:
        if not _LOGIN.match(login):
            raise InvalidInput(
                "The login may hold 1 to 150 letters, digits and _.@+- only.", {"login": login}
            )
        if len(password) < MIN_PASSWORD_LENGTH:
            raise InvalidInput(
                f"The password must have at least {MIN_PASSWORD_LENGTH} characters.",
                {"password": "too short"},
            )
        with self.database.write() as session:
            repo = IdentityRepository(session)
            if repo.user_by_login(login) is not None:
                raise Conflict(f"The login {login} is taken.")
            if extension_id is not None:
                extension = repo.extension(extension_id)
                if extension is None:
                    raise NotFound(f"There is no extension {extension_id}.")
                if client_id is not None and client_id != extension.client_id:
                    raise InvalidInput(
                        f"Extension {extension_id} does not belong to client {client_id}.",
                        {"extension_id": "other client"},
                    )
                client_id = extension.client_id
                level = UserLevel.EXTENSION
            elif client_id is not None:
                if repo.client(client_id) is None:
                    raise NotFound(f"There is no client {client_id}.")
                level = UserLevel.CLIENT
            elif admin:
                level = UserLevel.ADMIN
            else:
                raise InvalidInput(
                    "A user is an admin, or belongs to a client or an extension.",
                    {"client_id": "missing"},
                )
            if admin and level != UserLevel.ADMIN:
                raise InvalidInput(
                    "An admin belongs to no client or extension.", {"admin": "with client"}
                )
            user = User(
                login=login,
                password_hash=self.passwords.hash(password),
                level=level,
                access=UserAccess.READ_ONLY if read_only else UserAccess.FULL,
                status=Status.ACTIVE,
                client_id=client_id,
                extension_id=extension_id,
            )
            repo.add(user)
            return user

    def set_user_status(self, user_id: int, status: Status) -> None:
        """Block or unblock a user; blocking revokes every token the user holds."""
        with self.database.write() as session:
            user = IdentityRepository(session).user(user_id)
            if user is None:
                raise NotFound(f"There is no user {user_id}.")
            user.status = status
            if status == Status.BLOCKED:
                TokenRepository(session).revoke_for_user(user_id)

    def set_client_status(self, client_id: int, status: Status) -> None:
        """Block or unblock a client; blocking revokes the tokens of all its users."""
        with self.database.write() as session:
            client = IdentityRepository(session).client(client_id)
            if client is None:
                raise NotFound(f"There is no client {client_id}.")
            client.status = status
            if status == Status.BLOCKED:
                TokenRepository(session).revoke_for_client(client_id)

    def change_password(self, user_id: int, new_password: str) -> None:
        """Set a new password; every token of the user is revoked."""
        if len(new_password) < MIN_PASSWORD_LENGTH:
            raise InvalidInput(
                f"The password must have at least {MIN_PASSWORD_LENGTH} characters.",
                {"password": "too short"},
            )
        with self.database.write() as session:
            user = IdentityRepository(session).user(user_id)
            if user is None:
                raise NotFound(f"There is no user {user_id}.")
            user.password_hash = self.passwords.hash(new_password)
            user.password_changed_at = utcnow()
            TokenRepository(session).revoke_for_user(user_id)
