"""Accounts after sign-up (issue 13): password change and reset, sign-out everywhere, export and
erasure, and sign-in through an identity provider, attacked where it matters.

The races are attacked for real: threads on separate connections released together by a
barrier, repeated, and the database checked afterwards.  Timing is compared by medians of
interleaved calls (drift in machine load hits both sides alike).
"""

from __future__ import annotations

import hashlib
import statistics
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from functools import partial
from typing import Any

import psycopg
import pytest
from psycopg import sql

from conftest import login_role_url
from helpers import Conn, connect, run_threads, settings_changed, tag

PASSWORD = "correct horse"
SLOT_CLASS = "hashtext('chatmem hash slot')"


@pytest.fixture(scope="module")
def url(admin_url: str) -> Iterator[str]:
    """The test database with bcrypt at cost 4, the default throttle, and hashing slots that
    make a race wait rather than fail with CM004."""
    with settings_changed(admin_url, bcrypt_cost=4, login_failure_limit=5,
                          login_failure_window="15 minutes", hash_wait="30 seconds",
                          link_identity_by_email=False):
        yield admin_url


def outcome(conn: Conn, query: str | sql.Composable, params: list[Any]) -> Any:
    """The first row of the call, or its SQLSTATE."""
    try:
        return conn.execute(query, params).fetchone()
    except psycopg.Error as exc:
        return exc.sqlstate


def sqlstate_of(conn: Conn, query: str, params: list[Any]) -> str | None:
    result = outcome(conn, query, params)
    return result if isinstance(result, str) else None


def race(*calls: Callable[[], Any]) -> list[Any]:
    """Run the calls at once, each in its thread, released together by a barrier; their results."""
    barrier = threading.Barrier(len(calls))
    results: list[Any] = [None] * len(calls)

    def run(n: int) -> None:
        barrier.wait()
        results[n] = calls[n]()

    run_threads(len(calls), run, timeout=60)
    return results


def register(conn: Conn, email: str, password: str = PASSWORD) -> tuple[str, str, str]:
    row = conn.execute("SELECT user_id, token, refresh_token FROM api.register_user('Acc', %s, %s)",
                       [email, password]).fetchone()
    assert row is not None
    return str(row[0]), row[1], row[2]


def login(conn: Conn, email: str, password: str = PASSWORD) -> tuple[str, str]:
    row = conn.execute("SELECT token, refresh_token FROM api.login(%s, %s)", [email, password]).fetchone()
    assert row is not None
    return row[0], row[1]


def family_of(conn: Conn, token: str) -> str:
    row = conn.execute("SELECT family_id FROM public.auth_tokens WHERE token_hash = sha256(convert_to(%s, 'UTF8'))",
                       [token]).fetchone()
    assert row is not None
    return str(row[0])


def live_tokens_outside(conn: Conn, user_id: str, family: str | None) -> int:
    """Tokens of the user, outside ``family``, that would still work: unrevoked, unexpired, unspent."""
    row = conn.execute(
        "SELECT count(*) FROM public.auth_tokens WHERE user_id = %s AND family_id IS DISTINCT FROM %s"
        " AND revoked_at IS NULL AND expires_at > now() AND used_at IS NULL", [user_id, family]).fetchone()
    assert row is not None
    return int(row[0])


def refresh_chain(conn: Conn, refresh: str, limit: int = 200) -> tuple[list[str], Any]:
    """Refresh again and again with each new refresh token, as a thief holding one would, until
    refused: the access tokens obtained, and what ended the chain (a SQLSTATE, or 'limit')."""
    access: list[str] = []
    for _ in range(limit):
        result = outcome(conn, "SELECT token, refresh_token FROM api.refresh(%s)", [refresh])
        if isinstance(result, str):
            return access, result
        access.append(result[0])
        refresh = result[1]
    return access, "limit"


# ---------------------------------------------------------------- reset tokens


