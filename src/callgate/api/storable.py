"""Input values that no database can store or compare, found before they reach one.

PostgreSQL refuses NUL characters in text; neither driver can encode a lone UTF-16 surrogate
(JSON allows ``"\\ud800"`` and Python keeps it); every integer column is a 32-bit INTEGER, which
PostgreSQL refuses to compare with a wider number (SQLite cannot even bind one beyond 64 bits);
and ``NaN`` or ``Infinity`` (which Python's JSON parser accepts) is no number a column holds.
Such a value would fail inside a query as a server error, on one database and not the other, so
the API edge (``policy/http.py``) refuses it for every route at once, with a 422 naming the
field: in the path, in the query string and anywhere in a JSON body.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from typing import Any

# Every integer column of the schema is a 32-bit INTEGER, so no integer input can be wider.
MAX_INTEGER = 2**31 - 1
MIN_INTEGER = -(2**31)
_INTEGER = re.compile(r"\s*[+-]?[0-9]+\s*")


def text_problem(value: str) -> str | None:
    if "\x00" in value:
        return "may not contain NUL characters"
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return "is not valid Unicode text"
    return None


def number_problem(value: int | float) -> str | None:
    if isinstance(value, float) and not math.isfinite(value):
        return "is not a finite number"
    if isinstance(value, int) and not MIN_INTEGER <= value <= MAX_INTEGER:
        return f"is out of range ({MIN_INTEGER} to {MAX_INTEGER})"
    return None


def parameter_problem(value: str) -> str | None:
    """What is wrong with any path or query parameter's text, or None."""
    return text_problem(value)


def integer_problem(value: str) -> str | None:
    """What is wrong with an integer parameter's text (None also when it is no integer:
    the route's own validation reports that)."""
    if _INTEGER.fullmatch(value):
        return number_problem(int(value))
    return None


def find_unstorable(value: Any, where: str = "") -> tuple[str, str] | None:
    """(field path, problem) of the first unstorable value in parsed JSON, or None."""
    if isinstance(value, str):
        problem = text_problem(value)
        return None if problem is None else (where or "body", problem)
    if isinstance(value, int | float) and not isinstance(value, bool):
        problem = number_problem(value)
        return None if problem is None else (where or "body", problem)
    items: Iterable[tuple[str, Any]]
    if isinstance(value, dict):
        items = value.items()
    elif isinstance(value, list):
        items = ((str(index), item) for index, item in enumerate(value))
    else:
        return None
    for key, item in items:
        path = f"{where}.{key}" if where else key
        found = find_unstorable(key, path) or find_unstorable(item, path)
        if found is not None:
            return found
    return None
