"""Data lifecycle: purge running against claims (no deadlock, never a claimed
session), a guest erasing its data while it registers, and the sessions of a
deleted user, which nobody may read, use or claim.
"""

from __future__ import annotations

import queue
import random
import threading
import time
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from helpers import connect, guest_sessions, run_threads, settings_changed, tag

Conn = psycopg.Connection[tuple[Any, ...]]
PASSWORD = "correct horse"
# Sessions made idle here are 30 years old and purged at '29 years': nothing
# else in a shared test database is that old.
IDLE = "30 years"
PURGE_AFTER = "29 years"
PER_GUEST = 8


@pytest.fixture(scope="module")
def url(admin_url: str, fast_bcrypt: None) -> Iterator[str]:
    """The test database, with bcrypt at cost 4 for this module, and room for its guests' user
    turns (one in each of up to 40 sessions; message allowances: tests/test_allowances.py)."""
    with settings_changed(admin_url, guest_messages_per_day=100):
        yield admin_url


def feed_idle_guest(conn: Conn, guest: str, count: int) -> list[str]:
    """``count`` idle sessions of ``guest`` (last active 30 years ago), each with a message."""
    ids = [f"{guest}-s{i}" for i in range(count)]
    conn.execute(
        "WITH s AS (INSERT INTO public.conversation_sessions"
        "                  (session_id, metadata, created_at, updated_at)"
        "           SELECT sid, jsonb_build_object('anonymousUserId', %s::text),"
        "                  now() - %s::interval, now() - %s::interval"
        "             FROM unnest(%s::text[]) AS sid"
        "           RETURNING session_id)"
        " INSERT INTO public.conversation_messages (session_id, role, content)"
        " SELECT session_id, 'user', 'old message' FROM s",
        [guest, IDLE, IDLE, ids],
    )
    return ids


# ---------------------------------------------------------------- purge vs claims


