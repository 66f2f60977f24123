"""New guest sessions per second: chatmem, the older design, and the bare-insert limit.

All are driven the same way: pgbench with a custom script each, over the
Unix socket, ``-M prepared``, the same duration (or transaction count) and
client count, each on an emptied table after a CHECKPOINT.  After every run
the rows are counted: a run whose row count differs from pgbench's
transaction count is an error, not a figure.  The Python view drives
chatmem through ``chatmem.Client`` and the older design through its psycopg
port (bench/baselines/node_port.py), with the same driver settings.

The limit is a bare insert of the same row into a copy of chatmem's table
with the same columns, indexes and CHECK constraints and no trigger
(``bench_limit.conversation_sessions``, made by :func:`setup_bare_table`);
the same insert into chatmem's own table (its foreign key's trigger; until
migration 0021 the guest cap's trigger too) is kept as a line of its own.  :func:`with_rtt` models a network between the
application and the database: a pgbench ``\\sleep`` before every round trip.
"""

from __future__ import annotations

import json
import math
import re
import statistics
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg
from psycopg_pool import ConnectionPool

from bench.baselines import node_port
from bench.env import BENCH_DIR

SCRIPTS = {
    "chatmem": BENCH_DIR / "scripts" / "chatmem_new_guest_session.pgbench",
    "baseline": BENCH_DIR / "baselines" / "node_new_guest_session.pgbench",
    "bare": BENCH_DIR / "scripts" / "bare_insert.pgbench",
    "table_insert": BENCH_DIR / "scripts" / "table_insert.pgbench",
}
# 1 chatmem, 2 the older design, 3 the limit (a bare insert, no trigger),
# 4 the same insert into chatmem's own table (its guest-cap trigger included).
DESIGNS = ("chatmem", "baseline", "bare", "table_insert")
# Where each design stores its sessions (in its own database).
TABLES = {"bare": "bench_limit.conversation_sessions"}
BARE_TABLE = TABLES["bare"]
# What the older system's createSession stored for every new session.
METADATA = {"project": "stripe_support", "context": "customer_support"}
GUEST_PREFIX = "b6b8561f-8fcb-4000-892a-"  # guest ids are UUIDs: this prefix + 12 digits


class BenchError(RuntimeError):
    """The benchmark itself went wrong: its figures would mean nothing."""


def setup_bare_table(conn: psycopg.Connection[Any]) -> None:
    """The limit's table: chatmem's columns, defaults, CHECK constraints and indexes (and
    the statistics object on the guest id), and nothing that fires on an insert: no trigger,
    and so no foreign key either (PostgreSQL checks those with triggers).  Made after the
    migrations, so it follows the schema being measured."""
    conn.execute("CREATE SCHEMA IF NOT EXISTS bench_limit")
    conn.execute(
        f"CREATE TABLE {BARE_TABLE} (LIKE public.conversation_sessions INCLUDING ALL)"
    )
    row = conn.execute(
        "SELECT count(*) FROM pg_trigger WHERE tgrelid = %s::regclass", [BARE_TABLE]
    ).fetchone()
    if row is None or row[0] != 0:
        raise BenchError(f"{BARE_TABLE} has triggers: it would not measure a bare insert")


def truncate(conn: psycopg.Connection[Any]) -> None:
    conn.execute("TRUNCATE conversation_sessions CASCADE")
    if conn.execute("SELECT to_regclass(%s) IS NOT NULL", [BARE_TABLE]).fetchone() == (True,):
        conn.execute(f"TRUNCATE {BARE_TABLE}")


def session_prefix() -> str:
    return f"session_{int(time.time() * 1000)}_"


def guest_id(run: int, sid: int) -> str:
    """The guest id the pgbench scripts make for session number ``sid`` (3 sessions per guest)."""
    return f"{GUEST_PREFIX}{run * 10_000_000_000 + sid // 3:012d}"


def verify_rows(
    conn: psycopg.Connection[Any], prefix: str, expected: int, table: str = "conversation_sessions"
) -> None:
    """Every transaction made exactly one guest session, stored as its design stores it."""
    row = conn.execute(
        f"""SELECT count(*),
                  count(*) FILTER (WHERE user_id IS NULL
                                     AND metadata->>'anonymousUserId' LIKE %s
                                     AND metadata->>'project' = 'stripe_support')
             FROM {table} WHERE session_id LIKE %s""",
        [GUEST_PREFIX + "%", prefix + "%"],
    ).fetchone()
    assert row is not None
    if row[0] != expected or row[1] != expected:
        raise BenchError(
            f"expected {expected} new guest sessions with prefix {prefix}, found {row[0]} "
            f"({row[1]} stored as guest sessions)"
        )


