"""plpgsql_check (a static analyzer for PL/pgSQL) over every PL/pgSQL function and
trigger chatmem ships, with every warning on: zero errors, zero warnings.

It finds what no test run may reach: a column or type that does not match, a
hidden cast that defeats an index, a volatility the planner would trust
wrongly.  A finding it reports wrongly is silenced in the function itself, with
a ``@plpgsql_check_options`` comment that says why.  The extension is installed
in the test database by pgtap_tests/setup/install.sql (Debian's
postgresql-15-plpgsql-check, which make test installs).
"""

from __future__ import annotations

from typing import Any

import psycopg

CHECK_EVERY_FUNCTION = """
SELECT p.oid::regprocedure::text, f.lineno, f.level, f.sqlstate, f.message, f.detail
  FROM pg_proc AS p
  JOIN pg_language AS l ON l.oid = p.prolang AND l.lanname = 'plpgsql'
  -- A trigger function is checked against the table its trigger is on.
  LEFT JOIN LATERAL (SELECT t.tgrelid FROM pg_trigger AS t WHERE t.tgfoid = p.oid LIMIT 1) AS trg ON true
  CROSS JOIN LATERAL tap.plpgsql_check_function_tb(
        p.oid, coalesce(trg.tgrelid, 0),
        fatal_errors => false, other_warnings => true, performance_warnings => true,
        extra_warnings => true, security_warnings => true) AS f
 WHERE p.pronamespace IN ('api'::regnamespace, 'chatmem_internal'::regnamespace, 'public'::regnamespace)
 ORDER BY 1, 2
"""


def test_every_plpgsql_function_and_trigger_passes_plpgsql_check_with_every_warning_on(
    admin: psycopg.Connection[Any],
) -> None:
    checked = admin.execute(
        "SELECT count(*) FROM pg_proc p JOIN pg_language l ON l.oid = p.prolang"
        " WHERE l.lanname = 'plpgsql' AND p.pronamespace IN"
        " ('api'::regnamespace, 'chatmem_internal'::regnamespace, 'public'::regnamespace)").fetchone()
    assert checked is not None and checked[0] >= 25, "the query no longer finds chatmem's functions"
    findings = admin.execute(CHECK_EVERY_FUNCTION).fetchall()
    assert findings == [], "\n".join(" | ".join(str(c) for c in f) for f in findings)


def test_plpgsql_check_would_report_a_planted_mistake(admin: psycopg.Connection[Any]) -> None:
    """A control: the same query finds a wrong column in a function of ours."""
    with admin.transaction():
        admin.execute("""
            CREATE FUNCTION chatmem_internal.planted() RETURNS bigint
            LANGUAGE plpgsql STABLE AS $$
            BEGIN RETURN (SELECT count(no_such_column) FROM public.conversation_sessions); END $$""")
        findings = admin.execute(CHECK_EVERY_FUNCTION).fetchall()
        admin.execute("DROP FUNCTION chatmem_internal.planted()")
    assert any("planted" in f[0] and "no_such_column" in f[4] for f in findings), findings
