"""Managing event handlers (SPEC §6): the URLs the PBX calls when a call event happens.

A handler hangs on one extension, or on a client as its ``phone_events`` (every phone extension
of the client); a ``HandlerOwner`` names which, and the rules are the same for both.

Each handler gets a signing secret on creation, returned once to the creator; delivery
(``delivery.py``, docs/webhooks.md) signs every request with it. Destinations on loopback and
private networks are refused unless the operator allows them (``CALLGATE_WEBHOOK_ALLOW_PRIVATE``).
Only literal addresses and ``localhost`` can be judged here: a host name's addresses can change
after creation, so delivery checks the address it actually connects to as well.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

from callgate.common.db import Database
from callgate.common.errors import Conflict, InvalidInput, NotFound
from callgate.common.security import new_secret
from callgate.config import Settings
from callgate.events.models import (
    EventHandler,
    EventType,
    HandlerStatus,
    WebhookAttempt,
    WebhookDelivery,
)
from callgate.events.repository import AttemptRepository, EventHandlerRepository, HandlerOwner

METHODS = ("GET", "POST")
MAX_URL_LENGTH = 2000
MAX_HANDLERS_PER_OWNER = 50  # per extension, and per client for phone_events


def url_problem(url: str) -> str | None:
    """Why ``url`` cannot be a handler's destination, or None when it can."""
    if len(url) > MAX_URL_LENGTH:
        return f"must be at most {MAX_URL_LENGTH} characters"
    if any(c.isspace() or ord(c) < 0x20 for c in url):
        return "must not contain spaces or control characters"
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        return "is not a valid URL"
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return "must be an absolute http:// or https:// URL"
    if parts.username is not None or parts.password is not None:
        return "must not contain credentials"
    if parts.fragment:
        return "must not contain a fragment"
    return None


def is_private_destination(url: str) -> bool:
    """True when the URL's host is loopback, private, link-local or otherwise not public."""
    host = (urlsplit(url).hostname or "").rstrip(".").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return not address.is_global or address.is_multicast


@dataclass(frozen=True)
class HandlerPage:
    items: Sequence[EventHandler]
    total: int
    page: int
    per_page: int


@dataclass(frozen=True)
class AttemptPage:
    """A page of a handler's delivery log: attempts with their deliveries, newest first."""

    items: Sequence[tuple[WebhookAttempt, WebhookDelivery]]
    total: int


@dataclass(frozen=True)
class CreatedHandler:
    """A new handler with its signing secret, shown to the creator once."""

    handler: EventHandler
    secret: str


class EventHandlerService:
    def __init__(self, database: Database, settings: Settings) -> None:
        self.database = database
        self.settings = settings

    def _check(self, url: str, method: str, event_type: str) -> None:
        problem = url_problem(url)
        if problem is not None:
            raise InvalidInput(f"The url {problem}.", {"url": problem})
        if not self.settings.webhook_allow_private and is_private_destination(url):
            raise InvalidInput(
                "The url points at a loopback or private address, which this PBX does not call.",
                {"url": "private address"},
            )
        if method not in METHODS:
            raise InvalidInput("The method must be GET or POST.", {"method": method})
        if event_type not in set(EventType):
            raise InvalidInput(
                f"The event_type must be one of {', '.join(EventType)}.",
                {"event_type": event_type},
            )

    def list(self, owner: HandlerOwner, page: int, per_page: int) -> HandlerPage:
        with self.database.read() as session:
            repo = EventHandlerRepository(session)
            items = repo.of(owner, (page - 1) * per_page, per_page)
            total = repo.count(owner)
        return HandlerPage(items, total, page, per_page)

    def get(self, owner: HandlerOwner, handler_id: int) -> EventHandler:
        with self.database.read() as session:
            handler = EventHandlerRepository(session).get(owner, handler_id)
        if handler is None:
            raise NotFound(f"{owner} has no event handler {handler_id}.")
        return handler

    def create(
        self,
        *,
        client_id: int,
        extension_id: int | None,
        url: str,
        method: str,
        event_type: str,
    ) -> CreatedHandler:
        """A handler on ``extension_id``, or (None) on the client's phone_events."""
        owner = HandlerOwner(client_id, extension_id)
        self._check(url, method, event_type)
        secret = new_secret()
        with self.database.write() as session:
            repo = EventHandlerRepository(session)
            if repo.same_as(owner, url, method, event_type) is not None:
                raise Conflict(f"{owner} already has a {event_type} handler for this url.")
            if repo.count(owner) >= MAX_HANDLERS_PER_OWNER:
                raise Conflict(
                    f"{owner} has the most event handlers allowed, {MAX_HANDLERS_PER_OWNER}."
                )
            handler = EventHandler(
                client_id=owner.client_id,
                extension_id=owner.extension_id,
                url=url,
                method=method,
                event_type=event_type,
                signing_secret=secret,
                status="active",
            )
            repo.add(handler)
            return CreatedHandler(handler, secret)

    def update(
        self,
        owner: HandlerOwner,
        handler_id: int,
        *,
        url: str | None = None,
        method: str | None = None,
        event_type: str | None = None,
    ) -> EventHandler:
        """Change some of a handler's fields; its secret stays."""
        with self.database.write() as session:
            repo = EventHandlerRepository(session)
            handler = repo.get(owner, handler_id)
            if handler is None:
                raise NotFound(f"{owner} has no event handler {handler_id}.")
            new_url = handler.url if url is None else url
            new_method = handler.method if method is None else method
            new_type = handler.event_type if event_type is None else event_type
            self._check(new_url, new_method, new_type)
            same = repo.same_as(owner, new_url, new_method, new_type)
            if same is not None and same.id != handler.id:
                raise Conflict(f"{owner} already has a {new_type} handler for this url.")
            handler.url, handler.method, handler.event_type = new_url, new_method, new_type
            # A handler disabled by a 410 answer is active again once its owner changes it.
            handler.status = HandlerStatus.ACTIVE
            session.flush()
            return handler

    def attempts(
        self, owner: HandlerOwner, handler_id: int, page: int, per_page: int
    ) -> AttemptPage:
        """The handler's recent delivery attempts (docs/webhooks.md), newest first."""
        with self.database.read() as session:
            if EventHandlerRepository(session).get(owner, handler_id) is None:
                raise NotFound(f"{owner} has no event handler {handler_id}.")
            repo = AttemptRepository(session)
            items = repo.of(handler_id, (page - 1) * per_page, per_page)
            total = repo.count(handler_id)
        return AttemptPage(items, total)

    def delete(self, owner: HandlerOwner, handler_id: int) -> None:
        with self.database.write() as session:
            repo = EventHandlerRepository(session)
            handler = repo.get(owner, handler_id)
            if handler is None:
                raise NotFound(f"{owner} has no event handler {handler_id}.")
            repo.delete(handler)
