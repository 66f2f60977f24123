"""Hostile callers: impersonation and IDOR through every session function, an
application login role that can call the API and touch nothing else, no
secret at rest, bcrypt's cost, login timing, and failed-login throttling.
"""

from __future__ import annotations

import statistics
import time
from typing import Any

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict

from helpers import World, make_world, settings_changed, tag

Conn = psycopg.Connection[tuple[Any, ...]]
PASSWORD = "correct horse"


def sqlstate_of(conn: Conn, query: str, params: list[Any]) -> str | None:
    try:
        conn.execute(query, params).fetchall()
    except psycopg.Error as exc:
        return exc.sqlstate
    return None


@pytest.fixture
def world(conn: Conn) -> World:
    return make_world(conn, "hc", PASSWORD)


def session_row(conn: Conn, sid: str) -> tuple[Any, ...] | None:
    return conn.execute(
        "SELECT * FROM public.conversation_sessions WHERE session_id = %s", [sid]
    ).fetchone()


def counts(conn: Conn, sid: str) -> tuple[int, int]:
    row = conn.execute(
        "SELECT (SELECT count(*) FROM public.conversation_messages WHERE session_id = %s),"
        "       (SELECT count(*) FROM public.qa_pairs WHERE session_id = %s)",
        [sid, sid],
    ).fetchone()
    assert row is not None
    return row[0], row[1]


# ---------------------------------------------------------------- impersonation and IDOR


def test_create_session_never_opens_a_session_in_another_account(conn: Conn, world: World) -> None:
    w = world
    before = conn.execute(
        "SELECT count(*) FROM public.conversation_sessions WHERE user_id = %s", [w.alice]
    ).fetchone()
    # Knowing alice's id is not enough, with no token, a garbage one, or bob's.
    assert sqlstate_of(conn, "SELECT * FROM api.create_session(%s)", [w.alice]) == "28000"
    assert (
        sqlstate_of(conn, "SELECT * FROM api.create_session(%s, '{}', 'forged')", [w.alice])
        == "28000"
    )
    assert (
        sqlstate_of(conn, "SELECT * FROM api.create_session(%s, '{}', %s)", [w.alice, w.bob_token])
        == "42501"
    )
    assert (
        conn.execute(
            "SELECT count(*) FROM public.conversation_sessions WHERE user_id = %s", [w.alice]
        ).fetchone()
        == before
    )
    # A guest id beside a valid token is ignored: the token decides.
    row = conn.execute(
        "SELECT session_id, user_id FROM api.create_session(%s, '{}', %s)", [w.ga, w.bob_token]
    ).fetchone()
    assert row is not None and str(row[1]) == w.bob
    stored = session_row(conn, row[0])
    assert stored is not None and "anonymousUserId" not in stored[2]


def test_create_or_get_session_returns_a_session_only_to_its_owner(
    conn: Conn, world: World
) -> None:
    w = world
    sa_before, sga_before = session_row(conn, w.sa), session_row(conn, w.sga)
    for session, intruder in [*w.intruders(), (w.sga, w.bob)]:
        state = sqlstate_of(conn, "SELECT api.create_or_get_session(%s, %s)", [session, intruder])
        assert state == "42501", f"{intruder} opened {session}"
    assert session_row(conn, w.sa) == sa_before, "a refused call bumped or changed the row"
    assert session_row(conn, w.sga) == sga_before
    # Metadata offered by an intruder never lands either.
    assert (
        sqlstate_of(
            conn, "SELECT api.create_or_get_session(%s, %s, '{\"evil\": 1}')", [w.sa, w.bob]
        )
        == "42501"
    )
    assert session_row(conn, w.sa) == sa_before
    # The owners still get in, and an open session is open to anyone.
    conn.execute("SELECT api.create_or_get_session(%s, %s)", [w.sa, w.alice])
    conn.execute("SELECT api.create_or_get_session(%s, %s)", [w.sga, w.ga])
    for anyone in (w.bob, w.gb, None):
        conn.execute("SELECT api.create_or_get_session(%s, %s)", [w.so, anyone])