_PATTERNS = {
    "transactions": re.compile(r"number of transactions actually processed: (\d+)"),
    "failed": re.compile(r"number of failed transactions: (\d+)"),
    "latency_ms": re.compile(r"latency average = ([\d.]+) ms"),
    "latency_stddev_ms": re.compile(r"latency stddev = ([\d.]+) ms"),
    "tps": re.compile(r"tps = ([\d.]+) \(without initial connection time\)"),
}


def parse_pgbench(output: str) -> dict[str, float]:
    figures: dict[str, float] = {}
    for key, pattern in _PATTERNS.items():
        match = pattern.search(output)
        if match:
            figures[key] = float(match.group(1))
    for key in ("transactions", "tps", "latency_ms"):
        if key not in figures:
            raise BenchError(f"pgbench printed no {key}:\n{output}")
    return figures


def _command_starts(lines: list[str]) -> list[int]:
    """Indexes of the lines where a SQL command of a pgbench script starts (not a comment,
    not a meta-command such as \\set; a command ends with the line ending in ';')."""
    starts: list[int] = []
    in_sql = False
    for number, line in enumerate(lines):
        text = line.strip()
        if not in_sql and text and not text.startswith(("--", "\\")):
            starts.append(number)
            in_sql = True
        if in_sql and text.endswith(";"):
            in_sql = False
    return starts


def round_trips(script: Path) -> int:
    """SQL commands per transaction of a pgbench script: with ``-M prepared``, each is one
    round trip (one Bind/Execute/Sync)."""
    return len(_command_starts(script.read_text().splitlines()))


def with_rtt(script: Path, rtt_us: int, folder: Path) -> Path:
    """A copy of ``script`` in ``folder`` with ``\\sleep <rtt_us> us`` before every SQL command.

    One sleep per round trip models the network between an application on
    another host and the database: the client waits, the server is idle, as
    it would be.  The older design pays it three times per new session,
    chatmem once.
    """
    lines = script.read_text().splitlines()
    starts = set(_command_starts(lines))
    out: list[str] = []
    for number, line in enumerate(lines):
        if number in starts:
            out.append(f"\\sleep {int(rtt_us)} us")
        out.append(line)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{script.stem}.rtt{int(rtt_us)}us.pgbench"
    path.write_text("\n".join(out) + "\n")
    return path


def run_pgbench(
    pgbench: str,
    url: str,
    script: Path,
    *,
    clients: int,
    run: int,
    prefix: str,
    seconds: int | None = None,
    transactions: int | None = None,
    protocol: str = "prepared",
    jobs: int | None = None,
) -> dict[str, Any]:
    """One pgbench run of ``script``; returns its figures (tps, latency, counts)."""
    if not 0 <= run < 100:
        raise BenchError("run numbers are 0-99: the scripts keep guest ids within 12 digits")
    cmd = [
        pgbench,
        "--no-vacuum",
        f"--protocol={protocol}",
        f"--client={clients}",
        f"--jobs={jobs or clients}",
        f"--file={script}",
        "--define=n=0",
        f"--define=run={run}",
        f"--define=sprefix={prefix}",
        f"--define=gprefix={GUEST_PREFIX}",
        f"--define=meta={json.dumps(METADATA)}",
    ]
    cmd += [f"--time={seconds}"] if seconds else [f"--transactions={transactions}"]
    cmd.append(url)
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise BenchError(
            f"pgbench failed ({proc.returncode}): {' '.join(cmd)}\n{proc.stdout}\n{proc.stderr}"
        )
    figures = parse_pgbench(proc.stdout)
    if figures.get("failed", 0):
        raise BenchError(f"pgbench reported failed transactions:\n{proc.stdout}\n{proc.stderr}")
    return {
        "clients": clients,
        "protocol": protocol,
        "tps": round(figures["tps"], 1),
        "latency_ms": figures["latency_ms"],
        "latency_stddev_ms": figures.get("latency_stddev_ms"),
        "transactions": int(figures["transactions"]),
        "duration_s": seconds,
    }


# -- the Python view ------------------------------------------------------------


def _chatmem_caller(
    url: str, clients: int
) -> tuple[Callable[[str, str], object], Callable[[], None], str]:
    """create_or_get_session through chatmem.Client (a plain psycopg call without it)."""
    try:
        from chatmem import Client
    except ImportError:
        pool: ConnectionPool[psycopg.Connection[Any]] = ConnectionPool(
            url, min_size=clients, max_size=clients, kwargs={"autocommit": True}, open=True
        )
        metadata = json.dumps(METADATA)

        def call(session_id: str, guest: str) -> object:
            with pool.connection() as conn:
                return conn.execute(
                    "SELECT * FROM api.create_or_get_session(%s, %s, %s)",
                    [session_id, guest, metadata],
                ).fetchone()

        return (
            call,
            pool.close,
            "psycopg: SELECT * FROM api.create_or_get_session(...) (chatmem.Client missing)",
        )

    client = Client(url, min_size=clients, max_size=clients)

    def call_client(session_id: str, guest: str) -> object:
        return client.create_or_get_session(session_id, user_id=guest, metadata=METADATA)

    return call_client, client.close, "chatmem.Client.create_or_get_session"


