"""A generated copy of the older system's database, for upgrade tests and the upgrade benchmark.

The schema is the older system's as it ran in production
(``bench/baselines/node_schema.sql``: serial ids, ``timestamp`` columns
written with the server's local ``NOW()``, nullable and unchecked metadata,
no index on the guest id).  The rows look like its data: about one session
in ten belongs to a registered user, the rest to guests (their id in
``metadata.anonymousUserId``); a few sessions carry NULL or non-object
metadata, as the older system allowed; messages and Q&A pairs are spread
over the sessions; timestamps span the last year.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg

SCHEMA = Path(__file__).parent / "baselines" / "node_schema.sql"


@dataclass(frozen=True)
class LegacySize:
    sessions: int
    messages: int
    qa_pairs: int

    @property
    def users(self) -> int:
        return max(1, self.sessions // 20)


# The figures issue 14 measured the upgrade at.
FULL = LegacySize(sessions=1_000_000, messages=1_000_000, qa_pairs=200_000)


def create(url: str, size: LegacySize) -> None:
    """Create the older schema in the (empty) database at ``url`` and fill it."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(SCHEMA.read_text())
        fill(conn, size)
        conn.execute("VACUUM ANALYZE")


def fill(conn: psycopg.Connection[Any], size: LegacySize) -> None:
    # Timestamps as the older backend wrote them: the server's local time, no zone.
    conn.execute(
        """INSERT INTO users (id, name, email, password_hash, created_at, updated_at)
           SELECT md5('user' || i)::uuid, 'User ' || i, 'user' || i || '@example.com',
                  '$2a$10$abcdefghijklmnopqrstuuWZmZ0nD5xIbkqyPn5Jr5yq5Lkk4oW9u',
                  LOCALTIMESTAMP - mod(i, 365) * interval '1 day', LOCALTIMESTAMP - mod(i, 365) * interval '1 day'
             FROM generate_series(1, %(users)s) AS i""",
        {"users": size.users})
    conn.execute(
        """INSERT INTO conversation_sessions (session_id, user_id, metadata, created_at, updated_at)
           SELECT 'session_' || (1700000000000 + i) || '_' || substr(md5(i::text), 1, 9),
                  CASE WHEN mod(i, 10) = 0 THEN md5('user' || (1 + mod(i / 10, %(users)s)))::uuid END,
                  CASE WHEN mod(i, 1000) = 1 THEN NULL
                       WHEN mod(i, 1000) = 2 THEN '["not", "an", "object"]'::jsonb
                       WHEN mod(i, 10) = 0 THEN '{"project": "stripe_support", "context": "customer_support"}'::jsonb
                       ELSE jsonb_build_object('anonymousUserId', md5('guest' || (i / 3))::uuid::text,
                                               'project', 'stripe_support')
                  END,
                  LOCALTIMESTAMP - mod(i, 525600) * interval '1 minute',
                  LOCALTIMESTAMP - mod(i, 525600) * interval '1 minute' + interval '5 minutes'
             FROM generate_series(1, %(sessions)s) AS i""",
        {"users": size.users, "sessions": size.sessions})
    conn.execute(
        """INSERT INTO conversation_messages (session_id, role, content, created_at)
           SELECT 'session_' || (1700000000000 + s) || '_' || substr(md5(s::text), 1, 9),
                  CASE WHEN mod(i, 2) = 0 THEN 'user' ELSE 'assistant' END,
                  'Message ' || i || ': how do refunds work for an order paid by card last week?',
                  LOCALTIMESTAMP - mod(s, 525600) * interval '1 minute' + interval '1 minute'
             FROM generate_series(1, %(messages)s) AS i,
                  LATERAL (SELECT 1 + mod(i::bigint * 7919, %(sessions)s) AS s) AS pick""",
        {"messages": size.messages, "sessions": size.sessions})
    conn.execute(
        """INSERT INTO qa_pairs (session_id, question, answer, created_at)
           SELECT 'session_' || (1700000000000 + s) || '_' || substr(md5(s::text), 1, 9),
                  'How do refunds work? (' || i || ')', 'They take 5-10 business days.',
                  LOCALTIMESTAMP - mod(s, 525600) * interval '1 minute' + interval '2 minutes'
             FROM generate_series(1, %(qa)s) AS i,
                  LATERAL (SELECT 1 + mod(i::bigint * 104729, %(sessions)s) AS s) AS pick""",
        {"qa": size.qa_pairs, "sessions": size.sessions})


def session_id(i: int) -> str:
    """The id of generated session ``i`` (1-based), as the generator made it."""
    return f"session_{1700000000000 + i}_{hashlib.md5(str(i).encode()).hexdigest()[:9]}"
