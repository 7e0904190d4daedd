"""Secrets: generation, hashing at rest and constant-time comparison.

Server-generated secrets (app secrets, tokens, codes, session ids) carry 256 bits of randomness,
so a single SHA-256 is the right hash for them; user passwords are low-entropy and use argon2id.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

_hasher = PasswordHasher()
# Verified against when the user does not exist, so that unknown logins cost the same time.
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))


def new_secret(nbytes: int = 32) -> str:
    """A URL-safe random secret with ``nbytes`` bytes of randomness."""
    return secrets.token_urlsafe(nbytes)


def new_app_id() -> str:
    """An App ID: 32 lowercase hex characters."""
    return secrets.token_hex(16)


def hash_secret(value: str) -> str:
    """SHA-256 hex digest of a server-generated secret."""
    return hashlib.sha256(value.encode("utf-8")).hexdigest()


def secret_matches(value: str, stored_hash: str) -> bool:
    return hmac.compare_digest(hash_secret(value), stored_hash)


def constant_time_equals(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode("utf-8"), b.encode("utf-8"))


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password: str, stored_hash: str | None) -> bool:
    """True when ``password`` matches; spends the same work when there is no stored hash."""
    try:
        return _hasher.verify(stored_hash or _DUMMY_HASH, password) and stored_hash is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def password_needs_rehash(stored_hash: str) -> bool:
    return _hasher.check_needs_rehash(stored_hash)
