"""One call-history row per finished call."""

from __future__ import annotations

import datetime as dt
import enum

from sqlalchemy import ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from callgate.common.clock import utcnow
from callgate.common.db import Base, UTCDateTime


class CallFlow(enum.StrEnum):
    IN = "in"
    OUT = "out"
    INTERNAL = "internal"


class CallResult(enum.StrEnum):
    ANSWERED = "answered"
    BUSY = "busy"
    NOT_ANSWERED = "not answered"
    FAILED = "failed"
    VOICEMAIL = "voicemail"


class CallRecord(Base):
    __tablename__ = "call_history"

    call_uuid: Mapped[str] = mapped_column(String(36), primary_key=True)
    client_id: Mapped[int] = mapped_column(ForeignKey("clients.id", ondelete="CASCADE"), index=True)
    extension_id: Mapped[int | None] = mapped_column(
        ForeignKey("extensions.id", ondelete="SET NULL"), nullable=True, index=True
    )
    flow: Mapped[str] = mapped_column(String(16))
    from_username: Mapped[str] = mapped_column(String(64), default="")
    from_screen_name: Mapped[str] = mapped_column(String(100), default="")
    to_username: Mapped[str] = mapped_column(String(64), default="")
    bridged_username: Mapped[str] = mapped_column(String(64), default="")
    did_number: Mapped[str] = mapped_column(String(32), default="")
    init_time: Mapped[dt.datetime] = mapped_column(UTCDateTime(), index=True)
    answer_time: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    hangup_time: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    duration: Mapped[int] = mapped_column(Integer, default=0)
    bridged_duration: Mapped[int] = mapped_column(Integer, default=0)
    result: Mapped[str] = mapped_column(String(16))
    hangup_cause: Mapped[str] = mapped_column(String(40), default="")
    record_uuid: Mapped[str | None] = mapped_column(String(36), nullable=True)
    callback_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
