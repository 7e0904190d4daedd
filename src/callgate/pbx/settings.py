"""Settings of the PBX process, read from ``CALLGATE_SIP_*`` next to the main settings.

They live here rather than in ``callgate.config.Settings`` while the PBX is young; the
composition root can fold them in later without changing their environment names.
"""

from __future__ import annotations

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class PbxSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CALLGATE_SIP_", extra="ignore")

    # ``callgate serve`` runs the SIP endpoint in its own process (one HTTP worker) or in one
    # child process (several workers, since only one process may bind the SIP port). False: run
    # ``callgate sip`` yourself, e.g. on another host sharing the database.
    in_process: bool = True
    # Registration intervals (RFC 3261 §10.3): below min_expires a REGISTER gets 423 with
    # Min-Expires, above max_expires it is shortened, without any it gets default_expires.
    min_expires: int = Field(60, ge=1)
    max_expires: int = Field(3600, ge=1)
    default_expires: int = Field(3600, ge=1)
    # How long a digest nonce is valid; a valid answer on an older one gets stale=true.
    nonce_lifetime: int = Field(300, ge=10)

    @model_validator(mode="after")
    def _ordered(self) -> PbxSettings:
        if not self.min_expires <= self.default_expires <= self.max_expires:
            raise ValueError("need min_expires <= default_expires <= max_expires")
        return self
