"""Fixtures shared by every test: both databases, services, a live server on 127.0.0.1.

Every database test runs twice, on SQLite and on PostgreSQL. PostgreSQL comes from
``CALLGATE_TEST_PG_URL`` when set, otherwise from a throwaway cluster started for the session.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn
from sqlalchemy import text

from callgate.common.db import Database
from callgate.composition import build_services, create_app
from callgate.config import Settings
from callgate.migrations import upgrade
from callgate.models import Base
from callgate.services import Services
from tests.support.factories import World, make_world
from tests.support.pgcluster import create_database, throwaway_postgres

DATABASES = ["sqlite", "postgresql"]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    given = os.environ.get("CALLGATE_TEST_PG_URL")
    if given:
        yield given
        return
    with throwaway_postgres() as url:
        yield url


_db_counter = iter(range(1, 1_000_000))


@pytest.fixture(scope="module", params=DATABASES)
def database_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> str:
    """A migrated, empty database for one test module, on each database kind."""
    if request.param == "sqlite":
        folder = tmp_path_factory.mktemp("sqlite")
        url = f"sqlite:///{folder / 'callgate.sqlite3'}"
    else:
        base_url: str = request.getfixturevalue("postgres_url")
        url = create_database(base_url, f"t{os.getpid()}_{next(_db_counter)}")
    upgrade(url)
    return url


def _empty_all_tables(database: Database) -> None:
    tables = list(reversed(Base.metadata.sorted_tables))
    with database.write() as session:
        if database.is_sqlite:
            for table in tables:
                session.execute(table.delete())
        else:
            names = ", ".join(table.name for table in tables)
            session.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))


@pytest.fixture
def http_port() -> int:
    return free_port()


@pytest.fixture
def settings(tmp_path: Path, database_url: str, http_port: int) -> Settings:
    return Settings(
        data_dir=tmp_path / "data",
        database_url=database_url,
        public_url=f"http://127.0.0.1:{http_port}",
        http_port=http_port,
        webhook_allow_private=True,
        # Cheap password hashing keeps the suite fast; production refuses such values.
        argon2_time_cost=1,
        argon2_memory_kib=64,
        argon2_parallelism=1,
    )


@pytest.fixture
def services(settings: Settings) -> Iterator[Services]:
    built = build_services(settings)
    try:
        yield built
    finally:
        _empty_all_tables(built.database)
        built.database.dispose()


@pytest.fixture
def world(services: Services) -> World:
    return make_world(services)


class LiveServer:
    def __init__(self, services: Services, port: int) -> None:
        self.url = f"http://127.0.0.1:{port}"
        config = uvicorn.Config(
            create_app(services=services),
            host="127.0.0.1",
            port=port,
            log_level="warning",
            lifespan="on",
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def start(self) -> None:
        self.thread.start()
        deadline = time.monotonic() + 15
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the test server did not start")
            time.sleep(0.01)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


@pytest.fixture
def live_server(services: Services, http_port: int) -> Iterator[LiveServer]:
    server = LiveServer(services, http_port)
    server.start()
    try:
        yield server
    finally:
        server.stop()
