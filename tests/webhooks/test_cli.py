"""``callgate webhooks deliver``: refuses a database it cannot use, and stops cleanly on SIGTERM
(the durability test kills it and starts it again)."""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
from pathlib import Path


def _command(tmp_path: Path, database_url: str) -> subprocess.Popen[str]:
    env = {**os.environ, "CALLGATE_DATABASE_URL": database_url, "CALLGATE_DATA_DIR": str(tmp_path)}
    return subprocess.Popen(
        [sys.executable, "-m", "callgate", "webhooks", "deliver", "--json"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_an_unmigrated_database_is_a_clear_error(tmp_path: Path) -> None:
    process = _command(tmp_path, f"sqlite:///{tmp_path / 'empty.sqlite3'}")
    out, err = process.communicate(timeout=60)
    assert process.returncode == 1 and out == ""
    answer = json.loads(err.strip().splitlines()[-1])
    assert answer["status"] == "database_error"
    assert "callgate db upgrade" in answer["message"]


def test_sigterm_stops_it_with_a_summary(tmp_path: Path, database_url: str) -> None:
    process = _command(tmp_path, database_url)
    try:
        assert process.stderr is not None
        ready, _, _ = select.select([process.stderr], [], [], 30)  # bounded wait for a line
        assert ready, "no start line within 30 s"
        assert "Delivering call events" in process.stderr.readline()
        process.send_signal(signal.SIGTERM)
        out, _ = process.communicate(timeout=20)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)
    assert process.returncode == 0
    assert json.loads(out) == {"attempts": 0}
