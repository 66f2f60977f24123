"""Claim latency as the table grows: chatmem's claim against the older design's UPDATE.

Both databases get the same rows: 3 sessions per guest, spread through the
table (a guest's sessions were opened at different times, so they sit on
different heap pages), and about 1% of the guests turned into registered
users who own their 3 sessions.  The table grows in place (10k, then 100k,
then 1M rows by default) and is vacuumed and analyzed after each step, as
autovacuum would leave it.

Each timed call claims a different guest with exactly 3 unowned sessions,
inside a transaction that is rolled back, so the table stays the same.
chatmem's claim is called as registration calls it,
``chatmem_internal.claim_guest_sessions(user, guest, 'register')``; the
older design's is its registration's UPDATE (bench/baselines/node_port.py).
Each call must claim exactly 3 sessions, or the run stops.
"""

from __future__ import annotations

import random
import statistics
import time
from collections.abc import Callable
from typing import Any

import psycopg

from bench.baselines import node_port
from bench.throughput import BenchError, percentile

# The user every measured claim gives the sessions to (guest 0 is a user's).
CLAIMING_USER_SQL = "SELECT md5('u0')::uuid::text"
FAKE_HASH = "$2a$10$abcdefghijklmnopqrstuuWZmZ0nD5xIbkqyPn5Jr5yq5Lkk4oW9u"

# Rows [start, stop) of a table that grows in steps.  Within a step of
# ``size`` rows, guest number first_guest + (i - start) % guests owns row i,
# so each guest has 3 rows a third of the step apart.
POPULATE_USERS = """
INSERT INTO users (id, name, email, password_hash)
SELECT md5('u' || g)::uuid, 'Bench user ' || g, 'bench-user-' || g || '@example.com', %(hash)s
  FROM generate_series(%(first_guest)s::bigint,
                       %(first_guest)s::bigint + %(guests)s::bigint - 1) AS g
 WHERE g %% 100 = 0
"""
POPULATE_SESSIONS = """
INSERT INTO conversation_sessions (session_id, user_id, metadata, created_at, updated_at)
SELECT 'session_' || (1700000000000 + i * 5000) || '_' || substr(md5(i::text), 1, 9),
       CASE WHEN g %% 100 = 0 THEN md5('u' || g)::uuid END,
       CASE WHEN g %% 100 = 0
            THEN jsonb_build_object('project', 'stripe_support', 'context', 'customer_support')
            ELSE jsonb_build_object('project', 'stripe_support', 'context', 'customer_support',
                                    'anonymousUserId', md5('g' || g)::uuid::text)
       END,
       timestamp '2024-01-01' + i * interval '5 seconds',
       timestamp '2024-01-01' + i * interval '5 seconds'
  FROM generate_series(%(start)s::bigint, %(stop)s::bigint - 1) AS i,
       LATERAL (SELECT %(first_guest)s::bigint
                       + (i - %(start)s::bigint) %% %(guests)s::bigint) AS x(g)
"""

CHATMEM_CLAIM = "SELECT chatmem_internal.claim_guest_sessions(%s, %s, 'register')"


