"""OAuth benchmark (``make bench``): token issuance and an authorized API call under load.

One run: a throwaway PostgreSQL cluster, migrated, with a client, a user and a trusted app made
through the services; ``callgate serve --workers 2`` (uvloop) as a subprocess on a free loopback
port; then ``wrk`` against

  (a) ``POST /oauth/token`` with ``grant_type=client_credentials``  (tokens/s),
  (b) ``GET /api/ver1.0/user`` with the bearer token                (requests/s),
  (c) ``GET /healthz``, a bare JSON answer through the same server  (requests/s).

It prints the three rates, p50/p99 latencies, (a)/700 (django-oauth-toolkit's figure on the same
kind of machine, see docs/benchmarks.md) and (b)/(c). Goals: (a) >= 600/s and (b)/(c) >= 0.6.
Everything it starts is stopped at the end, and every step has a deadline. It is not a test.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import platform
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # for tests.support.pgcluster

from sqlalchemy.engine import make_url  # noqa: E402

from callgate.composition import build_services  # noqa: E402
from callgate.config import Settings  # noqa: E402
from callgate.migrations import upgrade  # noqa: E402
from tests.support.pgcluster import find_pg_binary, throwaway_postgres  # noqa: E402

DOT_TOKENS_PER_S = 700  # django-oauth-toolkit 3.4, 2 workers, PostgreSQL 15 (PEERS.md)
GOAL_TOKENS_PER_S = 600
GOAL_API_RATIO = 0.6
CALLGATE = str(Path(sys.executable).parent / "callgate")
START_DEADLINE_S = 30
STOP_DEADLINE_S = 20

# wrk hands the run's statistics to done(); printing them as JSON beats parsing wrk's text.
WRK_DONE = """
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'CALLGATE_RESULT {"requests":%d,"duration_us":%d,"connect":%d,"read":%d,"write":%d,'
    .. '"status":%d,"timeout":%d,"p50_us":%d,"p90_us":%d,"p99_us":%d,"max_us":%d}\\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max))
end
"""


@dataclass
class Measurement:
    name: str
    url: str
    requests: int
    seconds: float
    rate: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    errors: int
    non_2xx: int
    # CPU per request, in ms, of the server's processes, the PostgreSQL processes and wrk.
    cpu_ms_per_request: dict[str, float] = field(default_factory=dict)
    load_average: float = 0.0


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def lua_script(folder: Path, name: str, method: str, body: str, headers: dict[str, str]) -> Path:
    lines = [f"wrk.method = {json.dumps(method)}"]
    if body:
        lines.append(f"wrk.body = {json.dumps(body)}")
    lines += [f"wrk.headers[{json.dumps(k)}] = {json.dumps(v)}" for k, v in headers.items()]
    path = folder / f"{name}.lua"
    path.write_text("\n".join(lines) + "\n" + WRK_DONE)
    return path


def run_wrk(
    name: str, url: str, script: Path, args: argparse.Namespace, seconds: int
) -> Measurement:
    command = [
        "wrk", f"-t{args.threads}", f"-c{args.connections}", f"-d{seconds}s",
        "--timeout", "5s", "-s", str(script), url,
    ]  # fmt: skip
    result = subprocess.run(
        command, capture_output=True, text=True, timeout=seconds + 30, check=False
    )
    lines = [line for line in result.stdout.splitlines() if line.startswith("CALLGATE_RESULT ")]
    if result.returncode != 0 or not lines:
        raise RuntimeError(f"wrk failed ({result.returncode}):\n{result.stdout}{result.stderr}")
    raw = json.loads(lines[-1].removeprefix("CALLGATE_RESULT "))
    duration = raw["duration_us"] / 1e6
    return Measurement(
        name=name,
        url=url,
        requests=raw["requests"],
        seconds=round(duration, 2),
        rate=round(raw["requests"] / duration, 1),
        p50_ms=raw["p50_us"] / 1000,
        p90_ms=raw["p90_us"] / 1000,
        p99_ms=raw["p99_us"] / 1000,
        max_ms=raw["max_us"] / 1000,
        errors=raw["connect"] + raw["read"] + raw["write"] + raw["timeout"],
        non_2xx=raw["status"],
    )


def prepare_database(url: str, data_dir: Path) -> tuple[str, str]:
    """Migrate and create a client, its manager and a trusted app; return (app_id, secret)."""
    upgrade(url)
    services = build_services(Settings(database_url=url, data_dir=data_dir))
    try:
        client = services.identity.create_client("Bench", "00099")
        owner = services.identity.create_user("bench", "bench-password-1", client_id=client.id)
        registered = services.apps.register(owner, name="Bench", type_="trusted")
        return registered.application.app_id, registered.app_secret
    finally:
        services.database.dispose()


@contextlib.contextmanager
def callgate_server(
    url: str, data_dir: Path, workers: int, log_path: Path
) -> Iterator[tuple[str, int]]:
    """``callgate serve`` as a subprocess in its own process group; stopped on exit."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("CALLGATE_")},
        "CALLGATE_DATABASE_URL": url,
        "CALLGATE_DATA_DIR": str(data_dir),
        "CALLGATE_PUBLIC_URL": base,
        "CALLGATE_RATE_LIMIT_PER_HOUR": str(10**9),
    }
    command = [
        CALLGATE, "serve", "--workers", str(workers), "--port", str(port),
        "--no-access-log", "--log-level", "warning",
    ]  # fmt: skip
    with log_path.open("w") as log:
        process = subprocess.Popen(
            command, env=env, stdout=log, stderr=log, stdin=subprocess.DEVNULL,
            start_new_session=True,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + START_DEADLINE_S
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"callgate serve exited:\n{log_path.read_text()}")
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            if time.monotonic() > deadline:
                raise RuntimeError("callgate serve did not answer /healthz in time")
            time.sleep(0.1)
        yield base, process.pid
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=STOP_DEADLINE_S)
        # Workers are in the same process group; make sure none outlives us.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=5)


CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def process_tree(root: int) -> list[int]:
    """``root`` and all its descendants (workers, PostgreSQL backends)."""
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        with contextlib.suppress(OSError):
            todo += [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    return found


def cpu_ticks(roots: list[int]) -> dict[int, int]:
    """User + system CPU ticks of every process in the trees of ``roots``."""
    ticks: dict[int, int] = {}
    for root in roots:
        for pid in process_tree(root):
            with contextlib.suppress(OSError, ValueError, IndexError):
                # Fields after the parenthesised command name; utime and stime are 14 and 15.
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
                ticks[pid] = int(fields[11]) + int(fields[12])
    return ticks


def cpu_ms(before: dict[int, int], after: dict[int, int]) -> float:
    used = sum(t - before.get(pid, 0) for pid, t in after.items())
    return 1000 * used / CLOCK_TICKS


def postmaster_pid(url: str) -> int | None:
    """The PostgreSQL server listening on the URL's port (the throwaway cluster's)."""
    port = make_url(url).port
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            args = (entry / "cmdline").read_bytes().split(b"\0")
            if args and args[0].endswith(b"/postgres") and f"{port}".encode() in args:
                return int(entry.name)
    return None


class Profiler:
    """Samples the server's worker processes with py-spy while wrk runs (``--py-spy``).

    It writes collapsed stacks per endpoint to bench/results/ and prints the functions that
    take the most samples, inclusive (with callees) and by their own code.
    """

    def __init__(self, py_spy: str | None, server_pid: int, out_dir: Path) -> None:
        self.py_spy = py_spy
        self.server_pid = server_pid
        self.out_dir = out_dir

    def workers(self) -> list[int]:
        children = Path(f"/proc/{self.server_pid}/task/{self.server_pid}/children").read_text()
        pids = []
        for pid in children.split():
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
            if b"spawn_main" in cmdline and b"resource_tracker" not in cmdline:
                pids.append(int(pid))
        return pids or [self.server_pid]

    @contextlib.contextmanager
    def recording(self, name: str, seconds: int) -> Iterator[None]:
        if not self.py_spy:
            yield
            return
        self.out_dir.mkdir(parents=True, exist_ok=True)
        slug = name.split(")")[0].strip("(")
        pids = self.workers()
        outputs = [self.out_dir / f"profile-{slug}-{pid}.txt" for pid in pids]
        # --nonblocking: sampling must not pause the workers it measures; --gil: only samples
        # of threads holding the GIL, i.e. where Python spends CPU, not where it waits.
        options = ["--rate", "200", "--format", "raw", "--nonblocking", "--gil"]
        spies = []
        for pid, out in zip(pids, outputs, strict=True):
            command = [self.py_spy, "record", "--pid", str(pid), "--duration", str(seconds)]
            command += [*options, "--output", str(out)]
            spies.append(
                subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            )
        try:
            yield
        finally:
            for spy in spies:
                try:
                    spy.wait(timeout=seconds + 30)
                except subprocess.TimeoutExpired:
                    spy.kill()
                    spy.wait(timeout=5)
        self.summarize(name, [out for out in outputs if out.exists()])

    @staticmethod
    def summarize(name: str, outputs: list[Path], top: int = 20) -> None:
        inclusive: dict[str, int] = {}
        own: dict[str, int] = {}
        total = 0
        for output in outputs:
            for line in output.read_text().splitlines():
                stack, _, count_text = line.rpartition(" ")
                if not stack:
                    continue
                count = int(count_text)
                total += count
                frames = stack.split(";")
                for frame in set(frames):
                    inclusive[frame] = inclusive.get(frame, 0) + count
                own[frames[-1]] = own.get(frames[-1], 0) + count
        if not total:
            print(f"  profile {name}: no samples")
            return
        print(f"  profile {name}: {total} samples (holding the GIL) over {len(outputs)} worker(s)")
        # Framework frames (uvicorn, starlette, asyncio) enclose everything; the question is
        # which of Callgate's and Authlib's functions the time goes to, callees included.
        ours = {f: c for f, c in inclusive.items() if "callgate/" in f or "authlib/" in f}
        print("    Callgate and Authlib functions, inclusive of callees:")
        for frame, count in sorted(ours.items(), key=lambda kv: -kv[1])[:top]:
            print(f"      {100 * count / total:5.1f}%  {frame}")
        print("    own code (any library):")
        for frame, count in sorted(own.items(), key=lambda kv: -kv[1])[:top]:
            print(f"      {100 * count / total:5.1f}%  {frame}")


def machine() -> dict[str, Any]:
    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    postgres = subprocess.run(
        [find_pg_binary("postgres"), "--version"], capture_output=True, text=True, check=False
    ).stdout.strip()
    wrk = subprocess.run(["wrk", "--version"], capture_output=True, text=True, check=False)
    return {
        "cpu": cpu,
        "cpus": os.cpu_count(),
        "os": platform.platform(),
        "python": platform.python_version(),
        "postgresql": postgres,
        "wrk": (wrk.stdout or wrk.stderr).splitlines()[0] if (wrk.stdout or wrk.stderr) else "",
        "uvicorn": metadata.version("uvicorn"),
        "uvloop": metadata.version("uvloop"),
        "fastapi": metadata.version("fastapi"),
    }


def probe(base: str, app_id: str, secret: str) -> tuple[bool, str | None, bool]:
    """Which endpoints exist yet: (token endpoint works, a token, /api/ver1.0/user works)."""
    form = {"grant_type": "client_credentials", "client_id": app_id, "client_secret": secret}
    response = httpx.post(f"{base}/oauth/token", data=form, timeout=10)
    if response.status_code != 200:
        print(f"  /oauth/token answered {response.status_code}: {response.text[:200]}")
        return False, None, False
    token = str(response.json()["access_token"])
    user = httpx.get(
        f"{base}/api/ver1.0/user", headers={"Authorization": f"Bearer {token}"}, timeout=10
    )
    if user.status_code != 200:
        print(f"  /api/ver1.0/user answered {user.status_code}: {user.text[:200]}")
    return True, token, user.status_code == 200


def measure(
    base: str,
    app_id: str,
    secret: str,
    folder: Path,
    args: argparse.Namespace,
    profiler: Profiler,
    db_pid: int | None,
) -> list[Measurement]:
    token_ok, token, user_ok = probe(base, app_id, secret)
    targets: list[tuple[str, str, Path]] = []
    if token_ok:
        body = f"grant_type=client_credentials&client_id={app_id}&client_secret={secret}"
        form = {"Content-Type": "application/x-www-form-urlencoded"}
        script = lua_script(folder, "token", "POST", body, form)
        targets.append(("(a) POST /oauth/token", f"{base}/oauth/token", script))
    if user_ok and token:
        script = lua_script(folder, "user", "GET", "", {"Authorization": f"Bearer {token}"})
        targets.append(("(b) GET /api/ver1.0/user", f"{base}/api/ver1.0/user", script))
    script = lua_script(folder, "health", "GET", "", {})
    targets.append(("(c) GET /healthz", f"{base}/healthz", script))

    results = []
    for name, url, script in targets:
        print(f"  {name}: warm-up {args.warmup} s, then {args.duration} s ...", flush=True)
        run_wrk(name, url, script, args, args.warmup)
        roots = {"server": [profiler.server_pid], "postgres": [db_pid] if db_pid else []}
        before = {key: cpu_ticks(pids) for key, pids in roots.items()}
        wrk_before = resource.getrusage(resource.RUSAGE_CHILDREN)
        with profiler.recording(name, args.duration):
            measurement = run_wrk(name, url, script, args, args.duration)
        wrk_after = resource.getrusage(resource.RUSAGE_CHILDREN)
        requests = max(measurement.requests, 1)
        for key, pids in roots.items():
            if pids:
                used = cpu_ms(before[key], cpu_ticks(pids))
                measurement.cpu_ms_per_request[key] = round(used / requests, 3)
        if not profiler.py_spy:  # py-spy is a child too; its CPU would count as wrk's
            wrk_used = (wrk_after.ru_utime + wrk_after.ru_stime) - (
                wrk_before.ru_utime + wrk_before.ru_stime
            )
            measurement.cpu_ms_per_request["wrk"] = round(1000 * wrk_used / requests, 3)
        measurement.load_average = round(os.getloadavg()[0], 2)
        results.append(measurement)
    return results


def report(
    results: list[Measurement], info: dict[str, Any], args: argparse.Namespace
) -> dict[str, Any]:
    by_key = {m.name[:3]: m for m in results}
    summary: dict[str, Any] = {
        "when": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "command": " ".join(["python bench/oauth.py", *sys.argv[1:]]),
        "settings": {
            "database": args.database,
            "workers": args.workers,
            "wrk": f"-t{args.threads} -c{args.connections} -d{args.duration}s",
        },
        "machine": info,
        "results": [asdict(m) for m in results],
    }
    print()
    print(
        f"{'endpoint':<26}{'req/s':>9}{'p50 ms':>8}{'p99 ms':>8}{'non-2xx':>8}{'errors':>7}"
        f"  | CPU ms/req: {'server':>7}{'postgres':>9}{'wrk':>6}  load"
    )
    for m in results:
        cpu = m.cpu_ms_per_request
        print(
            f"{m.name:<26}{m.rate:>9.1f}{m.p50_ms:>8.2f}{m.p99_ms:>8.2f}{m.non_2xx:>8}{m.errors:>7}"
            f"  | {'':>11}{cpu.get('server', 0):>7.2f}{cpu.get('postgres', 0):>9.2f}"
            f"{cpu.get('wrk', 0):>6.2f}{m.load_average:>6.1f}"
        )
    if "(a)" in by_key:
        tokens = by_key["(a)"].rate
        summary["tokens_vs_dot"] = round(tokens / DOT_TOKENS_PER_S, 2)
        summary["tokens_goal_met"] = tokens >= GOAL_TOKENS_PER_S
        verdict = "met" if summary["tokens_goal_met"] else "MISSED"
        print(
            f"(a)/700 (django-oauth-toolkit) = {summary['tokens_vs_dot']:.2f}; "
            f"goal >= {GOAL_TOKENS_PER_S} tokens/s: {verdict}"
        )
    else:
        print("(a) not measured: POST /oauth/token does not issue client_credentials tokens yet")
    if "(b)" in by_key:
        ratio = by_key["(b)"].rate / by_key["(c)"].rate
        summary["api_vs_bare"] = round(ratio, 2)
        summary["api_goal_met"] = ratio >= GOAL_API_RATIO
        print(
            f"(b)/(c) = {ratio:.2f}; goal >= {GOAL_API_RATIO}: "
            f"{'met' if summary['api_goal_met'] else 'MISSED'}"
        )
    else:
        print("(b) not measured: GET /api/ver1.0/user does not answer 200 yet")
    bad = [m.name for m in results if m.non_2xx or m.errors]
    if bad:
        print(f"WARNING: errors or non-2xx answers during {', '.join(bad)}; figures are suspect")
    return summary


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=10, help="seconds per measurement")
    parser.add_argument("--warmup", type=int, default=2, help="seconds of warm-up per endpoint")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--database", choices=["postgresql", "sqlite"], default="postgresql")
    parser.add_argument(
        "--py-spy",
        metavar="PATH",
        help="profile the workers with this py-spy binary during each measurement",
    )
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        print("bench: wrk is missing; install it with `make system-deps`", file=sys.stderr)
        return 1

    info = machine()
    print(f"bench: {info['cpu']} x{info['cpus']}, Python {info['python']}, {info['postgresql']}")
    load = os.getloadavg()[0]
    info["load_average_at_start"] = round(load, 2)
    if load > 0.5:
        print(f"bench: WARNING: load average {load:.1f}; other work on this machine lowers figures")
    with tempfile.TemporaryDirectory(prefix="callgate-bench-") as tmp:
        folder = Path(tmp)
        data_dir = folder / "data"
        with contextlib.ExitStack() as stack:
            if args.database == "postgresql":
                print("bench: starting a throwaway PostgreSQL", flush=True)
                url = stack.enter_context(throwaway_postgres())
            else:
                data_dir.mkdir()
                url = f"sqlite:///{data_dir / 'callgate.sqlite3'}"
            app_id, secret = prepare_database(url, data_dir)
            print(f"bench: callgate serve --workers {args.workers}", flush=True)
            base, server_pid = stack.enter_context(
                callgate_server(url, data_dir, args.workers, folder / "serve.log")
            )
            profiler = Profiler(args.py_spy, server_pid, ROOT / "bench" / "results")
            db_pid = postmaster_pid(url) if args.database == "postgresql" else None
            results = measure(base, app_id, secret, folder, args, profiler, db_pid)
    summary = report(results, info, args)
    out_dir = ROOT / "bench" / "results"
    out_dir.mkdir(parents=True, exist_ok=True)
    out_file = out_dir / f"oauth-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out_file.write_text(json.dumps(summary, indent=2) + "\n")
    print(f"bench: results written to {out_file.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
