"""A crash mid-burst loses nothing that was acknowledged and leaves nothing half done.

The test never touches the shared cluster: it starts a throwaway cluster of
its own with chatmem.embedded (its own data folder under /var/tmp, its own
socket folder and port), runs registrations that claim guest sessions from
several threads, stops the server with ``pg_ctl stop -m immediate`` in the
middle of the burst (no checkpoint, no clean shutdown: what a power cut
leaves, minus the disk cache), restarts it through crash recovery, and checks
the data against what the clients were told.
"""

from __future__ import annotations

import random
import shutil
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from chatmem import embedded, migrate
from helpers import change_settings

Conn = psycopg.Connection[tuple[Any, ...]]
PASSWORD = "correct horse"
GUESTS = 400
SESSIONS_PER_GUEST = 3
MESSAGES_PER_SESSION = 2
WORKERS = 4
CRASH_AFTER = 40  # acknowledged registrations before the plug is pulled


@pytest.fixture
def cluster() -> Iterator[embedded.Cluster]:
    run = uuid.uuid4().hex[:8]
    base = Path(f"/var/tmp/chatmem-crash-{run}")
    throwaway = embedded.Cluster(
        data_dir=base / "pgdata",
        port=random.randint(55000, 59999),
        socket_dir=Path(f"/tmp/cmcrash-{run}"),
        bindir=None,
    )
    try:
        embedded.up(throwaway)
        yield throwaway
    finally:
        try:
            embedded.down(throwaway, mode="immediate")
        finally:
            shutil.rmtree(base, ignore_errors=True)
            shutil.rmtree(throwaway.socket_dir, ignore_errors=True)


def connect(url: str) -> Conn:
    return psycopg.connect(url, autocommit=True, connect_timeout=5)


