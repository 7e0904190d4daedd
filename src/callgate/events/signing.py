"""The signature of webhook requests (SPEC §6), for the sender and for receivers' tests.

``X-Callgate-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 over "<t>.<payload>">`` where the
payload is the raw POST body, or the raw query string of a GET request (everything after the
``?``, exactly as sent), and the key is the handler's secret (its UTF-8 bytes).
"""

from __future__ import annotations

import hashlib
import hmac
import time

SIGNATURE_HEADER = "X-Callgate-Signature"
EVENT_ID_HEADER = "X-Callgate-Event-Id"
# How old a signature a receiver should accept, as the docs advise (replays of old requests).
DEFAULT_TOLERANCE = 300


def signature(secret: str, timestamp: int, payload: str) -> str:
    message = f"{timestamp}.{payload}".encode()
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def signature_header(secret: str, timestamp: int, payload: str) -> str:
    return f"t={timestamp},v1={signature(secret, timestamp, payload)}"


def verify(
    secret: str,
    header: str,
    payload: str,
    *,
    tolerance: int = DEFAULT_TOLERANCE,
    now: float | None = None,
) -> bool:
    """Whether ``header`` signs ``payload`` with ``secret`` and is at most ``tolerance`` s old."""
    parts: dict[str, str] = {}
    for item in header.split(","):
        key, _, value = item.strip().partition("=")
        parts.setdefault(key, value)
    try:
        timestamp = int(parts["t"])
    except (KeyError, ValueError):
        return False
    current = time.time() if now is None else now
    if abs(current - timestamp) > tolerance:
        return False
    return hmac.compare_digest(signature(secret, timestamp, payload), parts.get("v1", ""))
