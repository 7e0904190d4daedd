"""Storage of phone settings and incoming-call rules (one row each per extension, created on
the first write; an extension without a row has the defaults)."""

from __future__ import annotations

from sqlalchemy import update
from sqlalchemy.orm import Session

from callgate.phones.models import IncomingRule, PhoneSettings


class PhoneRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def settings(self, extension_id: int) -> PhoneSettings | None:
        return self.session.get(PhoneSettings, extension_id)

    def rule(self, extension_id: int) -> IncomingRule | None:
        return self.session.get(IncomingRule, extension_id)

    def add(self, obj: PhoneSettings | IncomingRule) -> None:
        self.session.add(obj)
        self.session.flush()

    def clear_credentials(self, extension_id: int) -> None:
        """Forget the SIP credentials: the HA1 values depend on the SIP user name."""
        self.session.execute(
            update(PhoneSettings)
            .where(PhoneSettings.extension_id == extension_id)
            .values(sip_username=None, ha1_md5=None, ha1_sha256=None)
        )
