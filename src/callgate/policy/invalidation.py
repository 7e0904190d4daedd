"""The per-worker cache of token checks, and how it learns of authorization changes.

An API request's principal (token ⋈ application ⋈ user ⋈ client) and the realm facts the policy
checks (a client exists, an extension's client) are cached per worker process, keyed by the
token's hash. An entry is used only while

- the worker's **authorization generation** (``Database.authorization_generation``) is the one
  the entry was read under: every commit that updates or deletes a row of the authorization
  tables moves it on (``common/db.py``), in this process at once, in other processes through
- a **change watch**: on PostgreSQL a listener thread with its own connection, ``LISTEN
  callgate_authz``, that moves the generation on for every notification and disables the cache
  while it is not connected (and empties it when it is again); on SQLite a read of the database
  header's ``user_version`` before every lookup (a few microseconds: a local file);
- the token has not expired (the cached expiry is checked on every use), and the entry is younger
  than ``CALLGATE_AUTHZ_CACHE_TTL`` seconds (a backstop should a notification ever be lost
  without the connection failing; 0 turns the cache off).

Entries carry the generation they were read under, which is taken *before* the database read:
a check read from rows that changed meanwhile is stored under a generation already past, and
never used. Only successful token checks are cached; unknown, expired and revoked tokens are
looked up every time.
"""

from __future__ import annotations

import contextlib
import logging
import os
import select
import sqlite3
import threading
import time
import weakref
from collections import OrderedDict
from dataclasses import dataclass
from typing import Protocol

import psycopg
from psycopg import pq
from sqlalchemy.engine import make_url

from callgate.common.db import AUTHORIZATION_CHANNEL, Database
from callgate.config import Settings
from callgate.policy.principal import Principal

log = logging.getLogger("callgate.policy")

# The listener's connection is checked with a query when it has been silent this long.
PING_INTERVAL = 5.0
RECONNECT_DELAYS = (0.02, 0.1, 0.5, 1.0, 2.0)


class ChangeWatch(Protocol):
    def generation(self) -> int | None:
        """The current generation, or None when cached checks must not be used now."""

    def close(self) -> None: ...


class LocalWatch:
    """Changes made by this process only: an in-memory SQLite database has no other writer."""

    def __init__(self, database: Database) -> None:
        self.database = database

    def generation(self) -> int | None:
        return self.database.authorization_generation

    def close(self) -> None:
        pass


class SqliteWatch:
    """Reads the header's ``user_version``, which every authorization change increments."""

    def __init__(self, database: Database, path: str) -> None:
        self.database = database
        self.path = path
        self._lock = threading.Lock()
        self._connection: sqlite3.Connection | None = None
        self._seen: int | None = None

    def generation(self) -> int | None:
        with self._lock:
            try:
                if self._connection is None:
                    self._connection = sqlite3.connect(
                        self.path, check_same_thread=False, isolation_level=None, timeout=1
                    )
                version = self._connection.execute("PRAGMA user_version").fetchone()[0]
            except sqlite3.Error:
                log.warning("authorization cache: cannot read %s; not caching", self.path)
                return None
            if version != self._seen:
                # Another process (or this one) committed a change: drop what was cached.
                self._seen = version
                self.database.note_authorization_change()
            return self.database.authorization_generation

    def close(self) -> None:
        with self._lock:
            if self._connection is not None:
                self._connection.close()
                self._connection = None


