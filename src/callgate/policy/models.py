"""Rate-limit counters: one row per (quota key, hour window), shared by all workers."""

from __future__ import annotations

from sqlalchemy import BigInteger, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from callgate.common.db import Base


class RateCounter(Base):
    __tablename__ = "rate_counters"

    # "client:<id>" for a client's users and apps, "user:<id>" for users without a client.
    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    window_start: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    count: Mapped[int] = mapped_column(Integer, default=0)
