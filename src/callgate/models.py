"""Every table of Callgate, imported in one place for migrations and tests."""

from callgate.apps.models import Application, Consent
from callgate.audit.models import AuditEvent
from callgate.calls.models import CallRecord
from callgate.common.db import Base
from callgate.events.models import EventHandler, WebhookAttempt, WebhookDelivery
from callgate.fax.models import FaxJob, ReceivedFax
from callgate.identity.models import Client, Extension, User
from callgate.oauth.models import AuthFailure, AuthorizationCode, Token
from callgate.phones.models import IncomingRule, PhoneSettings
from callgate.policy.models import RateCounter
from callgate.recordings.models import Recording
from callgate.routing.models import Did, Trunk
from callgate.sounds.models import Sound
from callgate.voicemail.models import Voicemail
from callgate.web.models import WebSession

__all__ = [
    "Application",
    "AuditEvent",
    "AuthFailure",
    "AuthorizationCode",
    "Base",
    "CallRecord",
    "Client",
    "Consent",
    "Did",
    "EventHandler",
    "Extension",
    "FaxJob",
    "IncomingRule",
    "PhoneSettings",
    "RateCounter",
    "ReceivedFax",
    "Recording",
    "Sound",
    "Token",
    "Trunk",
    "User",
    "Voicemail",
    "WebSession",
    "WebhookAttempt",
    "WebhookDelivery",
]