def test_an_immediate_stop_mid_burst_loses_no_acknowledged_registration(
    cluster: embedded.Cluster,
) -> None:
    assert cluster.data_dir != embedded.configured().data_dir, "must never stop the shared cluster"
    embedded.ensure_database(cluster, "crash")
    url = cluster.url("crash")
    migrate.migrate(url)
    guests = [f"crash-guest-{n}" for n in range(GUESTS)]
    with connect(url) as c:
        settings: dict[str, str] = dict(
            c.execute(
                "SELECT name, setting FROM pg_settings WHERE name = ANY(%s)",
                [["fsync", "synchronous_commit", "full_page_writes"]],
            ).fetchall()
        )
        assert settings == {"fsync": "on", "synchronous_commit": "on", "full_page_writes": "on"}
        change_settings(c, bcrypt_cost=4)  # a throwaway cluster: nothing to restore
        c.execute(
            "INSERT INTO public.conversation_sessions (session_id, metadata)"
            " SELECT g || '-s' || i, jsonb_build_object('anonymousUserId', g)"
            "   FROM unnest(%s::text[]) AS g, generate_series(1, %s) AS i",
            [guests, SESSIONS_PER_GUEST],
        )
        c.execute(
            "INSERT INTO public.conversation_messages (session_id, role, content)"
            " SELECT s.session_id, 'user', 'message ' || m FROM public.conversation_sessions AS s,"
            "        generate_series(1, %s) AS m",
            [MESSAGES_PER_SESSION],
        )
        c.execute("CHECKPOINT")

    acknowledged: list[tuple[str, Any, int]] = []  # (guest, user_id, migrated_sessions)
    in_flight: list[str] = []
    unexpected: list[str] = []
    enough = threading.Event()

    def worker(n: int) -> None:
        try:
            c = connect(url)
        except psycopg.OperationalError:
            return
        with c:
            for guest in guests[n::WORKERS]:
                try:
                    row = c.execute(
                        "SELECT user_id, migrated_sessions"
                        " FROM api.register_user('Crash', %s, %s, %s)",
                        [f"{guest}@example.test", PASSWORD, guest],
                    ).fetchone()
                except psycopg.OperationalError:
                    in_flight.append(guest)  # the server went away: outcome unknown to the client
                    return
                except psycopg.Error as exc:
                    if exc.sqlstate and exc.sqlstate.startswith(
                        ("57P", "08")
                    ):  # shutdown / connection
                        in_flight.append(guest)
                        return
                    unexpected.append(f"{guest}: {exc.sqlstate} {exc}")
                    return
                assert row is not None
                acknowledged.append((guest, row[0], row[1]))
                if len(acknowledged) >= CRASH_AFTER:
                    enough.set()

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(WORKERS)]
    for t in threads:
        t.start()
    assert enough.wait(60), "the burst never got going"
    embedded.down(cluster, mode="immediate")  # pg_ctl stop -m immediate, mid-burst
    for t in threads:
        t.join(timeout=60)
        assert not t.is_alive()
    assert unexpected == []
    assert len(acknowledged) < GUESTS, "the burst ended before the crash: nothing was interrupted"
    done = {guest for guest, _, _ in acknowledged}

    started = time.monotonic()
    embedded.up(cluster)  # crash recovery replays the WAL
    assert time.monotonic() - started < 60
    log = cluster.log_file.read_text(errors="replace")
    assert "automatic recovery in progress" in log, "the restart did not go through crash recovery"
    with connect(url) as c:
        # No session lost, none owned twice over.
        assert c.execute("SELECT count(*) FROM public.conversation_sessions").fetchone() == (
            GUESTS * SESSIONS_PER_GUEST,
        )
        assert c.execute("SELECT count(*) FROM public.conversation_messages").fetchone() == (
            GUESTS * SESSIONS_PER_GUEST * MESSAGES_PER_SESSION,
        )
        assert c.execute(
            "SELECT count(*) FROM public.conversation_sessions"
            " WHERE user_id IS NOT NULL AND metadata ? 'anonymousUserId'"
        ).fetchone() == (0,)
        assert c.execute(
            "SELECT count(*) FROM public.conversation_sessions"
            " WHERE user_id IS NULL AND NOT metadata ? 'anonymousUserId'"
        ).fetchone() == (0,)

        # Every acknowledged registration is there, with all its sessions and their messages.
        for guest, user_id, migrated in acknowledged:
            assert migrated == SESSIONS_PER_GUEST
            assert c.execute(
                "SELECT lower(email) FROM public.users WHERE id = %s", [user_id]
            ).fetchone() == (f"{guest}@example.test",)
            owned = c.execute(
                "SELECT count(*), (SELECT count(*) FROM public.conversation_messages AS m"
                "                   JOIN public.conversation_sessions AS s USING (session_id)"
                "                  WHERE s.user_id = %s)"
                "  FROM public.conversation_sessions WHERE user_id = %s",
                [user_id, user_id],
            ).fetchone()
            assert owned == (SESSIONS_PER_GUEST, SESSIONS_PER_GUEST * MESSAGES_PER_SESSION), guest
            assert c.execute(
                "SELECT count(*) FROM public.auth_tokens WHERE user_id = %s", [user_id]
            ).fetchone() == (2,)

        # The audit agrees with the data, one row per claimed session, and
        # every registration is all there or not there at all.
        mismatched = c.execute(
            "SELECT count(*) FROM public.session_claims AS a"
            "  FULL JOIN (SELECT * FROM public.conversation_sessions"
            "              WHERE user_id IS NOT NULL) AS s"
            "    ON s.session_id = a.session_id"
            " WHERE a.id IS NULL OR s.session_id IS NULL OR a.user_id <> s.user_id"
            "    OR a.anonymous_user_id <> split_part(a.session_id, '-s', 1)"
            "    OR a.method <> 'register'"
        ).fetchone()
        assert mismatched == (0,)
        assert c.execute(
            "SELECT count(*) FROM (SELECT session_id FROM public.session_claims"
            " GROUP BY 1 HAVING count(*) > 1) AS twice"
        ).fetchone() == (0,)
        per_guest: dict[str, int] = dict(
            c.execute(
                "SELECT g, (SELECT count(*) FROM public.users"
                "            WHERE lower(email) = g || '@example.test')"
                "          * 10 + (SELECT count(*) FROM public.conversation_sessions"
                "                   WHERE user_id IS NOT NULL AND session_id LIKE g || '-s%%')"
                "  FROM unnest(%s::text[]) AS g",
                [guests],
            ).fetchall()
        )
        for guest, state in per_guest.items():
            if guest in done:
                assert state == 10 + SESSIONS_PER_GUEST, guest
            else:
                # Never acknowledged: committed whole (the crash hit between
                # commit and reply) or not at all.
                assert state in (0, 10 + SESSIONS_PER_GUEST), f"{guest} is half registered: {state}"
        assert set(in_flight) <= set(guests) - done
