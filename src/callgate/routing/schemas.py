"""Wire shapes of DIDs and SIP trunks.

A DID carries its number as ``number`` and, as the original API names it, ``name``; input
accepts either. A trunk's password is write-only: answers say only ``password_set``.
"""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import AliasChoices, BaseModel, ConfigDict, Field

from callgate.api.schemas import format_time
from callgate.identity.schemas import MAX_ID
from callgate.routing.models import Did, Trunk
from callgate.routing.service import MAX_PRIORITY, MAX_REGISTER_EXPIRES, MIN_REGISTER_EXPIRES

_NUMBER_HELP = (
    "2 to 31 digits, optionally after a +; unique in the whole PBX. The original API's name "
    "for it, `name`, is accepted instead."
)


class DidOut(BaseModel):
    id: int
    number: str
    name: str = Field(description="The number again, under the original API's name.")
    client_id: int
    extension_id: int | None = Field(description="Where calls to the number go; null: nowhere.")
    created: str = Field(description="UTC, YYYY-MM-DD HH:MM:SS")
    create_date: str = Field(description="The same as created, under the original API's name.")

    @classmethod
    def of(cls, did: Did) -> DidOut:
        created = format_time(did.created_at)
        return cls(
            id=did.id,
            number=did.number,
            name=did.number,
            client_id=did.client_id,
            extension_id=did.extension_id,
            created=created,
            create_date=created,
        )


class DidCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    number: str = Field(
        min_length=1,
        max_length=32,
        validation_alias=AliasChoices("number", "name"),
        description=_NUMBER_HELP,
    )
    extension_id: int | None = Field(
        default=None, ge=1, le=MAX_ID, description="An extension of this client."
    )


class DidUpdate(BaseModel):
    """The fields to change; ``extension_id: null`` unroutes the number."""

    model_config = ConfigDict(extra="forbid")

    number: str | None = Field(
        default=None,
        min_length=1,
        max_length=32,
        validation_alias=AliasChoices("number", "name"),
        description=_NUMBER_HELP,
    )
    extension_id: int | None = Field(default=None, ge=1, le=MAX_ID)


Transport = Literal["udp", "tcp"]


class TrunkOut(BaseModel):
    id: int
    client_id: int
    name: str
    host: str
    port: int
    transport: Transport
    username: str | None
    password_set: bool = Field(description="Whether a password is set; it is never returned.")
    # "register" would shadow a BaseModel attribute; the wire name is "register".
    register_: bool = Field(alias="register")
    register_expires: int
    caller_id_number: str | None
    priority: int = Field(description="Calls leave through the enabled trunk with the lowest.")
    enabled: bool
    created: str = Field(description="UTC, YYYY-MM-DD HH:MM:SS")

    @classmethod
    def of(cls, trunk: Trunk) -> TrunkOut:
        return cls.model_validate(
            {
                "id": trunk.id,
                "client_id": trunk.client_id,
                "name": trunk.name,
                "host": trunk.host,
                "port": trunk.port,
                "transport": trunk.transport,
                "username": trunk.username,
                "password_set": trunk.password is not None,
                "register": trunk.register,
                "register_expires": trunk.register_expires,
                "caller_id_number": trunk.caller_id_number,
                "priority": trunk.priority,
                "enabled": trunk.enabled,
                "created": format_time(trunk.created_at),
            }
        )


class _TrunkFields(BaseModel):
    model_config = ConfigDict(extra="forbid")

    port: int = Field(default=5060, ge=1, le=65535)
    transport: Transport = "udp"
    username: str | None = Field(default=None, min_length=1, max_length=100)
    password: str | None = Field(
        default=None, min_length=1, max_length=200, description="Write-only; never returned."
    )
    register_: bool = Field(
        default=False,
        alias="register",
        description="Register with the provider (needs username and password).",
    )
    register_expires: int = Field(default=3600, ge=MIN_REGISTER_EXPIRES, le=MAX_REGISTER_EXPIRES)
    caller_id_number: str | None = Field(default=None, max_length=32)
    priority: int = Field(default=10, ge=0, le=MAX_PRIORITY)
    enabled: bool = True


class TrunkCreate(_TrunkFields):
    name: str = Field(min_length=1, max_length=100)
    host: str = Field(
        min_length=1, max_length=253, description="A host name or IP address; no scheme or port."
    )


class TrunkUpdate(BaseModel):
    """The fields to change; those left out keep their values. ``password: null`` removes
    the password (and is refused while ``register`` is on)."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, min_length=1, max_length=100)
    host: str | None = Field(default=None, min_length=1, max_length=253)
    port: int | None = Field(default=None, ge=1, le=65535)
    transport: Transport | None = None
    username: str | None = Field(default=None, min_length=1, max_length=100)
    password: str | None = Field(default=None, min_length=1, max_length=200)
    register_: bool | None = Field(default=None, alias="register")
    register_expires: int | None = Field(
        default=None, ge=MIN_REGISTER_EXPIRES, le=MAX_REGISTER_EXPIRES
    )
    caller_id_number: str | None = Field(default=None, max_length=32)
    priority: int | None = Field(default=None, ge=0, le=MAX_PRIORITY)
    enabled: bool | None = None

    # Fields that may be set to null; for the others null means "keep".
    NULLABLE: ClassVar[tuple[str, ...]] = ("username", "password", "caller_id_number")

    def changes(self) -> dict[str, object]:
        """The given fields by their wire names (null kept only where it means "none")."""
        return {
            name.rstrip("_"): getattr(self, name)
            for name in self.model_fields_set
            if getattr(self, name) is not None or name in self.NULLABLE
        }
