"""A comparable picture of chatmem's schema, read from the catalogs."""

from __future__ import annotations

import psycopg

CORE_TABLES = ("users", "conversation_sessions", "conversation_messages", "qa_pairs",
               "chatmem_settings", "auth_tokens", "session_claims")

_COLUMNS = """
SELECT c.relname, a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull,
       pg_get_expr(d.adbin, d.adrelid), a.attidentity, col_description(c.oid, a.attnum)
  FROM pg_attribute a
  JOIN pg_class c ON c.oid = a.attrelid
  LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
 WHERE c.relnamespace = 'public'::regnamespace AND c.relname = ANY(%(tables)s)
   AND a.attnum > 0 AND NOT a.attisdropped
 ORDER BY 1, 2
"""
_CONSTRAINTS = """
SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid)
  FROM pg_constraint
 WHERE connamespace = 'public'::regnamespace AND conrelid::regclass::text = ANY(%(tables)s)
 ORDER BY 1, 2
"""
_INDEXES = """
SELECT tablename, indexname, indexdef FROM pg_indexes
 WHERE schemaname = 'public' AND tablename = ANY(%(tables)s)
 ORDER BY 1, 2
"""


def snapshot(url: str) -> dict[str, list[tuple[object, ...]]]:
    params = {"tables": list(CORE_TABLES)}
    with psycopg.connect(url) as conn:
        return {
            name: conn.execute(query, params).fetchall()  # type: ignore[arg-type]
            for name, query in (("columns", _COLUMNS), ("constraints", _CONSTRAINTS), ("indexes", _INDEXES))
        }


def data_snapshot(url: str) -> dict[str, list[tuple[object, ...]]]:
    """Every row of the core tables, ordered: to show that a step changed nothing."""
    out = {}
    with psycopg.connect(url) as conn:
        for table in CORE_TABLES:
            exists = conn.execute("SELECT to_regclass(%s) IS NOT NULL", [f"public.{table}"]).fetchone()
            if exists and exists[0]:
                out[table] = conn.execute(f"SELECT * FROM public.{table} ORDER BY 1").fetchall()  # type: ignore[arg-type]
    return out