@pytest.mark.parametrize("round_", range(2))
def test_two_resets_with_one_token_exactly_one_succeeds(url: str, round_: int) -> None:
    """20 tokens, each used twice at once: one reset wins, the other gets 28000, and the stored
    password is the winner's, every time."""
    email = f"acc-reset-{tag()}@example.test"
    a, b, check = connect(url), connect(url), connect(url)
    try:
        user_id, _, _ = register(check, email)
        for n in range(20):
            token = check.execute("SELECT api.request_password_reset(%s)", [email]).fetchone()
            assert token is not None
            passwords = (f"password a {n}", f"password b {n}")
            results = race(*(partial(outcome, c, "SELECT api.reset_password(%s, %s)", [token[0], p])
                             for c, p in zip((a, b), passwords, strict=True)))
            winners = [i for i, r in enumerate(results) if not isinstance(r, str)]
            assert len(winners) == 1 and results[1 - winners[0]] == "28000", results
            assert str(results[winners[0]][0]) == user_id
            stored = check.execute(
                "SELECT chatmem_internal.crypt(%s, password_hash) = password_hash,"
                "       chatmem_internal.crypt(%s, password_hash) = password_hash"
                "  FROM public.users WHERE id = %s", [*passwords, user_id]).fetchone()
            assert stored == tuple(i == winners[0] for i in range(2)), "the winner's password is stored"
            left = check.execute("SELECT count(*) FROM public.password_reset_tokens WHERE user_id = %s",
                                 [user_id]).fetchone()
            assert left == (0,), "the token is consumed"
    finally:
        for c in (a, b, check):
            c.close()


def reset_token_hashes(conn: Conn, email: str) -> list[bytes]:
    digest = hashlib.sha256(email.lower().encode()).digest()
    return [bytes(r[0]) for r in conn.execute(
        "SELECT token_hash FROM public.password_reset_tokens WHERE email_hash = %s ORDER BY id", [digest])]


@pytest.mark.parametrize("known", [True, False], ids=["account", "no-account"])
def test_parallel_reset_requests_never_leave_more_than_three_live_tokens(url: str, known: bool) -> None:
    """16 connections ask 10 resets each for one email at once; a monitor counts the email's
    tokens throughout: never more than 3, and the 3 left are the last 3 asked for."""
    email = f"acc-cap-{tag()}@example.test"
    pool = [connect(url) for _ in range(16)]
    monitor = connect(url)
    if known:
        register(monitor, email)
    issued: list[str] = []
    lock = threading.Lock()
    seen: list[int] = []
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            seen.append(len(reset_token_hashes(monitor, email)))

    sampler = threading.Thread(target=sample)
    barrier = threading.Barrier(16)

    def ask(n: int) -> None:
        barrier.wait()
        for _ in range(10):
            row = pool[n].execute("SELECT api.request_password_reset(%s)", [email.upper()]).fetchone()
            assert row is not None
            with lock:
                issued.append(row[0])

    sampler.start()
    try:
        run_threads(16, ask)
    finally:
        done.set()
        sampler.join()
    try:
        assert len(issued) == 160 and len(set(issued)) == 160
        assert seen and max(seen) <= 3, f"tokens of one email seen at once: max {max(seen)}"
        left = reset_token_hashes(monitor, email)
        assert len(left) == 3
        assert set(left) <= {hashlib.sha256(t.encode()).digest() for t in issued}
    finally:
        for c in (*pool, monitor):
            c.close()


@pytest.mark.parametrize("probe", ["first request", "repeated requests"])
def test_a_reset_request_takes_the_same_time_for_a_known_and_an_unknown_email(
    url: str, admin_url: str, probe: str
) -> None:
    """Medians over 200 interleaved requests each (after 5 warm-up rounds, which goes first
    alternating) differ by at most 25%: fresh emails each time (what a prober sees first), or
    the same two emails again and again.  A request takes about a millisecond, most of it the
    commit's WAL flush, which both paths pay."""
    run = tag()
    rounds = 205
    conn = connect(url)
    try:
        known = [f"acc-time-{run}-{i}@example.test" for i in range(rounds)]
        for email in (known if probe == "first request" else known[:1]):
            register(conn, email)

        def timed(email: str) -> float:
            start = time.perf_counter()
            row = conn.execute("SELECT api.request_password_reset(%s)", [email]).fetchone()
            elapsed = time.perf_counter() - start
            assert row is not None and len(row[0]) == 64
            return elapsed

        t_known: list[float] = []
        t_unknown: list[float] = []
        for i in range(rounds):
            j = i if probe == "first request" else 0
            unknown = f"acc-time-nobody-{run}-{j}@example.test"
            if i % 2:
                u, k = timed(unknown), timed(known[j])
            else:
                k, u = timed(known[j]), timed(unknown)
            if i >= 5:
                t_known.append(k)
                t_unknown.append(u)
        m_known, m_unknown = statistics.median(t_known), statistics.median(t_unknown)
        assert abs(m_known - m_unknown) <= 0.25 * max(m_known, m_unknown), (m_known, m_unknown)
    finally:
        conn.close()


