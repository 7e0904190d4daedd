"""Tables of PBX applications and of the consents users gave them."""

from __future__ import annotations

import datetime as dt
import enum

from sqlalchemy import Boolean, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from callgate.common.clock import utcnow
from callgate.common.db import Base, UTCDateTime


class AppType(enum.StrEnum):
    PUBLIC = "public"
    TRUSTED = "trusted"
    PASSWORD_CREDENTIALS = "password_credentials"  # noqa: S105 - a type name


class AccessLevel(enum.StrEnum):
    CALL_API = "call_api"
    ALL = "all"


ACCESS_LEVEL_LABELS = {AccessLevel.CALL_API: "Call API", AccessLevel.ALL: "All"}


class AppStatus(enum.StrEnum):
    ACTIVE = "active"
    SUSPENDED = "suspended"


class Application(Base):
    __tablename__ = "applications"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    app_id: Mapped[str] = mapped_column(String(32), unique=True)
    secret_hash: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(200))
    # Space-separated absolute URIs, compared by exact string match.
    redirect_uris: Mapped[str] = mapped_column(Text, default="")
    type: Mapped[str] = mapped_column(String(32), default=AppType.PUBLIC)
    access_level: Mapped[str] = mapped_column(String(16), default=AccessLevel.CALL_API)
    require_pkce: Mapped[bool] = mapped_column(Boolean, default=True)
    status: Mapped[str] = mapped_column(String(16), default=AppStatus.ACTIVE)
    owner_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    secret_rotated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)

    @property
    def redirect_uri_list(self) -> list[str]:
        return self.redirect_uris.split()


class Consent(Base):
    """A user's remembered permission for a public app, until withdrawn."""

    __tablename__ = "consents"
    __table_args__ = (UniqueConstraint("user_id", "application_id", name="uq_consents_user_app"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    application_id: Mapped[int] = mapped_column(
        ForeignKey("applications.id", ondelete="CASCADE"), index=True
    )
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
