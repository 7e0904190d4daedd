"""SIPp as a real peer in tests: one scenario from ``tests/pbx/sipp/`` run as a subprocess.

Always bounded: SIPp gets ``-m 1`` (one call) and ``-timeout``, and :meth:`SippPeer.stop` ends it
by PID (terminate, then kill) if it is still running.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import socket
from pathlib import Path

SIPP = shutil.which("sipp")
AVAILABLE = SIPP is not None
SCENARIOS = Path(__file__).parent / "sipp"


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class SippPeer:
    """``sipp -sf <scenario> -i 127.0.0.1 -p <port> -m 1 -timeout <s>s [remote] [args]``."""

    def __init__(
        self,
        scenario: str,
        folder: Path,
        *,
        port: int | None = None,
        remote: str | None = None,
        args: list[str] | None = None,
        timeout: int = 30,
    ) -> None:
        self.scenario = SCENARIOS / scenario
        self.folder = folder
        self.port = port if port is not None else free_udp_port()
        self.remote = remote
        self.args = args or []
        self.timeout = timeout
        self.process: asyncio.subprocess.Process | None = None
        self.log_path = folder / f"sipp-{self.scenario.stem}-{self.port}.log"

    async def start(self) -> None:
        assert SIPP is not None
        self.folder.mkdir(parents=True, exist_ok=True)
        command = [
            SIPP,
            "-sf",
            str(self.scenario),
            "-i",
            "127.0.0.1",
            "-p",
            str(self.port),
            "-m",
            "1",
            "-nostdin",
            "-timeout",
            f"{self.timeout}s",
            "-trace_err",
            *self.args,
        ]
        if self.remote is not None:
            command.append(self.remote)
        with self.log_path.open("wb") as log:
            self.process = await asyncio.create_subprocess_exec(
                *command,
                cwd=self.folder,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=log,
                stderr=asyncio.subprocess.STDOUT,
            )

    async def listening_tcp(self, seconds: float = 5.0) -> None:
        """Until SIPp accepts TCP connections on its port (with ``-t t1``/``-t tn``)."""
        loop = asyncio.get_running_loop()
        end = loop.time() + seconds
        while True:
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", self.port)
            except OSError:
                if loop.time() > end:
                    raise
                await asyncio.sleep(0.05)
                continue
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()
            return

    async def wait(self, seconds: float) -> int:
        """SIPp's exit status (0: the call succeeded) within ``seconds``."""
        assert self.process is not None
        return await asyncio.wait_for(self.process.wait(), seconds)

    async def stop(self) -> None:
        process = self.process
        if process is None or process.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            process.terminate()
        try:
            await asyncio.wait_for(process.wait(), 5)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            await asyncio.wait_for(process.wait(), 5)

    def output(self) -> str:
        """What SIPp printed, and its error log, for assertion messages."""
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        for errors in self.folder.glob(f"{self.scenario.stem}_*_errors.log"):
            text += "\n" + errors.read_text(errors="replace")
        return text[-4000:]
