"""Bulk loads of guest sessions against the guest cap (issue 14, item 3).

The cap's trigger used to take one advisory lock per guest id per
transaction, so a transaction inserting sessions for thousands of guests ran
PostgreSQL's shared lock table out of memory, failing itself and whoever else
needed a lock.  Guest ids then hashed into 256 lock buckets (migration 0013),
and since migration 0021 the cap is a rule of the API: the owner's bulk
loads (INSERT ... SELECT, COPY, pg_restore) take no cap lock at all, and a
loop of API calls in one transaction at most 256.  Each test loads a freshly
migrated database of its own, with PostgreSQL's default settings.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict

from chatmem import embedded, migrate
from helpers import connect

CAP_LOCKS = ("SELECT count(*) FROM pg_locks WHERE pid = pg_backend_pid() AND locktype = 'advisory'"
             " AND classid = hashtext('chatmem guest cap')::oid")
GUEST_SESSIONS = ("SELECT count(*) FROM public.conversation_sessions"
                  " WHERE user_id IS NULL AND metadata ? 'anonymousUserId'")


@pytest.fixture
def loaded_db(scratch_db: str) -> str:
    migrate.migrate(scratch_db)
    return scratch_db


def insert_guest_sessions(conn: psycopg.Connection[Any], prefix: str, count: int) -> None:
    """``count`` guest sessions in one statement, three per guest."""
    conn.execute(
        "INSERT INTO public.conversation_sessions (session_id, metadata)"
        " SELECT %s || i, jsonb_build_object('anonymousUserId', %s || (i / 3))"
        "   FROM generate_series(1, %s) AS i",
        [f"{prefix}-s", f"{prefix}-g", count])


def test_insert_select_of_fifty_thousand_guest_sessions_takes_no_cap_lock(
    loaded_db: str,
) -> None:
    with connect(loaded_db) as conn, conn.transaction():
        insert_guest_sessions(conn, "bulk", 50_000)
        held = conn.execute(CAP_LOCKS).fetchone()
        assert held == (0,), held
        # Another writer meanwhile, through the API, for a guest of the load:
        # the load holds none of the cap's locks, so it is not kept waiting,
        # and the load's uncommitted sessions do not count against it.
        with connect(loaded_db) as other:
            other.execute("SET lock_timeout = '2s'")
            other.execute("SELECT api.create_or_get_session('bulk-other', 'bulk-g1')")
    with connect(loaded_db) as conn:
        assert conn.execute(GUEST_SESSIONS).fetchone() == (50_001,)


def test_a_loop_of_twenty_thousand_create_or_get_session_calls_in_one_transaction(
    loaded_db: str,
) -> None:
    """What a careless import script does, through the API as the application's role."""
    with connect(loaded_db) as conn, conn.transaction():
        conn.execute("SET LOCAL ROLE chatmem_app")
        conn.execute("DO $$ BEGIN FOR i IN 1..20000 LOOP"
                     " PERFORM api.create_or_get_session('loop-s' || i, 'loop-g' || i); END LOOP; END $$")
        held = conn.execute(CAP_LOCKS).fetchone()
        assert held is not None and held[0] <= 256, held
    with connect(loaded_db) as conn:
        assert conn.execute(GUEST_SESSIONS).fetchone() == (20_000,)


def test_a_concurrent_insert_goes_on_beside_a_bulk_load(loaded_db: str) -> None:
    """A load that has not committed yet blocks nobody: a 2k-row insert of other guests
    runs beside it (with the trigger's per-guest locks it failed with "out of shared
    memory"; with its bucket locks it waited for the load to commit)."""
    with connect(loaded_db) as loader:
        loader.execute("BEGIN")
        insert_guest_sessions(loader, "held", 20_000)
        with connect(loaded_db) as other:
            other.execute("SET lock_timeout = '2s'")
            insert_guest_sessions(other, "beside", 2_000)
        loader.execute("COMMIT")
    with connect(loaded_db) as conn:
        assert conn.execute(GUEST_SESSIONS).fetchone() == (22_000,)


def test_copy_and_pg_restore_data_only_of_thirty_thousand_guest_sessions(
    loaded_db: str, admin_url: str, tmp_path: Path
) -> None:
    with connect(loaded_db) as conn:
        with conn.cursor() as cur, cur.copy(
                "COPY public.conversation_sessions (session_id, metadata) FROM STDIN") as copy:
            for i in range(30_000):
                copy.write_row([f"copy-s{i}", f'{{"anonymousUserId": "copy-g{i // 3}"}}'])
        assert conn.execute(GUEST_SESSIONS).fetchone() == (30_000,)

    bindir = embedded.find_bindir()
    dump = tmp_path / "guest_sessions.dump"
    source = conninfo_to_dict(loaded_db)
    subprocess.run([str(bindir / "pg_dump"), "--format=custom", "--data-only",
                    "--table=public.conversation_sessions", "--file", str(dump), "--dbname", loaded_db],
                   check=True, capture_output=True)
    target_name = f"{source['dbname']}_restored"
    embedded.create_database(admin_url, target_name)
    target = loaded_db.replace(f"/{source['dbname']}?", f"/{target_name}?")
    try:
        migrate.migrate(target)
        restored = subprocess.run([str(bindir / "pg_restore"), "--data-only", "--exit-on-error",
                                   "--dbname", target, str(dump)], capture_output=True, text=True)
        assert restored.returncode == 0, restored.stderr
        with connect(target) as conn:
            assert conn.execute(GUEST_SESSIONS).fetchone() == (30_000,)
    finally:
        with connect(admin_url) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{target_name}" WITH (FORCE)')


def test_the_api_counts_sessions_a_bulk_load_gave_a_guest(loaded_db: str) -> None:
    """Loaded rows are not capped, but they count: a guest that a load gave 100 sessions
    of the last hour gets no new one through the API, and reopens its own."""
    with connect(loaded_db) as conn:
        conn.execute(
            "INSERT INTO public.conversation_sessions (session_id, metadata)"
            " SELECT 'loaded-s' || i, '{\"anonymousUserId\": \"loaded-g\"}' FROM generate_series(1, 100) AS i")
        conn.execute("SET ROLE chatmem_app")
        for call in ("SELECT api.create_or_get_session('loaded-new', 'loaded-g')",
                     "SELECT * FROM api.create_session('loaded-g')"):
            with pytest.raises(psycopg.Error) as refused:
                conn.execute(call)
            assert refused.value.sqlstate == "CM002"
            assert "has opened 100 sessions in the last hour; the limit is 100" in str(refused.value)
        assert conn.execute("SELECT (api.create_or_get_session('loaded-s7', 'loaded-g')).session_id"
                            ).fetchone() == ("loaded-s7",)
        conn.execute("RESET ROLE")
        assert conn.execute(GUEST_SESSIONS).fetchone() == (100,)
