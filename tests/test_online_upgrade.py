"""Upgrading a copy of the older system's database online (issue 14, item 1).

A generated legacy database (bench/legacy_data.py: the older production
schema, guests and users, NULL and non-object metadata, serial ids,
``timestamp`` columns in the server's local time) is upgraded by ``chatmem
migrate`` while the older backend keeps writing messages and reading
sessions, with the migrating session in another TimeZone than the server.
``make bench`` runs the same at a million sessions and prints the stalls.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from bench import legacy_data, upgrade
from typer.testing import CliRunner

from chatmem import migrate
from chatmem.cli.app import app
from chatmem.errors import SetupError
from schema_snapshot import snapshot

SIZE = legacy_data.LegacySize(sessions=30_000, messages=30_000, qa_pairs=6_000)
TABLES = ("users", "conversation_sessions", "conversation_messages", "qa_pairs")


def fetch(url: str, query: str, params: list[Any] | None = None) -> list[tuple[Any, ...]]:
    with psycopg.connect(url, autocommit=True) as conn:
        return conn.execute(query, params).fetchall()


def counts(url: str) -> dict[str, int]:
    return {t: fetch(url, f"SELECT count(*) FROM public.{t}")[0][0] for t in TABLES}


def files_of(url: str) -> dict[str, int]:
    """Each table's file: a table rewritten (under ACCESS EXCLUSIVE) gets a new one."""
    return {t: fetch(url, "SELECT pg_relation_filenode(%s)", [f"public.{t}"])[0][0] for t in TABLES}


@pytest.fixture
def legacy_db(scratch_db: str) -> Iterator[str]:
    legacy_data.create(scratch_db, SIZE)
    yield scratch_db