@pytest.mark.parametrize(
    "call",
    [
        "SELECT api.add_message(%s, %s, 'user', 'injected')",
        "SELECT * FROM api.get_messages(%s, %s)",
        "SELECT api.add_qa_pair(%s, %s, 'q', 'injected')",
        "SELECT * FROM api.get_qa_pairs(%s, %s)",
    ],
    ids=["add_message", "get_messages", "add_qa_pair", "get_qa_pairs"],
)
def test_messages_and_qa_pairs_of_a_session_are_its_owners_only(
    conn: Conn, world: World, call: str
) -> None:
    w = world
    sa_counts, sga_counts = counts(conn, w.sa), counts(conn, w.sga)
    for session, intruder in w.intruders():
        assert sqlstate_of(conn, call, [session, intruder]) == "42501", f"{intruder} used {session}"
    assert counts(conn, w.sa) == sa_counts and counts(conn, w.sga) == sga_counts
    assert sqlstate_of(conn, call, [f"hc-missing-{tag()}", w.alice]) == "P0002"
    # The owner succeeds, and so does anyone on an open session.
    assert sqlstate_of(conn, call, [w.sa, w.alice]) is None
    assert sqlstate_of(conn, call, [w.sga, w.ga]) is None
    assert sqlstate_of(conn, call, [w.so, w.gb]) is None


def test_list_sessions_lists_only_the_callers_own(conn: Conn, world: World) -> None:
    w = world

    def listed(who: str | None) -> set[str]:
        return {r[0] for r in conn.execute("SELECT session_id FROM api.list_sessions(%s)", [who])}

    assert w.sa in listed(w.alice) and w.sga not in listed(w.alice)
    assert listed(w.bob).isdisjoint({w.sa, w.sga, w.so})
    assert listed(w.ga) == {w.sga}
    assert listed(w.gb) == set()
    assert listed(None) == set() and listed("anonymous") == set()
    # Once alice claims ga's sessions, the guest id lists nothing and opens nothing.
    conn.execute("SELECT * FROM api.login(%s, %s, %s)", [w.alice_email, PASSWORD, w.ga])
    assert listed(w.ga) == set()
    assert {w.sa, w.sga} <= listed(w.alice)
    assert sqlstate_of(conn, "SELECT api.create_or_get_session(%s, %s)", [w.sga, w.ga]) == "42501"
    assert sqlstate_of(conn, "SELECT * FROM api.get_messages(%s, %s)", [w.sga, w.ga]) == "42501"


def test_a_guest_id_is_a_bearer_secret_whoever_knows_it_plants_sessions_the_owner_claims(
    conn: Conn, world: World
) -> None:
    """Accepted by design (docs/security.md): the guest id alone decides."""
    w = world
    planted = f"hc-planted-{tag()}"
    conn.execute("SELECT api.create_or_get_session(%s, %s)", [planted, w.gb])
    conn.execute(
        "SELECT api.add_message(%s, %s, 'assistant', 'planted by someone who knew gb')",
        [planted, w.gb],
    )
    row = conn.execute(
        "SELECT user_id, migrated_sessions FROM api.register_user('Gb', %s, %s, %s)",
        [f"hc-gb-{tag()}@example.test", PASSWORD, w.gb],
    ).fetchone()
    assert row is not None and row[1] == 1
    assert conn.execute(
        "SELECT user_id FROM public.conversation_sessions WHERE session_id = %s", [planted]
    ).fetchone() == (row[0],)


