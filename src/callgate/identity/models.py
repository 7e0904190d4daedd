"""Tables of clients, extensions and users."""

from __future__ import annotations

import datetime as dt
import enum

from sqlalchemy import ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from callgate.common.clock import utcnow
from callgate.common.db import Base, UTCDateTime


class Status(enum.StrEnum):
    ACTIVE = "active"
    BLOCKED = "blocked"


class ExtensionType(enum.StrEnum):
    PHONE = "phone"
    FAX = "fax"
    QUEUE = "queue"
    IVR = "ivr"


class UserLevel(enum.StrEnum):
    ADMIN = "admin"
    CLIENT = "client"
    EXTENSION = "extension"


class UserAccess(enum.StrEnum):
    FULL = "full"
    READ_ONLY = "read_only"


class Client(Base):
    __tablename__ = "clients"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(200))
    prefix: Mapped[str] = mapped_column(String(20), unique=True)
    status: Mapped[str] = mapped_column(String(16), default=Status.ACTIVE)
    # Quotas (GET /client/{id}/limit/); None means the system default.
    rate_limit_per_hour: Mapped[int | None] = mapped_column(Integer, nullable=True)
    max_extensions: Mapped[int | None] = mapped_column(Integer, nullable=True)
    max_concurrent_calls: Mapped[int | None] = mapped_column(Integer, nullable=True)
    storage_quota_mb: Mapped[int | None] = mapped_column(Integer, nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Extension(Base):
    __tablename__ = "extensions"
    __table_args__ = (UniqueConstraint("client_id", "name", name="uq_extensions_client_name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    client_id: Mapped[int] = mapped_column(ForeignKey("clients.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(40))
    type: Mapped[str] = mapped_column(String(16), default=ExtensionType.PHONE)
    label: Mapped[str] = mapped_column(String(200), default="")
    status: Mapped[str] = mapped_column(String(16), default=Status.ACTIVE)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    login: Mapped[str] = mapped_column(String(150), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    level: Mapped[str] = mapped_column(String(16), default=UserLevel.CLIENT)
    access: Mapped[str] = mapped_column(String(16), default=UserAccess.FULL)
    status: Mapped[str] = mapped_column(String(16), default=Status.ACTIVE)
    client_id: Mapped[int | None] = mapped_column(
        ForeignKey("clients.id", ondelete="CASCADE"), nullable=True, index=True
    )
    extension_id: Mapped[int | None] = mapped_column(
        ForeignKey("extensions.id", ondelete="CASCADE"), nullable=True, index=True
    )
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    password_changed_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)

    @property
    def is_admin(self) -> bool:
        return self.level == UserLevel.ADMIN