def test_purge_and_claims_running_together_never_deadlock_nor_delete_a_claimed_session(
    url: str,
) -> None:
    run = tag()
    duration = 8.0
    stop = threading.Event()
    fed: queue.Queue[str] = queue.Queue(maxsize=8)
    guests: list[str] = []
    registrations: list[tuple[str, Any, int]] = []  # (guest, user_id, migrated_sessions)
    purged: list[int] = []
    failures: list[str] = []
    chat: dict[str, int] = {"ok": 0, "42501": 0, "P0002": 0}

    def guarded(body: Any) -> Any:
        def runner() -> None:
            try:
                body()
            except psycopg.Error as exc:
                failures.append(f"{body.__name__}: {exc.sqlstate} {exc}")
                stop.set()
            except Exception as exc:
                failures.append(f"{body.__name__}: {exc!r}")
                stop.set()

        return runner

    def feeder() -> None:
        with connect(url) as c:
            n = 0
            while not stop.is_set():
                guest = f"lc-purge-{run}-g{n}"
                feed_idle_guest(c, guest, PER_GUEST)
                guests.append(guest)
                n += 1
                time.sleep(0.005)
                while not stop.is_set():
                    try:
                        fed.put(guest, timeout=0.1)
                        break
                    except queue.Full:
                        continue

    def claimer() -> None:
        with connect(url) as c:
            while not stop.is_set():
                try:
                    guest = fed.get(timeout=0.1)
                except queue.Empty:
                    continue
                row = c.execute(
                    "SELECT user_id, migrated_sessions FROM api.register_user('P', %s, %s, %s)",
                    [f"{guest}@example.test", PASSWORD, guest],
                ).fetchone()
                assert row is not None
                registrations.append((guest, row[0], row[1]))

    def purger() -> None:
        with connect(url) as c:
            while not stop.is_set():
                row = c.execute(
                    "SELECT api.purge_guest_sessions(%s::interval)", [PURGE_AFTER]
                ).fetchone()
                assert row is not None
                purged.append(row[0])
                time.sleep(
                    random.random() * 0.03
                )  # so that claims win some sessions, and purge others

    def chatter() -> None:
        # A guest still chatting in an idle session: its activity must keep it.
        with connect(url) as c:
            while not stop.is_set():
                if not guests:
                    time.sleep(0.01)
                    continue
                guest = random.choice(guests[-6:])
                sid = f"{guest}-s{random.randrange(PER_GUEST)}"
                try:
                    c.execute("SELECT api.add_message(%s, %s, 'user', 'still here')", [sid, guest])
                    chat["ok"] += 1
                except psycopg.Error as exc:
                    if exc.sqlstate not in ("42501", "P0002"):  # claimed, or purged: both fine
                        raise
                    chat[exc.sqlstate] += 1

    workers = [
        threading.Thread(target=guarded(f)) for f in (feeder, claimer, claimer, purger, chatter)
    ]
    for w in workers:
        w.start()
    stop.wait(duration)
    stop.set()
    for w in workers:
        w.join(timeout=60)
        assert not w.is_alive(), "a worker hung: deadlock or lock wait"
    assert failures == [], failures  # a deadlock would show here as 40P01
    assert sum(purged) > 0 and sum(r[2] for r in registrations) > 0, "no race took place"

    try:
        expected = {guest: (user_id, migrated) for guest, user_id, migrated in registrations}
        with connect(url) as c:
            audit = c.execute(
                "SELECT c.anonymous_user_id, c.user_id, count(*), count(s.session_id),"
                "       count(*) FILTER (WHERE s.user_id = c.user_id"
                "                          AND NOT s.metadata ? 'anonymousUserId'"
                "                          AND c.method = 'register')"
                "  FROM public.session_claims AS c"
                "  LEFT JOIN public.conversation_sessions AS s ON s.session_id = c.session_id"
                " WHERE c.anonymous_user_id LIKE %s GROUP BY 1, 2",
                [f"lc-purge-{run}-%"],
            ).fetchall()
            for guest, user_id, claims, existing, agreeing in audit:
                assert expected[guest] == (user_id, claims), (
                    f"{guest}: audit disagrees with migrated_sessions"
                )
                assert existing == claims, f"{guest}: a claimed session was deleted"
                assert agreeing == claims, f"{guest}: a claimed session is not its user's"
            assert sum(row[2] for row in audit) == sum(m for _, m in expected.values())
            users = [user_id for user_id, _ in expected.values()]
            owned: dict[Any, int] = dict(
                c.execute(
                    "SELECT user_id, count(*) FROM public.conversation_sessions"
                    " WHERE user_id = ANY(%s) GROUP BY 1",
                    [users],
                ).fetchall()
            )
            assert owned == {u: m for u, m in expected.values() if m}, (
                "sessions owned disagree with the claims"
            )
            empty = c.execute(
                "SELECT count(*) FROM public.conversation_sessions AS s WHERE s.user_id = ANY(%s)"
                " AND NOT EXISTS (SELECT 1 FROM public.conversation_messages AS m"
                "                  WHERE m.session_id = s.session_id)",
                [users],
            ).fetchone()
            assert empty == (0,), "a claimed session lost its messages"
            # Whatever was neither claimed nor purged is still its guest's.
            leftovers = c.execute(
                "SELECT count(*) FROM public.conversation_sessions WHERE session_id LIKE %s"
                " AND user_id IS NULL"
                " AND NOT (metadata ->> 'anonymousUserId' = split_part(session_id, '-s', 1))",
                [f"lc-purge-{run}-%"],
            ).fetchone()
            assert leftovers == (0,)
    finally:
        # Thousands of rows: leave none behind, for other tests' purges and snapshots.
        with connect(url) as c:
            c.execute(
                "DELETE FROM public.conversation_sessions WHERE session_id LIKE %s",
                [f"lc-purge-{run}-%"],
            )
            c.execute(
                "DELETE FROM public.session_claims WHERE anonymous_user_id LIKE %s",
                [f"lc-purge-{run}-%"],
            )
            c.execute("DELETE FROM public.users WHERE email LIKE %s", [f"lc-purge-{run}-%"])


# ---------------------------------------------------------------- delete_guest_data