def test_a_legacy_database_upgrades_online_while_the_older_backend_keeps_working(
    legacy_db: str, admin_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    before_counts, before_files = counts(legacy_db), files_of(legacy_db)
    before_stamps = upgrade.legacy_timestamps(legacy_db)
    last_id = fetch(legacy_db, "SELECT max(id) FROM conversation_messages")[0][0]
    server_zone = fetch(legacy_db, "SHOW TimeZone")[0][0]
    # The migrating session's TimeZone is not the server's: legacy timestamps
    # must still be read in the server's zone.
    monkeypatch.setenv("PGTZ", "Europe/Berlin")
    lines: list[str] = []

    measured = upgrade.measure(legacy_db, SIZE, lambda: migrate.migrate(legacy_db, progress=lines.append))

    for name, probe in measured["probes"].items():
        assert probe["errors"] == 0, (name, probe["first_errors"])
        # Blocked on the upgrade's locks, as sampled from pg_stat_activity (not the
        # calls' times, which a busy machine stretches too).
        assert probe["lock_wait_s"] < 1.0, (name, probe)
    writes = measured["probes"]["writer"]["calls"]
    assert counts(legacy_db) == {**before_counts,
                                 "conversation_messages": before_counts["conversation_messages"] + writes}
    assert upgrade.misread_timestamps(legacy_db, before_stamps, server_zone) == 0
    assert files_of(legacy_db) == before_files, "no table was rewritten"
    upgraded = snapshot(legacy_db)
    # The older system's own extra index stays: a DBA may rely on it.
    upgraded["indexes"] = [i for i in upgraded["indexes"] if i[1] != "idx_sessions_user_id"]
    assert upgraded == snapshot(admin_url), "the upgraded schema is a fresh install's"
    assert any(line.endswith(f"of {before_counts['conversation_messages']:,} rows") for line in lines), lines
    # The 64-bit identity continues after the old ids, and after the probe's.
    new_id = fetch(legacy_db, "INSERT INTO conversation_messages (session_id, role, content)"
                              " VALUES (%s, 'user', 'after') RETURNING id", [legacy_data.session_id(1)])[0][0]
    assert new_id > last_id + writes - 1
    assert fetch(legacy_db, "SELECT format_type(atttypid, atttypmod) FROM pg_attribute"
                            " WHERE attrelid = 'conversation_messages'::regclass AND attname = 'id'") == [("bigint",)]


def test_legacy_timestamps_are_read_in_a_servers_own_zone_that_is_not_utc(
    scratch_db: str, admin_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The older backend wrote NOW() in the server's zone; here that is New York's (set for
    the database, as a DBA would), and the migrating session is in Berlin.  Every stored
    value moves, so the conversion goes through shadow columns filled in batches."""
    fetch(scratch_db, "SELECT 1")
    with psycopg.connect(scratch_db, autocommit=True) as conn:
        name = conn.execute("SELECT current_database()").fetchone()
        assert name is not None
        conn.execute(f'ALTER DATABASE "{name[0]}" SET TimeZone = \'America/New_York\'')
    legacy_data.create(scratch_db, legacy_data.LegacySize(sessions=3000, messages=3000, qa_pairs=600))
    before, files = upgrade.legacy_timestamps(scratch_db), files_of(scratch_db)
    monkeypatch.setenv("PGTZ", "Europe/Berlin")
    lines: list[str] = []
    migrate.migrate(scratch_db, progress=lines.append)
    assert upgrade.misread_timestamps(scratch_db, before, "America/New_York") == 0
    # Every value changed, yet no table was rewritten under its lock: shadow columns did it.
    assert files_of(scratch_db) == files
    assert any("timestamps read in America/New_York" in line for line in lines), lines
    upgraded = snapshot(scratch_db)
    upgraded["indexes"] = [i for i in upgraded["indexes"] if i[1] != "idx_sessions_user_id"]
    assert upgraded == snapshot(admin_url)


def test_rows_chatmem_cannot_hold_stop_the_upgrade_before_it_changes_anything(legacy_db: str) -> None:
    fetch(legacy_db, "INSERT INTO conversation_messages (session_id, role, content)"
                     " VALUES (%s, 'robot', 'beep'), (NULL, 'user', 'lost') RETURNING 1",
          [legacy_data.session_id(1)])
    schema = snapshot(legacy_db)
    with pytest.raises(SetupError) as refused:
        migrate.migrate(legacy_db)
    assert "roles chatmem does not know: robot" in str(refused.value)
    assert "1 rows of conversation_messages belong to no session" in str(refused.value)
    assert "Nothing was changed" in str(refused.value)
    assert snapshot(legacy_db) == schema


def test_migrate_plan_lists_each_pending_step_with_its_lock_and_changes_nothing(legacy_db: str) -> None:
    schema = snapshot(legacy_db)
    result = CliRunner().invoke(app, ["migrate", "--plan", "--database-url", legacy_db])
    assert result.exit_code == 0, result.output
    assert "online: change column types" in result.output
    assert "migration 0001_core_tables" in result.output
    assert "migration 0013_guest_cap_lock_buckets" in result.output
    steps = [ln for ln in result.output.splitlines() if re.match(r"\s*\d+\. ", ln)]
    assert len(steps) > 10 and result.output.count("\n    lock: ") == len(steps)
    assert snapshot(legacy_db) == schema


def test_the_probes_see_an_upgrade_that_blocks(legacy_db: str) -> None:
    """A control for the measurement: an "upgrade" that holds ACCESS EXCLUSIVE on both tables
    for 1.5 s shows as about that much lock wait on both probes."""
    def blocking_upgrade() -> None:
        with psycopg.connect(legacy_db) as conn, conn.transaction():
            # Children first, as migration 0001 does: the writer probe holds its message's
            # table while it waits for the session row (the foreign key), so locking the
            # parent first can deadlock with it.
            conn.execute("LOCK TABLE conversation_messages, conversation_sessions IN ACCESS EXCLUSIVE MODE")
            time.sleep(1.5)

    measured = upgrade.measure(legacy_db, SIZE, blocking_upgrade)
    for name, probe in measured["probes"].items():
        assert 1.0 < probe["lock_wait_s"] < 4.0, (name, probe)  # sampled: coarse on a busy machine
        assert probe["longest_s"] > 1.0, (name, probe)
