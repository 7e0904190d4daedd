"""``callgate serve`` as a real subprocess: HTTP workers, the PBX beside them, clean stop.

SIP and control-channel ports are 0 (any free port) unless a test needs to know the SIP port
in advance; the startup JSON says which ports were bound.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
from pathlib import Path

import httpx
import pytest

from tests.cli.conftest import CallgateRunner
from tests.cli.processes import (
    ANY_PORT,
    CALLGATE,
    api_token,
    children,
    gone,
    running_serve,
    sip_options,
    sip_port_of,
    wait_healthy,
)
from tests.conftest import free_port
from tests.pbx.baresip import AVAILABLE, Baresip, free_udp_tcp_pair, write_config


@pytest.mark.slow
def test_serve_with_one_worker_runs_http_and_sip_in_one_process(
    callgate: CallgateRunner, cli_env: dict[str, str], tmp_path: Path
) -> None:
    port = free_port()
    log_path = tmp_path / "serve.log"
    with running_serve(
        ["--port", str(port), "--json"], {**cli_env, **ANY_PORT}, log_path
    ) as process:
        url = f"http://127.0.0.1:{port}"
        wait_healthy(url, process)
        assert process.stdout is not None
        startup = json.loads(process.stdout.readline())
        assert startup["workers"] == 1
        sip_port = sip_port_of(startup)
        assert sip_options(sip_port) == "SIP/2.0 200 OK"
        assert children(process.pid) == []  # no second process: SIP runs in this one
        token, demo = api_token(callgate, url)
        client_id = demo["client"]["id"]
        calls = httpx.get(
            f"{url}/api/ver1.0/client/{client_id}/current_calls/",
            headers={"Authorization": f"Bearer {token}"},
            timeout=10,
        )
        assert (calls.status_code, calls.json()) == (200, [])  # the engine, asked directly

        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=20) == 0
    log_text = log_path.read_text()
    assert f"SIP on udp+tcp 127.0.0.1:{sip_port}" in log_text
    assert "Callgate stopped." in log_text
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", sip_port))  # the SIP port was released


@pytest.mark.slow
def test_serve_runs_two_workers_with_a_sip_child_and_stops_on_sigterm(
    callgate: CallgateRunner, cli_env: dict[str, str], tmp_path: Path
) -> None:
    port = free_port()
    log_path = tmp_path / "serve.log"
    argv = ["--workers", "2", "--port", str(port), "--json"]
    with running_serve(argv, {**cli_env, **ANY_PORT}, log_path) as process:
        url = f"http://127.0.0.1:{port}"
        wait_healthy(url, process)
        assert process.stdout is not None
        startup = json.loads(process.stdout.readline())
        assert startup["workers"] == 2
        assert startup["login_url"] == f"{url}/login"  # the issuer follows the served port
        assert sip_options(sip_port_of(startup)) == "SIP/2.0 200 OK"
        sip_children = [pid for pid, cmd in children(process.pid) if " callgate sip " in cmd]
        assert len(sip_children) == 1

        with httpx.Client(base_url=url, timeout=5) as http:
            health = http.get("/healthz")
            assert health.json() == {"status": "ok"}
            assert health.headers["x-frame-options"] == "DENY"
            assert "server" not in health.headers
            assert http.get("/login").status_code == 200
            # a worker asks the engine in the child over the control channel (several times:
            # both workers should get a turn)
            token, demo = api_token(callgate, url)
            client_id = demo["client"]["id"]
            auth = {"Authorization": f"Bearer {token}"}
            for _ in range(4):
                calls = http.get(f"/api/ver1.0/client/{client_id}/current_calls/", headers=auth)
                assert (calls.status_code, calls.json()) == (200, []), calls.text

        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
        assert gone(sip_children[0])
    log_text = log_path.read_text()
    assert "with 2 worker(s)" in log_text
    assert "SIP on udp+tcp 127.0.0.1:" in log_text
    assert "Callgate SIP process stopped." in log_text
    assert '"GET /healthz HTTP/1.1" 200' in log_text  # access log on by default


@pytest.mark.slow
def test_serve_exits_non_zero_when_its_sip_child_dies(
    cli_env: dict[str, str], tmp_path: Path
) -> None:
    port = free_port()
    log_path = tmp_path / "serve.log"
    argv = ["--workers", "2", "--port", str(port), "--json"]
    with running_serve(argv, {**cli_env, **ANY_PORT}, log_path) as process:
        wait_healthy(f"http://127.0.0.1:{port}", process)
        (child,) = [pid for pid, cmd in children(process.pid) if " callgate sip " in cmd]
        os.kill(child, signal.SIGKILL)
        assert process.wait(timeout=30) == 1
    log_text = log_path.read_text()
    assert f"The SIP process [{child}] exited with code -9" in log_text
    assert "The SIP process died; Callgate stopped." in log_text


@pytest.mark.slow
@pytest.mark.skipif(not AVAILABLE, reason="needs Debian's baresip")
def test_a_baresip_phone_registers_with_the_demo_account_line(
    callgate: CallgateRunner,
    cli_env: dict[str, str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    sip_port = free_udp_tcp_pair()
    env = {**cli_env, "CALLGATE_SIP_PORT": str(sip_port), "CALLGATE_SIP_CONTROL_PORT": "0"}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    demo = callgate("demo", "--json")
    assert demo.code == 0, demo.err
    account = demo.json()["sip_accounts"][0]["baresip_account"]
    assert account.startswith(f"<sip:00012*101@127.0.0.1:{sip_port}>;auth_pass=")

    port = free_port()
    log_path = tmp_path / "serve.log"
    with running_serve(["--port", str(port)], env, log_path) as process:
        wait_healthy(f"http://127.0.0.1:{port}", process)

        async def register() -> str:
            phone_port, ctrl_port = free_udp_tcp_pair(), free_port()
            write_config(tmp_path / "phone", account, phone_port, ctrl_port)
            phone = Baresip(tmp_path / "phone", ctrl_port)
            try:
                await phone.start()
                return await phone.registration()
            finally:
                await phone.stop()  # before the registrar (PEERS.md trap)

        assert asyncio.run(asyncio.wait_for(register(), timeout=30)) == "REGISTER_OK"
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=20) == 0
    assert "sip register 00012*101 from 127.0.0.1:" in log_path.read_text()


@pytest.mark.slow
def test_serve_without_the_pbx_answers_503_for_call_control(
    callgate: CallgateRunner, cli_env: dict[str, str], tmp_path: Path
) -> None:
    port = free_port()
    env = {
        **cli_env,
        "CALLGATE_SIP_IN_PROCESS": "false",
        "CALLGATE_SIP_CONTROL_PORT": str(free_port()),
    }
    with running_serve(["--port", str(port), "--json"], env, tmp_path / "serve.log") as process:
        url = f"http://127.0.0.1:{port}"
        wait_healthy(url, process)
        assert process.stdout is not None
        assert json.loads(process.stdout.readline())["sip"] is None
        token, demo = api_token(callgate, url)
        client_id = demo["client"]["id"]
        calls = httpx.get(
            f"{url}/api/ver1.0/client/{client_id}/current_calls/",
            headers={"Authorization": f"Bearer {token}"},
            timeout=10,
        )
        assert calls.status_code == 503
        assert calls.json()["status"] == "pbx_unavailable"
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=20) == 0
    assert "SIP: not in this process" in (tmp_path / "serve.log").read_text()


def test_serve_on_an_http_port_in_use_exits_1_and_releases_the_sip_port(
    cli_env: dict[str, str],
) -> None:
    sip_port = free_udp_tcp_pair()
    env = {**cli_env, "CALLGATE_SIP_PORT": str(sip_port), "CALLGATE_SIP_CONTROL_PORT": "0"}
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            [CALLGATE, "serve", "--port", str(port)],
            env={**os.environ, **env},
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    assert result.returncode == 1
    assert f"Cannot serve HTTP on 127.0.0.1:{port}" in result.stderr
    assert "Traceback" not in result.stderr
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", sip_port))  # the PBX was stopped


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


@pytest.mark.slow
@pytest.mark.skipif(not AVAILABLE, reason="needs Debian's baresip")
def test_a_call_between_demo_phones_is_listed_and_hung_up_through_a_worker(
    callgate: CallgateRunner,
    cli_env: dict[str, str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The README's call, with two workers: the API reaches the engine in the child process."""
    sip_port = free_udp_tcp_pair()
    env = {**cli_env, "CALLGATE_SIP_PORT": str(sip_port), "CALLGATE_SIP_CONTROL_PORT": "0"}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    argv = ["--workers", "2", "--port", str(port)]
    with running_serve(argv, env, tmp_path / "serve.log") as process:
        wait_healthy(url, process)
        token, demo = api_token(callgate, url)
        client_id = demo["client"]["id"]
        demo_accounts = [a["baresip_account"] for a in demo["sip_accounts"]]

        async def call() -> tuple[list[dict[str, object]], int, list[dict[str, object]]]:
            phones = []
            for name, account in zip(("101", "102"), demo_accounts, strict=True):
                phone_port, ctrl_port = free_udp_tcp_pair(), free_port()
                write_config(tmp_path / name, account, phone_port, ctrl_port)
                phones.append(Baresip(tmp_path / name, ctrl_port))
            caller, callee = phones
            auth = {"Authorization": f"Bearer {token}"}
            calls_url = f"{url}/api/ver1.0/client/{client_id}/current_calls/"
            try:
                for phone in phones:
                    await phone.start()
                    assert await phone.registration() == "REGISTER_OK"
                await caller.command("dial", "102")
                await callee.wait_event("CALL_ESTABLISHED", limit=15)
                async with httpx.AsyncClient(timeout=10, headers=auth) as http:
                    during = (await http.get(calls_url)).json()
                    hung_up = await http.delete(f"{calls_url}{during[0]['call_api_id']}")
                    await caller.wait_event("CALL_CLOSED", limit=15)
                    after = (await http.get(calls_url)).json()
                return during, hung_up.status_code, after
            finally:
                for phone in phones:
                    await phone.stop()  # before the registrar (PEERS.md trap)

        during, hangup_status, after = asyncio.run(asyncio.wait_for(call(), timeout=60))
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
    assert len(during) == 1
    assert during[0]["called_number"] == "102"
    assert during[0]["state"] == "answered"
    assert hangup_status == 204
    assert after == []