def _baseline_caller(
    url: str, clients: int
) -> tuple[Callable[[str, str], object], Callable[[], None], str]:
    pool: ConnectionPool[psycopg.Connection[Any]] = ConnectionPool(
        url, min_size=clients, max_size=clients, kwargs={"autocommit": True}, open=True
    )

    def call(session_id: str, guest: str) -> object:
        return node_port.create_or_get_session(pool, session_id, guest, METADATA)

    return call, pool.close, "bench.baselines.node_port.create_or_get_session (psycopg_pool)"


def run_python(
    design: str,
    url: str,
    *,
    clients: int,
    run: int,
    prefix: str,
    seconds: float | None = None,
    calls: int | None = None,
) -> dict[str, Any]:
    """Call ``design``'s create-or-get from ``clients`` threads, ``seconds`` or ``calls`` each."""
    maker = _chatmem_caller if design == "chatmem" else _baseline_caller
    call, close, driver = maker(url, clients)
    latencies: list[list[float]] = [[] for _ in range(clients)]
    errors: list[BaseException] = []
    start_gate = threading.Barrier(clients + 1)
    deadline = [0.0]

    def worker(client_id: int) -> None:
        own = latencies[client_id]
        n = 0
        start_gate.wait()
        try:
            while (calls is None and time.perf_counter() < deadline[0]) or (
                calls is not None and n < calls
            ):
                n += 1
                sid = client_id * 1_000_000_000 + n
                t0 = time.perf_counter()
                call(f"{prefix}{sid}", guest_id(run, sid))
                own.append(time.perf_counter() - t0)
        except BaseException as exc:  # reported below, after the other threads stop
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    try:
        deadline[0] = time.perf_counter() + (seconds or 0)
        began = time.perf_counter()
        start_gate.wait()
        for t in threads:
            t.join()
        elapsed = time.perf_counter() - began
    finally:
        close()
    if errors:
        raise BenchError(f"python {design} run failed: {errors[0]!r}") from errors[0]
    flat = sorted(x for own in latencies for x in own)
    return {
        "clients": clients,
        "driver": driver,
        "calls_per_s": round(len(flat) / elapsed, 1),
        "calls": len(flat),
        "duration_s": round(elapsed, 2),
        "samples": flat,
    }


# -- rounds -------------------------------------------------------------------


def interleaved(
    designs: list[str], rounds: int, one_run: Callable[[str], dict[str, Any]]
) -> dict[str, list[dict[str, Any]]]:
    """Run every design ``rounds`` times, taking turns, the order rotated each round.

    On a shared machine the load drifts; taking turns in short rounds spreads
    that drift over all designs instead of charging it to whichever ran last.
    """
    out: dict[str, list[dict[str, Any]]] = {d: [] for d in designs}
    for r in range(rounds):
        shift = r % len(designs)
        for design in designs[shift:] + designs[:shift]:
            out[design].append(one_run(design))
    return out


def combine_pgbench(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """One figure from a design's rounds: the median round, and every round kept."""
    tps = [r["tps"] for r in runs]
    return {
        "clients": runs[0]["clients"],
        "protocol": runs[0]["protocol"],
        "tps": round(statistics.median(tps), 1),
        "tps_rounds": tps,
        "latency_ms": round(statistics.median(r["latency_ms"] for r in runs), 4),
        "transactions": sum(r["transactions"] for r in runs),
        "rounds": len(runs),
        "duration_s": sum(r["duration_s"] for r in runs) if runs[0]["duration_s"] else None,
    }


def combine_python(runs: list[dict[str, Any]]) -> dict[str, Any]:
    rates = [r["calls_per_s"] for r in runs]
    flat = sorted(x for r in runs for x in r["samples"])
    return {
        "clients": runs[0]["clients"],
        "driver": runs[0]["driver"],
        "calls_per_s": round(statistics.median(rates), 1),
        "calls_per_s_rounds": rates,
        "calls": len(flat),
        "latency_median_ms": round(statistics.median(flat) * 1000, 3),
        "latency_p95_ms": round(percentile(flat, 95) * 1000, 3),
        "rounds": len(runs),
        "duration_s": round(sum(r["duration_s"] for r in runs), 2),
    }


def percentile(sorted_values: list[float], pct: float) -> float:
    """Nearest-rank percentile of an already sorted list."""
    if not sorted_values:
        return float("nan")
    rank = max(1, math.ceil(pct / 100 * len(sorted_values)))
    return sorted_values[min(rank, len(sorted_values)) - 1]
