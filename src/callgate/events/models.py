"""Event-handler table (delivery comes with the call-events work)."""

from __future__ import annotations

import datetime as dt
import enum

from sqlalchemy import ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from callgate.common.clock import utcnow
from callgate.common.db import Base, UTCDateTime


class EventType(enum.StrEnum):
    DIAL_IN = "dial-in"
    DIAL_OUT = "dial-out"
    ANSWER = "answer"
    HANGUP = "hangup"
    VOICEMAIL = "voicemail"


class EventHandler(Base):
    """A handler on one extension, or (``extension_id`` null) a client's ``phone_events``."""

    __tablename__ = "event_handlers"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    client_id: Mapped[int] = mapped_column(ForeignKey("clients.id", ondelete="CASCADE"), index=True)
    extension_id: Mapped[int | None] = mapped_column(
        ForeignKey("extensions.id", ondelete="CASCADE"), nullable=True, index=True
    )
    url: Mapped[str] = mapped_column(Text)
    method: Mapped[str] = mapped_column(String(8), default="POST")
    event_type: Mapped[str] = mapped_column(String(16))
    # The signing key must be usable to compute HMACs, so it cannot be stored as a hash.
    signing_secret: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16), default="active")
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
