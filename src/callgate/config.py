"""Settings, read once from the environment (``CALLGATE_*``) and an optional config file.

The settings object is created by the composition root and passed down; no module reads the
environment on its own.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEV_SECRET_KEY = "development-only-secret-key-change-me"  # noqa: S105 - a known placeholder


class UnsafeSettingsError(ValueError):
    """Raised when a setting is unsafe outside development mode."""


class Settings(BaseSettings):
    """Every operator-visible setting of Callgate (SPEC §8)."""

    model_config = SettingsConfigDict(
        env_prefix="CALLGATE_", env_file=None, extra="ignore", validate_default=True
    )

    mode: Literal["development", "production"] = "development"
    data_dir: Path = Path("data")
    database_url: str | None = None
    http_host: str = "127.0.0.1"
    http_port: int = 8080
    http_workers: int = 1
    sip_host: str = "127.0.0.1"
    sip_port: int = 5060
    public_url: str = "http://127.0.0.1:8080"
    secret_key: str = DEV_SECRET_KEY
    cookie_secure: bool = False

    access_token_lifetime: int = Field(3600, ge=60, le=86400)
    refresh_token_lifetime: int = Field(30 * 86400, ge=3600)
    refresh_grace_period: int = Field(30, ge=0, le=600)
    authorization_code_lifetime: int = Field(600, ge=30, le=600)
    session_lifetime: int = Field(12 * 3600, ge=300)

    login_max_failures: int = Field(5, ge=1)
    login_max_failures_per_address: int = Field(50, ge=1)
    login_failure_window: int = Field(900, ge=10)

    # argon2id cost of user passwords (RFC 9106 low-memory profile by default).
    argon2_time_cost: int = Field(3, ge=1)
    argon2_memory_kib: int = Field(65536, ge=8)
    argon2_parallelism: int = Field(4, ge=1)

    rate_limit_per_hour: int = Field(10000, ge=1)
    # Quota slots a worker reserves at once while far from the limit (docs/api.md); 1 = exact.
    rate_limit_batch: int = Field(50, ge=1, le=1000)
    # Per-worker cache of token checks, invalidated on every authorization change; 0 = off.
    authz_cache_ttl: int = Field(60, ge=0, le=3600)
    authz_cache_size: int = Field(10000, ge=1)
    # Per-client quotas used when the client's own value (GET /client/{id}/limit/) is null.
    max_extensions: int = Field(1000, ge=1)
    max_concurrent_calls: int = Field(100, ge=1)
    storage_quota_mb: int = Field(10240, ge=1)

    # The SIP digest realm; phones' HA1 values are computed over it, so changing it means new
    # SIP passwords for every phone. No quotes or backslashes: it is quoted in SIP headers.
    sip_realm: str = Field("callgate", min_length=1, max_length=100, pattern=r"^[!#-\[\]-~]+$")

    # ``callgate serve`` runs the SIP engine in its own process (one HTTP worker) or in one child
    # process (several workers: only one process may bind the SIP port). False: run
    # ``callgate sip`` yourself, e.g. on another host sharing the database and secret key.
    sip_in_process: bool = True
    # Registration intervals (RFC 3261 §10.3): below sip_min_expires a REGISTER gets 423 with
    # Min-Expires, above sip_max_expires it is shortened, without any it gets the default.
    sip_min_expires: int = Field(60, ge=1)
    sip_max_expires: int = Field(3600, ge=1)
    sip_default_expires: int = Field(3600, ge=1)
    # How long a digest nonce is valid; a valid answer on an older one gets stale=true.
    sip_nonce_lifetime: int = Field(300, ge=10)
    # The SIP process's cache of accounts, extensions, trunks and DIDs (docs/calls.md): every
    # committed change empties it; this TTL only bounds changes made outside Callgate. 0 = off.
    sip_directory_cache_ttl: int = Field(30, ge=0, le=3600)
    # Where the SIP process listens for call-control requests from API workers of other
    # processes (loopback only; requests are authenticated with a key derived from secret_key).
    sip_control_port: int = Field(5099, ge=0, le=65535)
    # Media relay: the address phones send RTP to (default: sip_host) and the UDP port range
    # (even RTP port + odd RTCP port per leg).
    rtp_host: str | None = None
    rtp_port_min: int = Field(20000, ge=1024, le=65534)
    rtp_port_max: int = Field(30000, ge=1025, le=65535)
    # Ring time when an extension has no incom_rule, and the longest any rule may ask for.
    ring_seconds: int = Field(30, ge=1, le=600)
    # Music on hold: a tone (Hz, 0 = silence) unless a sound of the client is chosen later.
    moh_tone_hz: int = Field(425, ge=0, le=3400)

    webhook_allow_private: bool = False
    # Delivery of call events to event handlers (docs/webhooks.md). Timeouts in seconds: to
    # connect, and for the whole request (connect, send, answer, body).
    webhook_connect_timeout: float = Field(3.0, gt=0, le=60)
    webhook_timeout: float = Field(10.0, gt=0, le=120)
    # Retries: the first after about webhook_retry_base seconds, doubling, at most
    # webhook_retry_cap apart; an event older than webhook_max_age seconds is given up.
    webhook_retry_base: float = Field(5.0, gt=0, le=3600)
    webhook_retry_cap: float = Field(3600.0, gt=0, le=86400)
    webhook_max_age: int = Field(86400, ge=1, le=7 * 86400)
    # Requests in flight at once (one delivery worker per deployment).
    webhook_concurrency: int = Field(64, ge=1, le=1000)
    # How often the worker looks for events written by other processes.
    webhook_poll_interval: float = Field(1.0, gt=0, le=60)
    # Finished deliveries and their attempts are kept this many seconds.
    webhook_retention: int = Field(7 * 86400, ge=60)
    # Events waiting in memory for the outbox; beyond this (a database down for long) new events
    # are dropped with an error in the log rather than exhausting memory.
    webhook_queue_max: int = Field(100_000, ge=100)

    # Uploads: sounds (WAV) and outgoing fax documents (PDF/TIFF); see docs/configuration.md.
    sound_max_bytes: int = Field(10 * 1024 * 1024, ge=1024)
    sound_max_seconds: int = Field(600, ge=1)
    fax_max_bytes: int = Field(20 * 1024 * 1024, ge=1024)
    fax_max_attempts: int = Field(3, ge=1, le=20)
    fax_retry_delay: int = Field(300, ge=1)

    @model_validator(mode="after")
    def _consistent(self) -> Settings:
        if not self.sip_min_expires <= self.sip_default_expires <= self.sip_max_expires:
            raise ValueError(
                "need CALLGATE_SIP_MIN_EXPIRES <= CALLGATE_SIP_DEFAULT_EXPIRES <= "
                "CALLGATE_SIP_MAX_EXPIRES"
            )
        if self.rtp_port_max - self.rtp_port_min < 3:
            raise ValueError("CALLGATE_RTP_PORT_MAX must be at least CALLGATE_RTP_PORT_MIN + 3")
        return self

    @property
    def media_host(self) -> str:
        return self.rtp_host or self.sip_host

    @model_validator(mode="after")
    def _refuse_unsafe(self) -> Settings:
        if self.mode == "production":
            if self.secret_key == DEV_SECRET_KEY or len(self.secret_key) < 32:
                raise UnsafeSettingsError(
                    "CALLGATE_SECRET_KEY must be set to a random value of at least 32 characters "
                    "in production mode"
                )
            if self.argon2_memory_kib < 19456 or self.argon2_time_cost < 2:
                raise UnsafeSettingsError(
                    "argon2 parameters below OWASP's minimum (19 MiB, 2 passes) are refused "
                    "in production mode"
                )
            if not self.public_url.startswith("https://"):
                raise UnsafeSettingsError("CALLGATE_PUBLIC_URL must be https:// in production mode")
        return self

    @property
    def issuer(self) -> str:
        return self.public_url.rstrip("/")

    @property
    def effective_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'callgate.sqlite3').resolve()}"

    @property
    def is_sqlite(self) -> bool:
        return self.effective_database_url.startswith("sqlite")
