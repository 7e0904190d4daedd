"""Database access: engine, declarative base, portable types and units of work.

SQLite is the default and has a single writer: every write unit of work takes a process-wide
lock and starts with ``BEGIN IMMEDIATE`` so that writers queue in-process instead of spinning on
``SQLITE_BUSY``. PostgreSQL needs neither.

The database also announces **authorization changes**: a transaction that updates or deletes rows
of the tables an API authorization is built from (``AUTHORIZATION_TABLES``) announces it inside
the same transaction, so the announcement becomes visible exactly when the change does: on
PostgreSQL ``NOTIFY callgate_authz`` (delivered at commit), on SQLite an increment of the
database header's ``user_version`` (read back by other processes). In this process,
``Database.authorization_generation`` moves on before and after such a commit. The access policy's
per-worker cache of token checks (``policy/invalidation.py``) is valid only while that generation
is unchanged. The changes are recognised from the SQL itself, so a write added anywhere later
(ORM flush or Core statement) cannot forget to announce itself.
"""

from __future__ import annotations

import datetime as dt
import functools
import re
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from typing import Any

from sqlalchemy import Connection, DateTime, Engine, MetaData, create_engine, event
from sqlalchemy.engine.interfaces import DBAPIConnection
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.pool import ConnectionPoolEntry
from sqlalchemy.types import TypeDecorator

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


# The tables whose rows an API authorization is read from (policy/repository.py): the token, its
# application, its user, the user's client, and extensions (realm checks; deleting one deletes
# its users). Any UPDATE, DELETE or TRUNCATE of them can change what a cached check would say.
AUTHORIZATION_TABLES = frozenset({"oauth_tokens", "applications", "users", "clients", "extensions"})
# The tables the PBX's directory cache is read from (pbx/directory.py): SIP accounts, extensions
# with their rule and codecs, trunks, DIDs. They announce on the same generation, and their plain
# INSERTs too (a new trunk or DID, a first SIP password, must not wait for the cache's TTL).
DIRECTORY_TABLES = frozenset(
    {"phone_settings", "extensions", "clients", "trunks", "dids", "incoming_rules"}
)
AUTHORIZATION_CHANNEL = "callgate_authz"
_CHANGE = re.compile(
    r"^\s*(?:(?P<verb>UPDATE|DELETE\s+FROM|INSERT(?:\s+OR\s+\w+)?\s+INTO|REPLACE\s+INTO)"
    r'\s+"?(?P<table>\w+)|(?P<truncate>TRUNCATE)|(?P<with>WITH)\b)',
    re.IGNORECASE,
)
_WRITE_IN_CTE = re.compile(r"\b(?:UPDATE|DELETE)\b", re.IGNORECASE)
_INSERT_THAT_CHANGES = re.compile(r"\bDO\s+UPDATE\b", re.IGNORECASE)
_DIRTY = "callgate_authorization_changed"


@functools.lru_cache(maxsize=2048)
def changes_authorization(statement: str) -> bool:
    """Whether a SQL statement may change a row of ``AUTHORIZATION_TABLES`` (or any write to
    ``DIRECTORY_TABLES``, inserts included).

    Errs on the safe side: a needless announcement costs one cache refill per worker, a missed
    one would leave a revoked token usable. Statements are compiled strings cached by SQLAlchemy,
    so the same few strings come back and the answer is cached too.
    """
    match = _CHANGE.match(statement)
    if match is None:
        return False
    if match.group("truncate"):
        return True
    if match.group("with"):
        return _WRITE_IN_CTE.search(statement) is not None
    table = match.group("table").lower()
    if table in DIRECTORY_TABLES:
        return True
    if table not in AUTHORIZATION_TABLES:
        return False
    verb = match.group("verb").upper()
    if verb.startswith("INSERT"):
        # A plain INSERT adds rows no cache holds yet; an upsert or INSERT OR REPLACE changes one.
        return " OR " in verb or _INSERT_THAT_CHANGES.search(statement) is not None
    return True


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class UTCDateTime(TypeDecorator[dt.datetime]):
    """An aware UTC datetime stored as a naive UTC timestamp on every database."""

    impl = DateTime(timezone=False)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetimes are not accepted; use callgate.common.clock.utcnow")
        return value.astimezone(dt.UTC).replace(tzinfo=None)

    def process_result_value(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=dt.UTC)


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: DBAPIConnection, _record: ConnectionPoolEntry) -> None:
        # Take transaction control away from the sqlite3 module; see the "begin" hook below.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=10000")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        if conn.get_execution_options().get("callgate_write"):
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        else:
            conn.exec_driver_sql("BEGIN")


