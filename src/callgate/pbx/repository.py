"""SIP accounts from the database: who may register, with which digest HA1 values.

An account is a phone extension whose ``PhoneSettings`` carry HA1 values computed for its current
SIP user name ``{client prefix}*{extension name}``. :class:`Directory` is the protocol the
registrar (and later INVITE authentication) depends on; :class:`DatabaseDirectory` is the
implementation over SQLAlchemy. Its lookup is a blocking query: the endpoint calls it in a worker
thread (``asyncio.to_thread``), never on the event loop.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from sqlalchemy import select

from callgate.common.db import Database
from callgate.identity.models import Client, Extension, ExtensionType, Status
from callgate.phones.models import PhoneSettings
from callgate.sip.digest import Ha1Pair


@dataclass(frozen=True)
class SipAccount:
    username: str  # "00012*101"
    extension_id: int
    client_id: int
    ha1: Ha1Pair
    blocked: bool  # the client or the extension is blocked: authenticate, then refuse 403


class Directory(Protocol):
    def account(self, username: str) -> SipAccount | None:
        """The account for a SIP user name, or None (unknown, or no password set)."""
        ...


class DatabaseDirectory:
    """Accounts read with one query over PhoneSettings, Extension and Client."""

    def __init__(self, database: Database) -> None:
        self.database = database

    def account(self, username: str) -> SipAccount | None:
        prefix, star, name = username.partition("*")
        if not star or not prefix or not name:
            return None
        query = (
            select(
                Extension.id,
                Extension.client_id,
                Extension.status,
                Client.status,
                PhoneSettings.sip_username,
                PhoneSettings.ha1_md5,
                PhoneSettings.ha1_sha256,
            )
            .join(Client, Client.id == Extension.client_id)
            .join(PhoneSettings, PhoneSettings.extension_id == Extension.id)
            .where(
                Client.prefix == prefix,
                Extension.name == name,
                Extension.type == ExtensionType.PHONE,
            )
        )
        with self.database.read_connection() as connection:
            row = connection.execute(query).first()
        if row is None:
            return None
        ext_id, client_id, ext_status, client_status, stored_user, md5, sha256 = row
        # HA1 values computed for another user name (a renamed extension) are void
        if stored_user != username or not md5 or not sha256:
            return None
        blocked = Status.BLOCKED in (ext_status, client_status)
        return SipAccount(username, ext_id, client_id, Ha1Pair(md5, sha256), blocked)