# ---------------------------------------------------------------- revocation racing refresh


@pytest.mark.parametrize("round_", range(2))
def test_a_password_change_racing_refreshes_never_leaves_another_live_family(url: str, round_: int) -> None:
    """15 times: a change of password from one login while a thief keeps refreshing another
    login's tokens at the same instant.  The change succeeds, the thief's chain ends in 28000,
    and no token of the user outside the changing login works, in the table or by calling."""
    email = f"acc-race-{tag()}@example.test"
    a, b, check = connect(url), connect(url), connect(url)
    try:
        user_id, reg_token, _ = register(check, email)
        check.execute("SELECT api.logout(%s)", [reg_token])
        password = PASSWORD
        for n in range(15):
            mine, _ = login(check, email, password)
            _, thiefs_refresh = login(check, email, password)
            new_password = f"changed password {n}"
            changed, (stolen, ended) = race(
                partial(outcome, a, "SELECT api.change_password(%s, %s, %s)", [mine, password, new_password]),
                partial(refresh_chain, b, thiefs_refresh))
            assert changed == (True,), changed
            password = new_password
            assert ended == "28000", f"the thief's refreshes ended with {ended}"
            assert live_tokens_outside(check, user_id, family_of(check, mine)) == 0, "a live family is left"
            for token in stolen:
                assert check.execute("SELECT api.authenticate(%s)", [token]).fetchone() == (None,)
            assert str(check.execute("SELECT api.authenticate(%s)", [mine]).fetchone()[0]) == user_id, (
                "the changing login stays valid")
    finally:
        for c in (a, b, check):
            c.close()


def test_a_password_change_racing_one_refresh_revokes_it_or_refuses_it(url: str) -> None:
    """40 times, one refresh of another login at the same instant as the change: the refresh
    either went first, and its new tokens are revoked, or went second and was refused."""
    email = f"acc-race1-{tag()}@example.test"
    a, b, check = connect(url), connect(url), connect(url)
    firsts: Counter[str] = Counter()
    try:
        user_id, _, _ = register(check, email)
        password = PASSWORD
        for n in range(40):
            mine, _ = login(check, email, password)
            _, other_refresh = login(check, email, password)
            new_password = f"changed password {n}"
            changed, refreshed = race(
                partial(outcome, a, "SELECT api.change_password(%s, %s, %s)", [mine, password, new_password]),
                partial(outcome, b, "SELECT token, refresh_token FROM api.refresh(%s)", [other_refresh]))
            assert changed == (True,), changed
            password = new_password
            if isinstance(refreshed, str):
                assert refreshed == "28000", refreshed
                firsts["change"] += 1
            else:
                firsts["refresh"] += 1
                assert check.execute("SELECT api.authenticate(%s)", [refreshed[0]]).fetchone() == (None,)
                assert sqlstate_of(check, "SELECT * FROM api.refresh(%s)", [refreshed[1]]) == "28000"
            assert live_tokens_outside(check, user_id, family_of(check, mine)) == 0
            assert str(check.execute("SELECT api.authenticate(%s)", [mine]).fetchone()[0]) == user_id
    finally:
        for c in (a, b, check):
            c.close()
    assert sum(firsts.values()) == 40, firsts


