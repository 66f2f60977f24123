"""Issue 11's "http" section: ``chatmem serve`` against the older Node.js backend over HTTP.

Both answer ``POST /api/chat/session`` for a new guest (a fresh guest id per
request, ``scripts/new_guest_session.lua``), driven by the same ``wrk``
command at 1, 8 and 32 keep-alive connections, taking turns in rounds
(A B, then B A, ...), each round on emptied tables after a ``CHECKPOINT``:

- **chatmem**: ``chatmem serve`` as ``make bench`` starts it: ``--workers``
  the machine's cores, ``--pool-size 10`` split between them, the access log
  off (the older backend logged no requests either), on chatmem's benchmark
  database: one ``api.create_session`` call per request.
- **older**: ``baselines/node-backend/server.js`` (Node.js 20, express, pg,
  jsonwebtoken; installed by ``make bench`` with ``npm ci``), one process as
  that system ran, a ``pg.Pool`` of 10, on the older schema: three round
  trips per request.

Both reach PostgreSQL the same way: the URL given, which on the embedded
cluster is its Unix socket.  A design's figure is its median round (req/s;
p99 is the median of the rounds' p99s); every round is kept.  After each
round the rows are counted: a server that answered a request without
storing its session, or answered anything but 201, stops the run.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any

import psycopg

from bench import env, throughput

NODE_DIR = env.BENCH_DIR / "baselines" / "node-backend"
WRK_SCRIPT = env.BENCH_DIR / "scripts" / "new_guest_session.lua"
DESIGNS = ("chatmem", "older")
POOL_SIZE = 10  # connections to PostgreSQL, for each server in all (pg.Pool's default)
WRK_TIMEOUT_S = 5

_SUMMARY = re.compile(
    r"CHATMEM_WRK requests=(\d+) errors_status=(\d+) p50_us=(\d+) p99_us=(\d+) mean_us=([\d.]+)"
)
_RPS = re.compile(r"Requests/sec:\s+([\d.]+)")
_SOCKET_ERRORS = re.compile(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)")
_NON_2XX = re.compile(r"Non-2xx or 3xx responses: (\d+)")


class HttpBenchError(RuntimeError):
    pass


def missing() -> str | None:
    """Why this section cannot run here (None when it can)."""
    if not shutil.which("wrk"):
        return "wrk is not installed (make bench installs it: apt-get install wrk)"
    if not shutil.which("node"):
        return "Node.js is not installed (apt-get install nodejs npm)"
    if not (NODE_DIR / "node_modules" / "express").is_dir():
        return f"the baseline's packages are not installed (make bench runs npm ci in {NODE_DIR})"
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_ready(url: str, process: subprocess.Popen[str], log: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise HttpBenchError(f"the server exited ({process.returncode}): {log.read_text()[-2000:]}")
        try:
            with urllib.request.urlopen(url, timeout=2) as answer:
                if answer.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.1)
    raise HttpBenchError(f"the server did not answer {url} within {timeout:.0f} s: {log.read_text()[-2000:]}")


def _tree_cpu_seconds(root: int) -> float:
    """CPU seconds (user + system) used so far by process ``root`` and its live descendants."""
    tick = os.sysconf("SC_CLK_TCK")
    parents: dict[int, int] = {}
    used: dict[int, float] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents[int(entry.name)] = int(fields[1])
        used[int(entry.name)] = (int(fields[11]) + int(fields[12])) / tick
    tree, frontier = {root}, [root]
    while frontier:
        parent = frontier.pop()
        children = [pid for pid, ppid in parents.items() if ppid == parent and pid not in tree]
        tree.update(children)
        frontier.extend(children)
    return sum(used.get(pid, 0.0) for pid in tree)


class Server:
    """A running server: its base URL and the CPU its processes have used."""

    def __init__(self, base: str, pid: int) -> None:
        self.base = base
        self.pid = pid

    def cpu_seconds(self) -> float:
        return _tree_cpu_seconds(self.pid)


@contextmanager
def _serving(command: Callable[[int], list[str]], ready_path: str, extra_env: dict[str, str], log: Path,
             cwd: Path | None = None) -> Iterator[Server]:
    """Start one server on a free port, yield its base URL once it answers, stop it afterwards."""
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    environment = {**os.environ, **extra_env, "PORT": str(port)}
    with log.open("w") as out:
        process = subprocess.Popen(command(port), stdout=out, stderr=subprocess.STDOUT, text=True,
                                   env=environment, cwd=cwd)
    try:
        _wait_ready(base + ready_path, process, log)
        yield Server(base, process.pid)
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def chatmem_server(url: str, workers: int, log: Path) -> AbstractContextManager[Server]:
    def command(port: int) -> list[str]:
        return [sys.executable, "-m", "chatmem", "serve", "--database-url", url, "--port", str(port),
                "--workers", str(workers), "--pool-size", str(POOL_SIZE), "--no-access-log"]

    # The bench's URL may name a superuser: serve's warning about it goes to the log.
    return _serving(command, "/healthz", {}, log)


def older_server(url: str, log: Path) -> AbstractContextManager[Server]:
    node = shutil.which("node") or "node"
    return _serving(lambda _: [node, "server.js"], "/health",
                    {"DATABASE_URL": url, "PG_POOL_MAX": str(POOL_SIZE), "HOST": "127.0.0.1"},
                    log, cwd=NODE_DIR)


def run_wrk(base: str, connections: int, seconds: float) -> dict[str, Any]:
    """One wrk run: req/s and latency percentiles; refuses errors of any kind."""
    wrk = shutil.which("wrk") or "wrk"
    command = [wrk, "-t1", f"-c{connections}", f"-d{max(1, round(seconds))}s", f"--timeout={WRK_TIMEOUT_S}s",
               "-s", str(WRK_SCRIPT), base]
    done = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 60)
    output = done.stdout + done.stderr
    summary, rps = _SUMMARY.search(output), _RPS.search(output)
    if done.returncode != 0 or summary is None or rps is None:
        raise HttpBenchError(f"wrk failed ({done.returncode}): {output[-2000:]}")
    socket_errors = _SOCKET_ERRORS.search(output)
    non_2xx = _NON_2XX.search(output)
    errors = (sum(int(x) for x in socket_errors.groups()) if socket_errors else 0) + (
        int(non_2xx.group(1)) if non_2xx else 0)
    if errors or int(summary.group(2)):
        raise HttpBenchError(f"wrk saw errors against {base}: {output[-2000:]}")
    requests = int(summary.group(1))
    return {
        "connections": connections,
        "requests": requests,
        "rps": round(float(rps.group(1)), 1),
        "p50_ms": round(int(summary.group(3)) / 1000, 3),
        "p99_ms": round(int(summary.group(4)) / 1000, 3),
        "mean_ms": round(float(summary.group(5)) / 1000, 3),
    }


def _sessions(conn: psycopg.Connection[Any]) -> int:
    row = conn.execute("SELECT count(*) FROM conversation_sessions").fetchone()
    return int(row[0]) if row else 0


def _settled_sessions(conn: psycopg.Connection[Any], quiet: float = 0.3, limit: float = 15) -> int:
    """The sessions stored once the server has finished what wrk left in flight (the count
    stops moving), so that this round's count and the next round's empty table are exact."""
    deadline = time.monotonic() + limit
    count = _sessions(conn)
    while time.monotonic() < deadline:
        time.sleep(quiet)
        again = _sessions(conn)
        if again == count:
            return count
        count = again
    raise HttpBenchError(f"the server was still storing sessions {limit:.0f} s after wrk stopped")


def combine(runs: list[dict[str, Any]]) -> dict[str, Any]:
    rps = [r["rps"] for r in runs]
    return {
        "connections": runs[0]["connections"],
        "rps": round(statistics.median(rps), 1),
        "rps_rounds": rps,
        "p99_ms": round(statistics.median(r["p99_ms"] for r in runs), 3),
        "p99_ms_rounds": [r["p99_ms"] for r in runs],
        "p50_ms": round(statistics.median(r["p50_ms"] for r in runs), 3),
        "requests": sum(r["requests"] for r in runs),
        # The server's own processes (not PostgreSQL's): robust to other load on the machine.
        "server_cpu_ms_per_request": round(statistics.median(r["server_cpu_ms_per_request"] for r in runs), 3),
    }


def run(
    chatmem_url: str,
    older_url: str,
    *,
    connections: list[int],
    rounds: int,
    seconds: float,
    warmup: float,
    workers: int,
    log_dir: Path,
    on_step: Callable[[str, float], AbstractContextManager[None]],
) -> dict[str, Any]:
    """Both servers up at once (idle while the other is measured), the rounds interleaved."""
    urls = {"chatmem": chatmem_url, "older": older_url}
    log_dir.mkdir(parents=True, exist_ok=True)
    with (
        chatmem_server(chatmem_url, workers, log_dir / "chatmem-serve.log") as chatmem_server_,
        older_server(older_url, log_dir / "node-backend.log") as older_server_,
    ):
        servers = {"chatmem": chatmem_server_, "older": older_server_}
        # Warm both up alike: pools filled, statements prepared, Node's JIT.
        for design in DESIGNS:
            with on_step(f"http: warm-up, {design}", warmup + 0.5):
                run_wrk(servers[design].base, max(connections), warmup)

        def one_round(design: str, n: int) -> dict[str, Any]:
            with (
                on_step(f"http: {design}, {n} connection(s)", seconds + 1),
                psycopg.connect(urls[design], autocommit=True) as conn,
            ):
                throughput.truncate(conn)
                env.checkpoint(conn)
                cpu_before = servers[design].cpu_seconds()
                fig = run_wrk(servers[design].base, n, seconds)
                cpu = servers[design].cpu_seconds() - cpu_before
                fig["server_cpu_ms_per_request"] = round(1000 * cpu / max(1, fig["requests"]), 3)
                stored = _settled_sessions(conn)
                # wrk counts the answers it read; a request still in flight at the
                # end may have stored its session without being counted.
                if not fig["requests"] <= stored <= fig["requests"] + n:
                    raise HttpBenchError(
                        f"{design}: {fig['requests']} answers but {stored} sessions stored")
                return fig

        figures: dict[str, dict[str, Any]] = {d: {} for d in DESIGNS}
        for n in connections:
            by_design = throughput.interleaved(list(DESIGNS), rounds, lambda d, n=n: one_round(d, n))
            for design, runs in by_design.items():
                figures[design][str(n)] = combine(runs)
    return {
        "workers": workers,
        "pool_size": POOL_SIZE,
        "round_seconds": seconds,
        "rounds": rounds,
        "connections": connections,
        "database_connection": "as the URL says: the embedded cluster's Unix socket, the same for both",
        "load_tool": "wrk -t1, one thread, keep-alive, scripts/new_guest_session.lua",
        "designs": {
            "chatmem": f"chatmem serve --workers {workers} --pool-size {POOL_SIZE} --no-access-log",
            "older": f"node baselines/node-backend/server.js (one process, pg.Pool max {POOL_SIZE})",
        },
        "figures": figures,
    }