def make_engine(url: str, *, pool_size: int = 10) -> Engine:
    if url.startswith("sqlite"):
        engine = create_engine(
            url, connect_args={"check_same_thread": False, "timeout": 10}, pool_size=pool_size
        )
        _configure_sqlite(engine)
        return engine
    return create_engine(url, pool_size=pool_size, max_overflow=20, pool_pre_ping=True)


def _announce_authorization_changes(database: Database) -> None:
    """Mark transactions that change ``AUTHORIZATION_TABLES`` and announce them at commit."""
    engine = database.engine

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        conn.info.pop(_DIRTY, None)

    @event.listens_for(engine, "before_cursor_execute")
    def _on_execute(
        conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, many: bool
    ) -> None:
        if changes_authorization(statement):
            conn.info[_DIRTY] = True

    @event.listens_for(engine, "commit")
    def _on_commit(conn: Any) -> None:
        # Runs just before the DBAPI commit, inside the transaction: the announcement commits
        # (or fails) together with the change. The raw cursor keeps this out of the events.
        if not conn.info.pop(_DIRTY, False):
            return
        cursor = conn.connection.dbapi_connection.cursor()
        try:
            if database.is_sqlite:
                # The write lock is held (the change itself took it), so read-then-set is safe.
                cursor.execute("PRAGMA user_version")
                version = int(cursor.fetchone()[0])
                cursor.execute(f"PRAGMA user_version = {(version + 1) % 2**31}")
            else:
                cursor.execute(f"NOTIFY {AUTHORIZATION_CHANNEL}")
        finally:
            cursor.close()
        # Before the commit, so that no check read from the old rows can be cached from here on;
        # and once more after it (Database.write), for checks read while the commit was landing.
        database.note_authorization_change()
        database._local.after_commit = True

    @event.listens_for(engine, "rollback")
    def _on_rollback(conn: Any) -> None:
        conn.info.pop(_DIRTY, None)


class Database:
    """Owns the engine and hands out units of work (sessions bound to one transaction)."""

    def __init__(self, url: str, *, pool_size: int = 10) -> None:
        self.url = url
        self.engine = make_engine(url, pool_size=pool_size)
        self.is_sqlite = self.engine.dialect.name == "sqlite"
        self._write_lock: threading.Lock | None = threading.Lock() if self.is_sqlite else None
        self._read_sessions = sessionmaker(self.engine, expire_on_commit=False)
        self._write_engine = self.engine.execution_options(callgate_write=True)
        self._write_sessions = sessionmaker(self._write_engine, expire_on_commit=False)
        self._generation = 0
        self._generation_lock = threading.Lock()
        self._local = threading.local()
        self._on_dispose: list[Callable[[], None]] = []
        _announce_authorization_changes(self)

    @property
    def authorization_generation(self) -> int:
        """Moves on whenever this process learns of an authorization change (see module doc)."""
        return self._generation

    def note_authorization_change(self) -> None:
        with self._generation_lock:
            self._generation += 1

    def on_dispose(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` when the database is disposed (e.g. to stop a listener thread)."""
        self._on_dispose.append(callback)

    @contextmanager
    def read_connection(self) -> Iterator[Connection]:
        """A read-only unit of work in SQLAlchemy Core, for hot paths; rolled back at the end."""
        with self.engine.connect() as connection:
            try:
                yield connection
            finally:
                connection.rollback()

    @contextmanager
    def read(self) -> Iterator[Session]:
        """A read-only unit of work; rolled back at the end."""
        with self._read_sessions() as session:
            try:
                yield session
            finally:
                # Detach first: a rollback expires every loaded object, and the objects a read
                # returns must stay usable after the session is gone.
                session.expunge_all()
                session.rollback()

    @contextmanager
    def write(self) -> Iterator[Session]:
        """A unit of work that commits on success and rolls back on any exception."""
        with self._writing(), self._write_sessions() as session:
            try:
                yield session
                session.commit()
            except BaseException:
                session.rollback()
                raise

    @contextmanager
    def write_connection(self) -> Iterator[Connection]:
        """``write()`` in SQLAlchemy Core, for hot paths (no ORM session to build)."""
        with self._writing(), self._write_engine.begin() as connection:
            yield connection

    @contextmanager
    def _writing(self) -> Iterator[None]:
        if self._write_lock is not None and self._local.__dict__.get("writing"):
            # The lock is not reentrant: a nested write unit of work would wait for itself.
            raise RuntimeError("a write unit of work inside another one (SQLite would deadlock)")
        with self._write_lock or nullcontext():
            self._local.writing = True
            try:
                yield
            finally:
                self._local.writing = False
                if self._local.__dict__.pop("after_commit", False):
                    self.note_authorization_change()

    def dispose(self) -> None:
        while self._on_dispose:
            self._on_dispose.pop()()
        self.engine.dispose()
