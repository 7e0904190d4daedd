"""Wire shapes of the identity resources of the API: the token's user, the client, its users,
extensions and quotas.

Field names follow the original ver1.0 API where it is known (``/user``); times are UTC in the
original's ``YYYY-MM-DD HH:MM:SS`` form.
"""

from __future__ import annotations

from typing import Literal, cast

from pydantic import BaseModel, ConfigDict, Field, field_validator

from callgate.api.schemas import format_time
from callgate.identity.models import Client, Extension, ExtensionType, User
from callgate.identity.service import (
    MAX_PASSWORD_LENGTH,
    MIN_PASSWORD_LENGTH,
    ClientLimits,
    sip_username,
)
from callgate.policy.principal import Principal


class UserOut(BaseModel):
    id: int
    login: str
    admin: bool
    access: Literal["full", "read_only"]
    client_id: int | None
    extension_id: int | None
    extension_group_id: None = None
    dealer_id: None = None
    timezone: str
    extra_params: None = None

    @classmethod
    def of(cls, principal: Principal) -> UserOut:
        user = principal.user
        return cls(
            id=user.id,
            login=user.login,
            admin=user.is_admin,
            access="read_only" if user.read_only else "full",
            client_id=user.client_id,
            extension_id=user.extension_id,
            timezone=user.timezone,
        )


class ClientOut(BaseModel):
    id: int
    name: str
    prefix: str
    status: str
    created: str = Field(description="UTC, YYYY-MM-DD HH:MM:SS")

    @classmethod
    def of(cls, client: Client) -> ClientOut:
        return cls(
            id=client.id,
            name=client.name,
            prefix=client.prefix,
            status=client.status,
            created=format_time(client.created_at),
        )


class ClientUpdate(BaseModel):
    """What a client's manager may change; the prefix and status are the operator's."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, min_length=1, max_length=200)

    @field_validator("name")
    @classmethod
    def _not_blank(cls, value: str | None) -> str | None:
        if value is not None:
            value = value.strip()
            if not value:
                raise ValueError("must not be blank")
        return value


# -- the client's users -------------------------------------------------------------------------

# Every id column is a 32-bit INTEGER: a wider id can name nothing.
MAX_ID = 2**31 - 1
AccessName = Literal["full", "read_only"]
StatusName = Literal["active", "blocked"]


class ClientUserOut(BaseModel):
    """A user of the client: the fields of ``GET /user``, plus its status and creation time.
    The password is never returned."""

    id: int
    login: str
    admin: bool = False
    access: AccessName
    status: StatusName
    client_id: int | None
    extension_id: int | None = Field(
        description="Set for an extension's owner; null for a client's manager."
    )
    extension_group_id: None = None
    dealer_id: None = None
    timezone: str
    extra_params: None = None
    created: str = Field(description="UTC, YYYY-MM-DD HH:MM:SS")

    @classmethod
    def of(cls, user: User) -> ClientUserOut:
        return cls(
            id=user.id,
            login=user.login,
            admin=user.is_admin,
            access="read_only" if user.access != "full" else "full",
            status="active" if user.status == "active" else "blocked",
            client_id=user.client_id,
            extension_id=user.extension_id,
            timezone=user.timezone,
            created=format_time(user.created_at),
        )


class ClientUserCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    login: str = Field(min_length=1, max_length=150, description="Letters, digits and _.@+-")
    password: str = Field(
        min_length=MIN_PASSWORD_LENGTH,
        max_length=MAX_PASSWORD_LENGTH,
        description="Write-only; never returned.",
    )
    access: AccessName = "full"
    status: StatusName = "active"
    extension_id: int | None = Field(
        default=None,
        ge=1,
        le=MAX_ID,
        description="An extension of this client: the user is that extension's owner. "
        "Without it the user is a manager of the whole client.",
    )
    timezone: str = Field(default="UTC", max_length=64)


class ClientUserUpdate(BaseModel):
    """The fields to change; those left out keep their values. A new password or
    ``status: blocked`` revokes the user's tokens."""

    model_config = ConfigDict(extra="forbid")

    login: str | None = Field(default=None, min_length=1, max_length=150)
    password: str | None = Field(
        default=None, min_length=MIN_PASSWORD_LENGTH, max_length=MAX_PASSWORD_LENGTH
    )
    access: AccessName | None = None
    status: StatusName | None = None
    extension_id: int | None = Field(
        default=None,
        ge=1,
        le=MAX_ID,
        description="null makes the user a manager of the whole client.",
    )
    timezone: str | None = Field(default=None, max_length=64)


# -- extensions ---------------------------------------------------------------------------------

ExtensionTypeName = Literal["phone", "fax", "queue", "ivr"]


class ExtensionOut(BaseModel):
    id: int
    name: str = Field(description="The short number inside the client, e.g. 101.")
    type: ExtensionTypeName
    label: str
    status: StatusName
    client_id: int
    sip_username: str | None = Field(
        description="{client prefix}*{name} for phone extensions; null for the other types."
    )
    extension_group_id: None = None
    created: str = Field(description="UTC, YYYY-MM-DD HH:MM:SS")
    create_date: str = Field(description="The same as created, under the original API's name.")

    @classmethod
    def of(cls, extension: Extension, prefix: str) -> ExtensionOut:
        created = format_time(extension.created_at)
        is_phone = extension.type == ExtensionType.PHONE
        return cls(
            id=extension.id,
            name=extension.name,
            type=cast(ExtensionTypeName, extension.type),
            label=extension.label,
            status="active" if extension.status == "active" else "blocked",
            client_id=extension.client_id,
            sip_username=sip_username(prefix, extension.name) if is_phone else None,
            created=created,
            create_date=created,
        )


class ExtensionCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(
        min_length=1,
        max_length=41,
        description="1 to 20 digits; {client prefix}*{digits} is accepted too.",
    )
    type: ExtensionTypeName = "phone"
    label: str = Field(default="", max_length=200, description="Display name.")
    status: StatusName = "active"


class ExtensionUpdate(BaseModel):
    """The fields to change; those left out keep their values. The type cannot change.
    Renaming a phone extension forgets its SIP password (the digest HA1 is computed over the
    SIP user name): set a new one with ``PUT /extension/{id}/phone/``."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, min_length=1, max_length=41)
    label: str | None = Field(default=None, max_length=200)
    status: StatusName | None = None


# -- limits -------------------------------------------------------------------------------------


class LimitValues(BaseModel):
    rate_limit_per_hour: int
    max_extensions: int
    max_concurrent_calls: int
    storage_quota_mb: int


class LimitUsage(BaseModel):
    extensions: int


class LimitOut(BaseModel):
    """The client's own quotas (null: the system default) and the values in force."""

    client_id: int
    rate_limit_per_hour: int | None
    max_extensions: int | None
    max_concurrent_calls: int | None
    storage_quota_mb: int | None
    effective: LimitValues
    usage: LimitUsage

    @classmethod
    def of(cls, limits: ClientLimits) -> LimitOut:
        return cls(
            client_id=limits.client_id,
            **limits.own,
            effective=LimitValues(**limits.effective),
            usage=LimitUsage(extensions=limits.extensions),
        )


class LimitUpdate(BaseModel):
    """Quotas to change (admins only); null restores the system default."""

    model_config = ConfigDict(extra="forbid")

    rate_limit_per_hour: int | None = Field(default=None, ge=1, le=100_000_000)
    max_extensions: int | None = Field(default=None, ge=1, le=1_000_000)
    max_concurrent_calls: int | None = Field(default=None, ge=1, le=1_000_000)
    storage_quota_mb: int | None = Field(default=None, ge=1, le=1_000_000_000)
