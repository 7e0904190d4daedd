"""Wire conventions shared by every resource of the API: times and paging.

Times are UTC in the original API's ``YYYY-MM-DD HH:MM:SS`` form. Lists take ``page`` and
``per_page``; the total count travels in the ``X-Total-Count`` header.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

TIME_FORMAT = "%Y-%m-%d %H:%M:%S"
MAX_PER_PAGE = 500
T = TypeVar("T")


def format_time(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).strftime(TIME_FORMAT)


def format_optional_time(value: dt.datetime | None) -> str | None:
    return None if value is None else format_time(value)


@dataclass(frozen=True)
class Page(Generic[T]):
    """One page of a list, as services return it."""

    items: Sequence[T]
    total: int
    page: int
    per_page: int

    @property
    def offset(self) -> int:
        return (self.page - 1) * self.per_page
