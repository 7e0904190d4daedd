"""A phone extension's SIP settings (``/extension/{id}/phone/``) and what happens to calls to an
extension (``/extension/{id}/incom_rule/``).

The SIP password is never stored or returned: only the digest HA1 values (RFC 7616 §3.4.2)
for MD5 and SHA-256, over ``{client prefix}*{extension name}:{realm}:{password}``.
``digest_ha1`` is the one place that computes them; the SIP engine verifies with the same.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from dataclasses import dataclass

from callgate.common.clock import utcnow
from callgate.common.db import Database
from callgate.common.errors import InvalidInput, NotFound
from callgate.config import Settings
from callgate.identity.models import Client, Extension, ExtensionType
from callgate.identity.repository import IdentityRepository
from callgate.identity.service import KEEP, Keep, sip_username
from callgate.phones.models import DEFAULT_CODECS, IncomingRule, NoAnswerAction, PhoneSettings
from callgate.phones.repository import PhoneRepository

CODECS = ("PCMU", "PCMA")
MIN_SIP_PASSWORD_LENGTH = 8
MAX_SIP_PASSWORD_LENGTH = 128
MIN_RING_SECONDS = 5
MAX_RING_SECONDS = 300
DEFAULT_RING_SECONDS = 30
_DIGESTS = {"MD5": hashlib.md5, "SHA-256": hashlib.sha256}
# Printable ASCII without spaces: what every phone's configuration screen can take.
_SIP_PASSWORD = re.compile(r"^[!-~]+$")
_FORWARD_TO = re.compile(r"^\+?[0-9]{1,32}$")


def digest_ha1(username: str, realm: str, password: str, algorithm: str) -> str:
    """HA1 = H(username ":" realm ":" password) of HTTP/SIP digest authentication (RFC 7616
    §3.4.2), hex; ``algorithm`` is ``MD5`` or ``SHA-256`` (the ``-sess`` variants are
    computed per nonce from this value)."""
    digest = _DIGESTS.get(algorithm.upper())
    if digest is None:
        raise ValueError(f"unsupported digest algorithm {algorithm!r}")
    return digest(f"{username}:{realm}:{password}".encode()).hexdigest()


@dataclass(frozen=True)
class PhoneView:
    extension_id: int
    sip_username: str
    password_set: bool
    record_enabled: bool
    codecs: list[str]
    updated: dt.datetime | None  # None: never written, the defaults


@dataclass(frozen=True)
class RuleView:
    extension_id: int
    ring_seconds: int
    action: str
    forward_to: str | None
    updated: dt.datetime | None


def _phone_view(extension: Extension, client: Client, row: PhoneSettings | None) -> PhoneView:
    username = sip_username(client.prefix, extension.name)
    if row is None:
        return PhoneView(extension.id, username, False, False, DEFAULT_CODECS.split(","), None)
    # HA1 values computed for another user name (the extension was renamed) are void.
    password_set = row.ha1_md5 is not None and row.sip_username == username
    codecs = [codec for codec in row.codecs.split(",") if codec]
    return PhoneView(
        extension.id, username, password_set, row.record_enabled, codecs, row.updated_at
    )


def _rule_view(extension_id: int, row: IncomingRule | None) -> RuleView:
    if row is None:
        return RuleView(extension_id, DEFAULT_RING_SECONDS, NoAnswerAction.HANGUP, None, None)
    return RuleView(extension_id, row.ring_seconds, row.action, row.forward_to, row.updated_at)


class PhoneService:
    def __init__(self, database: Database, settings: Settings) -> None:
        self.database = database
        self.settings = settings

    @staticmethod
    def _phone_extension(repo: IdentityRepository, extension_id: int) -> tuple[Extension, Client]:
        extension = repo.extension(extension_id)
        if extension is None:
            raise NotFound(f"There is no extension {extension_id}.")
        if extension.type != ExtensionType.PHONE:
            raise NotFound(
                f"Extension {extension_id} is a {extension.type} extension; only phone "
                "extensions have phone settings."
            )
        client = repo.client(extension.client_id)
        assert client is not None  # foreign key
        return extension, client

    def get_phone(self, extension_id: int) -> PhoneView:
        with self.database.read() as session:
            extension, client = self._phone_extension(IdentityRepository(session), extension_id)
            return _phone_view(extension, client, PhoneRepository(session).settings(extension_id))

    def update_phone(
        self,
        extension_id: int,
        *,
        password: str | Keep | None = KEEP,
        record_enabled: bool | Keep = KEEP,
        codecs: list[str] | Keep = KEEP,
    ) -> PhoneView:
        """Change some settings. A password is turned into HA1 values at once; ``None``
        removes the credentials (the phone can no longer register)."""
        if isinstance(password, str):
            self._check_password(password)
        if not isinstance(codecs, Keep):
            self._check_codecs(codecs)
        with self.database.write() as session:
            extension, client = self._phone_extension(IdentityRepository(session), extension_id)
            repo = PhoneRepository(session)
            row = repo.settings(extension_id)
            if row is None:
                row = PhoneSettings(
                    extension_id=extension_id, record_enabled=False, codecs=DEFAULT_CODECS
                )
                repo.add(row)
            if password is None:
                row.sip_username = row.ha1_md5 = row.ha1_sha256 = None
            elif isinstance(password, str):
                username = sip_username(client.prefix, extension.name)
                if password in (extension.name, username):
                    raise InvalidInput(
                        "The SIP password must not be the extension's number.",
                        {"password": "same as the user name"},
                    )
                realm = self.settings.sip_realm
                row.sip_username = username
                row.ha1_md5 = digest_ha1(username, realm, password, "MD5")
                row.ha1_sha256 = digest_ha1(username, realm, password, "SHA-256")
            if not isinstance(record_enabled, Keep):
                row.record_enabled = record_enabled
            if not isinstance(codecs, Keep):
                row.codecs = ",".join(codecs)
            row.updated_at = utcnow()
            session.flush()
            return _phone_view(extension, client, row)

    @staticmethod
    def _check_password(password: str) -> None:
        if not MIN_SIP_PASSWORD_LENGTH <= len(password) <= MAX_SIP_PASSWORD_LENGTH:
            raise InvalidInput(
                f"The SIP password must have {MIN_SIP_PASSWORD_LENGTH} to "
                f"{MAX_SIP_PASSWORD_LENGTH} characters.",
                {"password": "wrong length"},
            )
        if not _SIP_PASSWORD.match(password):
            raise InvalidInput(
                "The SIP password may hold printable ASCII characters without spaces only.",
                {"password": "invalid characters"},
            )

    @staticmethod
    def _check_codecs(codecs: list[str]) -> None:
        if not codecs:
            raise InvalidInput("At least one codec is needed.", {"codecs": "empty"})
        unknown = [codec for codec in codecs if codec not in CODECS]
        if unknown:
            raise InvalidInput(
                f"Unknown codec(s); the codecs are {', '.join(CODECS)}.",
                {"codecs": "unknown codec"},
            )
        if len(set(codecs)) != len(codecs):
            raise InvalidInput("A codec is listed twice.", {"codecs": "duplicate"})

    # -- incoming-call rule ------------------------------------------------------------------------

    def get_rule(self, extension_id: int) -> RuleView:
        with self.database.read() as session:
            if IdentityRepository(session).extension(extension_id) is None:
                raise NotFound(f"There is no extension {extension_id}.")
            return _rule_view(extension_id, PhoneRepository(session).rule(extension_id))

    def update_rule(
        self,
        extension_id: int,
        *,
        ring_seconds: int | Keep = KEEP,
        action: str | Keep = KEEP,
        forward_to: str | Keep | None = KEEP,
    ) -> RuleView:
        """Change the rule: ring for ``ring_seconds``, then hang up, forward to ``forward_to``
        (an extension of the same client or an external number) or go to voicemail.

        ``forward_to`` belongs to the action ``forward``: choosing another action clears it.
        """
        if not isinstance(ring_seconds, Keep) and not (
            MIN_RING_SECONDS <= ring_seconds <= MAX_RING_SECONDS
        ):
            raise InvalidInput(
                f"ring_seconds must be {MIN_RING_SECONDS} to {MAX_RING_SECONDS}.",
                {"ring_seconds": "out of range"},
            )
        if not isinstance(action, Keep) and action not in set(NoAnswerAction):
            raise InvalidInput(
                f"The action must be one of {', '.join(NoAnswerAction)}.",
                {"action": "unknown action"},
            )
        with self.database.write() as session:
            extension = IdentityRepository(session).extension(extension_id)
            if extension is None:
                raise NotFound(f"There is no extension {extension_id}.")
            repo = PhoneRepository(session)
            row = repo.rule(extension_id)
            current = _rule_view(extension_id, row)
            new_action = current.action if isinstance(action, Keep) else action
            if isinstance(forward_to, Keep):
                new_forward = current.forward_to if new_action == NoAnswerAction.FORWARD else None
            else:
                new_forward = forward_to
            if new_action == NoAnswerAction.FORWARD:
                if new_forward is None:
                    raise InvalidInput(
                        "The action forward needs forward_to: an extension of this client or "
                        "an external number.",
                        {"forward_to": "missing"},
                    )
                self._check_forward_to(new_forward, extension)
            elif new_forward is not None:
                raise InvalidInput(
                    "forward_to is used only with the action forward.",
                    {"forward_to": "only with action forward"},
                )
            if row is None:
                row = IncomingRule(extension_id=extension_id)
                repo.add(row)
            row.ring_seconds = (
                current.ring_seconds if isinstance(ring_seconds, Keep) else ring_seconds
            )
            row.action = new_action
            row.forward_to = new_forward
            row.updated_at = utcnow()
            session.flush()
            return _rule_view(extension_id, row)

    @staticmethod
    def _check_forward_to(number: str, extension: Extension) -> None:
        if not _FORWARD_TO.match(number):
            raise InvalidInput(
                "forward_to must be an extension number or an external number: digits, "
                "optionally after a +.",
                {"forward_to": "not a number"},
            )
        if number == extension.name:
            raise InvalidInput(
                "An extension cannot forward its calls to itself.", {"forward_to": "itself"}
            )