def test_logout_everywhere_racing_refreshes_leaves_no_live_token(url: str) -> None:
    """15 times: sign out everywhere while a thief keeps refreshing another login: no token of
    the user works afterwards."""
    email = f"acc-out-{tag()}@example.test"
    a, b, check = connect(url), connect(url), connect(url)
    try:
        user_id, _, _ = register(check, email)
        for _ in range(15):
            mine, _ = login(check, email)
            _, thiefs_refresh = login(check, email)
            revoked, (stolen, ended) = race(
                partial(outcome, a, "SELECT api.logout_everywhere(%s)", [mine]),
                partial(refresh_chain, b, thiefs_refresh))
            assert isinstance(revoked, tuple) and revoked[0] >= 2, revoked
            assert ended == "28000", ended
            assert live_tokens_outside(check, user_id, None) == 0
            for token in [mine, *stolen]:
                assert check.execute("SELECT api.authenticate(%s)", [token]).fetchone() == (None,)
    finally:
        for c in (a, b, check):
            c.close()


def test_revoking_thousands_of_logins_holds_one_family_lock_at_a_time(url: str) -> None:
    """A user with 3000 live logins signs out everywhere: every family is revoked, and the call
    never holds more than a handful of locks (3000 transaction-scoped family locks would fill
    the shared lock table, about 64 per connection, and fail other sessions' transactions)."""
    email = f"acc-many-{tag()}@example.test"
    conn, monitor = connect(url), connect(url)
    try:
        user_id, token, _ = register(conn, email)
        conn.execute(
            "WITH fam AS (SELECT g, gen_random_uuid() AS f FROM generate_series(1, 3000) AS g)"
            " INSERT INTO public.auth_tokens (token_hash, kind, user_id, family_id, pair_id, expires_at)"
            " SELECT sha256(convert_to(%s || g || k, 'UTF8')), k, %s, f, f, now() + interval '1 day'"
            "   FROM fam, unnest(ARRAY['access', 'refresh']) AS k", [tag(), user_id])
        pid = conn.info.backend_pid
        seen: list[int] = []
        done = threading.Event()

        def sample() -> None:
            while not done.is_set():
                row = monitor.execute("SELECT count(*) FROM pg_locks WHERE pid = %s AND locktype = 'advisory'",
                                      [pid]).fetchone()
                assert row is not None
                seen.append(int(row[0]))

        sampler = threading.Thread(target=sample)
        sampler.start()
        try:
            revoked = conn.execute("SELECT api.logout_everywhere(%s)", [token]).fetchone()
        finally:
            done.set()
            sampler.join()
        assert revoked == (3001,)
        assert live_tokens_outside(conn, user_id, None) == 0
        assert max(seen) <= 2, f"advisory locks held at once by the call: {max(seen)}"
        held = conn.execute("SELECT count(*) FROM pg_locks WHERE pid = pg_backend_pid() AND locktype = 'advisory'"
                            ).fetchone()
        assert held == (0,), "no session-level family lock is left behind"
    finally:
        conn.close()
        monitor.close()


def test_a_cancelled_revocation_leaves_no_family_lock_behind(url: str) -> None:
    """A statement timeout in the middle of the revocation (the call waits for a family's lock
    that a refresh holds) fails the call, and the session holds no advisory lock afterwards."""
    email = f"acc-cancel-{tag()}@example.test"
    conn, holder = connect(url), connect(url)
    try:
        user_id, token, _ = register(conn, email)
        _, other_refresh = login(conn, email)
        family = family_of(conn, other_refresh)
        with holder.transaction():
            holder.execute("SELECT pg_advisory_xact_lock(hashtextextended('chatmem token family ' || %s, 0))",
                           [family])
            conn.execute("SET statement_timeout = '300ms'")
            assert sqlstate_of(conn, "SELECT api.logout_everywhere(%s)", [token]) == "57014"
            conn.execute("RESET statement_timeout")
        assert conn.execute("SELECT count(*) FROM pg_locks WHERE pid = pg_backend_pid() AND locktype = 'advisory'"
                            ).fetchone() == (0,)
        row = conn.execute("SELECT api.authenticate(%s)", [token]).fetchone()
        assert row is not None and str(row[0]) == user_id, "the failed call revoked nothing"
        assert conn.execute("SELECT api.logout_everywhere(%s)", [token]).fetchone() == (2,)
    finally:
        conn.close()
        holder.close()


