"""Creating and changing clients, extensions and users, and the clients' quotas.

The API's configuration resources (``/client/{id}/``, ``…/user/``, ``…/extension/``,
``/extension/{id}/``, ``…/limit/``) go through this service; the routes never query.
"""

from __future__ import annotations

import enum
import logging
import re
import zoneinfo
from dataclasses import dataclass

from sqlalchemy.exc import IntegrityError

from callgate.api.schemas import Page
from callgate.audit.service import record
from callgate.common.clock import utcnow
from callgate.common.db import Database
from callgate.common.errors import Conflict, InvalidInput, NotFound, PermissionRefused
from callgate.common.security import Passwords
from callgate.common.storage import FileStore
from callgate.config import Settings
from callgate.identity.models import (
    Client,
    Extension,
    ExtensionType,
    Status,
    User,
    UserAccess,
    UserLevel,
)
from callgate.identity.repository import IdentityRepository, artefact_paths_of_extension
from callgate.oauth.repository import TokenRepository
from callgate.phones.repository import PhoneRepository

log = logging.getLogger(__name__)
_PREFIX = re.compile(r"^[0-9]{1,20}$")
_EXTENSION_NAME = re.compile(r"^[0-9]{1,20}$")
_LOGIN = re.compile(r"^[A-Za-z0-9_.@+-]{1,150}$")
MIN_PASSWORD_LENGTH = 8


def _extension_name(client: Client, name: str) -> str:
    """The short name of an extension given as ``101`` or ``{prefix}*101``."""
    short = name.removeprefix(f"{client.prefix}*")
    if not _EXTENSION_NAME.match(short):
        raise InvalidInput(
            "The extension name must be 1 to 20 digits (optionally after the client's prefix "
            "and '*').",
            {"name": "not digits"},
        )
    return short


def _check_status(status: str) -> None:
    if status not in set(Status):
        raise InvalidInput(
            f"The status must be one of {', '.join(Status)}.", {"status": "unknown status"}
        )


class Keep(enum.Enum):
    """The value of an update argument that was not given: keep what is stored."""

    KEEP = "keep"


KEEP = Keep.KEEP
LIMIT_NAMES = ("rate_limit_per_hour", "max_extensions", "max_concurrent_calls", "storage_quota_mb")
MAX_PASSWORD_LENGTH = 256


@dataclass(frozen=True)
class Actor:
    """Who asks for a change: the token's user and application (for rules and the audit)."""

    user_id: int
    app_id: str | None = None
    is_admin: bool = False


@dataclass(frozen=True)
class ClientLimits:
    """A client's own quotas (None: the system default) and the values in force."""

    client_id: int
    own: dict[str, int | None]
    effective: dict[str, int]
    extensions: int


def effective_limit(client: Client, name: str, settings: Settings) -> int:
    """The quota ``name`` (one of ``LIMIT_NAMES``) in force for ``client``."""
    own: int | None = getattr(client, name)
    default: int = getattr(settings, name)
    return default if own is None else own


def sip_username(prefix: str, extension_name: str) -> str:
    """The SIP user name of a phone extension (SPEC §1): ``{client prefix}*{name}``."""
    return f"{prefix}*{extension_name}"


def _check_timezone(value: str) -> None:
    try:
        zoneinfo.ZoneInfo(value)
    except (ValueError, zoneinfo.ZoneInfoNotFoundError):
        raise InvalidInput(
            f"The timezone {value!r} is not an IANA time zone name such as Europe/Berlin.",
            {"timezone": "unknown time zone"},
        ) from None


