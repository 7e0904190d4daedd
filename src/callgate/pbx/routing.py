"""Who a dialled number is: an extension of the caller's client, a trunk, or nobody.

:class:`Router` answers the engine's questions with one or two short queries each. They block,
so the engine calls them in a worker thread (``asyncio.to_thread``), never on the event loop:

* :meth:`Router.extension` — a phone extension by id, as a call :class:`~.call.Party`;
* :meth:`Router.resolve` — a number dialled inside client ``client_id``: an extension of that
  client by its short name (:class:`InternalTarget`, with its incoming-call rule), else the
  client's outbound trunk (:class:`ExternalTarget`, through the :class:`TrunkRouting` hook),
  else None (404).

The trunk side (``callgate.pbx.trunks``) is reached only through the :class:`TrunkRouting`
protocol below, so this module works whether or not trunks are configured.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy import select

from callgate.common.db import Database
from callgate.identity.models import Client, Extension, ExtensionType, Status
from callgate.pbx.call import Party
from callgate.pbx.repository import SipAccount
from callgate.phones.models import DEFAULT_CODECS, IncomingRule, NoAnswerAction, PhoneSettings
from callgate.sip.digest import Ha1Pair
from callgate.sip.message import Request, Response

Addr = tuple[str, int]

# What a dialled number may look like (digits, *, #, a leading +); anything else is 404.
NUMBER = re.compile(r"^\+?[0-9*#]{1,40}$")


class TrunkRouteLike(Protocol):
    """What the engine reads of a trunk route (``callgate.pbx.trunks.TrunkRoute``)."""

    @property
    def trunk_id(self) -> int: ...
    @property
    def client_id(self) -> int: ...
    @property
    def host(self) -> str: ...
    @property
    def port(self) -> int: ...
    @property
    def transport(self) -> str: ...
    @property
    def caller_id_number(self) -> str | None: ...
    @property
    def from_domain(self) -> str: ...
    @property
    def address(self) -> Addr: ...  # the provider's resolved address: INVITEs go there

    def request_uri(self, number: str) -> str: ...


class InboundCallLike(Protocol):
    """An INVITE that arrived from a trunk (``callgate.pbx.trunks.InboundCall``)."""

    @property
    def client_id(self) -> int: ...
    @property
    def trunk_id(self) -> int: ...
    @property
    def did_number(self) -> str: ...
    @property
    def extension_id(self) -> int | None: ...


class TrunkRouting(Protocol):
    def outbound_route(self, client_id: int, number: str) -> TrunkRouteLike | None: ...
    def inbound(self, source: Addr, request: Request) -> InboundCallLike | None: ...
    def authorize(
        self, request: Request, challenge: Response, route: TrunkRouteLike
    ) -> Request | None: ...


@dataclass(frozen=True)
class Rule:
    """The callee's incoming-call rule: ring this long, then hang up or forward."""

    ring_seconds: int
    action: str = NoAnswerAction.HANGUP
    forward_to: str | None = None


@dataclass(frozen=True)
class InternalTarget:
    party: Party
    rule: Rule
    is_phone: bool = True
    blocked: bool = False


@dataclass(frozen=True)
class ExternalTarget:
    number: str
    route: TrunkRouteLike


Target = InternalTarget | ExternalTarget


class Router:
    def __init__(
        self, database: Database, trunks: TrunkRouting | None = None, *, ring_seconds: int = 30
    ) -> None:
        self.database = database
        self.trunks = trunks
        self.ring_seconds = ring_seconds

    def _query(self) -> object:
        return (
            select(
                Extension.id,
                Extension.client_id,
                Extension.name,
                Extension.label,
                Extension.type,
                Extension.status,
                Client.prefix,
                Client.status,
                PhoneSettings.record_enabled,
                PhoneSettings.codecs,
                IncomingRule.ring_seconds,
                IncomingRule.action,
                IncomingRule.forward_to,
                PhoneSettings.sip_username,
                PhoneSettings.ha1_md5,
                PhoneSettings.ha1_sha256,
            )
            .join(Client, Client.id == Extension.client_id)
            .outerjoin(PhoneSettings, PhoneSettings.extension_id == Extension.id)
            .outerjoin(IncomingRule, IncomingRule.extension_id == Extension.id)
        )

    def _target(self, where: object) -> InternalTarget | None:
        query = self._query().where(where)  # type: ignore[attr-defined]
        with self.database.read_connection() as connection:
            row = connection.execute(query).first()
        return None if row is None else self._row_target(row)

    def caller(self, username: str) -> tuple[SipAccount | None, InternalTarget | None]:
        """The SIP account of ``username`` and its extension, in one query (what
        :class:`~callgate.pbx.repository.DatabaseDirectory` and :meth:`extension` would say)."""
        prefix, star, name = username.partition("*")
        if not star or not prefix or not name:
            return None, None
        query = self._query().where(  # type: ignore[attr-defined]
            Client.prefix == prefix,
            Extension.name == name,
            Extension.type == ExtensionType.PHONE,
        )
        with self.database.read_connection() as connection:
            row = connection.execute(query).first()
        if row is None:
            return None, None
        target = self._row_target(row)
        stored_user, md5, sha256 = row[13:16]
        # HA1 values computed for another user name (a renamed extension) are void
        if stored_user != username or not md5 or not sha256:
            return None, target
        party = target.party
        assert party.extension_id is not None
        account = SipAccount(
            username, party.extension_id, party.client_id, Ha1Pair(md5, sha256), target.blocked
        )
        return account, target

    def _row_target(self, row: Any) -> InternalTarget:
        (ext_id, client_id, name, label, kind, status, prefix, client_status) = row[:8]
        record, codecs, ring, action, forward_to = row[8:13]
        party = Party(
            client_id=client_id,
            number=name,
            name=label or "",
            extension_id=ext_id,
            username=f"{prefix}*{name}",
            record_enabled=bool(record),
            codecs=tuple(c for c in (codecs or DEFAULT_CODECS).split(",") if c),
        )
        rule = Rule(
            ring_seconds=int(ring) if ring else self.ring_seconds,
            action=action or NoAnswerAction.HANGUP,
            forward_to=forward_to,
        )
        return InternalTarget(
            party,
            rule,
            is_phone=kind == ExtensionType.PHONE,
            blocked=Status.BLOCKED in (status, client_status),
        )

    def extension(self, extension_id: int) -> InternalTarget | None:
        """A phone extension by id (the caller of a call, or where a DID leads)."""
        return self._target(Extension.id == extension_id)

    def resolve(self, client_id: int, number: str) -> Target | None:
        """What ``number`` dialled inside ``client_id`` reaches; None: nothing (404)."""
        if not NUMBER.match(number):
            return None
        internal = self.internal(client_id, number)
        if internal is not None:
            return internal
        return self.resolve_external(client_id, number)

    def internal(self, client_id: int, number: str) -> InternalTarget | None:
        """The extension of ``client_id`` named ``number``, or None."""
        return self._target((Extension.client_id == client_id) & (Extension.name == number))

    def resolve_external(self, client_id: int, number: str) -> ExternalTarget | None:
        """The client's outbound trunk route for ``number``, or None (no trunk, bad number)."""
        if self.trunks is None:
            return None
        route = self.trunks.outbound_route(client_id, number)
        return ExternalTarget(number, route) if route is not None else None
