"""The upgrade of a large legacy database, measured while the older backend keeps working.

A writer inserts a message every 10 ms, as the older backend does when a
visitor chats, and a reader looks sessions up every 10 ms, as it does on
every request.  Both run on connections of their own while ``chatmem
migrate`` upgrades the database.  A call that waits on a lock the upgrade
holds shows as a long call: per table, the longest call and the total time
spent in calls longer than ``STALL`` are the upgrade's stalls.  Afterwards
every row must still be there, and every legacy timestamp must have been read
in the server's time zone, whatever the migrating session's TimeZone.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import psycopg

from bench import legacy_data

# A call slower than this waited on a lock (a normal call takes about a millisecond).
STALL = 0.05
PERIOD = 0.010


@dataclass
class Probe:
    """One kind of call, made every PERIOD seconds on its own connection, timed."""

    name: str
    table: str
    statement: str
    params: Callable[[random.Random], list[Any]]
    latencies: list[float] = field(default_factory=list)
    started: list[float] = field(default_factory=list)
    # When this probe's backend was seen waiting for a lock (sampled every few ms): the
    # calls that were blocked, told apart from calls merely slowed by a busy machine.
    # Each sample is the interval in which pg_stat_activity was read.
    seen_waiting: list[tuple[float, float]] = field(default_factory=list)

    def blocked_calls(self) -> list[float]:
        """The durations of the calls during which the backend was seen waiting for a lock."""
        seen = sorted(self.seen_waiting)
        blocked = []
        i = 0
        for start, took in sorted(zip(self.started, self.latencies, strict=True)):
            while i < len(seen) and seen[i][1] < start:
                i += 1
            if i < len(seen) and seen[i][0] <= start + took:
                blocked.append(took)
        return blocked
    errors: list[str] = field(default_factory=list)

    def run(self, url: str, stop: threading.Event, ready: threading.Barrier) -> None:
        rng = random.Random(self.name)
        # Unnamed statements, as the older backend's driver (node-postgres) sends them.
        with psycopg.connect(url, autocommit=True, prepare_threshold=None,
                             application_name=f"chatmem-probe-{self.name}") as conn:
            ready.wait()
            while not stop.is_set():
                start = time.perf_counter()
                try:
                    conn.execute(self.statement, self.params(rng))
                except psycopg.Error as exc:
                    self.errors.append(f"{exc.sqlstate}: {exc.diag.message_primary}")
                elapsed = time.perf_counter() - start
                self.latencies.append(elapsed)
                self.started.append(start)
                time.sleep(max(0.0, PERIOD - elapsed))

    def summary(self, origin: float) -> dict[str, Any]:
        slow = [t for t in self.latencies if t > STALL]
        stalls = [(round(s - origin, 2), round(t, 3)) for s, t in zip(self.started, self.latencies, strict=True)
                  if t > STALL]
        # The ten longest, in the order they happened.
        longest = sorted(sorted(stalls, key=lambda st: -st[1])[:10])
        ordered = sorted(self.latencies) or [0.0]
        return {
            "table": self.table, "calls": len(self.latencies), "errors": len(self.errors),
            "first_errors": self.errors[:3], "longest_s": round(max(ordered), 3),
            "stalled_total_s": round(sum(slow), 3), "median_ms": round(ordered[len(ordered) // 2] * 1000, 2),
            "lock_wait_s": round(sum(self.blocked_calls()), 3),
            # (seconds after the upgrade started, how long): where to look in its progress
            # (the run's "steps" carry the same clock).
            "stalls": longest,
        }


def sample_lock_waits(url: str, running: list[Probe], stop: threading.Event) -> None:
    """Every few milliseconds, note which probes' backends wait for a lock."""
    by_name = {f"chatmem-probe-{p.name}": p for p in running}
    with psycopg.connect(url, autocommit=True) as conn:
        while not stop.is_set():
            asked = time.perf_counter()
            waiting = conn.execute("SELECT application_name FROM pg_stat_activity"
                                   " WHERE wait_event_type = 'Lock' AND application_name LIKE 'chatmem-probe-%'"
                                   ).fetchall()
            answered = time.perf_counter()
            for (name,) in waiting:
                if name in by_name:
                    by_name[name].seen_waiting.append((asked, answered))
            time.sleep(0.005)


def probes(size: legacy_data.LegacySize) -> list[Probe]:
    def some_session(rng: random.Random) -> list[Any]:
        return [legacy_data.session_id(rng.randint(1, size.sessions))]

    return [
        Probe("writer", "conversation_messages",
              "INSERT INTO conversation_messages (session_id, role, content) VALUES (%s, 'user', 'still here')",
              some_session),
        Probe("reader", "conversation_sessions",
              "SELECT session_id, user_id, metadata, created_at FROM conversation_sessions WHERE session_id = %s",
              some_session),
    ]


