"""A real baresip softphone for tests: its own config folder, scripted over ctrl_tcp (PEERS.md)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
import socket
from pathlib import Path
from typing import Any

MODULES = Path("/usr/lib/baresip/modules")
AVAILABLE = shutil.which("baresip") is not None and (MODULES / "ctrl_tcp.so").exists()


def free_udp_tcp_pair() -> int:
    """A port P with P and P+1 free on UDP and TCP (baresip binds TCP/TLS on P+1 too)."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.bind(("127.0.0.1", 0))
            port = int(probe.getsockname()[1])
        if port > 65000:
            continue
        try:
            socks = []
            for p in (port, port + 1):
                for kind in (socket.SOCK_DGRAM, socket.SOCK_STREAM):
                    s = socket.socket(socket.AF_INET, kind)
                    socks.append(s)
                    s.bind(("127.0.0.1", p))
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
        return port
    raise RuntimeError("no free port pair")


def write_config(folder: Path, account_line: str, sip_port: int, ctrl_port: int) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config").write_text(
        "\n".join(
            [
                "poll_method epoll",
                f"sip_listen 127.0.0.1:{sip_port}",
                "net_interface 127.0.0.1",
                "audio_player aubridge,nil_a",
                "audio_alert aubridge,nil_a",
                "audio_source aubridge,nil_b",
                f"module_path {MODULES}",
                "module g711.so",
                "module aubridge.so",
                "module ctrl_tcp.so",
                "module_tmp uuid.so",
                "module_tmp account.so",
                "module_app menu.so",
                f"ctrl_tcp_listen 127.0.0.1:{ctrl_port}",
                "",
            ]
        )
    )
    (folder / "accounts").write_text(account_line + "\n")


class Baresip:
    """One baresip process; events from ctrl_tcp are collected in ``events``."""

    def __init__(self, folder: Path, ctrl_port: int) -> None:
        self.folder = folder
        self.ctrl_port = ctrl_port
        self.process: asyncio.subprocess.Process | None = None
        self.events: list[dict[str, Any]] = []
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def start(self, deadline_s: float = 10.0) -> None:
        self.process = await asyncio.create_subprocess_exec(
            "baresip",
            "-f",
            str(self.folder),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )
        loop = asyncio.get_running_loop()
        end = loop.time() + deadline_s
        while True:  # poll for the control socket with a deadline
            try:
                self._reader, self._writer = await asyncio.open_connection(
                    "127.0.0.1", self.ctrl_port
                )
                return
            except OSError:
                if loop.time() > end or self.process.returncode is not None:
                    raise RuntimeError("baresip's ctrl_tcp did not open") from None
                await asyncio.sleep(0.05)

    async def _read_one(self) -> dict[str, Any]:
        assert self._reader is not None
        length = int((await self._reader.readuntil(b":"))[:-1])
        body = await self._reader.readexactly(length + 1)  # the trailing comma
        return dict(json.loads(body[:-1]))

    async def wait_event(self, *types: str, limit: float = 10.0) -> dict[str, Any]:
        async def loop() -> dict[str, Any]:
            while True:
                message = await self._read_one()
                if message.get("event"):
                    self.events.append(message)
                    if message.get("type") in types:
                        return message

        return await asyncio.wait_for(loop(), limit)

    async def registration(self, limit: float = 10.0) -> str:
        """``REGISTER_OK`` or ``REGISTER_FAIL``, from an event or else by polling ``reginfo``.

        The first REGISTER can finish before ctrl_tcp is connected, and its event is then lost.
        """
        assert self._reader is not None
        loop = asyncio.get_running_loop()
        end = loop.time() + limit
        while loop.time() < end:
            await self.command("reginfo")
            while True:
                message = await asyncio.wait_for(self._read_one(), max(0.1, end - loop.time()))
                if message.get("event"):
                    self.events.append(message)
                    if message.get("type") in ("REGISTER_OK", "REGISTER_FAIL"):
                        return str(message["type"])
                elif message.get("token") == "reginfo":
                    break
            data = str(message.get("data", ""))
            if "OK" in data:
                return "REGISTER_OK"
            if "ERR" in data:
                return "REGISTER_FAIL"
            await asyncio.sleep(0.1)  # polling baresip's state, not waiting for time to pass
        raise TimeoutError("baresip did not finish registering")

    async def command(self, command: str, params: str = "") -> None:
        assert self._writer is not None
        body = json.dumps({"command": command, "params": params, "token": command}).encode()
        self._writer.write(str(len(body)).encode() + b":" + body + b",")
        await self._writer.drain()

    async def stop(self, limit: float = 5.0) -> None:
        """Quit (it un-registers first); kill after ``limit`` seconds (PEERS.md: it can hang)."""
        if self.process is None:
            return
        with contextlib.suppress(OSError, AssertionError):
            await self.command("quit")
        try:
            await asyncio.wait_for(self.process.wait(), limit)
        except TimeoutError:
            self.process.kill()
            await self.process.wait()
        if self._writer is not None:
            self._writer.close()
            with contextlib.suppress(OSError):
                await self._writer.wait_closed()
