"""Wire shapes of the identity resources of the API: the token's user and the client.

Field names follow the original ver1.0 API where it is known (``/user``); times are UTC in the
original's ``YYYY-MM-DD HH:MM:SS`` form.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from callgate.api.schemas import format_time
from callgate.identity.models import Client
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