@pytest.mark.parametrize("round_", range(3))
def test_a_guest_erasing_its_data_while_registering_loses_or_keeps_each_session_whole(
    url: str, round_: int
) -> None:
    run = tag()
    guest = f"lc-erase-{run}"
    with connect(url) as c:
        ids = guest_sessions(c, guest, guest, 40, message="hello", qa=True)
    barrier = threading.Barrier(2)
    result: dict[str, Any] = {}
    errors: list[str] = []

    def worker(n: int) -> None:
        with connect(url) as c:
            barrier.wait()
            try:
                if n == 0:
                    result["deleted"] = c.execute(
                        "SELECT api.delete_guest_data(%s)", [guest]
                    ).fetchone()
                else:
                    result["registered"] = c.execute(
                        "SELECT user_id, migrated_sessions FROM api.register_user('E', %s, %s, %s)",
                        [f"{guest}@example.test", PASSWORD, guest],
                    ).fetchone()
            except psycopg.Error as exc:
                errors.append(f"{exc.sqlstate} {exc}")

    run_threads(2, worker, timeout=60)
    assert errors == []
    (deleted,) = result["deleted"]
    user_id, migrated = result["registered"]
    assert deleted + migrated == 40
    with connect(url) as c:
        rows = c.execute(
            "SELECT session_id, user_id, metadata ? 'anonymousUserId'"
            " FROM public.conversation_sessions WHERE session_id = ANY(%s)",
            [ids],
        ).fetchall()
        assert len(rows) == migrated
        assert all(r[1] == user_id and not r[2] for r in rows)
        claims = c.execute(
            "SELECT session_id FROM public.session_claims WHERE anonymous_user_id = %s", [guest]
        ).fetchall()
        assert sorted(r[0] for r in claims) == sorted(r[0] for r in rows)
        kept = c.execute(
            "SELECT (SELECT count(*) FROM public.conversation_messages WHERE session_id = ANY(%s)),"
            "       (SELECT count(*) FROM public.qa_pairs WHERE session_id = ANY(%s))",
            [ids, ids],
        ).fetchone()
        assert kept == (migrated, migrated), (
            "messages and Q&A pairs went with exactly the deleted sessions"
        )


def test_delete_guest_data_erases_only_the_guests_unclaimed_sessions(url: str) -> None:
    run = tag()
    guest, other = f"lc-dgd-{run}", f"lc-dgd-other-{run}"
    with connect(url) as c:
        guest_sessions(c, guest, guest, 3, message="m")
        c.execute("SELECT api.create_or_get_session(%s, %s)", [f"{other}-0", other])
        user = c.execute(
            "SELECT user_id FROM api.register_user('D', %s, %s, %s)",
            [f"{guest}@example.test", PASSWORD, guest],
        ).fetchone()
        assert user is not None
        for i in range(3, 5):  # chatting as a guest again after registering
            c.execute("SELECT api.create_or_get_session(%s, %s)", [f"{guest}-{i}", guest])
        assert c.execute("SELECT api.delete_guest_data(%s)", [guest]).fetchone() == (2,)
        left = c.execute(
            "SELECT session_id, user_id FROM public.conversation_sessions WHERE session_id LIKE %s"
            " ORDER BY 1",
            [f"lc-dgd-%{run}-%"],
        ).fetchall()
        assert left == [(f"{guest}-{i}", user[0]) for i in range(3)] + [(f"{other}-0", None)]
        assert c.execute(
            "SELECT count(*) FROM public.conversation_messages WHERE session_id LIKE %s",
            [f"{guest}-%"],
        ).fetchone() == (3,)


# ---------------------------------------------------------------- deleted users


