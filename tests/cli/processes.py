"""Running ``callgate serve``/``callgate sip`` as real processes in tests, and probing them."""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from tests.cli.conftest import CallgateRunner

CALLGATE = str(Path(sys.executable).parent / "callgate")
ANY_PORT = {"CALLGATE_SIP_PORT": "0", "CALLGATE_SIP_CONTROL_PORT": "0"}


def sip_port_of(startup: dict[str, object]) -> int:
    sip = str(startup["sip"])
    assert sip.startswith("udp+tcp 127.0.0.1:"), sip
    return int(sip.rsplit(":", 1)[1])


def sip_options(port: int, deadline_s: float = 10) -> str:
    """Send OPTIONS over UDP until a response arrives; its status line."""
    branch = "z9hG4bK" + secrets.token_hex(8)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        local = sock.getsockname()[1]
        request = (
            f"OPTIONS sip:127.0.0.1:{port} SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP 127.0.0.1:{local};branch={branch};rport\r\n"
            "Max-Forwards: 70\r\n"
            f"From: <sip:probe@127.0.0.1>;tag={secrets.token_hex(4)}\r\n"
            f"To: <sip:127.0.0.1:{port}>\r\n"
            f"Call-ID: {secrets.token_hex(8)}\r\n"
            "CSeq: 1 OPTIONS\r\n"
            "Content-Length: 0\r\n\r\n"
        ).encode()
        sock.settimeout(0.5)
        deadline = time.monotonic() + deadline_s
        while time.monotonic() < deadline:  # UDP: resend until answered
            sock.sendto(request, ("127.0.0.1", port))
            try:
                data = sock.recv(65535)
            except TimeoutError:
                continue
            return data.decode().split("\r\n", 1)[0]
    raise AssertionError(f"no answer to OPTIONS on 127.0.0.1:{port}")


@contextmanager
def running_serve(
    argv: list[str], env: dict[str, str], log_path: Path
) -> Iterator[subprocess.Popen[str]]:
    """``callgate serve …`` in its own session; killed with its children if a test fails."""
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [CALLGATE, "serve", *argv],
            env={**os.environ, **env},
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
            start_new_session=True,
        )
    try:
        yield process
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)
        if process.stdout is not None:
            process.stdout.close()


def api_token(callgate: CallgateRunner, url: str) -> tuple[str, dict[str, Any]]:
    """``callgate demo``, a trusted app of the demo user and its token: (token, demo output)."""
    demo = callgate("demo", "--json")
    assert demo.code == 0, demo.err
    app = callgate(
        "app", "create", "--owner", "demo", "--name", "CRM", "--type", "trusted", "--json"
    )
    assert app.code == 0, app.err
    answer = httpx.post(
        f"{url}/oauth/token",
        data={
            "grant_type": "client_credentials",
            "client_id": app.json()["app_id"],
            "client_secret": app.json()["app_secret"],
        },
        timeout=10,
    )
    assert answer.status_code == 200, answer.text
    return str(answer.json()["access_token"]), dict(demo.json())


def gone(pid: int, deadline_s: float = 20) -> bool:
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.05)
    return False


def children(pid: int) -> list[tuple[int, str]]:
    """(pid, command line) of the direct children of ``pid``, from /proc."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            found.append((int(entry.name), cmdline))
    return found


def wait_healthy(url: str, process: subprocess.Popen[str], deadline_s: float = 30) -> None:
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
