"""What an authorized API request carries: the token's user, application and client.

These are plain frozen values read in one query per request; routes receive them instead of ORM
objects, so that nothing in a route can lazily touch the database through them.
"""

from __future__ import annotations

from dataclasses import dataclass

from callgate.apps.models import AccessLevel
from callgate.identity.models import Status, UserAccess, UserLevel


@dataclass(frozen=True, slots=True)
class PrincipalUser:
    id: int
    login: str
    level: str
    access: str
    status: str
    client_id: int | None
    extension_id: int | None
    timezone: str

    @property
    def is_admin(self) -> bool:
        return self.level == UserLevel.ADMIN

    @property
    def read_only(self) -> bool:
        # Anything but an explicit "full" is treated as read-only: the safe reading.
        return self.access != UserAccess.FULL


@dataclass(frozen=True, slots=True)
class PrincipalApp:
    id: int
    app_id: str
    type: str
    access_level: str
    status: str

    @property
    def call_api_only(self) -> bool:
        return self.access_level != AccessLevel.ALL


@dataclass(frozen=True, slots=True)
class PrincipalClient:
    id: int
    status: str
    rate_limit_per_hour: int | None


@dataclass(frozen=True, slots=True)
class Principal:
    """The user a token acts for, through which application, inside which client."""

    token_id: str
    user: PrincipalUser
    app: PrincipalApp
    client: PrincipalClient | None

    @property
    def blocked(self) -> bool:
        if self.user.status != Status.ACTIVE:
            return True
        return self.client is not None and self.client.status != Status.ACTIVE

    @property
    def quota_key(self) -> str:
        """The rate-limit counter: shared by every user and app of a client."""
        if self.client is not None:
            return f"client:{self.client.id}"
        return f"user:{self.user.id}"


@dataclass(frozen=True, slots=True)
class ExtensionRealm:
    id: int
    client_id: int


@dataclass(frozen=True, slots=True)
class Realm:
    """The path's ``client_id`` / ``extension_id`` after ``@me`` and the access checks."""

    client_id: int | None = None
    extension: ExtensionRealm | None = None


@dataclass(frozen=True, slots=True)
class RateStatus:
    """The quota after counting this request; ``reset`` is seconds until the window ends."""

    limit: int
    count: int
    reset: int

    @property
    def remaining(self) -> int:
        return max(0, self.limit - self.count)

    @property
    def exceeded(self) -> bool:
        return self.count > self.limit
