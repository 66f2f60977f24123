"""Races, with real connections in threads: get-or-create, registrations of one
email, claims racing claims, sessions created while a claim runs, the guest cap,
and the isolation level register_user and login insist on.
"""

from __future__ import annotations

import random
import threading
from collections import Counter
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

# ``connect`` is looked up here by the tests, so that test_pgbouncer can swap it.
from helpers import Conn, connect, guest_sessions, run_threads, settings_changed, tag

PASSWORD = "correct horse"
# bcrypt at cost 4 and the default guest cap, which test_guest_cap_is_exact_under_concurrency counts on;
# and room for the claim races' guests, which send a user turn in each of 30 to 80 sessions (message
# allowances have their own tests: tests/test_allowances.py).
SETTINGS: dict[str, object] = {"bcrypt_cost": 4, "guest_sessions_per_hour": 100, "guest_messages_per_day": 200}


@pytest.fixture(scope="module")
def url(admin_url: str) -> Iterator[str]:
    """The test database with bcrypt cost 4, the default guest cap (100) and 200 user turns a day
    per guest for this module."""
    with settings_changed(admin_url, **SETTINGS):
        yield admin_url


def check_claims_agree(
    conn: Conn, ids: list[str], guest: str, expected: dict[Any, tuple[int, str]]
) -> None:
    """Every session in ``ids`` was claimed exactly once, by one of the users in
    ``expected`` ({user_id: (migrated_sessions, method)}), and the audit agrees."""
    rows = conn.execute(
        "SELECT session_id, user_id, metadata ? 'anonymousUserId' FROM public.conversation_sessions"
        " WHERE session_id = ANY(%s)",
        [ids],
    ).fetchall()
    assert len(rows) == len(ids), "a session was lost"
    assert all(r[1] in expected for r in rows), "a session is unclaimed or someone else's"
    assert not any(r[2] for r in rows), "a claimed session kept its anonymousUserId"
    per_user = Counter(r[1] for r in rows)
    for user_id, (migrated, _) in expected.items():
        assert per_user[user_id] == migrated, "migrated_sessions disagrees with the sessions"
    audit = conn.execute(
        "SELECT session_id, user_id, anonymous_user_id, method FROM public.session_claims"
        " WHERE session_id = ANY(%s)",
        [ids],
    ).fetchall()
    assert sorted(a[0] for a in audit) == sorted(ids), "each session has exactly one audit row"
    owner = {r[0]: r[1] for r in rows}
    for session_id, user_id, anonymous_user_id, method in audit:
        assert user_id == owner[session_id]
        assert anonymous_user_id == guest
        assert method == expected[user_id][1]
    messages = conn.execute(
        "SELECT count(*) FROM public.conversation_messages WHERE session_id = ANY(%s)", [ids]
    ).fetchone()
    assert messages == (len(ids),), "messages went missing in the claim"


# ---------------------------------------------------------------- get-or-create


def test_eight_workers_get_or_create_fifty_shared_ids_leave_fifty_rows_and_no_error(
    url: str,
) -> None:
    run = tag()
    owner = f"cc-owner-{run}"
    ids = [f"cc-goc-{run}-{i}" for i in range(50)]
    errors: list[str] = []
    barrier = threading.Barrier(8)

    def worker(n: int) -> None:
        rng = random.Random(n)
        # The first pass runs in the same order in every worker, so all eight
        # race to create each new id; the rest is random reuse.
        order = ids + [rng.choice(ids) for _ in range(450)]
        with connect(url) as c:
            barrier.wait()
            for sid in order:
                try:
                    row = c.execute(
                        "SELECT session_id, user_id, metadata ->> 'anonymousUserId'"
                        " FROM api.create_or_get_session(%s, %s)",
                        [sid, owner],
                    ).fetchone()
                    if row != (sid, None, owner):
                        errors.append(f"{sid}: returned {row}")
                except psycopg.Error as exc:
                    errors.append(f"{sid}: {exc.sqlstate} {exc}")

    run_threads(8, worker)
    assert errors == []
    with connect(url) as c:
        rows = c.execute(
            "SELECT user_id, metadata FROM public.conversation_sessions WHERE session_id = ANY(%s)",
            [ids],
        ).fetchall()
    assert len(rows) == 50
    assert all(r == (None, {"anonymousUserId": owner}) for r in rows)


