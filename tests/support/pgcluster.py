"""A throwaway PostgreSQL cluster for the test suite.

``throwaway_postgres()`` runs ``initdb`` into a fresh temporary folder, starts the server with
``pg_ctl`` on ``127.0.0.1`` and a free TCP port (its unix socket also lives inside that folder, so
it never touches ``/var/run/postgresql``), creates the database ``callgate_test`` and yields a
SQLAlchemy URL::

    postgresql+psycopg://postgres@127.0.0.1:PORT/callgate_test

Authentication is ``trust`` (no password) and the server listens on loopback only.  On exit the
server is stopped with ``pg_ctl stop -m fast`` and the folder is removed.  The cluster is tuned
for speed, not durability: ``fsync``, ``synchronous_commit`` and ``full_page_writes`` are off and
``max_connections`` is 200.

``create_database(url, name)`` creates another empty database on the same server (one per test
module) and returns its URL; ``drop_database(url, name)`` removes it again.

Binaries are taken from the highest ``/usr/lib/postgresql/<version>/bin`` (Debian's layout, no
``initdb`` on ``PATH``), falling back to ``PATH``.  ``initdb`` and ``postgres`` refuse to run as
root: when the tests run as root (as CI does) they are run as the ``postgres`` system user (created
by Debian's ``postgresql`` package) and the temporary folder, always under ``/tmp`` then, is owned
by that user.

If the environment variable ``CALLGATE_TEST_PG_URL`` is set, the test suite uses that server
instead of starting a throwaway cluster (the switch lives in the test fixtures, not here);
``create_database`` and ``drop_database`` work with any such URL whose user may create databases.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import re
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import psycopg
from psycopg import sql
from sqlalchemy.engine import URL, make_url

__all__ = [
    "DATABASE_NAME",
    "PostgresError",
    "create_database",
    "drop_database",
    "find_pg_binary",
    "throwaway_postgres",
]

DATABASE_NAME: Final = "callgate_test"
SUPERUSER: Final = "postgres"
SYSTEM_USER: Final = "postgres"
HOST: Final = "127.0.0.1"

_PG_LIB_DIR: Final = Path("/usr/lib/postgresql")
_START_ATTEMPTS: Final = 3
_START_TIMEOUT_S: Final = 60
_STOP_TIMEOUT_S: Final = 30

_SETTINGS: Final[Mapping[str, str]] = {
    "listen_addresses": "'127.0.0.1'",
    "max_connections": "200",
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "logging_collector": "off",
    "log_min_messages": "warning",
    "timezone": "'UTC'",
}


class PostgresError(RuntimeError):
    """A PostgreSQL helper command failed."""


@dataclass(frozen=True)
class _RunAs:
    """Which system user runs the PostgreSQL binaries (``None`` fields: the current one)."""

    uid: int | None = None
    gid: int | None = None

    @classmethod
    def for_current_process(cls) -> _RunAs:
        if os.geteuid() != 0:
            return cls()
        try:
            entry = pwd.getpwnam(SYSTEM_USER)
        except KeyError:
            raise PostgresError(
                f"running as root, but there is no {SYSTEM_USER!r} system user to run initdb "
                "and postgres as (install Debian's postgresql package: make system-deps)"
            ) from None
        return cls(uid=entry.pw_uid, gid=entry.pw_gid)


def _version_key(path: Path) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", path.name)) or (-1,)


def find_pg_binary(name: str) -> str:
    """Path of a PostgreSQL server binary: highest ``/usr/lib/postgresql/*/bin``, then ``PATH``."""
    if _PG_LIB_DIR.is_dir():
        for version_dir in sorted(_PG_LIB_DIR.iterdir(), key=_version_key, reverse=True):
            candidate = version_dir / "bin" / name
            if os.access(candidate, os.X_OK):
                return str(candidate)
    found = shutil.which(name)
    if found is None:
        raise PostgresError(
            f"PostgreSQL binary {name!r} not found in {_PG_LIB_DIR}/*/bin or on PATH "
            "(install Debian's postgresql package: make system-deps)"
        )
    return found


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def _clean_env() -> dict[str, str]:
    """The environment without ``PG*`` variables that would redirect pg_ctl or initdb."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("PG")}
    env["LC_ALL"] = "C"
    return env


def _run(
    args: Sequence[str], *, run_as: _RunAs, cwd: Path, check: bool = True
) -> subprocess.CompletedProcess[str]:
    """Run a PostgreSQL binary, as the ``postgres`` user when we are root."""
    result = subprocess.run(
        list(args),
        cwd=cwd,
        env=_clean_env(),
        user=run_as.uid,
        group=run_as.gid,
        extra_groups=[] if run_as.uid is not None else None,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        check=False,
    )
    if check and result.returncode != 0:
        raise PostgresError(
            f"{' '.join(args)} exited with {result.returncode}:\n{result.stdout}{result.stderr}"
        )
    return result


def _make_base_dir(run_as: _RunAs) -> Path:
    if run_as.uid is None:
        return Path(tempfile.mkdtemp(prefix="callgate-pg-"))
    # $TMPDIR may be a folder the postgres user cannot enter (e.g. under /root): use /tmp.
    base = Path(tempfile.mkdtemp(prefix="callgate-pg-", dir="/tmp"))
    os.chown(base, run_as.uid, run_as.gid if run_as.gid is not None else -1)
    return base


def _tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no server log)"


def _start(pg_ctl: str, data_dir: Path, log_file: Path, run_as: _RunAs, cwd: Path) -> int:
    """Start the server on a free port, retrying when another process grabs the port first."""
    last_error = ""
    for _attempt in range(_START_ATTEMPTS):
        port = _free_port()
        result = _run(
            [
                pg_ctl,
                "start",
                "--wait",
                f"--timeout={_START_TIMEOUT_S}",
                f"--pgdata={data_dir}",
                f"--log={log_file}",
                f"--options=-p {port}",
            ],
            run_as=run_as,
            cwd=cwd,
            check=False,
        )
        if result.returncode == 0:
            return port
        last_error = f"{result.stdout}{result.stderr}\n--- server log ---\n{_tail(log_file)}"
        if "could not bind" not in last_error and "in use" not in last_error:
            break
    raise PostgresError(f"pg_ctl start failed:\n{last_error}")


def _stop(pg_ctl: str, data_dir: Path, run_as: _RunAs, cwd: Path) -> None:
    for mode in ("fast", "immediate"):
        result = _run(
            [
                pg_ctl,
                "stop",
                "--wait",
                f"--timeout={_STOP_TIMEOUT_S}",
                f"--pgdata={data_dir}",
                f"--mode={mode}",
            ],
            run_as=run_as,
            cwd=cwd,
            check=False,
        )
        if result.returncode == 0 or not (data_dir / "postmaster.pid").exists():
            return


def _connect_kwargs(url: URL, database: str) -> dict[str, Any]:
    kwargs: dict[str, Any] = {"dbname": database, "autocommit": True, "connect_timeout": 10}
    if url.host:
        kwargs["host"] = url.host
    if url.port:
        kwargs["port"] = url.port
    if url.username:
        kwargs["user"] = url.username
    if url.password:
        kwargs["password"] = str(url.password)
    for key, value in url.query.items():
        kwargs[key] = value if isinstance(value, str) else value[-1]
    return kwargs


def _maintenance_connection(url: str) -> psycopg.Connection[Any]:
    return psycopg.connect(**_connect_kwargs(make_url(url), "postgres"))


def create_database(url: str, name: str) -> str:
    """Create the empty database ``name`` on the server of ``url``; return its SQLAlchemy URL."""
    with _maintenance_connection(url) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {} TEMPLATE template0").format(sql.Identifier(name)))
    return make_url(url).set(database=name).render_as_string(hide_password=False)


def drop_database(url: str, name: str) -> None:
    """Drop the database ``name`` on the server of ``url`` (if it exists), closing its sessions."""
    with _maintenance_connection(url) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


@contextlib.contextmanager
def throwaway_postgres() -> Iterator[str]:
    """Start a private PostgreSQL cluster; yield the URL of its ``callgate_test`` database."""
    run_as = _RunAs.for_current_process()
    initdb = find_pg_binary("initdb")
    pg_ctl = find_pg_binary("pg_ctl")
    base = _make_base_dir(run_as)
    data_dir = base / "data"
    socket_dir = base / "run"
    log_file = base / "postgres.log"
    started = False
    try:
        socket_dir.mkdir(mode=0o700)
        log_file.touch(mode=0o600)
        if run_as.uid is not None:
            gid = run_as.gid if run_as.gid is not None else -1
            os.chown(socket_dir, run_as.uid, gid)
            os.chown(log_file, run_as.uid, gid)
        _run(
            [
                initdb,
                f"--pgdata={data_dir}",
                f"--username={SUPERUSER}",
                "--auth=trust",
                "--encoding=UTF8",
                "--locale=C",
                "--no-sync",
            ],
            run_as=run_as,
            cwd=base,
        )
        settings = dict(_SETTINGS, unix_socket_directories=f"'{socket_dir}'")
        with (data_dir / "postgresql.conf").open("a", encoding="utf-8") as conf:
            conf.write("\n# callgate test cluster\n")
            conf.writelines(f"{key} = {value}\n" for key, value in settings.items())
        port = _start(pg_ctl, data_dir, log_file, run_as, base)
        started = True
        url = f"postgresql+psycopg://{SUPERUSER}@{HOST}:{port}/postgres"
        yield create_database(url, DATABASE_NAME)
    finally:
        if started or (data_dir / "postmaster.pid").exists():
            _stop(pg_ctl, data_dir, run_as, base)
        shutil.rmtree(base, ignore_errors=True)