# ---------------------------------------------------------------- the throttle, shared with login


def test_change_password_and_login_guesses_share_one_exact_throttle(url: str) -> None:
    """100 wrong passwords at once on 16 connections, half through api.login and half through
    api.change_password (with a stolen access token): 5 are checked (28P01), 95 get CM001."""
    email = f"acc-throttle-{tag()}@example.test"
    pool = [connect(url) for _ in range(16)]
    try:
        _, token, _ = register(pool[0], email)
        answers: list[str | None] = []
        lock = threading.Lock()
        barrier = threading.Barrier(16)

        def attacker(n: int) -> None:
            barrier.wait()
            for attempt in range(n, 100, 16):
                if attempt % 2:
                    state = sqlstate_of(pool[n], "SELECT * FROM api.login(%s, %s)", [email, f"guess {attempt}"])
                else:
                    state = sqlstate_of(pool[n], "SELECT api.change_password(%s, %s, 'new password')",
                                        [token, f"guess {attempt}"])
                with lock:
                    answers.append(state)

        run_threads(16, attacker)
        assert Counter(answers) == Counter({"CM001": 95, "28P01": 5}), Counter(answers)
        assert pool[0].execute("SELECT count(*) FROM public.login_failures WHERE email = %s",
                               [email]).fetchone() == (5,)
        assert sqlstate_of(pool[0], "SELECT api.change_password(%s, %s, 'new password')",
                           [token, PASSWORD]) == "CM001"
    finally:
        pool[0].execute("DELETE FROM public.login_failures WHERE email = %s", [email])
        for c in pool:
            c.close()


@pytest.mark.parametrize("function", ["change_password", "reset_password", "delete_account"])
def test_with_every_hashing_slot_held_password_functions_get_cm004_and_change_nothing(
    url: str, admin_url: str, function: str
) -> None:
    email = f"acc-busy-{tag()}@example.test"
    conn, holder = connect(url), connect(url)
    try:
        user_id, token, _ = register(conn, email)
        reset = conn.execute("SELECT api.request_password_reset(%s)", [email]).fetchone()
        assert reset is not None
        call, args = {
            "change_password": ("SELECT api.change_password(%s, %s, 'new password')", [token, PASSWORD]),
            "reset_password": ("SELECT api.reset_password(%s, 'new password')", [reset[0]]),
            "delete_account": ("SELECT api.delete_account(%s, %s)", [token, PASSWORD]),
        }[function]

        def state() -> Any:
            return conn.execute(
                "SELECT (SELECT u::text FROM public.users AS u WHERE u.id = %s),"
                "       (SELECT string_agg(t::text, ',' ORDER BY t.token_hash) FROM public.auth_tokens AS t"
                "         WHERE t.user_id = %s),"
                "       (SELECT count(*) FROM public.password_reset_tokens WHERE user_id = %s)",
                [user_id, user_id, user_id]).fetchone()

        before = state()
        with (settings_changed(admin_url, max_concurrent_hashes=1, hash_wait="200 milliseconds"),
              holder.transaction()):
            holder.execute(f"SELECT pg_advisory_xact_lock({SLOT_CLASS}, 0)")
            assert sqlstate_of(conn, call, args) == "CM004"
        assert state() == before
        assert conn.execute("SELECT count(*) FROM public.login_failures WHERE email = %s", [email]).fetchone() == (0,)
        assert sqlstate_of(conn, call, args) is None, "with the slot free, the same call succeeds"
    finally:
        conn.close()
        holder.close()


@pytest.mark.parametrize("call", [
    "SELECT api.change_password('t', 'x', 'y')", "SELECT api.request_password_reset('a@example.test')",
    "SELECT api.reset_password('t', 'new password')", "SELECT api.logout_everywhere('t')",
    "SELECT api.delete_account('t', 'x')", "SELECT * FROM api.link_identity('p', 's', 'a@example.test', 'A')",
])
def test_functions_that_rely_on_fresh_snapshots_refuse_repeatable_read(url: str, call: str) -> None:
    with psycopg.connect(url) as conn:
        conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
        with pytest.raises(psycopg.Error) as caught:
            conn.execute(call)
        assert caught.value.sqlstate == "25001"