def test_two_owners_racing_for_one_new_id_one_wins_the_other_gets_42501(url: str) -> None:
    run = tag()
    with connect(url) as c:
        user = c.execute(
            "SELECT user_id FROM api.register_user('Racer', %s, %s)",
            [f"cc-racer-{run}@example.test", PASSWORD],
        ).fetchone()
    assert user is not None
    owners = [f"cc-guest-{run}", str(user[0])]
    rounds = 25
    outcome: dict[tuple[int, int], str] = {}
    barriers = [threading.Barrier(2) for _ in range(rounds)]

    def worker(n: int) -> None:
        with connect(url) as c:
            for r in range(rounds):
                barriers[r].wait()
                try:
                    c.execute(
                        "SELECT api.create_or_get_session(%s, %s)",
                        [f"cc-duel-{run}-{r}", owners[n]],
                    )
                    outcome[(r, n)] = "won"
                except psycopg.Error as exc:
                    outcome[(r, n)] = exc.sqlstate or "?"

    run_threads(2, worker)
    with connect(url) as c:
        for r in range(rounds):
            results = sorted([outcome[(r, 0)], outcome[(r, 1)]])
            assert results == ["42501", "won"], f"round {r}: {results}"
            winner = 0 if outcome[(r, 0)] == "won" else 1
            row = c.execute(
                "SELECT user_id::text, metadata ->> 'anonymousUserId'"
                " FROM public.conversation_sessions WHERE session_id = %s",
                [f"cc-duel-{run}-{r}"],
            ).fetchall()
            assert row == ([(None, owners[0])] if winner == 0 else [(owners[1], None)])


# ---------------------------------------------------------------- registrations


def test_eight_registrations_of_one_email_in_different_cases_leave_one_user(url: str) -> None:
    run = tag()
    base = f"cc-same-{run}@example.test"
    rng = random.Random(run)
    spellings: set[str] = {base, base.upper()}
    while len(spellings) < 8:
        spellings.add("".join(ch.upper() if rng.random() < 0.5 else ch for ch in base))
    emails = sorted(spellings)
    guests = [f"cc-same-guest-{run}-{n}" for n in range(8)]
    with connect(url) as c:
        for n, guest in enumerate(guests):
            guest_sessions(c, guest, f"cc-same-{run}-{n}", 1)
    barrier = threading.Barrier(8)
    results: dict[int, Any] = {}

    def worker(n: int) -> None:
        with connect(url) as c:
            barrier.wait()
            try:
                results[n] = c.execute(
                    "SELECT user_id, migrated_sessions FROM api.register_user(%s, %s, %s, %s)",
                    [f"Same {n}", emails[n], PASSWORD, guests[n]],
                ).fetchone()
            except psycopg.Error as exc:
                results[n] = exc.sqlstate

    run_threads(8, worker)
    wins = [n for n, r in results.items() if isinstance(r, tuple)]
    assert len(wins) == 1, results
    assert sorted(r for r in results.values() if not isinstance(r, tuple)) == ["23505"] * 7
    winner = wins[0]
    user_id, migrated = results[winner]
    assert migrated == 1
    with connect(url) as c:
        assert c.execute(
            "SELECT id FROM public.users WHERE lower(email) = %s", [base]
        ).fetchall() == [(user_id,)]
        assert c.execute(
            "SELECT count(*) FROM public.auth_tokens WHERE user_id = %s", [user_id]
        ).fetchone() == (2,)
        claims = c.execute(
            "SELECT anonymous_user_id, user_id FROM public.session_claims"
            " WHERE anonymous_user_id = ANY(%s)",
            [guests],
        ).fetchall()
        assert claims == [(guests[winner], user_id)]
        # The losers' guest sessions are untouched: still their guests'.
        for n, guest in enumerate(guests):
            if n != winner:
                row = c.execute(
                    "SELECT user_id, metadata ->> 'anonymousUserId'"
                    " FROM public.conversation_sessions WHERE session_id = %s",
                    [f"cc-same-{run}-{n}-0"],
                ).fetchone()
                assert row == (None, guest)


@pytest.mark.parametrize("round_", range(3))
def test_two_registrations_claiming_one_guest_claim_each_session_once(
    url: str, round_: int
) -> None:
    run = tag()
    guest = f"cc-claim2-{run}"
    with connect(url) as c:
        ids = guest_sessions(c, guest, f"cc-claim2-{run}", 30)
    barrier = threading.Barrier(2)
    results: dict[int, tuple[Any, int]] = {}

    def worker(n: int) -> None:
        with connect(url) as c:
            barrier.wait()
            row = c.execute(
                "SELECT user_id, migrated_sessions FROM api.register_user(%s, %s, %s, %s)",
                [f"Claimer {n}", f"cc-claim2-{run}-{n}@example.test", PASSWORD, guest],
            ).fetchone()
            assert row is not None
            results[n] = (row[0], row[1])

    run_threads(2, worker)
    assert results[0][1] + results[1][1] == 30
    with connect(url) as c:
        check_claims_agree(
            c, ids, guest, {results[n][0]: (results[n][1], "register") for n in (0, 1)}
        )


