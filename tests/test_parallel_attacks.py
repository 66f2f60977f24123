"""Attackers who run calls in parallel (issue 10): the login throttle, refresh-token
reuse revocation, and the bound on concurrent password hashing.

Each test attacks for real: threads on separate connections, released together
by a barrier, repeated until a race would show, and the database checked
afterwards.  A sequential test proves nothing about a race.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from helpers import Conn, connect, run_threads, settings_changed, tag

PASSWORD = "correct horse"
SLOT_CLASS = "hashtext('chatmem hash slot')"


@pytest.fixture(scope="module")
def url(admin_url: str) -> Iterator[str]:
    """The test database with bcrypt at cost 4 and the default throttle and hashing bounds."""
    with settings_changed(admin_url, bcrypt_cost=4, login_failure_limit=5,
                          login_failure_window="15 minutes", max_concurrent_hashes=1,
                          hash_wait="1 second"):
        yield admin_url


def sqlstate_of(conn: Conn, query: str, params: list[Any]) -> str | None:
    try:
        conn.execute(query, params)
    except psycopg.Error as exc:
        return exc.sqlstate
    return None


def connections(url: str, count: int) -> list[Conn]:
    return [connect(url) for _ in range(count)]


# ---------------------------------------------------------------- the throttle


@pytest.mark.parametrize("round_", range(3))
def test_a_hundred_parallel_wrong_passwords_reach_bcrypt_at_most_limit_times(
    url: str, round_: int
) -> None:
    """100 attempts on 16 connections at once: 5 are checked (28P01), 95 get CM001 unchecked,
    and the right password is refused while throttled."""
    email = f"pa-throttle-{tag()}@example.test"
    pool = connections(url, 16)
    try:
        pool[0].execute("SELECT FROM api.register_user('Victim', %s, %s)", [email, PASSWORD])
        answers: list[str | None] = []
        lock = threading.Lock()
        barrier = threading.Barrier(16)

        def attacker(n: int) -> None:
            barrier.wait()
            for attempt in range(n, 100, 16):  # 100 attempts spread over the 16 connections
                state = sqlstate_of(pool[n], "SELECT * FROM api.login(%s, %s)",
                                    [email.upper() if attempt % 2 else email, f"guess {attempt}"])
                with lock:
                    answers.append(state)

        run_threads(16, attacker)
        counts = Counter(answers)
        assert counts == Counter({"CM001": 95, "28P01": 5}), counts
        recorded = pool[0].execute(
            "SELECT count(*) FROM public.login_failures WHERE email = %s", [email]).fetchone()
        assert recorded == (5,), "every checked guess is counted, and only those"
        assert sqlstate_of(pool[0], "SELECT * FROM api.login(%s, %s)", [email, PASSWORD]) == "CM001"
    finally:
        pool[0].execute("DELETE FROM public.login_failures WHERE email = %s", [email])
        for c in pool:
            c.close()


def test_oversized_emails_are_refused_before_any_work_and_cannot_dodge_the_count(url: str) -> None:
    conn = connect(url)
    try:
        huge = "a" * 900_000 + "@example.test"
        for query in ("SELECT * FROM api.login(%s, 'some password')",
                      "SELECT * FROM api.register_user('Huge', %s, 'some password')"):
            with pytest.raises(psycopg.Error) as caught:
                conn.execute(query, [huge])
            assert caught.value.sqlstate == "22023"
            assert (caught.value.diag.message_primary or "").startswith("p_email: is 900013 characters")
            assert len(str(caught.value)) < 1000, "the message must not echo the input"
        # 255 characters is over the limit, 254 is not.
        edge = "b" * 242 + "@example.test"
        assert len(edge) == 255
        assert sqlstate_of(conn, "SELECT * FROM api.login(%s, 'x')", [edge]) == "22023"
        assert sqlstate_of(conn, "SELECT * FROM api.login(%s, 'x')", [edge[1:]]) == "28P01"
        conn.execute("DELETE FROM public.login_failures WHERE email = %s", [edge[1:]])
    finally:
        conn.close()


# ---------------------------------------------------------------- refresh reuse


def family_tokens_alive(conn: Conn, tokens: list[tuple[str, str]]) -> list[str]:
    """Which of these (kind, token) still work: access tokens authenticate, refresh tokens refresh."""
    alive = []
    for kind, token in tokens:
        if kind == "access":
            row = conn.execute("SELECT api.authenticate(%s)", [token]).fetchone()
            if row is not None and row[0] is not None:
                alive.append(f"access {token[:8]}")
        elif sqlstate_of(conn, "SELECT * FROM api.refresh(%s)", [token]) is None:
            alive.append(f"refresh {token[:8]}")
    return alive


def exchange(conn: Conn, refresh: str, results: dict[str, Any], name: str,
             barrier: threading.Barrier | None) -> None:
    """One api.refresh of ``refresh``: its tokens or its SQLSTATE, and its duration, into ``results``."""
    if barrier is not None:
        barrier.wait()
    start = time.monotonic()
    try:
        results[name] = conn.execute(
            "SELECT token, refresh_token FROM api.refresh(%s)", [refresh]).fetchone()
    except psycopg.Error as exc:
        results[name] = exc.sqlstate
    results[name + " seconds"] = time.monotonic() - start


@pytest.mark.parametrize("concurrent", [True, False], ids=["at-once", "one-after-the-other"])
def test_two_refreshes_with_one_token_revoke_every_token_of_the_login_every_time(
    url: str, concurrent: bool
) -> None:
    """50 logins; each refresh token is exchanged twice.  Afterwards no token of that login
    works, in every run, no call stalls, and no autonomous write failed."""
    email = f"pa-refresh-{tag()}@example.test"
    a, b, check = connections(url, 3)
    notices: list[str] = []
    for c in (a, b):
        c.add_notice_handler(lambda d: notices.append(d.message_primary or ""))
    try:
        registered = check.execute("SELECT token FROM api.register_user('Twice', %s, %s)",
                                   [email, PASSWORD]).fetchone()
        assert registered is not None
        check.execute("SELECT api.logout(%s)", [registered[0]])  # only the 50 logins stay live
        for _ in range(50):
            login = check.execute("SELECT token, refresh_token FROM api.login(%s, %s)",
                                  [email, PASSWORD]).fetchone()
            assert login is not None
            access, refresh = login
            results: dict[str, Any] = {}
            if concurrent:
                barrier = threading.Barrier(2)
                threads = [threading.Thread(target=exchange, args=(c, refresh, results, n, barrier))
                           for c, n in ((a, "a"), (b, "b"))]
                for t in threads:
                    t.start()
                for t in threads:
                    t.join(30)
            else:
                exchange(a, refresh, results, "a", None)
                exchange(b, refresh, results, "b", None)
            outcomes = sorted([results["a"], results["b"]], key=lambda r: isinstance(r, str))
            assert isinstance(outcomes[0], tuple) and outcomes[1] == "28000", outcomes
            assert max(results["a seconds"], results["b seconds"]) < 1.0, "a refresh stalled"
            new_access, new_refresh = outcomes[0]
            alive = family_tokens_alive(check, [("access", access), ("refresh", refresh),
                                                ("access", new_access), ("refresh", new_refresh)])
            assert alive == [], f"still valid after the reuse: {alive}"
        family = check.execute(
            "SELECT count(*) FILTER (WHERE revoked_at IS NULL) FROM public.auth_tokens t"
            " JOIN public.users u ON u.id = t.user_id WHERE lower(u.email) = %s", [email]).fetchone()
        assert family == (0,), "every token of every one of these logins is revoked in the table"
        assert not [n for n in notices if "autonomous" in n], notices
    finally:
        for c in (a, b, check):
            c.close()


# ---------------------------------------------------------------- bounded hashing


def slot_holders(conn: Conn) -> int:
    # This database's slots only: advisory locks are per database, and other
    # databases of a shared server hold slots of their own.
    row = conn.execute(
        f"SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted"
        f" AND classid = {SLOT_CLASS}::oid AND objsubid = 2"
        f" AND database = (SELECT oid FROM pg_database WHERE datname = current_database())").fetchone()
    assert row is not None
    return int(row[0])


def test_no_more_than_max_concurrent_hashes_bcrypt_runs_at_once(admin_url: str) -> None:
    """16 connections log in at once, over and over, at a real bcrypt cost; a monitor samples
    pg_locks: the slots held never exceed the setting, and every call was checked (28P01)."""
    run = tag()
    with settings_changed(admin_url, bcrypt_cost=8, max_concurrent_hashes=2, hash_wait="30 seconds"):
        pool = connections(admin_url, 16)
        monitor = connect(admin_url)
        seen: list[int] = []
        done = threading.Event()

        def sample() -> None:
            while not done.is_set():
                seen.append(slot_holders(monitor))

        sampler = threading.Thread(target=sample)
        sampler.start()
        answers: Counter[str | None] = Counter()
        barrier = threading.Barrier(16)

        def login(n: int) -> None:
            barrier.wait()
            for i in range(4):
                state = sqlstate_of(pool[n], "SELECT * FROM api.login(%s, 'wrong')",
                                    [f"pa-slots-{run}-{n}-{i}@example.test"])
                answers[state] += 1

        try:
            run_threads(16, login)
        finally:
            done.set()
            sampler.join()
            pool[0].execute("DELETE FROM public.login_failures WHERE email LIKE %s",
                            [f"pa-slots-{run}-%"])
            for c in (*pool, monitor):
                c.close()
    assert answers == Counter({"28P01": 64}), answers
    assert max(seen) == 2, f"slots held at once, sampled: max {max(seen)}"


def test_a_login_that_gets_no_slot_in_time_is_refused_with_cm004_and_learns_nothing(
    url: str, admin_url: str
) -> None:
    """With every slot held, a known and an unknown email get the same CM004 after hash_wait,
    nothing is counted, and the right password does not get in."""
    email = f"pa-busy-{tag()}@example.test"
    conn, holder = connections(url, 2)
    try:
        conn.execute("SELECT FROM api.register_user('Busy', %s, %s)", [email, PASSWORD])
        with settings_changed(admin_url, max_concurrent_hashes=1, hash_wait="200 milliseconds"):
            with holder.transaction():
                holder.execute(f"SELECT pg_advisory_xact_lock({SLOT_CLASS}, 0)")
                answers = []
                for who, password in ((email, PASSWORD), (email, "wrong"),
                                      (f"nobody-{email}", "wrong")):
                    start = time.monotonic()
                    with pytest.raises(psycopg.Error) as caught:
                        conn.execute("SELECT * FROM api.login(%s, %s)", [who, password])
                    waited = time.monotonic() - start
                    assert 0.19 < waited < 1.0, waited
                    answers.append((caught.value.sqlstate, caught.value.diag.message_primary))
                with pytest.raises(psycopg.Error) as caught:
                    conn.execute("SELECT * FROM api.register_user('New', %s, %s)",
                                 [f"new-{email}", PASSWORD])
                assert caught.value.sqlstate == "CM004"
            assert len(set(answers)) == 1 and answers[0][0] == "CM004", answers
            counted = conn.execute("SELECT count(*) FROM public.login_failures WHERE email LIKE %s",
                                   [f"%{email}"]).fetchone()
            assert counted == (0,), "a refusal before hashing is no failed guess"
            assert conn.execute("SELECT count(*) FROM public.users WHERE email = %s",
                                [f"new-{email}"]).fetchone() == (0,)
            # The slot freed: the next login hashes and succeeds.
            assert sqlstate_of(conn, "SELECT * FROM api.login(%s, %s)", [email, PASSWORD]) is None
    finally:
        conn.close()
        holder.close()


def test_hash_wait_zero_refuses_at_once_and_a_free_slot_is_taken_without_waiting(
    url: str, admin_url: str
) -> None:
    conn, holder = connections(url, 2)
    try:
        with settings_changed(admin_url, max_concurrent_hashes=2, hash_wait="0"), holder.transaction():
            holder.execute(f"SELECT pg_advisory_xact_lock({SLOT_CLASS}, 0)")
            # Slot 1 is free: taken whichever slot the call tries first.
            for i in range(10):
                assert sqlstate_of(conn, "SELECT * FROM api.login(%s, 'x')",
                                   [f"pa-free-{i}@example.test"]) == "28P01"
            holder.execute(f"SELECT pg_advisory_xact_lock({SLOT_CLASS}, 1)")
            start = time.monotonic()
            assert sqlstate_of(conn, "SELECT * FROM api.login('pa-free@example.test', 'x')",
                               []) == "CM004"
            assert time.monotonic() - start < 0.2
        assert conn.execute("SHOW lock_timeout").fetchone() == ("0",), "lock_timeout restored"
    finally:
        conn.execute("DELETE FROM public.login_failures WHERE email LIKE 'pa-free%'")
        conn.close()
        holder.close()
