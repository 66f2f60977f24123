"""Migrations: fresh install, round trip, and the in-place upgrade of the older system's database."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest

from chatmem import migrate
from chatmem.errors import SetupError
from schema_snapshot import data_snapshot, snapshot

FIXTURES = Path(__file__).parent / "fixtures"
ALL_MIGRATIONS = [p.stem for p in migrate.migration_files() if not p.stem.endswith(".rollback")]


def run_sql_file(url: str, name: str) -> None:
    with psycopg.connect(url) as conn:
        conn.execute((FIXTURES / name).read_text())  # type: ignore[arg-type]


def fetch(url: str, query: str) -> list[tuple[object, ...]]:
    with psycopg.connect(url) as conn:
        return conn.execute(query).fetchall()  # type: ignore[arg-type]


def test_fresh_install_applies_every_migration_and_loads_the_api(scratch_db: str) -> None:
    result = migrate.migrate(scratch_db)
    assert result.applied == ALL_MIGRATIONS
    assert result.version == ALL_MIGRATIONS[-1]
    assert result.function_files > 0
    assert fetch(scratch_db, "SELECT count(*) FROM pg_proc WHERE pronamespace = 'api'::regnamespace")[0][0] > 0


def test_migrate_twice_applies_nothing_the_second_time(scratch_db: str) -> None:
    migrate.migrate(scratch_db)
    before = snapshot(scratch_db)
    again = migrate.migrate(scratch_db)
    assert again.applied == []
    assert snapshot(scratch_db) == before


def test_apply_rollback_all_apply_round_trips(scratch_db: str) -> None:
    migrate.migrate(scratch_db)
    installed = snapshot(scratch_db)

    undone = migrate.rollback(scratch_db, everything=True)
    assert undone.rolled_back == list(reversed(ALL_MIGRATIONS))
    assert undone.version is None
    leftovers = fetch(scratch_db, """
        SELECT relname FROM pg_class
         WHERE relnamespace = 'public'::regnamespace AND relkind = 'r' AND relname NOT LIKE '%yoyo%'""")
    assert leftovers == []
    assert fetch(scratch_db, "SELECT to_regnamespace('api') IS NULL")[0][0] is True

    migrate.migrate(scratch_db)
    assert snapshot(scratch_db) == installed


def test_rollback_undoes_only_the_last_migration(scratch_db: str) -> None:
    migrate.migrate(scratch_db)
    result = migrate.rollback(scratch_db)
    assert result.rolled_back == [ALL_MIGRATIONS[-1]]
    assert result.version == ALL_MIGRATIONS[-2]
    # The functions fit only the latest schema: they are dropped until the next migrate.
    assert fetch(scratch_db, "SELECT to_regnamespace('api') IS NULL")[0][0] is True
    assert migrate.migrate(scratch_db).applied == [ALL_MIGRATIONS[-1]]
    assert fetch(scratch_db, "SELECT to_regnamespace('api') IS NOT NULL")[0][0] is True


def test_first_migration_refuses_to_roll_back_over_data(scratch_db: str) -> None:
    migrate.migrate(scratch_db)
    with psycopg.connect(scratch_db) as conn:
        conn.execute("INSERT INTO conversation_sessions (session_id) VALUES ('keep-me')")
    with pytest.raises(SetupError, match="refusing to roll back"):
        migrate.rollback(scratch_db, everything=True)
    assert fetch(scratch_db, "SELECT session_id FROM conversation_sessions") == [("keep-me",)]


def test_legacy_database_upgrades_in_place_to_the_fresh_schema(scratch_db: str, admin_url: str) -> None:
    run_sql_file(scratch_db, "legacy_schema.sql")
    run_sql_file(scratch_db, "legacy_rows.sql")
    legacy_ids = fetch(scratch_db, "SELECT session_id, user_id FROM conversation_sessions ORDER BY 1")

    migrate.migrate(scratch_db)

    fresh = snapshot(admin_url)
    upgraded = snapshot(scratch_db)
    # The older system's own extra index stays: a DBA may rely on it.
    upgraded["indexes"] = [i for i in upgraded["indexes"] if i[1] != "idx_sessions_user_id"]
    assert upgraded == fresh

    assert fetch(scratch_db, """
        SELECT pg_get_constraintdef(oid) FROM pg_constraint
         WHERE conname = 'conversation_sessions_user_id_fkey'""") == [
        ("FOREIGN KEY (user_id) REFERENCES users(id) ON DELETE SET NULL",)]
    assert fetch(scratch_db, """
        SELECT is_nullable FROM information_schema.columns
         WHERE table_name = 'conversation_sessions' AND column_name = 'user_id'""") == [("YES",)]

    # No row lost; bad metadata became {}, good metadata kept.
    assert fetch(scratch_db, "SELECT session_id, user_id FROM conversation_sessions ORDER BY 1") == legacy_ids
    assert fetch(scratch_db, "SELECT session_id, metadata FROM conversation_sessions ORDER BY 1") == [
        ("legacy-1", {"project": "stripe_support"}), ("legacy-2", {}), ("legacy-3", {}), ("legacy-4", {})]
    assert fetch(scratch_db, "SELECT count(*) FROM conversation_messages")[0][0] == 3
    assert fetch(scratch_db, "SELECT count(*) FROM qa_pairs")[0][0] == 1

    # Serial ids became identity columns that continue after the old ones.
    new_id = fetch(scratch_db, """
        INSERT INTO conversation_messages (session_id, role, content)
        VALUES ('legacy-2', 'user', 'after the upgrade') RETURNING id""")[0][0]
    assert new_id == 4
    # Guests can now be stored, and emails are unique whatever their case.
    fetch(scratch_db, "INSERT INTO conversation_sessions (session_id) VALUES ('guest-after-upgrade') RETURNING 1")
    with pytest.raises(psycopg.errors.UniqueViolation):
        fetch(scratch_db, "INSERT INTO users (name, email, password_hash) "
                          "VALUES ('x', 'ADA@example.COM', 'h') RETURNING 1")


def test_migrating_an_upgraded_database_again_changes_nothing(scratch_db: str) -> None:
    run_sql_file(scratch_db, "legacy_schema.sql")
    run_sql_file(scratch_db, "legacy_rows.sql")
    migrate.migrate(scratch_db)
    schema, data = snapshot(scratch_db), data_snapshot(scratch_db)
    assert migrate.migrate(scratch_db).applied == []
    assert snapshot(scratch_db) == schema
    assert data_snapshot(scratch_db) == data


def test_emails_differing_only_in_case_stop_the_upgrade_and_change_nothing(scratch_db: str) -> None:
    run_sql_file(scratch_db, "legacy_schema.sql")
    run_sql_file(scratch_db, "legacy_rows.sql")
    with psycopg.connect(scratch_db) as conn:
        conn.execute("""INSERT INTO users (name, email, password_hash)
                        VALUES ('Ada again', 'ada@example.com', 'h'), ('Bob again', 'BOB@example.com', 'h')""")
    schema, data = snapshot(scratch_db), data_snapshot(scratch_db)

    with pytest.raises(SetupError) as failure:
        migrate.migrate(scratch_db)
    message = str(failure.value)
    assert "Ada@Example.com = ada@example.com" in message
    assert "BOB@example.com = bob@example.com" in message
    assert "Merge or rename" in message

    assert snapshot(scratch_db) == schema
    assert data_snapshot(scratch_db) == data
    assert migrate.schema_version(scratch_db) is None
