"""Every table of Callgate, imported in one place for migrations and tests."""

from callgate.apps.models import Application, Consent
from callgate.audit.models import AuditEvent
from callgate.common.db import Base
from callgate.events.models import EventHandler
from callgate.identity.models import Client, Extension, User
from callgate.oauth.models import AuthFailure, AuthorizationCode, Token
from callgate.policy.models import RateCounter
from callgate.web.models import WebSession

__all__ = [
    "Application",
    "AuditEvent",
    "AuthFailure",
    "AuthorizationCode",
    "Base",
    "Client",
    "Consent",
    "EventHandler",
    "Extension",
    "RateCounter",
    "Token",
    "User",
    "WebSession",
]
