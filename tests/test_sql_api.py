"""The SQL API where one pgTAP transaction cannot look: committed writes, isolation levels, races.

Every call goes through the application's role (``SET ROLE chatmem_app``) in
autocommit, as a client makes it.  Each test makes up its own ids and emails
and deletes what it committed.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import psycopg
import pytest

PASSWORD = "correct horse"
Conn = psycopg.Connection[tuple[Any, ...]]
Call = Callable[[Conn], object]


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def app_connection(url: str) -> Conn:
    """An autocommit connection acting as chatmem_app, the role applications use."""
    conn = psycopg.connect(url, autocommit=True)
    conn.execute("SET ROLE chatmem_app")
    return conn


@pytest.fixture
def app(admin_url: str) -> Iterator[Conn]:
    with app_connection(admin_url) as conn:
        yield conn


class Cleanup:
    """Remembers what a test committed and deletes it afterwards (as the superuser)."""

    def __init__(self) -> None:
        self.emails: list[str] = []
        self.session_ids: list[str] = []

    def run(self, admin: Conn) -> None:
        if self.session_ids:
            for table in ("conversation_sessions", "session_claims"):
                admin.execute(
                    f"DELETE FROM public.{table} WHERE session_id = ANY(%s)",
                    [self.session_ids],
                )
        if self.emails:
            lowered = [e.lower() for e in self.emails]
            admin.execute("DELETE FROM public.login_failures WHERE email = ANY(%s)", [lowered])
            admin.execute("DELETE FROM public.users WHERE lower(email) = ANY(%s)", [lowered])


@pytest.fixture
def cleanup(admin: Conn) -> Iterator[Cleanup]:
    todo = Cleanup()
    yield todo
    todo.run(admin)


def one(conn: Conn, query: str, params: list[object]) -> tuple[Any, ...]:
    row = conn.execute(query, params).fetchone()
    assert row is not None
    return row


def register(conn: Conn, cleanup: Cleanup) -> tuple[str, str, str, str]:
    """A new account; returns (email, user_id, token, refresh_token)."""
    email = unique("sqlapi") + "@example.test"
    cleanup.emails.append(email)
    user_id, token, refresh_token = one(
        conn,
        "SELECT user_id::text, token, refresh_token FROM api.register_user('Test', %s, %s)",
        [email, PASSWORD],
    )
    return email, user_id, token, refresh_token


def authenticate(conn: Conn, token: str) -> str | None:
    user_id: str | None = one(conn, "SELECT api.authenticate(%s)::text", [token])[0]
    return user_id


def refresh(conn: Conn, refresh_token: str) -> tuple[str, str]:
    token, new_refresh_token = one(
        conn, "SELECT token, refresh_token FROM api.refresh(%s)", [refresh_token]
    )
    return token, new_refresh_token


def users_with_email(admin: Conn, email: str) -> int:
    count: int = one(admin, "SELECT count(*) FROM public.users WHERE email = %s", [email])[0]
    return count


def sqlstate_of(call: Callable[[], object]) -> str | None:
    try:
        call()
    except psycopg.Error as exc:
        return exc.sqlstate
    return None


# ------------------------------------------------------------------------ (a) refresh-token reuse


@pytest.mark.parametrize(
    "in_transaction", [False, True], ids=["autocommit", "rolled-back-transaction"]
)
def test_reused_refresh_token_revokes_the_family_in_a_write_that_survives_the_error(
    admin_url: str, admin: Conn, cleanup: Cleanup, in_transaction: bool
) -> None:
    with app_connection(admin_url) as conn:
        _, user_id, token0, refresh0 = register(conn, cleanup)
        token1, refresh1 = refresh(conn, refresh0)
        token2, refresh2 = refresh(conn, refresh1)
        assert authenticate(conn, token2) == user_id

        # Replaying a spent refresh token: 28000, and the family is revoked.
        if in_transaction:
            conn.execute("BEGIN")
        with pytest.raises(psycopg.Error) as refused:
            conn.execute("SELECT * FROM api.refresh(%s)", [refresh0])
        if in_transaction:
            conn.execute("ROLLBACK")
        assert refused.value.sqlstate == "28000"
        assert refused.value.diag.message_primary == (
            "refresh token was already used; every token of this login is now revoked"
        )

    # A new connection sees the revocation: it was committed on its own.
    with app_connection(admin_url) as fresh:
        for token in (token0, token1, token2):
            assert authenticate(fresh, token) is None
        assert sqlstate_of(lambda: refresh(fresh, refresh2)) == "28000"
    family = one(
        admin,
        """SELECT count(*), count(revoked_at) FROM public.auth_tokens
            WHERE family_id = (SELECT family_id FROM public.auth_tokens
                                WHERE token_hash = sha256(convert_to(%s, 'UTF8')))""",
        [token2],
    )
    assert family == (6, 6), "every token of the family (3 pairs) is revoked"


def test_reuse_revokes_only_that_login(admin_url: str, cleanup: Cleanup) -> None:
    with app_connection(admin_url) as conn:
        email, user_id, _, refresh0 = register(conn, cleanup)
        other_token = one(conn, "SELECT token FROM api.login(%s, %s)", [email, PASSWORD])[0]
        refresh(conn, refresh0)
        assert sqlstate_of(lambda: refresh(conn, refresh0)) == "28000"
    with app_connection(admin_url) as fresh:
        assert authenticate(fresh, other_token) == user_id


def test_replaying_a_token_rotated_in_the_same_transaction_does_not_hang(
    admin_url: str, cleanup: Cleanup
) -> None:
    # The transaction holds the locks of its own rotation; the autonomous
    # revocation must give up (lock_timeout) instead of waiting forever.
    with app_connection(admin_url) as setup:
        _, _, _, refresh0 = register(setup, cleanup)
    conn = psycopg.connect(admin_url, autocommit=False)
    try:
        conn.execute("SET ROLE chatmem_app")
        conn.execute("SET statement_timeout = '10s'")
        refresh(conn, refresh0)
        assert sqlstate_of(lambda: refresh(conn, refresh0)) == "28000"
        conn.rollback()
    finally:
        conn.close()


# ------------------------------------------------------------------------ (b) isolation level


def assert_refused_at(app: Conn, level: str, query: str, params: list[object]) -> None:
    """``query`` in a transaction at ``level`` fails with 25001 and a hint (then rolled back)."""
    app.execute(f"BEGIN ISOLATION LEVEL {level}")
    with pytest.raises(psycopg.Error) as refused:
        app.execute(query, params)
    app.execute("ROLLBACK")
    assert refused.value.sqlstate == "25001"
    assert refused.value.diag.message_hint


@pytest.mark.parametrize("level", ["REPEATABLE READ", "SERIALIZABLE"])
def test_register_user_refuses_isolation_above_read_committed(
    app: Conn, admin: Conn, cleanup: Cleanup, level: str
) -> None:
    email = unique("iso") + "@example.test"
    cleanup.emails.append(email)
    assert_refused_at(app, level, "SELECT * FROM api.register_user('Iso', %s, %s)", [email, PASSWORD])
    assert users_with_email(admin, email) == 0

    # Beside it, the happy path: READ COMMITTED inside an explicit transaction works.
    app.execute("BEGIN ISOLATION LEVEL READ COMMITTED")
    app.execute("SELECT * FROM api.register_user('Iso', %s, %s)", [email, PASSWORD])
    app.execute("COMMIT")
    assert users_with_email(admin, email) == 1


@pytest.mark.parametrize("level", ["REPEATABLE READ", "SERIALIZABLE"])
def test_login_refuses_isolation_above_read_committed(
    app: Conn, cleanup: Cleanup, level: str
) -> None:
    email, _, _, _ = register(app, cleanup)
    assert_refused_at(app, level, "SELECT * FROM api.login(%s, %s)", [email, PASSWORD])

    app.execute("BEGIN ISOLATION LEVEL READ COMMITTED")
    row = app.execute("SELECT email FROM api.login(%s, %s)", [email, PASSWORD]).fetchone()
    app.execute("COMMIT")
    assert row == (email,)


# ------------------------------------------------------------------------ (c), (d) races


def race(url: str, calls: list[Call]) -> list[object]:
    """Run each call in its own connection, all released at once; returns results or exceptions."""
    conns = [app_connection(url) for _ in calls]
    barrier = threading.Barrier(len(calls))
    results: list[object] = [None] * len(calls)

    def worker(i: int) -> None:
        barrier.wait()
        try:
            results[i] = calls[i](conns[i])
        except Exception as exc:  # every outcome is reported back to the test
            results[i] = exc

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(len(calls))]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
        assert not any(t.is_alive() for t in threads), "a racing call hung"
    finally:
        for c in conns:
            c.close()
    return results


def open_session(session_id: str, guest: str) -> Call:
    def call(conn: Conn) -> object:
        return one(
            conn,
            "SELECT session_id, metadata ->> 'anonymousUserId'"
            "  FROM api.create_or_get_session(%s, %s)",
            [session_id, guest],
        )

    return call


@pytest.mark.slow
def test_twenty_concurrent_opens_of_one_new_session_leave_one_row_and_no_error(
    admin_url: str, admin: Conn, cleanup: Cleanup
) -> None:
    for _ in range(3):
        session_id, guest = unique("race-one"), unique("race-guest")
        cleanup.session_ids.append(session_id)
        results = race(admin_url, [open_session(session_id, guest)] * 20)
        errors = [r for r in results if isinstance(r, Exception)]
        assert errors == []
        assert set(results) == {(session_id, guest)}
        rows = admin.execute(
            "SELECT user_id, metadata FROM public.conversation_sessions WHERE session_id = %s",
            [session_id],
        ).fetchall()
        assert rows == [(None, {"anonymousUserId": guest})]


@pytest.mark.slow
def test_two_guests_racing_for_one_new_id_one_wins_the_other_gets_42501(
    admin_url: str, admin: Conn, cleanup: Cleanup
) -> None:
    for _ in range(5):
        session_id = unique("race-two")
        cleanup.session_ids.append(session_id)
        guests = [unique("guest-a"), unique("guest-b")]
        results = race(admin_url, [open_session(session_id, g) for g in guests])
        winners = [r for r in results if not isinstance(r, Exception)]
        losers = [r for r in results if isinstance(r, Exception)]
        assert len(winners) == 1 and len(losers) == 1, results
        assert isinstance(losers[0], psycopg.Error) and losers[0].sqlstate == "42501"
        winner_guest = winners[0][1]  # type: ignore[index]
        assert winner_guest in guests
        rows = admin.execute(
            "SELECT user_id, metadata ->> 'anonymousUserId' FROM public.conversation_sessions"
            " WHERE session_id = %s",
            [session_id],
        ).fetchall()
        assert rows == [(None, winner_guest)]
