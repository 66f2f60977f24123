"""One page of ``api.list_conversations`` for a user with few sessions and for one with many.

Issue 12's promise: every page costs the same, whatever the number of
sessions (one index range per page, no sort).  Each size gets a user of its
own in the same table (by default one with 100 sessions and one with 10,000),
each session with two messages (the page shows a count and the newest one).
The rows are bulk loaded and the table vacuumed and analyzed, as autovacuum
would leave it.

Timed on one autocommit connection, the users taking turns: the first page
(50 rows, as a front end asks) and a page from the middle of the list (the
cursor of the row halfway down), each call fetched whole and checked to
return 50 rows.  The target: a page at the largest size within 2x of a page
at the smallest.
"""

from __future__ import annotations

import statistics
import time
from datetime import datetime
from typing import Any

import psycopg

from bench.throughput import BenchError, percentile

PAGE = 50
FAKE_HASH = "$2a$10$abcdefghijklmnopqrstuuWZmZ0nD5xIbkqyPn5Jr5yq5Lkk4oW9u"
TARGET_RATIO = 2.0

USER = """
INSERT INTO users (id, name, email, password_hash)
VALUES (md5('conversations-' || %(size)s)::uuid, 'Bench reader', 'bench-conversations-' || %(size)s
        || '@example.com', %(hash)s)
ON CONFLICT DO NOTHING
RETURNING id::text
"""
SESSIONS = """
INSERT INTO conversation_sessions (session_id, user_id, metadata, created_at, updated_at, title)
SELECT 'conv-' || %(size)s || '-' || i, md5('conversations-' || %(size)s)::uuid, '{}'::jsonb,
       timestamp '2026-01-01' + i * interval '1 minute',
       timestamp '2026-01-01' + i * interval '1 minute' + interval '30 seconds',
       CASE WHEN i %% 3 = 0 THEN 'Conversation ' || i END
  FROM generate_series(1, %(size)s::bigint) AS i
"""
MESSAGES = """
INSERT INTO conversation_messages (session_id, role, content, created_at)
SELECT 'conv-' || %(size)s || '-' || i, role,
       CASE role WHEN 'user' THEN 'How do I change the card my subscription is billed to? Order ' || i
                 ELSE repeat('Open Billing, choose Payment methods, then Replace. ', 6) END,
       timestamp '2026-01-01' + i * interval '1 minute' + n * interval '10 seconds'
  FROM generate_series(1, %(size)s::bigint) AS i,
       (VALUES (1, 'user'), (2, 'assistant')) AS m(n, role)
"""
FIRST_PAGE = "SELECT * FROM api.list_conversations(%s, %s)"
NEXT_PAGE = "SELECT * FROM api.list_conversations(%s, %s, %s, %s)"


def load(conn: psycopg.Connection[Any], size: int) -> str:
    """A user with ``size`` sessions of two messages each; returns the user id."""
    params = {"size": size, "hash": FAKE_HASH}
    with conn.transaction():
        row = conn.execute(USER, params).fetchone()
        if row is None:
            raise BenchError(f"the bench user for {size} sessions exists already: recreate the database")
        conn.execute(SESSIONS, params)
        conn.execute(MESSAGES, params)
    return str(row[0])


def middle_cursor(conn: psycopg.Connection[Any], user_id: str, size: int) -> tuple[datetime, str]:
    """The (updated_at, session_id) of the row halfway down the user's list."""
    row = conn.execute(
        "SELECT updated_at, session_id FROM conversation_sessions WHERE user_id = %s::uuid"
        " ORDER BY updated_at DESC, session_id DESC OFFSET %s LIMIT 1", [user_id, size // 2 - 1]).fetchone()
    if row is None:
        raise BenchError(f"no middle row for {size} sessions")
    return row[0], str(row[1])


def _summary(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {
        "median_ms": round(statistics.median(ordered) * 1000, 3),
        "p95_ms": round(percentile(ordered, 95) * 1000, 3),
        "min_ms": round(ordered[0] * 1000, 3),
    }


def run(url: str, *, sizes: list[int], reps: int) -> dict[str, Any]:
    sizes = sorted(sizes)
    if len(sizes) < 2 or sizes[0] < 2 * PAGE:
        raise BenchError(f"conversations: give two sizes or more, each at least {2 * PAGE}")
    loaded_at = time.perf_counter()
    with psycopg.connect(url, autocommit=True) as conn:
        users = {size: load(conn, size) for size in sizes}
        conn.execute("VACUUM ANALYZE users")
        conn.execute("VACUUM ANALYZE conversation_sessions")
        conn.execute("VACUUM ANALYZE conversation_messages")
        load_s = time.perf_counter() - loaded_at
        cursors = {size: middle_cursor(conn, users[size], size) for size in sizes}
        samples: dict[int, dict[str, list[float]]] = {size: {"first": [], "middle": []} for size in sizes}

        def page(size: int, kind: str) -> float:
            user = users[size]
            query, params = ((FIRST_PAGE, [user, PAGE]) if kind == "first"
                             else (NEXT_PAGE, [user, PAGE, *cursors[size]]))
            t0 = time.perf_counter()
            rows = conn.execute(query, params).fetchall()
            elapsed = time.perf_counter() - t0
            if len(rows) != PAGE:
                raise BenchError(f"a {kind} page of {size} sessions returned {len(rows)} rows, not {PAGE}")
            return elapsed

        for rep in range(reps + 10):  # the first 10 warm up (and let the statements be prepared)
            order = sizes if rep % 2 else sizes[::-1]
            for size in order:
                for kind in ("first", "middle"):
                    elapsed = page(size, kind)
                    if rep >= 10:
                        samples[size][kind].append(elapsed)

    figures = {str(size): {kind: _summary(s) for kind, s in by_kind.items()} for size, by_kind in samples.items()}
    small, large = str(sizes[0]), str(sizes[-1])
    return {
        "sizes": sizes,
        "page": PAGE,
        "reps": reps,
        "load_s": round(load_s, 1),
        "pages": figures,
        "largest_over_smallest": {
            kind: round(figures[large][kind]["median_ms"] / figures[small][kind]["median_ms"], 2)
            for kind in ("first", "middle")
        },
        "what": f"median of {reps} calls of one {PAGE}-row page per user, the users taking turns",
    }
