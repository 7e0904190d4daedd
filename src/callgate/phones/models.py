"""SIP credentials and options of a phone extension, and what happens to calls to it.

The SIP password is never stored: only the digest HA1 values (RFC 7616) for MD5 and SHA-256,
computed over ``{client prefix}*{extension name}:{realm}:{password}``. Renaming the extension,
changing the client's prefix or the realm therefore needs a new password.
"""

from __future__ import annotations

import datetime as dt
import enum

from sqlalchemy import Boolean, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from callgate.common.clock import utcnow
from callgate.common.db import Base, UTCDateTime

DEFAULT_CODECS = "PCMU,PCMA"


class PhoneSettings(Base):
    __tablename__ = "phone_settings"

    extension_id: Mapped[int] = mapped_column(
        ForeignKey("extensions.id", ondelete="CASCADE"), primary_key=True
    )
    # The SIP user name the HA1 values were computed for; a mismatch means "no password set".
    sip_username: Mapped[str | None] = mapped_column(String(64), nullable=True)
    ha1_md5: Mapped[str | None] = mapped_column(String(32), nullable=True)
    ha1_sha256: Mapped[str | None] = mapped_column(String(64), nullable=True)
    record_enabled: Mapped[bool] = mapped_column(Boolean, default=False)
    codecs: Mapped[str] = mapped_column(String(64), default=DEFAULT_CODECS)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)


class NoAnswerAction(enum.StrEnum):
    HANGUP = "hangup"
    FORWARD = "forward"
    VOICEMAIL = "voicemail"


class IncomingRule(Base):
    """Ring the extension for ``ring_seconds``; if unanswered (or busy/unregistered), act."""

    __tablename__ = "incoming_rules"

    extension_id: Mapped[int] = mapped_column(
        ForeignKey("extensions.id", ondelete="CASCADE"), primary_key=True
    )
    ring_seconds: Mapped[int] = mapped_column(Integer, default=30)
    action: Mapped[str] = mapped_column(String(16), default=NoAnswerAction.HANGUP)
    # A short extension number of the same client or an external number, for FORWARD.
    forward_to: Mapped[str | None] = mapped_column(String(40), nullable=True)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
