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


class Passwords:
    """argon2id hashing of user passwords with the operator's cost parameters.

    Verification reads the parameters from each stored hash, so hashes made with other
    parameters keep working and are re-hashed on the next successful login.
    """

    def __init__(self, time_cost: int = 3, memory_kib: int = 65536, parallelism: int = 4) -> None:
        self._hasher = PasswordHasher(
            time_cost=time_cost, memory_cost=memory_kib, parallelism=parallelism
        )
        # Verified against when the user does not exist, so unknown logins cost the same time.
        self._dummy_hash = self._hasher.hash(secrets.token_urlsafe(16))

    def hash(self, password: str) -> str:
        return self._hasher.hash(password)

    def verify(self, password: str, stored_hash: str | None) -> bool:
        """True when ``password`` matches; spends the same work when there is no stored hash."""
        try:
            matched = self._hasher.verify(stored_hash or self._dummy_hash, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False
        return matched and stored_hash is not None

    def needs_rehash(self, stored_hash: str) -> bool:
        return self._hasher.check_needs_rehash(stored_hash)


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


def verify_password(password: str, stored_hash: str) -> bool:
    """Check a password against a stored argon2 hash, whatever its parameters."""
    try:
        return PasswordHasher().verify(stored_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False