def test_a_replayed_refresh_token_revokes_the_whole_login_and_that_survives_the_error(
    conn: Conn,
) -> None:
    email = f"hc-refresh-{tag()}@example.test"
    conn.execute("SELECT FROM api.register_user('R', %s, %s)", [email, PASSWORD])
    login = conn.execute(
        "SELECT token, refresh_token FROM api.login(%s, %s)", [email, PASSWORD]
    ).fetchone()
    assert login is not None
    rotated = conn.execute(
        "SELECT token, refresh_token FROM api.refresh(%s)", [login[1]]
    ).fetchone()
    assert rotated is not None
    assert (
        sqlstate_of(conn, "SELECT * FROM api.refresh(%s)", [login[1]]) == "28000"
    )  # the thief's replay
    assert conn.execute("SELECT api.authenticate(%s)", [rotated[0]]).fetchone() == (None,)
    assert sqlstate_of(conn, "SELECT * FROM api.refresh(%s)", [rotated[1]]) == "28000"


# ---------------------------------------------------------------- the application login role


def test_an_application_login_role_in_chatmem_app_calls_the_api_and_touches_nothing_else(
    conn: Conn, admin_url: str
) -> None:
    role = f"chatmem_web_test_{tag()}"
    # As docs/security.md says, with a password in production; the embedded
    # cluster's socket trusts local connections, so none is needed here.
    conn.execute(sql.SQL("CREATE ROLE {} LOGIN IN ROLE chatmem_app").format(sql.Identifier(role)))
    superuser = conninfo_to_dict(admin_url).get("user") or "postgres"
    try:
        with psycopg.connect(admin_url, user=role, autocommit=True) as app:
            assert app.execute("SELECT current_user").fetchone() == (role,)
            run = tag()
            registered = app.execute(
                "SELECT user_id, token FROM api.register_user('Web', %s, %s)",
                [f"hc-web-{run}@example.test", PASSWORD],
            ).fetchone()
            assert registered is not None
            assert app.execute("SELECT api.authenticate(%s)", [registered[1]]).fetchone() == (
                registered[0],
            )
            made = app.execute(
                "SELECT session_id FROM api.create_session('anonymous', '{}', %s)", [registered[1]]
            ).fetchone()
            assert made is not None
            assert (
                app.execute(
                    "SELECT api.add_message(%s, %s, 'user', 'hi')", [made[0], str(registered[0])]
                ).fetchone()
                is not None
            )
            refused = {
                "read users": "SELECT * FROM public.users",
                "read sessions": "SELECT * FROM public.conversation_sessions",
                "read tokens": "SELECT * FROM public.auth_tokens",
                "write messages": "INSERT INTO public.conversation_messages"
                f" (session_id, role, content) VALUES ('{made[0]}', 'user', 'direct')",
                "update settings": "UPDATE public.chatmem_settings SET bcrypt_cost = 4",
                "delete claims": "DELETE FROM public.session_claims",
                "create in public": "CREATE TABLE public.hc_planted (x int)",
                "create in api": "CREATE FUNCTION api.hc_planted() RETURNS int"
                " LANGUAGE sql AS 'SELECT 1'",
                "call a helper": "SELECT chatmem_internal.settings()",
                "purge": "SELECT api.purge_guest_sessions('1 day', true)",
                "become the superuser": f"SET ROLE {superuser}",
                "become the admin role": "SET ROLE chatmem_admin",
            }
            for what, statement in refused.items():
                assert sqlstate_of(app, statement, []) == "42501", what
            info = app.info
            dsn = f"dbname={info.dbname} user={superuser} port={info.port} host={info.host}"
            assert (
                sqlstate_of(app, "SELECT public.dblink_exec(%s, 'DELETE FROM public.users')", [dsn])
                == "42501"
            )
    finally:
        conn.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(role)))


# ---------------------------------------------------------------- secrets at rest, bcrypt


