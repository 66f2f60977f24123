"""The claim and the session listings use their indexes on a realistic table (100k sessions).

The statements are read from the function files themselves, so the plans
checked here are those of the code that runs, not of a copy.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from chatmem import migrate, sql_files
from helpers import change_settings

Conn = psycopg.Connection[tuple[Any, ...]]
SESSIONS = 100_000
TARGET_GUEST = "claim-plan-target-guest"


def function_source(name: str) -> str:
    matches = [p for p in sql_files.function_files() if p.name.endswith(name)]
    assert len(matches) == 1, f"expected one function file ending in {name}"
    return matches[0].read_text()


def claim_statement() -> str:
    """The claim's statement; its parameters become $1 (user), $2 (guest), $3 (method)."""
    source = function_source("internal-claim_guest_sessions.sql")
    found = re.search(r"WITH claimed AS \(.*?FROM claimed AS c;", source, re.S)
    assert found, "the claim statement was not found in its function file"
    statement = found.group(0).rstrip(";")
    for name, param in (("p_anonymous_user_id", "$2"), ("p_user_id", "$1"), ("p_method", "$3")):
        statement = re.sub(rf"\b{name}\b", param, statement)
    return statement


def list_statements() -> tuple[str, str]:
    """api.list_sessions' two queries: for a user ($1 uuid) and for a guest ($1 text)."""
    source = function_source("api-list_sessions.sql")
    queries = re.findall(r"RETURN QUERY\s+(SELECT .*?);", source, re.S)
    assert len(queries) == 2, "expected the user query and the guest query"
    user_query, guest_query = queries
    assert "v_caller.user_id" in user_query and "v_caller.guest_id" in guest_query
    return (user_query.replace("v_caller.user_id", "$1"),
            guest_query.replace("v_caller.guest_id", "$1"))


