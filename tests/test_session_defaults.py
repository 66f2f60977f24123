"""No default session metadata (issue 11): migration 0014 and what api.create_session stores.

The older product stored {"project": "stripe_support", "context":
"customer_support"} on every new session.  Now a session starts with no
metadata of its own unless chatmem_settings.session_defaults says otherwise;
migration 0014 changes the settings row only if it still holds exactly the
old default, so a value a DBA chose stays.
"""

from __future__ import annotations

import json
from typing import Any

import psycopg
import pytest
from yoyo import get_backend, read_migrations

from chatmem import sql_files
from chatmem.target import yoyo_url

OLD_DEFAULT = {"project": "stripe_support", "context": "customer_support"}
MIGRATION = "0014_no_default_session_metadata"


def test_a_new_session_has_no_metadata_but_its_guest_id(admin: psycopg.Connection[Any]) -> None:
    assert admin.execute("SELECT session_defaults FROM public.chatmem_settings").fetchone() == ({},)
    with admin.transaction(force_rollback=True):
        metadata = []
        for who in ("b6b8561f-8fcb-4000-892a-457e1fd12f76", "anonymous"):
            made = admin.execute("SELECT session_id FROM api.create_session(%s)", [who]).fetchone()
            assert made is not None
            metadata.append(admin.execute("SELECT metadata FROM public.conversation_sessions WHERE session_id = %s",
                                          [made[0]]).fetchone())
    assert metadata == [({"anonymousUserId": "b6b8561f-8fcb-4000-892a-457e1fd12f76"},), ({},)]


def settings(url: str) -> tuple[Any, Any]:
    """The row's session_defaults and the column's default."""
    with psycopg.connect(url) as conn:
        row = conn.execute("""
            SELECT s.session_defaults,
                   (SELECT pg_get_expr(d.adbin, d.adrelid) FROM pg_attrdef d
                      JOIN pg_attribute a ON a.attrelid = d.adrelid AND a.attnum = d.adnum
                     WHERE d.adrelid = 'public.chatmem_settings'::regclass AND a.attname = 'session_defaults')
              FROM public.chatmem_settings s""").fetchone()
    assert row is not None
    default = str(row[1])
    assert default.startswith("'") and default.endswith("'::jsonb"), default
    return row[0], json.loads(default[1:-len("'::jsonb")])


def set_defaults(url: str, value: dict[str, Any]) -> None:
    with psycopg.connect(url) as conn:
        conn.execute("UPDATE public.chatmem_settings SET session_defaults = %s", [json.dumps(value)])


@pytest.mark.parametrize(("before", "after"), [
    (OLD_DEFAULT, {}),                                  # the old default: now none
    ({"project": "acme"}, {"project": "acme"}),         # a DBA's own value stays
    ({**OLD_DEFAULT, "tier": "gold"}, {**OLD_DEFAULT, "tier": "gold"}),
])
def test_0014_changes_only_the_old_default_and_rolls_back(
        scratch_db: str, before: dict[str, Any], after: dict[str, Any]) -> None:
    backend = get_backend(yoyo_url(scratch_db))
    migrations = read_migrations(str(sql_files.migrations_dir()))
    earlier = migrations.filter(lambda m: m.id < MIGRATION)
    this = migrations.filter(lambda m: m.id == MIGRATION)
    with backend.lock():
        backend.apply_migrations(backend.to_apply(earlier))
    assert settings(scratch_db)[0] == OLD_DEFAULT
    set_defaults(scratch_db, before)

    with backend.lock():
        backend.apply_migrations(backend.to_apply(this))
    value, column_default = settings(scratch_db)
    assert value == after
    assert column_default == {}

    with backend.lock():
        backend.rollback_migrations(backend.to_rollback(this))
    value, column_default = settings(scratch_db)
    assert value == before
    assert column_default == OLD_DEFAULT