class IdentityService:
    def __init__(
        self,
        database: Database,
        passwords: Passwords,
        settings: Settings | None = None,
        files: FileStore | None = None,
    ) -> None:
        self.database = database
        self.passwords = passwords
        # Without settings the quotas' system defaults are the built-in ones.
        self.settings = settings if settings is not None else Settings.model_construct()
        self.files = files

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
        self,
        client_id: int,
        name: str,
        type_: str = ExtensionType.PHONE,
        label: str = "",
        status: str = Status.ACTIVE,
    ) -> Extension:
        """Add an extension, within the client's ``max_extensions`` quota.

        ``name`` may also be given as the original API writes it, ``{client prefix}*{name}``.
        """
        if type_ not in set(ExtensionType):
            raise InvalidInput(
                f"The extension type must be one of {', '.join(ExtensionType)}.", {"type": type_}
            )
        _check_status(status)
        try:
            with self.database.write() as session:
                repo = IdentityRepository(session)
                # Locked: two writers at the quota's edge must not both see room for one more.
                client = repo.client_for_update(client_id)
                if client is None:
                    raise NotFound(f"There is no client {client_id}.")
                name = _extension_name(client, name)
                if repo.extension_by_name(client_id, name) is not None:
                    raise Conflict(f"Client {client_id} already has an extension {name}.")
                limit = effective_limit(client, "max_extensions", self.settings)
                if repo.count_extensions(client_id) >= limit:
                    raise Conflict(
                        f"Client {client_id} has reached its limit of {limit} extensions "
                        "(max_extensions); delete one or ask the operator to raise the limit."
                    )
                extension = Extension(
                    client_id=client_id, name=name, type=type_, label=label, status=status
                )
                repo.add(extension)
                return extension
        except IntegrityError:
            raise Conflict(f"Client {client_id} already has an extension {name}.") from None

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

    # -- the client ------------------------------------------------------------------------------

    def get_client(self, client_id: int) -> Client:
        with self.database.read() as session:
            client = IdentityRepository(session).client(client_id)
        if client is None:
            raise NotFound(f"There is no client {client_id}.")
        return client

    def update_client(self, client_id: int, actor: Actor, *, name: str | Keep = KEEP) -> Client:
        """Change what a client's manager may change: its name."""
        if not isinstance(name, Keep) and not name.strip():
            raise InvalidInput("The client name must not be empty.", {"name": "empty"})
        with self.database.write() as session:
            client = IdentityRepository(session).client(client_id)
            if client is None:
                raise NotFound(f"There is no client {client_id}.")
            changed = []
            if not isinstance(name, Keep):
                client.name = name.strip()
                changed.append("name")
            session.flush()
            record(
                session,
                "client_updated",
                user_id=actor.user_id,
                app_id=actor.app_id,
                detail=f"client={client_id} fields={','.join(changed)}",
            )
            return client

    # -- the client's users ----------------------------------------------------------------------

    def list_client_users(self, client_id: int, page: int, per_page: int) -> Page[User]:
        with self.database.read() as session:
            repo = IdentityRepository(session)
            items = repo.users_of_client(client_id, (page - 1) * per_page, per_page)
            total = repo.count_users_of_client(client_id)
        return Page(items, total, page, per_page)

    def get_client_user(self, client_id: int, user_id: int) -> User:
        with self.database.read() as session:
            user = IdentityRepository(session).user_of_client(client_id, user_id)
        if user is None:
            raise NotFound(f"Client {client_id} has no user {user_id}.")
        return user

    def _check_password(self, password: str) -> None:
        if len(password) < MIN_PASSWORD_LENGTH:
            raise InvalidInput(
                f"The password must have at least {MIN_PASSWORD_LENGTH} characters.",
                {"password": "too short"},
            )
        if len(password) > MAX_PASSWORD_LENGTH:
            raise InvalidInput(
                f"The password must have at most {MAX_PASSWORD_LENGTH} characters.",
                {"password": "too long"},
            )

    @staticmethod
    def _client_extension(repo: IdentityRepository, client_id: int, extension_id: int) -> None:
        if repo.extension_of_client(client_id, extension_id) is None:
            # Another client's extension is reported like a missing one: nothing leaks.
            raise InvalidInput(
                f"Client {client_id} has no extension {extension_id}.",
                {"extension_id": "not an extension of this client"},
            )

    def create_client_user(
        self,
        client_id: int,
        actor: Actor,
        *,
        login: str,
        password: str,
        access: str = UserAccess.FULL,
        status: str = Status.ACTIVE,
        extension_id: int | None = None,
        timezone: str = "UTC",
    ) -> User:
        """A user of the client: its manager (no extension) or an extension's owner."""
        if not _LOGIN.match(login):
            raise InvalidInput(
                "The login may hold 1 to 150 letters, digits and _.@+- only.",
                {"login": "invalid characters or length"},
            )
        self._check_password(password)
        if access not in set(UserAccess):
            raise InvalidInput("The access must be full or read_only.", {"access": access})
        _check_status(status)
        _check_timezone(timezone)
        password_hash = self.passwords.hash(password)
        try:
            with self.database.write() as session:
                repo = IdentityRepository(session)
                if repo.user_by_login(login) is not None:
                    raise Conflict(f"The login {login} is taken.")
                if extension_id is not None:
                    self._client_extension(repo, client_id, extension_id)
                user = User(
                    login=login,
                    password_hash=password_hash,
                    level=UserLevel.CLIENT if extension_id is None else UserLevel.EXTENSION,
                    access=access,
                    status=status,
                    client_id=client_id,
                    extension_id=extension_id,
                    timezone=timezone,
                )
                repo.add(user)
                record(
                    session,
                    "user_created",
                    user_id=actor.user_id,
                    app_id=actor.app_id,
                    detail=f"client={client_id} user={user.id} level={user.level}",
                )
                return user
        except IntegrityError:
            raise Conflict(f"The login {login} is taken.") from None

    def update_client_user(
        self,
        client_id: int,
        user_id: int,
        actor: Actor,
        *,
        login: str | Keep = KEEP,
        password: str | Keep = KEEP,
        access: str | Keep = KEEP,
        status: str | Keep = KEEP,
        extension_id: int | Keep | None = KEEP,
        timezone: str | Keep = KEEP,
    ) -> User:
        """Change some of a user's fields. A new password or blocking revokes the user's
        tokens; nobody may block themselves."""
        if not isinstance(login, Keep) and not _LOGIN.match(login):
            raise InvalidInput(
                "The login may hold 1 to 150 letters, digits and _.@+- only.",
                {"login": "invalid characters or length"},
            )
        if not isinstance(password, Keep):
            self._check_password(password)
        if not isinstance(access, Keep) and access not in set(UserAccess):
            raise InvalidInput("The access must be full or read_only.", {"access": access})
        if not isinstance(status, Keep):
            _check_status(status)
            if status == Status.BLOCKED and user_id == actor.user_id:
                raise InvalidInput("You cannot block yourself.", {"status": "own user"})
        if not isinstance(timezone, Keep):
            _check_timezone(timezone)
        password_hash = None if isinstance(password, Keep) else self.passwords.hash(password)
        changed: list[str] = []
        try:
            with self.database.write() as session:
                repo = IdentityRepository(session)
                user = repo.user_of_client(client_id, user_id)
                if user is None:
                    raise NotFound(f"Client {client_id} has no user {user_id}.")
                revoke = False
                if not isinstance(login, Keep) and login != user.login:
                    other = repo.user_by_login(login)
                    if other is not None:
                        raise Conflict(f"The login {login} is taken.")
                    user.login = login
                    changed.append("login")
                if password_hash is not None:
                    user.password_hash = password_hash
                    user.password_changed_at = utcnow()
                    revoke = True
                    changed.append("password")
                if not isinstance(access, Keep):
                    user.access = access
                    changed.append("access")
                if not isinstance(status, Keep):
                    revoke = revoke or (status == Status.BLOCKED and user.status != status)
                    user.status = status
                    changed.append("status")
                if not isinstance(extension_id, Keep):
                    if extension_id is not None:
                        self._client_extension(repo, client_id, extension_id)
                    # The level follows: an extension's owner, or the client's manager.
                    user.extension_id = extension_id
                    user.level = UserLevel.CLIENT if extension_id is None else UserLevel.EXTENSION
                    changed.append("extension_id")
                if not isinstance(timezone, Keep):
                    user.timezone = timezone
                    changed.append("timezone")
                session.flush()
                if revoke:
                    TokenRepository(session).revoke_for_user(user.id)
                record(
                    session,
                    "user_updated",
                    user_id=actor.user_id,
                    app_id=actor.app_id,
                    detail=f"client={client_id} user={user_id} fields={','.join(changed)}",
                )
                return user
        except IntegrityError:
            raise Conflict("The login is taken.") from None

    def delete_client_user(self, client_id: int, user_id: int, actor: Actor) -> None:
        """Delete a user with its tokens, consents and the applications it owns."""
        if user_id == actor.user_id:
            raise PermissionRefused("You cannot delete yourself.")
        with self.database.write() as session:
            repo = IdentityRepository(session)
            user = repo.user_of_client(client_id, user_id)
            if user is None:
                raise NotFound(f"Client {client_id} has no user {user_id}.")
            repo.delete(user)
            record(
                session,
                "user_deleted",
                user_id=actor.user_id,
                app_id=actor.app_id,
                detail=f"client={client_id} user={user_id}",
            )

    # -- extensions ------------------------------------------------------------------------------

    def list_extensions(
        self, client_id: int, type_: str | None, page: int, per_page: int
    ) -> Page[tuple[Extension, str]]:
        """The client's extensions with the client's prefix (for the SIP user names)."""
        with self.database.read() as session:
            repo = IdentityRepository(session)
            client = repo.client(client_id)
            if client is None:
                raise NotFound(f"There is no client {client_id}.")
            items = repo.extensions_of_client(client_id, type_, (page - 1) * per_page, per_page)
            total = repo.count_extensions(client_id, type_)
            prefix = client.prefix
        return Page([(extension, prefix) for extension in items], total, page, per_page)

    def get_extension(self, extension_id: int) -> tuple[Extension, str]:
        """The extension and its client's prefix."""
        with self.database.read() as session:
            repo = IdentityRepository(session)
            extension = repo.extension(extension_id)
            if extension is None:
                raise NotFound(f"There is no extension {extension_id}.")
            client = repo.client(extension.client_id)
            assert client is not None  # foreign key
            return extension, client.prefix

    def create_extension_for(
        self, client_id: int, *, name: str, type_: str, label: str, status: str
    ) -> tuple[Extension, str]:
        extension = self.create_extension(client_id, name, type_, label, status)
        return self.get_extension(extension.id)

    def update_extension(
        self,
        extension_id: int,
        *,
        name: str | Keep = KEEP,
        label: str | Keep = KEEP,
        status: str | Keep = KEEP,
    ) -> tuple[Extension, str]:
        """Change an extension. Renaming it forgets its SIP password: the digest HA1 values
        are computed over the SIP user name, which contains the extension's name."""
        if not isinstance(status, Keep):
            _check_status(status)
        try:
            with self.database.write() as session:
                repo = IdentityRepository(session)
                extension = repo.extension(extension_id)
                if extension is None:
                    raise NotFound(f"There is no extension {extension_id}.")
                client = repo.client(extension.client_id)
                assert client is not None  # foreign key
                if not isinstance(name, Keep):
                    short = _extension_name(client, name)
                    if short != extension.name:
                        if repo.extension_by_name(client.id, short) is not None:
                            raise Conflict(f"Client {client.id} already has an extension {short}.")
                        extension.name = short
                        PhoneRepository(session).clear_credentials(extension_id)
                if not isinstance(label, Keep):
                    extension.label = label
                if not isinstance(status, Keep):
                    extension.status = status
                session.flush()
                return extension, client.prefix
        except IntegrityError:
            raise Conflict("The client already has an extension of that name.") from None

    def delete_extension(self, extension_id: int) -> None:
        """Delete an extension with its settings, event handlers, voicemail and faxes (their
        files too). DIDs routed to it become unrouted. An extension that still has users is
        refused: deleting it would silently delete them."""
        with self.database.write() as session:
            repo = IdentityRepository(session)
            extension = repo.extension(extension_id)
            if extension is None:
                raise NotFound(f"There is no extension {extension_id}.")
            users = repo.count_users_of_extension(extension_id)
            if users:
                raise Conflict(
                    f"Extension {extension_id} has {users} user(s); delete them or move them to "
                    "another extension first."
                )
            paths = artefact_paths_of_extension(session, extension_id)
            repo.delete(extension)
        # After the commit: a failed delete must not leave rows whose files are gone.
        if self.files is not None:
            for path in paths:
                try:
                    self.files.delete(path)
                except (NotFound, OSError):
                    # The rows are gone; a file that cannot be removed is only litter now.
                    log.warning("could not delete %s of deleted extension %s", path, extension_id)

    # -- quotas ----------------------------------------------------------------------------------

    def get_limits(self, client_id: int) -> ClientLimits:
        with self.database.read() as session:
            repo = IdentityRepository(session)
            client = repo.client(client_id)
            if client is None:
                raise NotFound(f"There is no client {client_id}.")
            return ClientLimits(
                client_id=client_id,
                own={name: getattr(client, name) for name in LIMIT_NAMES},
                effective={
                    name: effective_limit(client, name, self.settings) for name in LIMIT_NAMES
                },
                extensions=repo.count_extensions(client_id),
            )

    def update_limits(
        self, client_id: int, actor: Actor, changes: dict[str, int | None]
    ) -> ClientLimits:
        """Set some quotas (None: back to the system default). Only an admin may."""
        if not actor.is_admin:
            raise PermissionRefused("Only a system administrator may change a client's limits.")
        for name, value in changes.items():
            if name not in LIMIT_NAMES:
                raise InvalidInput(f"{name} is not a limit.", {name: "unknown limit"})
            if value is not None and value < 1:
                raise InvalidInput(f"{name} must be at least 1, or null.", {name: "below 1"})
        with self.database.write() as session:
            client = IdentityRepository(session).client(client_id)
            if client is None:
                raise NotFound(f"There is no client {client_id}.")
            for name, value in changes.items():
                setattr(client, name, value)
            record(
                session,
                "client_limits_updated",
                user_id=actor.user_id,
                app_id=actor.app_id,
                detail=f"client={client_id} "
                + " ".join(f"{name}={value}" for name, value in sorted(changes.items())),
            )
        return self.get_limits(client_id)