@pytest.mark.parametrize("round_", range(3))
def test_a_registration_racing_a_login_claim_each_session_once(url: str, round_: int) -> None:
    run = tag()
    guest = f"cc-claimrl-{run}"
    with connect(url) as c:
        existing = c.execute(
            "SELECT user_id FROM api.register_user('Old', %s, %s)",
            [f"cc-old-{run}@example.test", PASSWORD],
        ).fetchone()
        assert existing is not None
        ids = guest_sessions(c, guest, f"cc-claimrl-{run}", 30)
    barrier = threading.Barrier(2)
    results: dict[str, tuple[Any, int]] = {}

    def worker(n: int) -> None:
        with connect(url) as c:
            barrier.wait()
            if n == 0:
                row = c.execute(
                    "SELECT user_id, migrated_sessions FROM api.register_user('New', %s, %s, %s)",
                    [f"cc-new-{run}@example.test", PASSWORD, guest],
                ).fetchone()
                assert row is not None
                results["register"] = (row[0], row[1])
            else:
                row = c.execute(
                    "SELECT user_id, migrated_sessions FROM api.login(%s, %s, %s)",
                    [f"cc-old-{run}@example.test", PASSWORD, guest],
                ).fetchone()
                assert row is not None
                results["login"] = (row[0], row[1])

    run_threads(2, worker)
    assert results["login"][0] == existing[0]
    assert results["register"][1] + results["login"][1] == 30
    with connect(url) as c:
        check_claims_agree(
            c, ids, guest, {uid: (count, method) for method, (uid, count) in results.items()}
        )


def test_guest_sessions_created_while_the_guest_is_claimed_end_claimed_or_still_the_guests(
    url: str,
) -> None:
    """Two threads keep opening sessions (each with a message) for one guest
    while a registration and then repeated logins claim that guest's sessions."""
    run = tag()
    guest = f"cc-during-{run}"
    email = f"cc-during-{run}@example.test"
    with connect(url) as c:
        ids = guest_sessions(c, guest, f"cc-during-{run}-pre", 10)
    created: list[str] = []
    messaged: list[str] = []
    claims: list[tuple[Any, int, str]] = []
    started = threading.Event()
    errors: list[str] = []

    def creator(n: int) -> None:
        with connect(url) as c:
            for i in range(35):
                sid = f"cc-during-{run}-{n}-{i}"
                c.execute("SELECT api.create_or_get_session(%s, %s)", [sid, guest])
                created.append(sid)
                if i == 5:
                    started.set()
                try:
                    c.execute("SELECT api.add_message(%s, %s, 'user', %s)", [sid, guest, sid])
                    messaged.append(sid)
                except psycopg.Error as exc:
                    # Claimed between the two calls: the guest may no longer write.
                    if exc.sqlstate != "42501":
                        errors.append(f"{sid}: {exc.sqlstate} {exc}")

    def claimer() -> None:
        started.wait(10)
        with connect(url) as c:
            row = c.execute(
                "SELECT user_id, migrated_sessions FROM api.register_user('During', %s, %s, %s)",
                [email, PASSWORD, guest],
            ).fetchone()
            assert row is not None
            claims.append((row[0], row[1], "register"))
            for _ in range(8):
                row = c.execute(
                    "SELECT user_id, migrated_sessions FROM api.login(%s, %s, %s)",
                    [email, PASSWORD, guest],
                ).fetchone()
                assert row is not None
                claims.append((row[0], row[1], "login"))

    run_threads(3, lambda n: claimer() if n == 2 else creator(n))
    assert errors == []
    everything = ids + created
    assert len(created) == 70
    user_id = claims[0][0]
    with connect(url) as c:
        rows = {
            r[0]: r[1:]
            for r in c.execute(
                "SELECT session_id, user_id, metadata ->> 'anonymousUserId'"
                " FROM public.conversation_sessions WHERE session_id = ANY(%s)",
                [everything],
            ).fetchall()
        }
        assert sorted(rows) == sorted(everything), "a session was lost"
        claimed = {sid for sid, (uid, _) in rows.items() if uid is not None}
        for sid, (uid, anonymous) in rows.items():
            assert (uid, anonymous) in ((user_id, None), (None, guest)), (
                f"{sid} is ({uid}, {anonymous})"
            )
        audit = c.execute(
            "SELECT session_id, user_id, method FROM public.session_claims"
            " WHERE anonymous_user_id = %s",
            [guest],
        ).fetchall()
        assert sorted(a[0] for a in audit) == sorted(claimed), (
            "the audit disagrees with the sessions"
        )
        assert all(a[1] == user_id for a in audit)
        assert sum(count for _, count, _ in claims) == len(claimed)
        by_method: Counter[str] = Counter()
        for _, count, method in claims:
            by_method[method] += count
        assert Counter(a[2] for a in audit) == +by_method
        assert set(ids) <= claimed, "the sessions that existed before registering were claimed"
        kept = c.execute(
            "SELECT session_id FROM public.conversation_messages WHERE session_id = ANY(%s)",
            [messaged],
        ).fetchall()
        assert sorted(k[0] for k in kept) == sorted(messaged), (
            "a message that was added went missing"
        )


