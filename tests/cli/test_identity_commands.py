"""``callgate db upgrade``, ``client|extension|user ...``, exit codes and output formats."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from sqlalchemy import inspect

from callgate.cli.main import main
from callgate.common.db import Database
from callgate.common.security import verify_password
from callgate.identity.repository import IdentityRepository
from callgate.models import Base
from callgate.services import Services
from tests.cli.conftest import CallgateRunner
from tests.support.factories import PASSWORD, unique
from tests.support.pgcluster import create_database


@pytest.fixture
def empty_url(database_url: str, tmp_path: Path) -> str:
    """A database of the same kind as ``database_url`` that has never been migrated."""
    if database_url.startswith("sqlite"):
        return f"sqlite:///{tmp_path / 'fresh.sqlite3'}"
    return create_database(database_url, unique(f"fresh{os.getpid()}_"))


def test_db_upgrade_migrates_an_empty_database(
    callgate: CallgateRunner, empty_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    data_dir = tmp_path / "new-data"
    monkeypatch.setenv("CALLGATE_DATABASE_URL", empty_url)
    monkeypatch.setenv("CALLGATE_DATA_DIR", str(data_dir))

    run = callgate("db", "upgrade", "--json")

    assert run.code == 0, run.err
    result = run.json()
    assert result["from_revision"] is None
    assert result["revision"]
    assert "Upgrading database" in run.err  # progress goes to stderr in --json mode
    assert data_dir.is_dir()
    database = Database(empty_url)
    try:
        tables = set(inspect(database.engine).get_table_names())
    finally:
        database.dispose()
    assert {table.name for table in Base.metadata.sorted_tables} <= tables

    again = callgate("db", "upgrade")
    assert again.code == 0
    assert "already at revision" in again.out


def test_client_extension_and_user_create_print_json(
    callgate: CallgateRunner, services: Services
) -> None:
    client = callgate("client", "create", "--name", "Acme", "--prefix", "00077", "--json")
    assert client.code == 0, client.err
    client_id = client.json()["id"]
    assert client.json() == {"id": client_id, "name": "Acme", "prefix": "00077", "status": "active"}

    ext = callgate(
        "extension", "create", "--client", str(client_id), "--name", "101", "--type", "phone",
        "--label", "Reception", "--json",
    )  # fmt: skip
    assert ext.code == 0, ext.err
    assert ext.json()["sip_user"] == "00077*101"
    assert ext.json()["label"] == "Reception"

    # --json before the command works as well
    user = callgate(
        "--json", "user", "create", "--login", "alice", "--password-stdin",
        "--extension", str(ext.json()["id"]), "--read-only",
        stdin=PASSWORD + "\n",
    )  # fmt: skip
    assert user.code == 0, user.err
    view = user.json()
    assert (view["level"], view["access"], view["client_id"]) == (
        "extension",
        "read_only",
        client_id,
    )
    with services.database.read() as session:
        stored = IdentityRepository(session).user_by_login("alice")
    assert stored is not None and stored.id == view["id"]
    # the newline is not part of the password, and the password is stored as argon2 only
    assert verify_password(PASSWORD, stored.password_hash)
    assert PASSWORD not in stored.password_hash


def test_human_output_is_one_line_with_the_id(callgate: CallgateRunner) -> None:
    run = callgate("client", "create", "--name", "Plain", "--prefix", "00078")
    assert run.code == 0
    assert run.out.startswith("Created client ")
    assert "00078" in run.out
    assert run.err == ""


def test_user_create_refuses_an_empty_password(
    callgate: CallgateRunner, services: Services
) -> None:
    for stdin in ("", "\n"):
        run = callgate(
            "user", "create", "--login", "nopass", "--password-stdin", "--admin", stdin=stdin
        )
        assert run.code == 1
        assert "No password on stdin" in run.err
    with services.database.read() as session:
        assert IdentityRepository(session).user_by_login("nopass") is None


def test_domain_errors_exit_1_with_the_message_on_stderr(callgate: CallgateRunner) -> None:
    first = callgate("client", "create", "--name", "A", "--prefix", "00079")
    assert first.code == 0
    duplicate = callgate("client", "create", "--name", "B", "--prefix", "00079", "--json")
    assert duplicate.code == 1
    assert duplicate.out == ""
    assert duplicate.error() == {
        "status": "conflict",
        "message": "A client with prefix 00079 already exists.",
    }
    invalid = callgate("client", "create", "--name", "C", "--prefix", "12ab")
    assert invalid.code == 1
    assert invalid.err == "callgate: The prefix must be 1 to 20 digits.\n"


def test_usage_errors_exit_2(callgate: CallgateRunner) -> None:
    assert callgate().code == 2
    assert callgate("client", "create", "--name", "X").code == 2  # --prefix missing
    assert callgate("user", "create", "--login", "x").code == 2  # --password-stdin missing
    assert callgate("extension", "create", "--client", "x", "--name", "1").code == 2
    assert callgate("app", "set-level", "0" * 32, "everything").code == 2
    assert callgate("--help").code == 0


def test_user_block_and_unblock(callgate: CallgateRunner, services: Services) -> None:
    created = callgate(
        "user", "create", "--login", "carol", "--password-stdin", "--admin", stdin=PASSWORD
    )
    assert created.code == 0, created.err

    blocked = callgate("user", "block", "carol", "--json")
    assert blocked.code == 0, blocked.err
    assert blocked.json()["status"] == "blocked"
    with services.database.read() as session:
        user = IdentityRepository(session).user_by_login("carol")
    assert user is not None and user.status == "blocked"

    assert callgate("user", "unblock", "carol", "--json").json()["status"] == "active"
    missing = callgate("user", "block", "nobody")
    assert (missing.code, missing.err) == (1, "callgate: There is no user nobody.\n")


def test_settings_refused_in_production_mode(
    callgate: CallgateRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CALLGATE_MODE", "production")
    run = callgate("client", "create", "--name", "X", "--prefix", "1")
    assert run.code == 1
    assert "CALLGATE_SECRET_KEY" in run.err


def test_main_reads_the_real_streams_by_default(
    cli_env: dict[str, str], services: Services, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["client", "create", "--name", "Streams", "--prefix", "00080", "--json"]) == 0
    assert '"prefix": "00080"' in capsys.readouterr().out


def test_an_unmigrated_database_is_reported_without_a_traceback(
    callgate: CallgateRunner, empty_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CALLGATE_DATABASE_URL", empty_url)
    run = callgate("app", "list", "--json")
    assert run.code == 1
    error = run.error()
    assert error["status"] == "database_error"
    assert "callgate db upgrade" in error["message"]


def test_an_invalid_setting_names_its_variable(
    callgate: CallgateRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CALLGATE_HTTP_PORT", "eighty")
    run = callgate("app", "list")
    assert run.code == 1
    assert run.err.startswith("callgate: Invalid settings: CALLGATE_HTTP_PORT:")