class PostgresWatch:
    """A listener thread with its own connection; the cache is used only while it listens."""

    def __init__(self, database: Database) -> None:
        self.database = database
        url = make_url(database.url).set(drivername="postgresql")
        self.conninfo = url.render_as_string(hide_password=False)
        self._listening = False
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._wake_read, self._wake_write = os.pipe()
        # The listener's backend, so that tests can cut it (pg_terminate_backend).
        self.backend_pid: int | None = None
        self.connections = 0

    def generation(self) -> int | None:
        if self._thread is None:
            self._start()
        if not self._listening:
            return None
        return self.database.authorization_generation

    def _start(self) -> None:
        with self._lock:
            if self._thread is None and not self._stop.is_set():
                self._thread = threading.Thread(
                    target=self._run, name="callgate-authz-listener", daemon=True
                )
                self._thread.start()

    def close(self) -> None:
        self._stop.set()
        with contextlib.suppress(OSError):
            os.write(self._wake_write, b"x")
        thread = self._thread
        if thread is not None:
            thread.join(timeout=5)
        for fd in (self._wake_read, self._wake_write):
            with contextlib.suppress(OSError):
                os.close(fd)

    def _run(self) -> None:
        failures = 0
        while not self._stop.is_set():
            try:
                with psycopg.connect(
                    self.conninfo,
                    autocommit=True,
                    connect_timeout=5,
                    # A peer that vanished without closing the connection is noticed too.
                    keepalives=1,
                    keepalives_idle=10,
                    keepalives_interval=2,
                    keepalives_count=3,
                ) as connection:
                    # Notifications read while a query runs (the ping) reach this handler.
                    connection.add_notify_handler(
                        lambda _notify: self.database.note_authorization_change()
                    )
                    connection.execute(f"LISTEN {AUTHORIZATION_CHANNEL}")
                    self.backend_pid = connection.info.backend_pid
                    # What was committed while nobody listened is unknown: start afresh.
                    self.database.note_authorization_change()
                    self._listening = True
                    self.connections += 1
                    failures = 0
                    self._listen(connection)
            except (psycopg.Error, OSError) as error:
                if not self._stop.is_set():
                    log.warning("authorization listener: %s; reconnecting", error)
            finally:
                self._listening = False
            delay = RECONNECT_DELAYS[min(failures, len(RECONNECT_DELAYS) - 1)]
            failures += 1
            self._stop.wait(delay)

    def _listen(self, connection: psycopg.Connection[tuple[object, ...]]) -> None:
        pgconn = connection.pgconn
        socket_fd = connection.fileno()
        last_heard = time.monotonic()
        while not self._stop.is_set():
            readable, _, _ = select.select([socket_fd, self._wake_read], [], [], PING_INTERVAL)
            if self._wake_read in readable:
                return
            if socket_fd in readable:
                pgconn.consume_input()  # raises when the server closed the connection
                heard = False
                while pgconn.notifies() is not None:
                    heard = True
                if heard:
                    self.database.note_authorization_change()
                if pgconn.status != pq.ConnStatus.OK:
                    raise psycopg.OperationalError("the listener's connection is closed")
                last_heard = time.monotonic()
            elif time.monotonic() - last_heard >= PING_INTERVAL:
                connection.execute("SELECT 1")
                last_heard = time.monotonic()


_SHARED: weakref.WeakKeyDictionary[Database, ChangeWatch] = weakref.WeakKeyDictionary()
_SHARED_LOCK = threading.Lock()


def shared_watch(database: Database) -> ChangeWatch:
    """The one change watch of ``database`` in this process (the API's cache of token checks and
    the PBX's directory cache share it: one listener connection); closed with the database."""
    with _SHARED_LOCK:
        watch = _SHARED.get(database)
        if watch is None:
            watch = _SHARED[database] = watch_for(database)
            database.on_dispose(watch.close)
        return watch


def watch_for(database: Database) -> ChangeWatch:
    if not database.is_sqlite:
        return PostgresWatch(database)
    path = database.engine.url.database
    if not path or path == ":memory:":
        return LocalWatch(database)
    return SqliteWatch(database, path)


@dataclass(slots=True)
class _Entry:
    value: object
    generation: int
    # Epoch seconds after which the entry is not used: the token's expiry, or the TTL.
    valid_until: float


class AuthorizationCache:
    """Bounded LRU of principals and realm facts, valid under one authorization generation."""

    def __init__(self, database: Database, settings: Settings) -> None:
        self.enabled = settings.authz_cache_ttl > 0
        self.ttl = settings.authz_cache_ttl
        self.size = settings.authz_cache_size
        self._entries: OrderedDict[str, _Entry] = OrderedDict()
        self._lock = threading.Lock()
        self.watch: ChangeWatch | None = None
        if self.enabled:
            self.watch = shared_watch(database)

    def generation(self) -> int | None:
        """Take this before reading the database; None means: do not use the cache now."""
        if self.watch is None:
            return None
        return self.watch.generation()

    def principal(self, token_hash: str, generation: int) -> Principal | None:
        value = self._get(token_hash, generation)
        return value if isinstance(value, Principal) else None

    def put_principal(
        self, token_hash: str, principal: Principal, expires_at: float, generation: int
    ) -> None:
        self._put(token_hash, principal, generation, expires_at)

    def fact(self, key: str, generation: int) -> int | None:
        """A cached realm fact (``client:<id>`` → its id, ``extension:<id>`` → its client)."""
        value = self._get(key, generation)
        return value if isinstance(value, int) else None

    def put_fact(self, key: str, value: int, generation: int) -> None:
        self._put(key, value, generation, float("inf"))

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def _get(self, key: str, generation: int) -> object | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        if entry.generation != generation or entry.valid_until <= time.time():
            with self._lock:
                if self._entries.get(key) is entry:
                    del self._entries[key]
            return None
        # One C call, atomic under the GIL: no lock on the hot path (a concurrent eviction
        # makes it a KeyError).
        with contextlib.suppress(KeyError):
            self._entries.move_to_end(key)
        return entry.value

    def _put(self, key: str, value: object, generation: int, until: float) -> None:
        if not self.enabled:
            return
        entry = _Entry(value, generation, min(until, time.time() + self.ttl))
        with self._lock:
            self._entries[key] = entry
            self._entries.move_to_end(key)
            while len(self._entries) > self.size:
                self._entries.popitem(last=False)
