"""Time, in one place, so that tests and protocol cores can be handed another clock."""

from __future__ import annotations

import datetime as dt
import time


def utcnow() -> dt.datetime:
    """The current time as an aware UTC datetime (microseconds kept)."""
    return dt.datetime.now(dt.UTC)


def monotonic() -> float:
    return time.monotonic()