# ---------------------------------------------------------------- the guest cap


@pytest.mark.parametrize("how", ["create_or_get_session", "create_session"])
def test_guest_cap_is_exact_under_concurrency(url: str, how: str) -> None:
    run = tag()
    guest = f"cc-cap-{run}"
    outcomes: list[str] = []
    barrier = threading.Barrier(8)

    def worker(n: int) -> None:
        with connect(url) as c:
            barrier.wait()
            for i in range(20):
                try:
                    if how == "create_or_get_session":
                        c.execute(
                            "SELECT api.create_or_get_session(%s, %s)",
                            [f"cc-cap-{run}-{n}-{i}", guest],
                        )
                    else:
                        c.execute("SELECT * FROM api.create_session(%s)", [guest])
                    outcomes.append("ok")
                except psycopg.Error as exc:
                    outcomes.append(exc.sqlstate or "?")

    run_threads(8, worker)
    assert Counter(outcomes) == {"ok": 100, "CM002": 60}
    with connect(url) as c:
        rows = c.execute(
            "SELECT count(*) FROM public.conversation_sessions"
            " WHERE user_id IS NULL AND metadata ->> 'anonymousUserId' = %s",
            [guest],
        ).fetchone()
    assert rows == (100,)


# ---------------------------------------------------------------- isolation


@pytest.mark.parametrize("level", ["REPEATABLE READ", "SERIALIZABLE"])
def test_register_and_login_refuse_above_read_committed_with_a_clear_error(
    url: str, level: str
) -> None:
    run = tag()
    email = f"cc-iso-{run}@example.test"
    with connect(url) as c:
        c.execute("SELECT FROM api.register_user('Iso', %s, %s)", [email, PASSWORD])
    with psycopg.connect(url) as c:  # not autocommit: an explicit transaction
        c.execute(f"SET TRANSACTION ISOLATION LEVEL {level}")
        with pytest.raises(psycopg.Error) as caught:
            c.execute(
                "SELECT * FROM api.register_user('Iso2', %s, %s)",
                [f"cc-iso2-{run}@example.test", PASSWORD],
            )
        c.rollback()
        assert caught.value.sqlstate == "25001"
        assert (
            caught.value.diag.message_primary
            == f"api.register_user must run at READ COMMITTED, not {level}"
        )
        assert caught.value.diag.message_hint
        c.execute(f"SET TRANSACTION ISOLATION LEVEL {level}")
        with pytest.raises(psycopg.Error) as caught:
            c.execute("SELECT * FROM api.login(%s, %s)", [email, PASSWORD])
        c.rollback()
        assert caught.value.sqlstate == "25001"
        assert (
            caught.value.diag.message_primary
            == f"api.login must run at READ COMMITTED, not {level}"
        )
        # READ COMMITTED inside an explicit transaction is fine.
        c.execute("SET TRANSACTION ISOLATION LEVEL READ COMMITTED")
        assert c.execute(
            "SELECT count(*) FROM api.login(%s, %s)", [email, PASSWORD]
        ).fetchone() == (1,)
        c.commit()
    with connect(url) as c:
        assert c.execute(
            "SELECT count(*) FROM public.users WHERE email = %s", [f"cc-iso2-{run}@example.test"]
        ).fetchone() == (0,)
