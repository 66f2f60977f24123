"""The online upgrade's id swap under writers that never pause (issue 14, item 1).

The upgrade turns the serial ids of conversation_messages and qa_pairs into
64-bit identity ids and swaps them in one short lock; the identity starts
after the highest id.  That id must be read under the lock: read before it, a
row the older backend inserts in between takes the same id as the identity's
first, and the next insert fails with a duplicate key (seen once in a few
runs of ``make bench``'s upgrade, with a writer every 10 ms).  Here writers
insert into both tables as fast as they can while ``chatmem migrate`` runs,
for a few rounds: no insert may fail on a duplicate id, and afterwards new
rows get ids.

And no insert fails at all: migration 0001, on a legacy database, takes
its ACCESS EXCLUSIVE locks children first (conversation_messages and qa_pairs
before conversation_sessions).  Parents first, a writer holding its child
table and waiting for the parent (the foreign-key check) deadlocked with it,
and PostgreSQL failed the writer after deadlock_timeout (1 s).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator

import psycopg
import pytest
from bench import legacy_data

from chatmem import migrate

SIZE = legacy_data.LegacySize(sessions=2000, messages=2000, qa_pairs=400)
INSERTS = {
    "conversation_messages": "INSERT INTO conversation_messages (session_id, role, content) VALUES (%s, 'user', 'hi')",
    "qa_pairs": "INSERT INTO qa_pairs (session_id, question, answer) VALUES (%s, 'q', 'a')",
}


@pytest.fixture
def legacy_db(scratch_db: str) -> Iterator[str]:
    legacy_data.create(scratch_db, SIZE)
    yield scratch_db


def hammer(url: str, statement: str, stop: threading.Event, ready: threading.Barrier,
           errors: list[str], done: list[int]) -> None:
    # Unnamed statements, as the older backend's driver sends them.
    with psycopg.connect(url, autocommit=True, prepare_threshold=None) as conn:
        ready.wait()
        n = 0
        while not stop.is_set():
            try:
                conn.execute(statement, [legacy_data.session_id(1 + n % SIZE.sessions)])
                n += 1
            except psycopg.Error as exc:
                errors.append(f"{exc.sqlstate}: {exc.diag.message_primary}")
        done.append(n)


def upgrade_under_writers(url: str) -> list[str]:
    """``chatmem migrate`` while both writers insert without pause; their errors."""
    stop = threading.Event()
    ready = threading.Barrier(len(INSERTS) + 1)
    errors: list[str] = []
    done: list[int] = []
    threads = [threading.Thread(target=hammer, args=(url, statement, stop, ready, errors, done))
               for statement in INSERTS.values()]
    for t in threads:
        t.start()
    ready.wait()
    try:
        migrate.migrate(url)
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=60)
    assert len(done) == len(INSERTS) and min(done) > 0, "both writers wrote throughout"
    return errors


@pytest.mark.parametrize("round_", range(3))
def test_writers_that_never_pause_lose_no_insert_to_the_id_swap(legacy_db: str, round_: int) -> None:
    errors = upgrade_under_writers(legacy_db)
    assert not [e for e in errors if e.startswith("23505")], errors[:5]
    # Any other failure is the known deadlock (see the module's docstring), nothing else.
    assert all(e.startswith("40P01") for e in errors), errors[:5]
    with psycopg.connect(legacy_db, autocommit=True) as conn:
        for table, statement in INSERTS.items():
            conn.execute(statement, [legacy_data.session_id(1)])  # the identity goes on
            row = conn.execute(f"SELECT count(*) = count(DISTINCT id), count(*) FROM public.{table}").fetchone()
            assert row is not None and row[0], f"{table}: every id unique"


def test_writers_that_never_pause_see_no_error_at_all(legacy_db: str) -> None:
    assert upgrade_under_writers(legacy_db) == []