def plan_nodes(plan: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield plan
    for child in plan.get("Plans", []):
        yield from plan_nodes(child)


def explain(conn: Conn, execute: str, *, generic: bool) -> list[dict[str, Any]]:
    """Every node of the plan of ``EXECUTE <execute>``, custom or generic (PL/pgSQL uses both)."""
    mode = "force_generic_plan" if generic else "force_custom_plan"
    conn.execute(f"SET plan_cache_mode = {mode}")
    row = conn.execute(f"EXPLAIN (FORMAT JSON) EXECUTE {execute}").fetchone()
    assert row is not None
    raw = row[0]
    document = json.loads(raw) if isinstance(raw, str) else raw
    return list(plan_nodes(document[0]["Plan"]))


def assert_indexed_access(nodes: list[dict[str, Any]], index: str) -> None:
    on_sessions = [n for n in nodes if n.get("Relation Name") == "conversation_sessions"
                   or n.get("Index Name", "").startswith("conversation_sessions")]
    assert on_sessions, "the plan does not read conversation_sessions at all"
    seq_scans = [n for n in on_sessions if n["Node Type"] == "Seq Scan"]
    assert seq_scans == [], f"sequential scan of conversation_sessions planned: {seq_scans}"
    used = {n.get("Index Name") for n in nodes}
    assert index in used, f"{index} not used; plan nodes: {[n['Node Type'] for n in nodes]}"


@pytest.fixture
def big_db(scratch_db: str) -> Iterator[str]:
    """A migrated scratch database holding 100k sessions, about 3 per guest, ~1% owned by users."""
    migrate.migrate(scratch_db)
    with psycopg.connect(scratch_db, autocommit=True) as conn:
        change_settings(conn, bcrypt_cost=4)  # a scratch database: nothing to restore
        conn.execute("""
            INSERT INTO public.users (name, email, password_hash)
            SELECT 'User ' || u, 'user' || u || '@example.test', 'not a hash'
              FROM generate_series(1, 500) AS u""")
        # Seeding, not the API: the per-guest cap trigger is beside the point
        # here and would only make the insert slow.
        conn.execute("SET session_replication_role = replica")
        conn.execute("""
            INSERT INTO public.conversation_sessions
                   (session_id, user_id, metadata, created_at, updated_at)
            SELECT 'seed-' || i,
                   CASE WHEN i %% 100 = 0 THEN owners.ids[1 + (i / 100) %% 500] END,
                   CASE WHEN i %% 100 = 0 THEN jsonb_build_object('topic', 'billing')
                        ELSE jsonb_build_object('anonymousUserId', 'guest-' || (i / 3),
                                                'topic', 'billing') END,
                   now() - i * interval '1 minute',
                   now() - i * interval '1 minute'
              FROM generate_series(1, %s) AS i,
                   (SELECT array_agg(id ORDER BY email) AS ids FROM public.users) AS owners""",
            [SESSIONS])
        conn.execute("RESET session_replication_role")
        for n in range(3):
            conn.execute("SELECT api.create_or_get_session(%s, %s)", [f"target-{n}", TARGET_GUEST])
        conn.execute("ANALYZE public.conversation_sessions")
        conn.execute("ANALYZE public.users")
    yield scratch_db


@pytest.mark.slow
def test_the_claim_uses_the_guest_index_and_claims_the_guests_sessions(big_db: str) -> None:
    with psycopg.connect(big_db, autocommit=True) as conn:
        counts = conn.execute("""
            SELECT count(*), count(user_id),
                   count(DISTINCT metadata ->> 'anonymousUserId')
              FROM public.conversation_sessions""").fetchone()
        assert counts is not None
        total, owned, guests = counts
        assert total == SESSIONS + 3
        assert owned == SESSIONS // 100
        assert 30_000 < guests < 35_000, "about 3 sessions per guest"

        conn.execute(f"PREPARE claim(uuid, text, text) AS {claim_statement()}")
        user_id = conn.execute("SELECT id FROM public.users ORDER BY email LIMIT 1").fetchone()[0]  # type: ignore[index]
        for generic in (False, True):
            execute = f"claim('{user_id}', '{TARGET_GUEST}', 'register')"
            nodes = explain(conn, execute, generic=generic)
            assert_indexed_access(nodes, "conversation_sessions_guest_idx")

        # And the claim really claims: the target guest's 3 sessions, no other.
        conn.execute("RESET plan_cache_mode")
        row = conn.execute(
            "SELECT user_id, migrated, migrated_sessions"
            "  FROM api.register_user('Target', 'target@example.test', 'correct horse', %s)",
            [TARGET_GUEST],
        ).fetchone()
        assert row is not None
        new_user, migrated, migrated_sessions = row
        assert (migrated, migrated_sessions) == (True, 3)
        mine = conn.execute(
            "SELECT session_id, metadata FROM public.conversation_sessions"
            " WHERE user_id = %s ORDER BY 1",
            [new_user],
        ).fetchall()
        assert mine == [(f"target-{n}", {}) for n in range(3)]
        audit = conn.execute(
            "SELECT count(*) FROM public.session_claims WHERE user_id = %s AND method = 'register'",
            [new_user],
        ).fetchone()
        assert audit == (3,)
        assert conn.execute(
            "SELECT count(*) FROM public.conversation_sessions WHERE user_id IS NOT NULL"
        ).fetchone() == (SESSIONS // 100 + 3,)


@pytest.mark.slow
def test_listing_a_users_or_a_guests_sessions_uses_an_index(big_db: str) -> None:
    user_query, guest_query = list_statements()
    with psycopg.connect(big_db, autocommit=True) as conn:
        conn.execute(f"PREPARE list_user(uuid) AS {user_query}")
        conn.execute(f"PREPARE list_guest(text) AS {guest_query}")
        owner = conn.execute(
            "SELECT user_id FROM public.conversation_sessions WHERE user_id IS NOT NULL LIMIT 1"
        ).fetchone()[0]  # type: ignore[index]
        for generic in (False, True):
            assert_indexed_access(
                explain(conn, f"list_user('{owner}')", generic=generic),
                "conversation_sessions_user_idx",
            )
            assert_indexed_access(
                explain(conn, "list_guest('guest-4242')", generic=generic),
                "conversation_sessions_guest_idx",
            )
        conn.execute("RESET plan_cache_mode")
        # The API agrees with the data: newest first, only that owner's sessions.
        listed = conn.execute(
            "SELECT session_id FROM api.list_sessions('guest-4242')"
        ).fetchall()
        assert listed == [("seed-12726",), ("seed-12727",), ("seed-12728",)]
        users = conn.execute("SELECT count(*) FROM api.list_sessions(%s)", [str(owner)]).fetchone()
        assert users == (2,)