def test_no_plain_token_or_password_is_stored_anywhere_after_a_full_scenario(conn: Conn) -> None:
    run = tag()
    password = f"Zebra-{run}-Quartz!"
    email = f"hc-rest-{run}@example.test"
    guest = f"hc-rest-guest-{run}"
    conn.execute("SELECT api.create_or_get_session(%s, %s)", [f"hc-rest-{run}", guest])
    conn.execute("SELECT api.add_message(%s, %s, 'user', 'hello')", [f"hc-rest-{run}", guest])
    secrets = [password]
    reg = conn.execute(
        "SELECT token, refresh_token FROM api.register_user('Rest', %s, %s, %s)",
        [email, password, guest],
    ).fetchone()
    assert reg is not None
    secrets += list(reg)
    sqlstate_of(
        conn, "SELECT * FROM api.login(%s, %s)", [email, password + "-wrong"]
    )  # a failure is recorded
    secrets.append(password + "-wrong")
    login = conn.execute(
        "SELECT token, refresh_token FROM api.login(%s, %s)", [email.upper(), password]
    ).fetchone()
    assert login is not None
    secrets += list(login)
    rotated = conn.execute(
        "SELECT token, refresh_token FROM api.refresh(%s)", [login[1]]
    ).fetchone()
    assert rotated is not None
    secrets += list(rotated)
    sqlstate_of(conn, "SELECT * FROM api.refresh(%s)", [login[1]])  # reuse: revokes, via dblink
    conn.execute("SELECT * FROM api.create_session('anonymous', '{}', %s)", [reg[0]])
    conn.execute("SELECT api.require_user(%s)", [reg[0]])
    conn.execute("SELECT api.logout(%s)", [reg[0]])
    tables = [
        r[0]
        for r in conn.execute(
            "SELECT format('%I.%I', schemaname, tablename) FROM pg_tables"
            " WHERE schemaname NOT IN ('pg_catalog', 'information_schema')"
        )
    ]
    assert "public.auth_tokens" in tables and "public.users" in tables
    for table in tables:
        for secret in secrets:
            # A row's text holds every column; a token stored as raw bytes
            # would show as its own hex in the bytea's text.
            found = conn.execute(
                sql.SQL(
                    "SELECT count(*) FROM {} AS t WHERE strpos(lower(t::text), lower(%s)) > 0"
                ).format(sql.SQL(table)),
                [secret],
            ).fetchone()
            assert found == (0,), f"{table} holds a secret in plain text"
    stored = conn.execute(
        "SELECT password_hash FROM public.users WHERE email = %s", [email]
    ).fetchone()
    assert stored is not None and stored[0].startswith("$2a$")
    hashes = conn.execute(
        "SELECT count(*) FROM public.auth_tokens WHERE token_hash = ANY("
        " SELECT sha256(convert_to(s, 'UTF8')) FROM unnest(%s::text[]) AS s)",
        [secrets[1:3] + secrets[4:]],
    ).fetchone()
    assert hashes == (6,), "each issued token is stored as its SHA-256"


def test_passwords_are_bcrypt_at_cost_ten_or_more_by_default(conn: Conn, admin_url: str) -> None:
    default = conn.execute(
        "SELECT column_default FROM information_schema.columns WHERE table_schema = 'public'"
        " AND table_name = 'chatmem_settings' AND column_name = 'bcrypt_cost'"
    ).fetchone()
    assert default is not None and int(default[0]) >= 10
    email = f"hc-cost-{tag()}@example.test"
    with settings_changed(admin_url, bcrypt_cost=sql.DEFAULT):
        conn.execute("SELECT FROM api.register_user('Cost', %s, %s)", [email, PASSWORD])
    stored = conn.execute(
        "SELECT password_hash FROM public.users WHERE email = %s", [email]
    ).fetchone()
    assert stored is not None
    assert stored[0].startswith(f"$2a${int(default[0]):02d}$") and stored[0].startswith("$2a$10$")
    assert len(stored[0]) == 60
    assert conn.execute("SELECT count(*) FROM api.login(%s, %s)", [email, PASSWORD]).fetchone() == (
        1,
    )


# ---------------------------------------------------------------- login timing


