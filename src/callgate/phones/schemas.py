"""Wire shapes of ``/extension/{id}/phone/`` and ``/extension/{id}/incom_rule/``.

The SIP password is write-only: answers say only whether one is set (``password_set``).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from callgate.api.schemas import format_optional_time
from callgate.phones.service import (
    CODECS,
    MAX_RING_SECONDS,
    MAX_SIP_PASSWORD_LENGTH,
    MIN_RING_SECONDS,
    MIN_SIP_PASSWORD_LENGTH,
    PhoneView,
    RuleView,
)

Codec = Literal["PCMU", "PCMA"]
Action = Literal["hangup", "forward", "voicemail"]


class PhoneOut(BaseModel):
    extension_id: int
    sip_username: str = Field(description="{client prefix}*{extension name}")
    password_set: bool = Field(
        description="Whether a SIP password is set (it is never returned). Renaming the "
        "extension clears it."
    )
    record_enabled: bool
    codecs: list[Codec] = Field(description="In order of preference.")
    updated: str | None = Field(description="UTC, YYYY-MM-DD HH:MM:SS; null: never changed")

    @classmethod
    def of(cls, view: PhoneView) -> PhoneOut:
        return cls.model_validate(
            {
                "extension_id": view.extension_id,
                "sip_username": view.sip_username,
                "password_set": view.password_set,
                "record_enabled": view.record_enabled,
                "codecs": view.codecs,
                "updated": format_optional_time(view.updated),
            }
        )


class PhoneUpdate(BaseModel):
    """The fields to change; those left out keep their values."""

    model_config = ConfigDict(extra="forbid")

    password: str | None = Field(
        default=None,
        min_length=MIN_SIP_PASSWORD_LENGTH,
        max_length=MAX_SIP_PASSWORD_LENGTH,
        description="The SIP password: write-only, stored only as digest HA1 values. "
        "null removes it (the phone can no longer register).",
    )
    record_enabled: bool | None = None
    codecs: list[Codec] | None = Field(
        default=None, min_length=1, max_length=len(CODECS), description="In order."
    )


class IncomingRuleOut(BaseModel):
    extension_id: int
    ring_seconds: int
    action: Action = Field(description="What happens when the extension does not answer in time.")
    forward_to: str | None
    updated: str | None = Field(description="UTC, YYYY-MM-DD HH:MM:SS; null: never changed")

    @classmethod
    def of(cls, view: RuleView) -> IncomingRuleOut:
        return cls.model_validate(
            {
                "extension_id": view.extension_id,
                "ring_seconds": view.ring_seconds,
                "action": view.action,
                "forward_to": view.forward_to,
                "updated": format_optional_time(view.updated),
            }
        )


class IncomingRuleUpdate(BaseModel):
    """The fields to change; those left out keep their values. ``forward_to`` is needed with
    the action ``forward`` and only then; choosing another action clears it."""

    model_config = ConfigDict(extra="forbid")

    ring_seconds: int | None = Field(default=None, ge=MIN_RING_SECONDS, le=MAX_RING_SECONDS)
    action: Action | None = None
    forward_to: str | None = Field(
        default=None,
        max_length=33,
        description="An extension number of this client or an external number (digits, "
        "optionally after +). A number that is no extension of the client is dialled outside.",
    )
