"""``callgate sip`` as a real subprocess: SIP, the control channel with the real client, stop."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
from pathlib import Path

import pytest

from callgate.common.errors import PbxUnavailable
from callgate.config import Settings
from callgate.pbx.channel import RemoteCallControl
from tests.cli.processes import CALLGATE, sip_options


def _start(env: dict[str, str], *argv: str, log_path: Path) -> subprocess.Popen[str]:
    with log_path.open("w") as log:
        return subprocess.Popen(
            [CALLGATE, "sip", "--json", *argv],
            env={**os.environ, **env},
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
            start_new_session=True,
        )


def _kill(process: subprocess.Popen[str]) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)
    if process.stdout is not None:
        process.stdout.close()


@pytest.mark.slow
@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGINT])
def test_sip_serves_sip_and_call_control_until_signalled(
    cli_env: dict[str, str], tmp_path: Path, stop_signal: signal.Signals
) -> None:
    secret = "sip-command-test-secret-0123456789abcdef"
    env = {**cli_env, "CALLGATE_SECRET_KEY": secret, "CALLGATE_SIP_CONTROL_PORT": "0"}
    log_path = tmp_path / "sip.log"
    process = _start(env, "--port", "0", log_path=log_path)
    try:
        assert process.stdout is not None
        startup = json.loads(process.stdout.readline())  # printed once listening
        assert startup["pid"] == process.pid
        sip_port = int(startup["sip"].removeprefix("udp+tcp 127.0.0.1:"))
        control_host, control_port = startup["control"].split(":")
        assert control_host == "127.0.0.1"
        assert sip_options(sip_port) == "SIP/2.0 200 OK"

        same_key = RemoteCallControl(Settings(secret_key=secret), port=int(control_port))
        other_key = RemoteCallControl(
            Settings(secret_key="x" * 40), port=int(control_port), timeout=10
        )

        async def ask() -> None:
            assert await same_key.current_calls(1, None) == []
            with pytest.raises(PbxUnavailable, match="authentication failed"):
                await other_key.current_calls(1, None)

        asyncio.run(asyncio.wait_for(ask(), timeout=20))

        process.send_signal(stop_signal)
        assert process.wait(timeout=20) == 0
    finally:
        _kill(process)
    log_text = log_path.read_text()
    assert f"SIP on udp+tcp 127.0.0.1:{sip_port}" in log_text
    assert "control channel: refused a request: authentication failed" in log_text
    assert "Callgate SIP process stopped." in log_text


def test_sip_on_a_port_in_use_exits_1_with_the_address(
    cli_env: dict[str, str], tmp_path: Path
) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as taken:
        taken.bind(("127.0.0.1", 0))
        port = taken.getsockname()[1]
        env = {**cli_env, "CALLGATE_SIP_CONTROL_PORT": "0"}
        process = _start(env, "--port", str(port), log_path=tmp_path / "sip.log")
        try:
            assert process.wait(timeout=30) == 1
            assert process.stdout is not None
            assert process.stdout.read() == ""
        finally:
            _kill(process)
    log_text = (tmp_path / "sip.log").read_text()
    assert f"Cannot listen for SIP on 127.0.0.1:{port}" in log_text
    assert "Traceback" not in log_text