# ---------------------------------------------------------------- no password: login's timing


def test_login_of_an_account_without_password_takes_as_long_as_an_unknown_email(
    url: str, admin_url: str
) -> None:
    """At the default bcrypt cost, over 20 interleaved attempts each after 3 warm-up rounds, the
    medians differ by at most 25%: a NULL hash pays the same dummy bcrypt as no account."""
    run = tag()
    conn = connect(url)
    email = f"acc-ident-{run}@example.test"
    conn.execute("SELECT FROM api.link_identity('https://idp.example', %s, %s, 'Ident')", [f"sub-{run}", email])
    unknown: list[float] = []
    identity: list[float] = []

    def attempt(who: str) -> float:
        start = time.perf_counter()
        state = sqlstate_of(conn, "SELECT * FROM api.login(%s, 'not the password')", [who])
        elapsed = time.perf_counter() - start
        assert state == "28P01"
        return elapsed

    try:
        with settings_changed(admin_url, bcrypt_cost=sql.DEFAULT):
            for i in range(23):
                u = attempt(f"acc-ident-nobody-{run}-{i}@example.test")
                w = attempt(email)
                conn.execute("DELETE FROM public.login_failures WHERE email = %s", [email])
                if i >= 3:
                    unknown.append(u)
                    identity.append(w)
        m_unknown, m_identity = statistics.median(unknown), statistics.median(identity)
        assert abs(m_unknown - m_identity) <= 0.25 * max(m_unknown, m_identity), (m_unknown, m_identity)
        assert min(m_unknown, m_identity) > 0.005, "bcrypt at the default cost should take milliseconds"
    finally:
        conn.execute("DELETE FROM public.login_failures WHERE email LIKE %s", [f"acc-ident-%{run}%"])
        conn.close()


# ---------------------------------------------------------------- erasure


def rows_naming(conn: Conn, needles: list[str]) -> dict[str, int]:
    """For every table in public (read from the catalog, so a table added later is checked too),
    how many rows hold one of the needles in their text, in any case (a bytea shows as hex)."""
    hits = {}
    for (table,) in conn.execute("SELECT format('%I.%I', schemaname, tablename) FROM pg_tables"
                                 " WHERE schemaname = 'public' ORDER BY 1").fetchall():
        row = conn.execute(sql.SQL(
            "SELECT count(*) FROM {} AS r WHERE EXISTS"
            " (SELECT FROM unnest(%s::text[]) AS n WHERE strpos(lower(r::text), lower(n)) > 0)").format(
                sql.SQL(table)), [needles]).fetchone()
        assert row is not None
        hits[table] = int(row[0])
    return hits


def everyone_else(conn: Conn, needles: list[str]) -> dict[str, str]:
    """A digest per table of every row that names none of the needles."""
    digests = {}
    for (table,) in conn.execute("SELECT format('%I.%I', schemaname, tablename) FROM pg_tables WHERE"
                                 " schemaname = 'public' AND tablename NOT LIKE '%%yoyo%%' ORDER BY 1").fetchall():
        row = conn.execute(sql.SQL(
            "SELECT md5(coalesce(string_agg(r::text, E'\\n' ORDER BY r::text), '')) FROM {} AS r WHERE NOT EXISTS"
            " (SELECT FROM unnest(%s::text[]) AS n WHERE strpos(lower(r::text), lower(n)) > 0)").format(
                sql.SQL(table)), [needles]).fetchone()
        assert row is not None
        digests[table] = str(row[0])
    return digests


