"""DIDs and SIP trunks."""

from __future__ import annotations

import datetime as dt
import enum

from sqlalchemy import Boolean, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from callgate.common.clock import utcnow
from callgate.common.db import Base, UTCDateTime


class Did(Base):
    """An external number; calls arriving for it on a trunk go to ``extension_id``."""

    __tablename__ = "dids"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    client_id: Mapped[int] = mapped_column(ForeignKey("clients.id", ondelete="CASCADE"), index=True)
    number: Mapped[str] = mapped_column(String(32), unique=True)
    extension_id: Mapped[int | None] = mapped_column(
        ForeignKey("extensions.id", ondelete="SET NULL"), nullable=True, index=True
    )
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)


class TrunkTransport(enum.StrEnum):
    UDP = "udp"
    TCP = "tcp"


class Trunk(Base):
    """A SIP trunk to a provider. Calls to non-internal numbers leave through the client's
    enabled trunk with the lowest ``priority``.

    The password must be presented to the provider (digest), so it cannot be stored as a hash;
    it is never returned by the API.
    """

    __tablename__ = "trunks"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    client_id: Mapped[int] = mapped_column(ForeignKey("clients.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    host: Mapped[str] = mapped_column(String(255))
    port: Mapped[int] = mapped_column(Integer, default=5060)
    transport: Mapped[str] = mapped_column(String(8), default=TrunkTransport.UDP)
    username: Mapped[str | None] = mapped_column(String(100), nullable=True)
    password: Mapped[str | None] = mapped_column(String(200), nullable=True)
    register: Mapped[bool] = mapped_column(Boolean, default=False)
    register_expires: Mapped[int] = mapped_column(Integer, default=3600)
    caller_id_number: Mapped[str | None] = mapped_column(String(32), nullable=True)
    priority: Mapped[int] = mapped_column(Integer, default=10)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
