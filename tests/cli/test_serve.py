"""``callgate serve`` as a real subprocess: several uvloop workers, health check, clean stop."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import free_port

CALLGATE = str(Path(sys.executable).parent / "callgate")


def _wait_healthy(url: str, process: subprocess.Popen[str], deadline_s: float = 30) -> None:
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"callgate serve exited with {process.returncode}")
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.05)
    raise AssertionError("callgate serve did not answer /healthz in time")


@pytest.mark.slow
def test_serve_runs_two_workers_and_stops_on_sigterm(
    cli_env: dict[str, str], tmp_path: Path
) -> None:
    port = free_port()
    log_path = tmp_path / "serve.log"
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [CALLGATE, "serve", "--workers", "2", "--port", str(port), "--json"],
            env={**os.environ, **cli_env},
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
            start_new_session=True,
        )
    try:
        url = f"http://127.0.0.1:{port}"
        _wait_healthy(url, process)
        assert process.stdout is not None
        startup = json.loads(process.stdout.readline())
        assert startup["workers"] == 2
        assert startup["login_url"] == f"{url}/login"  # the issuer follows the served port
        assert startup["sip"] is None

        with httpx.Client(base_url=url, timeout=5) as http:
            health = http.get("/healthz")
            assert health.json() == {"status": "ok"}
            assert health.headers["x-frame-options"] == "DENY"
            assert "server" not in health.headers
            assert http.get("/login").status_code == 200

        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=20) == 0
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)
        if process.stdout is not None:
            process.stdout.close()
    log_text = log_path.read_text()
    assert "with 2 worker(s)" in log_text
    assert "SIP: not started" in log_text
    assert '"GET /healthz HTTP/1.1" 200' in log_text  # access log on by default


def test_serve_refuses_unsafe_production_settings(cli_env: dict[str, str]) -> None:
    result = subprocess.run(
        [CALLGATE, "serve"],
        env={**os.environ, **cli_env, "CALLGATE_MODE": "production"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1
    assert "CALLGATE_SECRET_KEY" in result.stderr
    assert result.stdout == ""