def test_sessions_of_a_deleted_user_are_kept_but_nobody_reads_uses_or_claims_them(url: str) -> None:
    run = tag()
    guest = f"lc-del-guest-{run}"
    with connect(url) as c:
        guest_sessions(c, guest, f"lc-del-{run}", 2, message="before sign-up", qa=True)
        doomed = c.execute(
            "SELECT user_id, token FROM api.register_user('Doomed', %s, %s, %s)",
            [f"lc-doomed-{run}@example.test", PASSWORD, guest],
        ).fetchone()
        assert doomed is not None
        user_id, token = str(doomed[0]), doomed[1]
        made = c.execute(
            "SELECT session_id FROM api.create_session('anonymous', '{}', %s)", [token]
        ).fetchone()
        assert made is not None
        c.execute("SELECT api.add_message(%s, %s, 'user', 'after sign-up')", [made[0], user_id])
        sessions = [f"lc-del-{run}-0", f"lc-del-{run}-1", made[0]]
        other = c.execute(
            "SELECT user_id FROM api.register_user('Other', %s, %s)",
            [f"lc-other-{run}@example.test", PASSWORD],
        ).fetchone()
        assert other is not None

        c.execute("DELETE FROM public.users WHERE id = %s", [user_id])

        rows = c.execute(
            "SELECT user_id, owner_deleted_at IS NOT NULL, metadata ? 'anonymousUserId'"
            " FROM public.conversation_sessions WHERE session_id = ANY(%s)",
            [sessions],
        ).fetchall()
        assert rows == [(None, True, False)] * 3, "kept, with user_id NULL, marked as orphaned"
        assert c.execute(
            "SELECT count(*) FROM public.conversation_messages WHERE session_id = ANY(%s)",
            [sessions],
        ).fetchone() == (3,)
        assert c.execute("SELECT api.authenticate(%s)", [token]).fetchone() == (None,)

        callers = [user_id, guest, None, "anonymous", str(other[0]), f"lc-stranger-{run}"]
        calls = [
            "SELECT api.create_or_get_session(%s, %s)",
            "SELECT * FROM api.get_messages(%s, %s)",
            "SELECT api.add_message(%s, %s, 'user', 'sneaking in')",
            "SELECT * FROM api.get_qa_pairs(%s, %s)",
            "SELECT api.add_qa_pair(%s, %s, 'q', 'sneaking in')",
        ]
        for sid in sessions:
            for who in callers:
                for call in calls:
                    with pytest.raises(psycopg.Error) as caught:
                        c.execute(call, [sid, who]).fetchall()
                    assert caught.value.sqlstate == "42501", f"{who} via {call} on {sid}"
        for who in callers:
            listed = {
                r[0] for r in c.execute("SELECT session_id FROM api.list_sessions(%s)", [who])
            }
            assert listed.isdisjoint(sessions), f"{who} lists an orphaned session"
        # Not claimable by the guest that once owned them, by a new account or by a login.
        again = c.execute(
            "SELECT migrated_sessions FROM api.register_user('Again', %s, %s, %s)",
            [f"lc-again-{run}@example.test", PASSWORD, guest],
        ).fetchone()
        assert again == (0,)
        login = c.execute(
            "SELECT migrated_sessions FROM api.login(%s, %s, %s)",
            [f"lc-other-{run}@example.test", PASSWORD, guest],
        ).fetchone()
        assert login == (0,)
        # Neither a guest's erasure nor the purge of idle guest sessions touches them.
        assert c.execute("SELECT api.delete_guest_data(%s)", [guest]).fetchone() == (0,)
        c.execute(
            "UPDATE public.conversation_sessions SET updated_at = now() - %s::interval"
            " WHERE session_id = ANY(%s)",
            [IDLE, sessions],
        )
        c.execute("SELECT api.purge_guest_sessions(%s::interval)", [PURGE_AFTER])
        rows = c.execute(
            "SELECT user_id, owner_deleted_at IS NOT NULL FROM public.conversation_sessions"
            " WHERE session_id = ANY(%s)",
            [sessions],
        ).fetchall()
        assert rows == [(None, True)] * 3


def test_purge_skips_a_session_another_transaction_holds_instead_of_waiting_for_it(url: str) -> None:
    """A transaction holds one idle guest session (a claim or a message in flight).  Purge, with
    a lock_timeout that would fail it if it waited, deletes the others and leaves that one; the
    next purge, once the lock is gone, deletes it."""
    guest = f"lc-held-{tag()}"
    purger, holder = connect(url), connect(url)
    try:
        ids = feed_idle_guest(purger, guest, 3)
        with holder.transaction():
            holder.execute("SELECT 1 FROM public.conversation_sessions WHERE session_id = %s FOR UPDATE",
                           [ids[0]])
            purger.execute("SET lock_timeout = '300ms'")
            start = time.monotonic()
            purger.execute("SELECT api.purge_guest_sessions(%s)", [PURGE_AFTER])
            assert time.monotonic() - start < 0.3, "purge waited for the held session"
            left = purger.execute("SELECT session_id FROM public.conversation_sessions"
                                  " WHERE session_id = ANY(%s)", [ids]).fetchall()
            assert left == [(ids[0],)], "the held session is skipped, the others purged"
        purger.execute("RESET lock_timeout")
        purger.execute("SELECT api.purge_guest_sessions(%s)", [PURGE_AFTER])
        left = purger.execute("SELECT count(*) FROM public.conversation_sessions"
                              " WHERE session_id = ANY(%s)", [ids]).fetchone()
        assert left == (0,), "once free, it is purged"
    finally:
        purger.close()
        holder.close()
