"""What the call engine reads of the configuration per call, answered from memory when it can.

Every call asks the same few questions: is this INVITE from a trunk, which account is this SIP
user, which extension is the caller, what does the dialled number reach. Each answer is a short
query, but a query is a worker-thread hop and a connection checkout: about half of the PBX's CPU
per call before this cache. :class:`DirectoryCache` keeps the answers in memory, in the PBX
process, and serves them on the event loop:

* **accounts** by SIP user name (HA1 values, blocked or not), **extensions** by id and by client
  and short name (with their incoming-call rule and codecs), including "there is none";
* the **source addresses of the enabled trunks** as one set: an INVITE from an address that is no
  trunk's (every phone's) needs no trunk query at all; one from a trunk's address is looked up as
  before (DID and all), in a worker thread.

**Staleness bound.** An entry is served only while the database's change generation is the one it
was read under (``Database.authorization_generation``, the mechanism of the API's cache of token
checks, ``policy/invalidation.py``): every commit that writes ``phone_settings``, ``extensions``,
``clients``, ``trunks``, ``dids`` or ``incoming_rules`` moves it on — in this process before and
after the commit, in other processes through the shared change watch (SQLite: the header's
``user_version``, read before every look-up; PostgreSQL: ``LISTEN``, the cache is off while the
listener is not connected). The generation is taken before the database read, so an answer read
from rows that changed meanwhile is never served. A changed SIP password or a blocked extension
therefore applies to the next INVITE or REGISTER after the commit (on PostgreSQL, from another
process: once the notification arrived, typically well under a millisecond). A TTL
(``CALLGATE_SIP_DIRECTORY_CACHE_TTL``, 30 s; 0 turns the cache off) bounds changes made outside
Callgate (SQL by hand); trunk addresses are also re-resolved after ``RESOLVE_TTL``.

Without a cache (TTL 0, or the watch cannot say) every question is asked in a worker thread, as
before.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import TypeVar

from callgate.pbx.repository import Directory, SipAccount
from callgate.pbx.routing import (
    NUMBER,
    InboundCallLike,
    InternalTarget,
    Router,
    Target,
    TrunkRouting,
)
from callgate.pbx.trunks import RESOLVE_TTL, TrunkService, _ip
from callgate.policy.invalidation import ChangeWatch, shared_watch
from callgate.sip.message import Request

Addr = tuple[str, int]
T = TypeVar("T")

DEFAULT_SIZE = 20_000  # entries (accounts and extensions); least recently used are dropped


class _Miss:
    pass


MISS = _Miss()


@dataclass(slots=True)
class _Entry:
    value: object
    generation: int
    valid_until: float  # time.monotonic()


class DirectoryCache:
    """The engine's look-ups, served from memory under the change generation (module doc)."""

    def __init__(
        self,
        directory: Directory,
        router: Router,
        trunks: TrunkRouting | None = None,
        *,
        ttl: float = 30.0,
        size: int = DEFAULT_SIZE,
        watch: ChangeWatch | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.directory = directory
        self.router = router
        self.trunks = trunks
        self.ttl = ttl
        self.size = size
        self.clock = clock
        self.enabled = ttl > 0
        if watch is None and self.enabled:
            watch = shared_watch(router.database)
        self.watch = watch
        if watch is not None:
            watch.generation()  # PostgreSQL: start listening now, not on the first call
        self._entries: OrderedDict[Hashable, _Entry] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    # -- the generic part -------------------------------------------------------------------------

    def generation(self) -> int | None:
        """Take this before reading the database; None: do not use the cache now."""
        if self.watch is None:
            return None
        return self.watch.generation()

    def peek(self, key: Hashable, generation: int | None) -> object:
        """The cached value of ``key`` under ``generation``, or ``MISS``."""
        if generation is None:
            return MISS
        entry = self._entries.get(key)
        if entry is None:
            return MISS
        if entry.generation != generation or entry.valid_until <= self.clock():
            with self._lock:
                if self._entries.get(key) is entry:
                    del self._entries[key]
            return MISS
        with contextlib.suppress(KeyError):  # evicted meanwhile by another thread
            self._entries.move_to_end(key)
        return entry.value

    def put(
        self, key: Hashable, value: object, generation: int | None, ttl: float | None = None
    ) -> None:
        if generation is None or not self.enabled:
            return
        until = self.clock() + min(self.ttl, ttl if ttl is not None else self.ttl)
        with self._lock:
            self._entries[key] = _Entry(value, generation, until)
            self._entries.move_to_end(key)
            while len(self._entries) > self.size:
                self._entries.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    async def _cached(self, key: Hashable, load: Callable[[], T]) -> T:
        generation = self.generation()
        value = self.peek(key, generation)
        if value is not MISS:
            self.hits += 1
            return value  # type: ignore[return-value]
        self.misses += 1
        loaded = await asyncio.to_thread(load)
        self.put(key, loaded, generation)
        return loaded

    # -- the engine's questions ------------------------------------------------------------------

    async def account(self, username: str) -> SipAccount | None:
        """The SIP account of ``username`` (None: unknown, or no password set). On a miss the
        account's extension is read by the same query and cached too (the caller of a call)."""
        if not self.enabled:
            return await asyncio.to_thread(self.directory.account, username)
        generation = self.generation()
        key = ("account", username)
        value = self.peek(key, generation)
        if value is not MISS:
            self.hits += 1
            assert value is None or isinstance(value, SipAccount)
            return value
        self.misses += 1
        account, target = await asyncio.to_thread(self.router.caller, username)
        self.put(key, account, generation)
        if account is not None and target is not None:
            self.put(("extension", account.extension_id), target, generation)
        return account

    async def extension(self, extension_id: int) -> InternalTarget | None:
        """A phone extension by id (a caller, where a DID leads, a callback's owner)."""
        return await self._cached(
            ("extension", extension_id), lambda: self.router.extension(extension_id)
        )

    async def resolve(self, client_id: int, number: str) -> Target | None:
        """What ``number`` dialled inside ``client_id`` reaches (:meth:`Router.resolve`): the
        extension part from memory; a trunk route is looked up in a worker thread (its host is
        resolved there)."""
        if not self.enabled:
            return await asyncio.to_thread(self.router.resolve, client_id, number)
        if not NUMBER.match(number):
            return None
        internal = await self._cached(
            ("number", client_id, number), lambda: self.router.internal(client_id, number)
        )
        if internal is not None:
            return internal
        if self.router.trunks is None:
            return None
        return await asyncio.to_thread(self.router.resolve_external, client_id, number)

    async def inbound(self, source: Addr, request: Request) -> InboundCallLike | None:
        """The trunk an INVITE came from with its DID (:meth:`TrunkService.inbound`), or None.
        An INVITE from an address no enabled trunk has is answered from memory."""
        trunks = self.trunks
        if trunks is None:
            return None
        if not self.enabled or not isinstance(trunks, TrunkService):
            return await asyncio.to_thread(trunks.inbound, source, request)
        source_ip = _ip(source[0])
        if source_ip is None:
            return None
        generation = self.generation()
        addresses = self.peek(("trunk-addresses",), generation)
        if addresses is MISS:
            self.misses += 1
            addresses = await asyncio.to_thread(trunks.addresses)
            self.put(("trunk-addresses",), addresses, generation, RESOLVE_TTL)
        else:
            self.hits += 1
        assert isinstance(addresses, frozenset)
        if str(source_ip) not in addresses:
            return None
        return await asyncio.to_thread(trunks.inbound, source, request)