def test_unknown_email_and_wrong_password_take_the_same_time(conn: Conn, admin_url: str) -> None:
    """Over 30 attempts each at the default bcrypt cost, the medians differ by at most 25%."""
    run = tag()
    known = f"hc-timing-{run}@example.test"
    with settings_changed(admin_url, bcrypt_cost=sql.DEFAULT):
        conn.execute("SELECT FROM api.register_user('Timing', %s, %s)", [known, PASSWORD])
        m_unknown, m_wrong = median_login_times(conn, known, f"hc-nobody-{run}", rounds=33)
    assert abs(m_unknown - m_wrong) <= 0.25 * max(m_unknown, m_wrong), (m_unknown, m_wrong)
    assert min(m_unknown, m_wrong) > 0.005, "bcrypt at the default cost should take milliseconds"


def median_login_times(conn: Conn, known: str, unknown_prefix: str, rounds: int = 23) -> tuple[float, float]:
    """Medians of wrong-password logins for ``known`` and for fresh unknown emails (20 each
    by default), interleaved (drift in machine load hits both alike), after 3 warm-up rounds."""
    unknown: list[float] = []
    wrong: list[float] = []

    def attempt(email: str) -> float:
        start = time.perf_counter()
        state = sqlstate_of(conn, "SELECT * FROM api.login(%s, 'not the password')", [email])
        elapsed = time.perf_counter() - start
        assert state == "28P01"
        return elapsed

    try:
        for i in range(rounds):
            u = attempt(f"{unknown_prefix}-{i}@example.test")  # a fresh email: never throttled
            w = attempt(known)
            conn.execute("DELETE FROM public.login_failures WHERE email = %s", [known])
            if i >= 3:
                unknown.append(u)
                wrong.append(w)
    finally:
        conn.execute("DELETE FROM public.login_failures WHERE email LIKE %s", [f"{unknown_prefix}-%"])
    return statistics.median(unknown), statistics.median(wrong)


@pytest.mark.parametrize("stored_cost", [6, 8])
def test_known_and_unknown_emails_take_the_same_time_right_after_the_cost_is_raised(
    conn: Conn, admin_url: str, stored_cost: int
) -> None:
    """A hash stored at a lower cost than the current one is checked, then padded with bcrypt
    at the missing costs: a wrong password takes as long as an unknown email at cost 9."""
    run = tag()
    known = f"hc-cost-{run}@example.test"
    with settings_changed(admin_url, bcrypt_cost=stored_cost):
        conn.execute("SELECT FROM api.register_user('Cost', %s, %s)", [known, PASSWORD])
    with settings_changed(admin_url, bcrypt_cost=9):
        m_unknown, m_wrong = median_login_times(conn, known, f"hc-cost-nobody-{run}")
    assert abs(m_unknown - m_wrong) <= 0.25 * max(m_unknown, m_wrong), (m_unknown, m_wrong)
    stored = conn.execute("SELECT password_hash FROM public.users WHERE email = %s", [known]).fetchone()
    assert stored is not None and stored[0].startswith(f"$2a$0{stored_cost}$"), "a failure rehashes nothing"


def test_a_successful_login_rehashes_a_password_stored_at_another_cost(
    conn: Conn, admin_url: str
) -> None:
    email = f"hc-rehash-{tag()}@example.test"

    def stored_hash() -> str:
        row = conn.execute("SELECT password_hash FROM public.users WHERE email = %s", [email]).fetchone()
        assert row is not None
        return str(row[0])

    with settings_changed(admin_url, bcrypt_cost=5):
        conn.execute("SELECT FROM api.register_user('Rehash', %s, %s)", [email, PASSWORD])
    assert stored_hash().startswith("$2a$05$")
    for cost in (6, 4):  # raised, then lowered: either way the next login moves the hash
        with settings_changed(admin_url, bcrypt_cost=cost):
            before = stored_hash()
            conn.execute("SELECT * FROM api.login(%s, %s)", [email, PASSWORD]).fetchall()
            after = stored_hash()
            assert after.startswith(f"$2a$0{cost}$") and after != before
            conn.execute("SELECT * FROM api.login(%s, %s)", [email, PASSWORD]).fetchall()
            assert stored_hash() == after, "a hash already at the current cost is left alone"
    with settings_changed(admin_url, bcrypt_cost=4):
        conn.execute("SELECT * FROM api.login(%s, %s)", [email.upper(), PASSWORD]).fetchall()


