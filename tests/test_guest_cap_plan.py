"""The guest cap's count, as the API runs it (db/functions/188-internal-guest_cap.sql).

Since migration 0021 the count is part of the insert of api.create_or_get_session and
api.create_session, so those functions pin its plan: a one-statement hot path whose count
turned into a sequential scan (a new table, a TRUNCATE) or into a plan made anew on every
call (skewed statistics) would cost every new session far more than the whole call.
"""

from __future__ import annotations

import psycopg
import pytest

from helpers import connect

FUNCTIONS = ("api.create_or_get_session(text, text, jsonb)", "api.create_session(text, jsonb, text)")
PINS = {"plan_cache_mode": "force_generic_plan", "enable_seqscan": "off", "enable_bitmapscan": "off",
        "jit": "off"}


@pytest.mark.parametrize("function", FUNCTIONS)
def test_the_functions_that_open_guest_sessions_pin_the_counts_plan(admin_url: str, function: str) -> None:
    with connect(admin_url) as c:
        pins = dict(c.execute("""
            SELECT split_part(setting, '=', 1), split_part(setting, '=', 2)
              FROM pg_proc, unnest(proconfig) AS setting
             WHERE oid = %s::regprocedure""", [function]).fetchall())
    assert {name: pins.get(name) for name in PINS} == PINS


def test_the_count_is_inlined_and_reads_one_index_range_whatever_the_statistics(admin_url: str) -> None:
    """Planned with those pins, generic, in a transaction where conversation_sessions has the
    statistics of an empty table (as after a TRUNCATE and ANALYZE) and then of a big one."""
    with connect(admin_url) as c, c.transaction():
        for name, value in PINS.items():
            c.execute("SELECT set_config(%s, %s, true)", [name, value])
        c.execute("PREPARE cap_count(text) AS"
                  " SELECT NOT EXISTS (SELECT FROM chatmem_internal.guest_cap_reached($1))")
        for tuples, pages in ((0, 0), (10_000_000, 400_000)):
            c.execute("""UPDATE pg_class SET reltuples = %s, relpages = %s
                          WHERE oid IN ('conversation_sessions'::regclass,
                                        'conversation_sessions_guest_idx'::regclass)""", [tuples, pages])
            plan = "\n".join(r[0] for r in c.execute("EXPLAIN EXECUTE cap_count('cap-plan-guest')").fetchall())
            assert "Function Scan" not in plan, plan  # inlined, not called
            assert "Bitmap" not in plan, plan
            assert "Seq Scan on conversation_sessions" not in plan, plan
            assert "Index Scan using conversation_sessions_guest_idx on conversation_sessions" in plan, plan
            assert "Index Cond: (((metadata ->> 'anonymousUserId'::text) = $1) AND (created_at >" in plan, plan
        c.execute("DEALLOCATE cap_count")
        raise psycopg.Rollback()  # the statistics as they were