def grow(conn: psycopg.Connection[Any], start: int, stop: int, first_guest: int) -> int:
    """Add rows [start, stop) with guests numbered from ``first_guest``; returns the guest count."""
    guests = -(-(stop - start) // 3)
    params = {
        "start": start,
        "stop": stop,
        "first_guest": first_guest,
        "guests": guests,
        "hash": FAKE_HASH,
    }
    with conn.transaction():
        # A bulk load, as a restore would do it: no triggers (the guest
        # session cap would refuse 3 sessions of one guest within its hour
        # window otherwise); the users are inserted first, so no foreign key
        # is left dangling.
        conn.execute("SET LOCAL session_replication_role = replica")
        conn.execute(POPULATE_USERS, params)
        conn.execute(POPULATE_SESSIONS, params)
    conn.execute("VACUUM ANALYZE users")
    conn.execute("VACUUM ANALYZE conversation_sessions")
    return guests


def full_guests(start: int, stop: int, first_guest: int) -> list[str]:
    """Numbers of the step's guests that have exactly 3 sessions and no account."""
    guests = -(-(stop - start) // 3)
    # Guest k (0-based in the step) owns rows start+k, start+k+guests, start+k+2*guests.
    return [
        str(first_guest + k)
        for k in range(guests)
        if start + k + 2 * guests < stop and (first_guest + k) % 100 != 0
    ]


def to_uuids(conn: psycopg.Connection[Any], numbers: list[str]) -> list[str]:
    """Guest numbers to the guest ids (UUID texts) the population SQL made of them."""
    rows = conn.execute(
        (
            "SELECT md5('g' || n)::uuid::text"
            "  FROM unnest(%s::bigint[]) WITH ORDINALITY AS t(n, o) ORDER BY o"
        ),
        [numbers],
    ).fetchall()
    return [r[0] for r in rows]


def time_claims(
    conn: psycopg.Connection[Any],
    claim: Callable[[psycopg.Connection[Any], str, str], int],
    user_id: str,
    guests: list[str],
    *,
    reps: int,
    max_seconds: float,
    warmup: int = 3,
) -> list[float]:
    """Seconds per claim, each of a new guest, rolled back; stops early past ``max_seconds``."""
    samples: list[float] = []
    began = time.monotonic()
    for index, guest in enumerate(guests[: reps + warmup]):
        with conn.transaction(force_rollback=True):
            t0 = time.perf_counter()
            claimed = claim(conn, user_id, guest)
            elapsed = time.perf_counter() - t0
        if claimed != 3:
            raise BenchError(f"claim of guest {guest} took {claimed} sessions, expected 3")
        if index >= warmup:
            samples.append(elapsed)
            if time.monotonic() - began > max_seconds and len(samples) >= 5:
                break
    return samples


def chatmem_claim(conn: psycopg.Connection[Any], user_id: str, guest: str) -> int:
    row = conn.execute(CHATMEM_CLAIM, [user_id, guest]).fetchone()
    return int(row[0]) if row else -1


def baseline_claim(conn: psycopg.Connection[Any], user_id: str, guest: str) -> int:
    return node_port.claim_guest_sessions(conn, user_id, guest)


def explain_claim(
    url: str, claim: Callable[[psycopg.Connection[Any], str, str], int], user_id: str, guest: str
) -> list[str]:
    """The plans of the claim's statements (nested ones too), as auto_explain reports them."""
    plans: list[str] = []
    with psycopg.connect(url, autocommit=True) as conn:
        conn.add_notice_handler(lambda diag: plans.append(diag.message_primary or ""))
        for setting in (
            "LOAD 'auto_explain'",
            "SET auto_explain.log_min_duration = 0",
            "SET auto_explain.log_analyze = on",
            "SET auto_explain.log_buffers = on",
            "SET auto_explain.log_nested_statements = on",
            "SET auto_explain.log_level = notice",
        ):
            conn.execute(setting)
        with conn.transaction(force_rollback=True):
            claim(conn, user_id, guest)
    return [p for p in plans if "conversation_sessions" in p]


def summarize(samples: list[float]) -> dict[str, Any]:
    ordered = sorted(samples)
    return {
        "median_ms": round(statistics.median(ordered) * 1000, 4),
        "p95_ms": round(percentile(ordered, 95) * 1000, 4),
        "min_ms": round(ordered[0] * 1000, 4),
        "samples": len(ordered),
    }


def plan_summary(plans: list[str]) -> str:
    """The scan nodes of the claim's UPDATE plan, e.g. 'Index Scan using ..._guest_idx'."""
    for plan in plans:
        if (
            "Update on conversation_sessions" in plan
            or "Update on public.conversation_sessions" in plan
        ):
            scans = [
                line.strip().split("  (")[0].lstrip("-> ").strip()
                for line in plan.splitlines()
                if "Scan" in line and "conversation_sessions" in line
            ]
            return "; ".join(scans)
    return "?"


def run(
    chatmem_url: str,
    baseline_url: str,
    sizes: list[int],
    *,
    reps: int,
    baseline_reps: int,
    max_seconds: float,
    on_step: Callable[[str, float], Any],
    seed: int = 6,
) -> dict[str, Any]:
    """Grow both tables through ``sizes`` and time both claims at each size."""
    rng = random.Random(seed)
    results: dict[str, Any] = {
        "chatmem": {},
        "baseline": {},
        "plans": {"chatmem": {}, "baseline": {}},
    }
    with (
        psycopg.connect(chatmem_url, autocommit=True) as cconn,
        psycopg.connect(baseline_url, autocommit=True) as bconn,
    ):
        for conn in (cconn, bconn):
            conn.execute("TRUNCATE conversation_sessions CASCADE")
            conn.execute("TRUNCATE users CASCADE")
        user_row = cconn.execute(CLAIMING_USER_SQL).fetchone()
        assert user_row is not None
        user_id = str(user_row[0])
        start, first_guest = 0, 0
        candidates: list[str] = []
        for size in sorted(sizes):
            with on_step(
                f"claim: growing both tables to {size:,} sessions", populate_seconds(size - start)
            ):
                for conn in (cconn, bconn):
                    grow(conn, start, size, first_guest)
                candidates += full_guests(start, size, first_guest)
                first_guest += -(-(size - start) // 3)
                start = size
            need = max(reps, baseline_reps) + 3
            picked = to_uuids(cconn, rng.sample(candidates, min(need, len(candidates))))
            if len(picked) < 8:
                raise BenchError(f"too few guests to claim at {size} sessions")
            with on_step(f"claim: chatmem at {size:,}", reps * 0.002 + 1):
                samples = time_claims(
                    cconn, chatmem_claim, user_id, picked, reps=reps, max_seconds=max_seconds
                )
                results["chatmem"][str(size)] = summarize(samples)
                results["plans"]["chatmem"][str(size)] = plan_summary(
                    explain_claim(chatmem_url, chatmem_claim, user_id, picked[-1])
                )
            with on_step(
                f"claim: older design at {size:,}",
                min(baseline_reps * size * 4e-7, max_seconds) + 1,
            ):
                samples = time_claims(
                    bconn,
                    baseline_claim,
                    user_id,
                    picked,
                    reps=baseline_reps,
                    max_seconds=max_seconds,
                )
                results["baseline"][str(size)] = summarize(samples)
                results["plans"]["baseline"][str(size)] = plan_summary(
                    explain_claim(baseline_url, baseline_claim, user_id, picked[-1])
                )
            for design in ("chatmem", "baseline"):
                results[design][str(size)]["table_rows"] = size
    return results


def populate_seconds(rows: int) -> float:
    return rows * 4e-5 + 0.5
