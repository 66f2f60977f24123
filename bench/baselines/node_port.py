"""The older Node.js backend's session code, ported statement for statement to psycopg.

Its ``postgresMemoryService.createOrGetSession`` checked a client out of a
pool, sent each statement as its own autocommit transaction, and decided in
JavaScript whether the caller was a registered user or a guest.  Its
``authController.register`` moved a guest's sessions with one UPDATE that no
index serves.  This module does the same, on the schema of
``bench/baselines/node_schema.sql``, so the benchmark compares designs with
the same driver on both sides.  It is a baseline: its races and its scans are
kept on purpose.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import psycopg
from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool

SELECT_SESSION = "SELECT * FROM conversation_sessions WHERE session_id = %s"
TOUCH_SESSION = "UPDATE conversation_sessions SET updated_at = NOW() WHERE session_id = %s"
SELECT_USER = "SELECT id FROM users WHERE id = %s"
INSERT_SESSION = (
    "INSERT INTO conversation_sessions (session_id, user_id, metadata)"
    " VALUES (%s, %s, %s) RETURNING *"
)
# The older claim, as registration ran it: no index on the guest id, so every
# call reads the whole table.
CLAIM = (
    "UPDATE conversation_sessions"
    "   SET user_id = %s, updated_at = NOW(),"
    "       metadata = jsonb_set(metadata, '{anonymousUserId}', 'null'::jsonb, true)"
    " WHERE user_id IS NULL AND metadata->>'anonymousUserId' = %s"
    " RETURNING session_id"
)


def create_or_get_session(
    pool: ConnectionPool[psycopg.Connection[Any]],
    session_id: str,
    user_id: str | None = None,
    metadata: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Open a session as the older backend did: up to three round trips, each autocommit."""
    with pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
        existing = cur.execute(SELECT_SESSION, [session_id]).fetchall()
        if existing:
            cur.execute(TOUCH_SESSION, [session_id])
            return existing[0]

        final_user_id = user_id
        final_metadata = dict(metadata or {})
        if user_id and user_id != "anonymous":
            try:
                if not cur.execute(SELECT_USER, [user_id]).fetchall():
                    final_user_id = None
                    final_metadata["anonymousUserId"] = user_id
            except psycopg.errors.InvalidTextRepresentation:
                # Not a UUID at all: the backend caught the error and carried on as a guest.
                final_user_id = None
                final_metadata["anonymousUserId"] = user_id
        elif user_id == "anonymous":
            final_user_id = None

        row = cur.execute(
            INSERT_SESSION, [session_id, final_user_id, json.dumps(final_metadata)]
        ).fetchone()
        assert row is not None
        return row


def claim_guest_sessions(
    conn: psycopg.Connection[Any], user_id: str, anonymous_user_id: str
) -> int:
    """The older registration's session migration: returns how many sessions moved."""
    return len(conn.execute(CLAIM, [user_id, anonymous_user_id]).fetchall())