# ---------------------------------------------------------------- throttling


def login_state(conn: Conn, email: str, password: str) -> str | None:
    return sqlstate_of(conn, "SELECT * FROM api.login(%s, %s)", [email, password])


def failures(conn: Conn, email: str) -> int:
    row = conn.execute(
        "SELECT count(*) FROM public.login_failures WHERE email = lower(%s)", [email]
    ).fetchone()
    assert row is not None
    return int(row[0])


def test_five_failures_throttle_the_email_until_the_window_passes(conn: Conn) -> None:
    email = f"hc-throttle-{tag()}@example.test"
    conn.execute("SELECT FROM api.register_user('T', %s, %s)", [email, PASSWORD])
    for n in range(1, 6):
        assert login_state(conn, email, f"wrong {n}") == "28P01"
        assert failures(conn, email) == n, "a failure must be counted although the call failed"
    # Throttled: even the right password, in any letter case, is refused.
    with pytest.raises(psycopg.Error) as caught:
        conn.execute("SELECT * FROM api.login(%s, %s)", [email, PASSWORD])
    assert caught.value.sqlstate == "CM001"
    assert "too many failed logins" in (caught.value.diag.message_primary or "")
    assert caught.value.diag.message_hint
    assert login_state(conn, email.upper(), PASSWORD) == "CM001"
    assert failures(conn, email) == 5, "a throttled attempt is not counted again"
    # 16 minutes later (the window is 15), the right password works and clears the count.
    conn.execute(
        "UPDATE public.login_failures SET failed_at = failed_at - interval '16 minutes'"
        " WHERE email = lower(%s)",
        [email],
    )
    assert login_state(conn, email, PASSWORD) is None
    assert failures(conn, email) == 0


def test_the_window_counts_only_recent_failures(conn: Conn) -> None:
    email = f"hc-window-{tag()}@example.test"
    conn.execute("SELECT FROM api.register_user('W', %s, %s)", [email, PASSWORD])
    for n in range(5):
        assert login_state(conn, email, f"wrong {n}") == "28P01"
    # Move one failure out of the window: four recent ones do not throttle.
    conn.execute(
        "UPDATE public.login_failures SET failed_at = now() - interval '15 minutes 1 second'"
        " WHERE id = (SELECT min(id) FROM public.login_failures WHERE email = lower(%s))",
        [email],
    )
    assert login_state(conn, email, "wrong again") == "28P01"
    assert login_state(conn, email, PASSWORD) == "CM001"


def test_a_successful_login_clears_the_count(conn: Conn) -> None:
    email = f"hc-clear-{tag()}@example.test"
    conn.execute("SELECT FROM api.register_user('C', %s, %s)", [email, PASSWORD])
    for n in range(4):
        assert login_state(conn, email, f"wrong {n}") == "28P01"
    assert login_state(conn, email, PASSWORD) is None
    for n in range(4):
        assert login_state(conn, email, f"wrong {n}") == "28P01"
    assert login_state(conn, email, PASSWORD) is None


def test_unknown_emails_are_throttled_alike_so_the_throttle_tells_nothing(conn: Conn) -> None:
    email = f"hc-ghost-{tag()}@example.test"
    for _ in range(5):
        assert login_state(conn, email, "guess") == "28P01"
    assert login_state(conn, email, "guess") == "CM001"
    conn.execute("DELETE FROM public.login_failures WHERE email = lower(%s)", [email])