def test_delete_account_leaves_nothing_of_the_account_in_any_table_and_nothing_else_changes(
    url: str, admin_url: str
) -> None:
    run = tag()
    conn = connect(url)
    email = f"acc-erase-{run}@example.test"
    guest, other_guest = f"acc-erase-guest-{run}", f"acc-erase-other-{run}"
    try:
        # Before the account: a reset asked for the email, a guest's sessions.
        conn.execute("SELECT api.request_password_reset(%s)", [email])
        for sid in (f"acc-erase-s1-{run}", f"acc-erase-s2-{run}"):
            conn.execute("SELECT api.create_or_get_session(%s, %s, '{\"topic\": \"mine\"}')", [sid, guest])
            conn.execute("SELECT api.add_message(%s, %s, 'user', 'my words')", [sid, guest])
            conn.execute("SELECT api.add_qa_pair(%s, %s, 'q?', 'a.')", [sid, guest])
        row = conn.execute("SELECT user_id, token, refresh_token FROM api.register_user('Erased Person', %s, %s, %s)",
                           [email, PASSWORD, guest]).fetchone()
        assert row is not None
        user_id, token, refresh = str(row[0]), row[1], row[2]
        # A life: a session after the claim, a rotated and a replayed refresh token, logins,
        # a failed login, reset tokens, an identity linked by email.
        conn.execute("SELECT api.create_session(%s, '{}', %s)", [user_id, token])
        rotated = conn.execute("SELECT token, refresh_token FROM api.refresh(%s)", [refresh]).fetchone()
        assert rotated is not None
        assert sqlstate_of(conn, "SELECT * FROM api.refresh(%s)", [refresh]) == "28000"
        mine, _ = login(conn, email)
        login(conn, email)
        assert sqlstate_of(conn, "SELECT * FROM api.login(%s, 'wrong')", [email]) == "28P01"
        conn.execute("SELECT api.request_password_reset(%s)", [email.upper()])
        with settings_changed(admin_url, link_identity_by_email=True):
            conn.execute("SELECT * FROM api.link_identity('https://idp.example', %s, %s, NULL)",
                         [f"acc-erase-sub-{run}", email])
        # Others: an account that claimed its own guest's session, and a guest.
        conn.execute("SELECT api.create_or_get_session(%s, %s)", [f"acc-keep-s-{run}", other_guest])
        conn.execute("SELECT api.add_message(%s, %s, 'user', 'their words')", [f"acc-keep-s-{run}", other_guest])
        register(conn, f"acc-keep-{run}@example.test")
        conn.execute("SELECT * FROM api.login(%s, %s, %s)", [f"acc-keep-{run}@example.test", PASSWORD, other_guest])
        conn.execute("SELECT api.create_or_get_session(%s, %s)", [f"acc-guest-s-{run}", f"acc-lone-guest-{run}"])

        sessions = [r[0] for r in conn.execute("SELECT session_id FROM public.conversation_sessions WHERE user_id = %s",
                                               [user_id])]
        needles = [user_id, email, "Erased Person", guest, f"acc-erase-sub-{run}", *sessions,
                   hashlib.sha256(email.encode()).hexdigest()]
        needles += [bytes(r[0]).hex() for r in conn.execute(
            "SELECT token_hash FROM public.auth_tokens WHERE user_id = %s UNION ALL"
            " SELECT token_hash FROM public.password_reset_tokens WHERE email_hash = sha256(convert_to(%s, 'UTF8'))",
            [user_id, email])]
        before = rows_naming(conn, needles)
        assert len(sessions) == 3
        assert {t for t, n in before.items() if n} >= {
            "public.users", "public.conversation_sessions", "public.conversation_messages", "public.qa_pairs",
            "public.auth_tokens", "public.session_claims", "public.login_failures", "public.password_reset_tokens",
            "public.user_identities"}, before
        others = everyone_else(conn, needles)

        erased = conn.execute("SELECT api.delete_account(%s, %s)", [mine, PASSWORD]).fetchone()
        assert erased == (3,)
        after = rows_naming(conn, needles)
        assert {t: n for t, n in after.items() if n} == {}, "rows naming the erased account remain"
        assert everyone_else(conn, needles) == others, "another account's or guest's rows changed"
    finally:
        conn.close()


