"""Domain exceptions. Services raise these; one table at the HTTP edge turns them into answers.

Each carries the machine id that the API puts in ``{"status": ..., "message": ...}``.
"""

from __future__ import annotations


class DomainError(Exception):
    """Base class: ``status`` is the machine id, the message a sentence for people."""

    status = "error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class NotFound(DomainError):
    status = "not_found"


class InvalidInput(DomainError):
    status = "invalid_input"

    def __init__(self, message: str, fields: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.fields = fields or {}


class Conflict(DomainError):
    status = "conflict"


class PermissionRefused(DomainError):
    """The acting user may not do this (e.g. a non-admin asking for level ``all``)."""

    status = "permission_denied"


class AccessDenied(DomainError):
    """The object is outside what the user may see (policy check 5)."""

    status = "access_denied"


class UserBlocked(DomainError):
    status = "user_blocked"


class UserAccessTypeDeny(DomainError):
    status = "user_access_type_deny"


class AppAccessTypeDeny(DomainError):
    status = "app_access_type_deny"


class RateLimitExceeded(DomainError):
    status = "rate_limit_exceeded"

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class TooManyAttempts(DomainError):
    """Lockout after repeated failed logins."""

    status = "too_many_attempts"

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class InvalidToken(DomainError):
    """No bearer token, or an unknown, expired or revoked one (policy check 1)."""

    status = "invalid_token"


class UnsupportedMediaType(DomainError):
    status = "unsupported_media_type"


class PayloadTooLarge(DomainError):
    """A request body past the size the operation takes."""

    status = "payload_too_large"


class PbxUnavailable(DomainError):
    """The call engine cannot be reached: not running here, or its control channel is down."""

    status = "pbx_unavailable"