def measure(url: str, size: legacy_data.LegacySize, upgrade: Callable[[], object]) -> dict[str, Any]:
    """Run ``upgrade`` while the probes run; their figures, and how long the upgrade took."""
    running = probes(size)
    stop = threading.Event()
    ready = threading.Barrier(len(running) + 1)
    threads = [threading.Thread(target=p.run, args=(url, stop, ready)) for p in running]
    threads.append(threading.Thread(target=sample_lock_waits, args=(url, running, stop)))
    for t in threads:
        t.start()
    ready.wait()
    time.sleep(0.5)  # the probes' normal pace, before the upgrade starts
    start = time.perf_counter()
    try:
        upgrade()
    finally:
        took = time.perf_counter() - start
        time.sleep(0.5)
        stop.set()
        for t in threads:
            t.join()
    return {"upgrade_s": round(took, 2), "probes": {p.name: p.summary(start) for p in running}}


def legacy_timestamps(url: str, sample: int = 1000) -> list[tuple[str, str]]:
    """(session_id, created_at as text) of a sample of sessions, read before the upgrade."""
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT session_id, created_at::text FROM conversation_sessions ORDER BY session_id LIMIT %s",
            [sample]).fetchall()
    return [(str(r[0]), str(r[1])) for r in rows]


def misread_timestamps(url: str, before: list[tuple[str, str]], server_zone: str) -> int:
    """How many of ``before`` no longer name the same instant, read in ``server_zone``."""
    with psycopg.connect(url) as conn:
        row = conn.execute(
            """SELECT count(*) FROM unnest(%s::text[], %s::text[]) AS b(session_id, legacy)
                 JOIN conversation_sessions AS s USING (session_id)
                WHERE s.created_at IS DISTINCT FROM (b.legacy::timestamp AT TIME ZONE %s)""",
            [[b[0] for b in before], [b[1] for b in before], server_zone]).fetchone()
    return int(row[0]) if row else len(before)


def run(server_url: str, size: legacy_data.LegacySize, migrating_time_zone: str = "Europe/Berlin",
        progress: Callable[[str], None] | None = None,
        database: str = "chatmem_bench_upgrade") -> dict[str, Any]:
    """Generate a legacy database of ``size`` on the server, upgrade it with ``chatmem
    migrate`` from a session in ``migrating_time_zone`` while the probes run, and check the
    result.  The database (``database``) is dropped afterwards."""
    import os

    from bench import env
    from chatmem import migrate

    url = env.recreate_database(server_url, database)
    try:
        started = time.perf_counter()
        legacy_data.create(url, size)
        generated_s = time.perf_counter() - started
        with psycopg.connect(url) as conn:
            zone_row = conn.execute("SHOW TimeZone").fetchone()
            size_row = conn.execute("SELECT pg_database_size(current_database())").fetchone()
            counts_before = conn.execute(COUNTS).fetchone()
        before = legacy_timestamps(url)
        # Each line migrate reports (batches aside), on the stalls' clock: which step stalled.
        steps: list[tuple[float, str]] = []
        began = [time.perf_counter()]

        def report(line: str) -> None:
            if not line.endswith(" rows"):
                steps.append((time.perf_counter(), line))
            if progress:
                progress(line)

        def upgrade() -> None:
            began[0] = time.perf_counter()
            migrate.migrate(url, progress=report)

        saved = os.environ.get("PGTZ")
        os.environ["PGTZ"] = migrating_time_zone
        try:
            measured = measure(url, size, upgrade)
        finally:
            if saved is None:
                os.environ.pop("PGTZ", None)
            else:
                os.environ["PGTZ"] = saved
        server_zone = str(zone_row[0]) if zone_row else "UTC"
        with psycopg.connect(url) as conn:
            counts_after = conn.execute(COUNTS).fetchone()
        writes = measured["probes"]["writer"]["calls"] - measured["probes"]["writer"]["errors"]
        expected = None if counts_before is None else (counts_before[0], counts_before[1] + writes, counts_before[2])
        return {
            **measured,
            "size": {"sessions": size.sessions, "messages": size.messages, "qa_pairs": size.qa_pairs,
                     "database_mb": round((size_row[0] if size_row else 0) / 2**20)},
            "generated_s": round(generated_s, 1),
            "server_time_zone": server_zone, "migrating_time_zone": migrating_time_zone,
            "rows_lost": None if expected is None or counts_after is None
            else sum(e - a for e, a in zip(expected, counts_after, strict=True)),
            "timestamps_misread": misread_timestamps(url, before, server_zone),
            "steps": [(round(t - began[0], 2), line) for t, line in steps],
        }
    finally:
        env.drop_database(server_url, database)


COUNTS = """SELECT (SELECT count(*) FROM conversation_sessions), (SELECT count(*) FROM conversation_messages),
                   (SELECT count(*) FROM qa_pairs)"""