@pytest.mark.parametrize("round_", range(2))
def test_an_erasure_racing_refreshes_and_a_provider_sign_in_leaves_nothing(url: str, admin_url: str,
                                                                          round_: int) -> None:
    """10 times: an account is erased while a thief refreshes another of its logins and the
    identity provider signs the same person in.  The refreshes end in 28000 (never a foreign-key
    error), and afterwards nothing of the erased account is left: the sign-in either went first
    and was erased with it, or went second and made a new account."""
    a, b, c, check = (connect(url) for _ in range(4))
    try:
        for n in range(10):
            run = tag()
            email = f"acc-erace-{run}@example.test"
            subject = f"acc-erace-sub-{run}"
            user_id, _, _ = register(check, email)
            with settings_changed(admin_url, link_identity_by_email=True):
                check.execute("SELECT * FROM api.link_identity('https://idp.example', %s, %s, NULL)", [subject, email])
                mine, _ = login(check, email)
                _, thiefs_refresh = login(check, email)
                erased, (_, ended), signed_in = race(
                    partial(outcome, a, "SELECT api.delete_account(%s, %s)", [mine, PASSWORD]),
                    partial(refresh_chain, b, thiefs_refresh),
                    partial(outcome, c, "SELECT user_id, created FROM api.link_identity(%s, %s, %s, NULL)",
                            ["https://idp.example", subject, email]))
            assert erased == (0,), erased
            assert ended == "28000", ended
            assert isinstance(signed_in, tuple), signed_in
            assert (str(signed_in[0]) == user_id) != signed_in[1], "either the old account or a new one"
            left = {t: k for t, k in rows_naming(check, [user_id]).items() if k}
            assert left == {}, f"round {n}: rows of the erased account remain: {left}"
    finally:
        for conn in (a, b, c, check):
            conn.close()


# ---------------------------------------------------------------- identities


def test_first_sign_ins_of_one_identity_at_once_make_one_account(url: str) -> None:
    """8 connections sign the same new identity in at once, with one guest's sessions: one
    account, created once, and each session claimed once (audit method identity)."""
    run = tag()
    pool = [connect(url) for _ in range(8)]
    guest = f"acc-id-guest-{run}"
    try:
        for i in range(5):
            pool[0].execute("SELECT api.create_or_get_session(%s, %s)", [f"acc-id-s{i}-{run}", guest])
        results = race(*(partial(
            outcome, conn, "SELECT user_id, created, migrated_sessions FROM api.link_identity(%s, %s, %s, NULL, %s)",
            ["https://idp.example", f"sub-{run}", f"acc-id-{run}@example.test", guest]) for conn in pool))
        assert all(isinstance(r, tuple) for r in results), results
        assert len({r[0] for r in results}) == 1
        assert sorted(r[1] for r in results) == [False] * 7 + [True]
        assert sum(r[2] for r in results) == 5
        claims = pool[0].execute("SELECT method, count(*) FROM public.session_claims WHERE anonymous_user_id = %s"
                                 " GROUP BY method", [guest]).fetchall()
        assert claims == [("identity", 5)]
    finally:
        for c in pool:
            c.close()


def test_only_a_login_role_in_chatmem_identity_broker_signs_people_in(url: str, admin_url: str, app_url: str) -> None:
    broker_url = login_role_url(admin_url, "chatmem_test_broker", ("chatmem_identity_broker",))
    run = tag()
    args = ["https://idp.example", f"sub-{run}", f"acc-broker-{run}@example.test", "B"]
    with psycopg.connect(app_url, autocommit=True) as app:
        assert sqlstate_of(app, "SELECT * FROM api.link_identity(%s, %s, %s, %s)", args) == "42501"
    with psycopg.connect(broker_url, autocommit=True) as broker:
        row = broker.execute("SELECT created, token FROM api.link_identity(%s, %s, %s, %s)", args).fetchone()
        assert row is not None and row[0] is True
        assert sqlstate_of(broker, "SELECT api.require_user(%s)", [row[1]]) == "42501"
        assert sqlstate_of(broker, "SELECT * FROM public.users", []) == "42501"
    with psycopg.connect(app_url, autocommit=True) as app:
        assert app.execute("SELECT api.require_user(%s)", [row[1]]).fetchone() is not None, (
            "the token it issued works for the application")
