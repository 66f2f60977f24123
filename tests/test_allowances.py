"""Message allowances (issue 12): user turns per guest or user over a rolling 24 hours.

api.add_message refuses a user turn past chatmem_settings.guest_messages_per_day
(default 20) or user_messages_per_day (default NULL: no limit) with CM003,
whose message says when the next turn is allowed; over HTTP that is 429 with
Retry-After.  api.get_allowance shows the count.  Time is moved by ageing
rows' created_at, never by sleeping.
"""

from __future__ import annotations

import re
import threading
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from typer.testing import CliRunner

import chatmem
from chatmem.cli.app import app
from gateway_server import running_gateway
from helpers import Conn, connect, run_threads, settings_changed, tag

SQL_WORDS = re.compile(r"\bapi\.|\bp_")
ROUNDS = 3
CONNECTIONS = 16


def register(conn: Conn, prefix: str, anonymous_user_id: str | None = None) -> tuple[str, str]:
    row = conn.execute("SELECT user_id, token FROM api.register_user(%s, %s, 'password123', %s)",
                       [prefix, f"{prefix}-{tag()}@example.test", anonymous_user_id]).fetchone()
    assert row is not None
    return str(row[0]), str(row[1])


def user_turns(admin: Conn, sessions: list[str]) -> int:
    row = admin.execute("SELECT count(*) FROM conversation_messages WHERE session_id = ANY(%s) AND role = 'user'",
                        [sessions]).fetchone()
    assert row is not None
    return int(row[0])


def allowance(conn: Conn, who: str | None) -> tuple[int, int | None, datetime | None]:
    row = conn.execute("SELECT used, allowed, resets_at FROM api.get_allowance(%s)", [who]).fetchone()
    assert row is not None
    return row[0], row[1], row[2]


def sqlstate_of(conn: Conn, query: str, params: list[Any]) -> str | None:
    try:
        conn.execute(query, params)
    except psycopg.Error as exc:
        return exc.sqlstate
    return None


ADD = "SELECT api.add_message(%s, %s, %s, %s)"


@pytest.fixture(scope="module")
def conn(admin_url: str, fast_bcrypt: None) -> Iterator[Conn]:
    with connect(admin_url) as c:
        yield c


@pytest.fixture(scope="module")
def app_conn(app_url: str) -> Iterator[Conn]:
    """chatmem_app only: what a web backend calls with."""
    with connect(app_url) as c:
        yield c


@pytest.fixture(scope="module")
def assistant(assistant_url: str) -> Iterator[Conn]:
    with connect(assistant_url) as c:
        yield c


# -- exact under concurrency ---------------------------------------------------------


@pytest.mark.parametrize("kind", ["guest", "user"])
def test_sixteen_connections_at_once_never_get_past_the_allowance(
        kind: str, admin_url: str, app_url: str, conn: Conn) -> None:
    """16 connections released together by a barrier, each sending one user turn for the same
    caller across its 4 sessions, round after round: exactly the allowance is stored each time."""
    allowed = 5
    column = "guest_messages_per_day" if kind == "guest" else "user_messages_per_day"
    with settings_changed(admin_url, **{column: allowed}):
        for round_ in range(ROUNDS):
            who = f"al-race-{tag()}" if kind == "guest" else register(conn, "al-race")[0]
            sessions = [f"al-race-{round_}-{i}-{tag()}" for i in range(4)]
            for sid in sessions:
                conn.execute("SELECT api.create_or_get_session(%s, %s)", [sid, who])
            connections = [connect(app_url) for _ in range(CONNECTIONS)]
            barrier = threading.Barrier(CONNECTIONS)
            outcomes: list[str] = []

            def send(n: int, who: str = who, sessions: list[str] = sessions,
                     connections: list[Conn] = connections, barrier: threading.Barrier = barrier,
                     outcomes: list[str] = outcomes) -> None:
                barrier.wait(30)
                try:
                    connections[n].execute(ADD, [sessions[n % 4], who, "user", f"turn {n}"])
                    outcomes.append("ok")
                except psycopg.Error as exc:
                    outcomes.append(exc.sqlstate or "?")

            try:
                run_threads(CONNECTIONS, send)
            finally:
                for c in connections:
                    c.close()
            assert Counter(outcomes) == {"ok": allowed, "CM003": CONNECTIONS - allowed}, (round_, outcomes)
            assert user_turns(conn, sessions) == allowed
            assert allowance(conn, who)[:2] == (allowed, allowed)


def test_a_bulk_transaction_for_thousands_of_guests_holds_a_bounded_number_of_locks(
        admin_url: str, conn: Conn) -> None:
    """A DO loop adding a turn for each of 3,000 guests in one transaction: at most 256
    allowance locks (the buckets), not one per guest, so it cannot run out of lock memory."""
    run = tag()
    with settings_changed(admin_url, guest_messages_per_day=20, guest_sessions_per_hour=100):
        with conn.transaction():
            conn.execute("""
                DO $$
                BEGIN
                    FOR i IN 1..3000 LOOP
                        PERFORM api.create_or_get_session('al-bulk-' || %(run)s || '-' || i, 'al-bulk-g-' || %(run)s || '-' || i);
                        PERFORM api.add_message('al-bulk-' || %(run)s || '-' || i, 'al-bulk-g-' || %(run)s || '-' || i,
                                                'user', 'hello');
                    END LOOP;
                END
                $$""".replace("%(run)s", f"'{run}'"))
            row = conn.execute("""
                SELECT count(*) FILTER (WHERE classid = hashtext('chatmem allowance')::oid),
                       count(*)
                  FROM pg_locks
                 WHERE locktype = 'advisory' AND pid = pg_backend_pid()""").fetchone()
            assert row is not None
            allowance_locks, advisory_locks = row
            assert 200 <= allowance_locks <= 256, allowance_locks
            assert advisory_locks <= 512, advisory_locks
        row = conn.execute("SELECT count(*) FROM conversation_messages WHERE session_id LIKE %s",
                           [f"al-bulk-{run}-%"]).fetchone()
        assert row == (3000,)


# -- what counts ------------------------------------------------------------------------


def test_assistant_and_system_turns_are_not_counted(
        admin_url: str, conn: Conn, app_conn: Conn, assistant: Conn) -> None:
    guest, sid = f"al-roles-{tag()}", f"al-roles-{tag()}"
    with settings_changed(admin_url, guest_messages_per_day=2):
        app_conn.execute("SELECT api.create_or_get_session(%s, %s)", [sid, guest])
        app_conn.execute(ADD, [sid, guest, "user", "one"])
        for _ in range(3):
            assistant.execute(ADD, [sid, guest, "assistant", "an answer"])
            assistant.execute(ADD, [sid, guest, "system", "a prompt"])
        assert allowance(app_conn, guest)[:2] == (1, 2)
        app_conn.execute(ADD, [sid, guest, "user", "two"])
        assert sqlstate_of(app_conn, ADD, [sid, guest, "user", "three"]) == "CM003"
        # The model may still answer the last question: its turns are never refused.
        assistant.execute(ADD, [sid, guest, "assistant", "the last answer"])
        row = conn.execute("SELECT role, count(*) FROM conversation_messages WHERE session_id = %s"
                           " GROUP BY role ORDER BY role", [sid]).fetchall()
        assert row == [("assistant", 4), ("system", 3), ("user", 2)]


def test_a_refusal_changes_nothing_and_ownership_is_checked_first(
        admin_url: str, conn: Conn, app_conn: Conn) -> None:
    guest, sid, other = f"al-ref-{tag()}", f"al-ref-{tag()}", f"al-ref-other-{tag()}"
    with settings_changed(admin_url, guest_messages_per_day=1):
        app_conn.execute("SELECT api.create_or_get_session(%s, %s)", [sid, guest])
        app_conn.execute("SELECT api.create_or_get_session(%s, %s)", [other, f"al-ref-g2-{tag()}"])
        app_conn.execute(ADD, [sid, guest, "user", "one"])
        conn.execute("UPDATE conversation_sessions SET updated_at = now() - interval '1 hour' WHERE session_id = %s",
                     [sid])
        before = conn.execute("SELECT updated_at FROM conversation_sessions WHERE session_id = %s", [sid]).fetchone()
        with pytest.raises(psycopg.Error) as info:
            app_conn.execute(ADD, [sid, guest, "user", "two"])
        assert info.value.sqlstate == "CM003"
        assert conn.execute("SELECT updated_at FROM conversation_sessions WHERE session_id = %s",
                            [sid]).fetchone() == before
        assert user_turns(conn, [sid]) == 1
        # Someone else's session, or none, is refused as before: 42501, P0002.
        assert sqlstate_of(app_conn, ADD, [other, guest, "user", "x"]) == "42501"
        assert sqlstate_of(app_conn, ADD, [f"al-none-{tag()}", guest, "user", "x"]) == "P0002"


def test_the_window_rolls_and_the_message_says_when(admin_url: str, conn: Conn, app_conn: Conn) -> None:
    guest, sid = f"al-win-{tag()}", f"al-win-{tag()}"
    with settings_changed(admin_url, guest_messages_per_day=2):
        app_conn.execute("SELECT api.create_or_get_session(%s, %s)", [sid, guest])
        app_conn.execute(ADD, [sid, guest, "user", "one"])
        app_conn.execute(ADD, [sid, guest, "user", "two"])
        # The older turn was sent 23 hours ago: it leaves the window in an hour.
        conn.execute("""UPDATE conversation_messages SET created_at = created_at - interval '23 hours'
                         WHERE id = (SELECT min(id) FROM conversation_messages WHERE session_id = %s)""", [sid])
        oldest = conn.execute("SELECT min(created_at) FROM conversation_messages WHERE session_id = %s",
                              [sid]).fetchone()
        assert oldest is not None
        used, allowed, resets_at = allowance(app_conn, guest)
        assert (used, allowed, resets_at) == (2, 2, oldest[0] + timedelta(hours=24))
        with pytest.raises(psycopg.Error) as info:
            app_conn.execute(ADD, [sid, guest, "user", "three"])
        assert info.value.sqlstate == "CM003"
        message = info.value.diag.message_primary or ""
        assert message.startswith(f"guest {guest} has sent 2 messages in the last 24 hours, the allowance is 2; "
                                  "the next message is allowed at "), message
        when = datetime.strptime(message.split(" allowed at ")[1].split(",")[0], "%Y-%m-%dT%H:%M:%SZ")
        assert abs(when.replace(tzinfo=UTC) - (oldest[0] + timedelta(hours=24))) < timedelta(seconds=1)
        seconds = int(message.rsplit(" in ", 1)[1].removesuffix(" seconds"))
        assert 3590 <= seconds <= 3601, message
        assert "Sign up" in (info.value.diag.message_hint or "")

        # 24 hours and a second later, that turn no longer counts.
        conn.execute("""UPDATE conversation_messages SET created_at = created_at - interval '1 hour 1 second'
                         WHERE id = (SELECT min(id) FROM conversation_messages WHERE session_id = %s)""", [sid])
        assert allowance(app_conn, guest)[:2] == (1, 2)
        app_conn.execute(ADD, [sid, guest, "user", "three"])
        assert sqlstate_of(app_conn, ADD, [sid, guest, "user", "four"]) == "CM003"
        assert user_turns(conn, [sid]) == 3


def test_a_claim_carries_the_count_to_the_account(admin_url: str, conn: Conn, app_conn: Conn) -> None:
    guest = f"al-claim-{tag()}"
    sessions = [f"al-claim-{i}-{tag()}" for i in range(2)]
    with settings_changed(admin_url, guest_messages_per_day=20, user_messages_per_day=4):
        for n, sid in enumerate(sessions):
            app_conn.execute("SELECT api.create_or_get_session(%s, %s)", [sid, guest])
            app_conn.execute(ADD, [sid, guest, "user", f"guest turn {n}a"])
            app_conn.execute(ADD, [sid, guest, "user", f"guest turn {n}b"])
        assert allowance(app_conn, guest)[:2] == (4, 20)
        user_id, _ = register(conn, "al-claim", guest)
        assert allowance(app_conn, user_id)[:2] == (4, 4)
        assert allowance(app_conn, guest)[:2] == (0, 20)  # the sessions, and their turns, moved
        own = f"al-claim-own-{tag()}"
        app_conn.execute("SELECT api.create_or_get_session(%s, %s)", [own, user_id])
        assert sqlstate_of(app_conn, ADD, [own, user_id, "user", "fifth"]) == "CM003"
        assert sqlstate_of(app_conn, ADD, [sessions[0], user_id, "user", "fifth"]) == "CM003"
        assert user_turns(conn, [*sessions, own]) == 4


def test_users_have_no_limit_by_default_and_a_set_one_is_enforced(
        admin_url: str, conn: Conn, app_conn: Conn) -> None:
    user_id, _ = register(conn, "al-user")
    sid = f"al-user-{tag()}"
    app_conn.execute("SELECT api.create_or_get_session(%s, %s)", [sid, user_id])
    with settings_changed(admin_url, user_messages_per_day=None, guest_messages_per_day=20):
        for n in range(25):
            app_conn.execute(ADD, [sid, user_id, "user", f"turn {n}"])
        used, allowed, resets_at = allowance(app_conn, user_id)
        assert (used, allowed) == (25, None) and resets_at is not None
    with settings_changed(admin_url, user_messages_per_day=26):
        app_conn.execute(ADD, [sid, user_id, "user", "the 26th"])
        with pytest.raises(psycopg.Error) as info:
            app_conn.execute(ADD, [sid, user_id, "user", "the 27th"])
        assert info.value.sqlstate == "CM003"
        assert (info.value.diag.message_primary or "").startswith(
            "this account has sent 26 messages in the last 24 hours, the allowance is 26;")
        assert user_turns(conn, [sid]) == 26


def test_no_identity_is_not_counted_and_bad_input_is_refused(admin_url: str, conn: Conn, app_conn: Conn) -> None:
    sid = f"al-open-{tag()}"
    app_conn.execute("SELECT api.create_or_get_session(%s, NULL)", [sid])
    with settings_changed(admin_url, guest_messages_per_day=1):
        for _ in range(3):
            app_conn.execute(ADD, [sid, None, "user", "nobody"])
        assert allowance(app_conn, None) == (0, None, None)
        assert allowance(app_conn, "anonymous") == (0, None, None)
        assert sqlstate_of(app_conn, "SELECT * FROM api.get_allowance(%s)", [" "]) == "22023"
        assert sqlstate_of(app_conn, "SELECT * FROM api.get_allowance(%s)", ["x" * 300]) == "22023"


def test_a_counted_turn_needs_read_committed(admin_url: str, app_url: str) -> None:
    guest, sid = f"al-iso-{tag()}", f"al-iso-{tag()}"
    with connect(app_url) as c, settings_changed(admin_url, guest_messages_per_day=5):
        c.execute("SELECT api.create_or_get_session(%s, %s)", [sid, guest])
        c.autocommit = False
        c.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
        with pytest.raises(psycopg.Error) as info:
            c.execute(ADD, [sid, guest, "user", "hi"])
        assert info.value.sqlstate == "25001"
        c.rollback()
        c.isolation_level = psycopg.IsolationLevel.READ_COMMITTED
        c.execute(ADD, [sid, guest, "user", "hi"])
        c.commit()


def test_the_settings_refuse_nonsense(conn: Conn) -> None:
    for column in ("guest_messages_per_day", "user_messages_per_day"):
        for value in (0, -1):
            assert sqlstate_of(conn, f"UPDATE chatmem_settings SET {column} = %s", [value]) == "23514"
    row = conn.execute("SELECT column_default FROM information_schema.columns WHERE table_name = 'chatmem_settings'"
                       " AND column_name IN ('guest_messages_per_day', 'user_messages_per_day')"
                       " ORDER BY column_name").fetchall()
    assert row == [("20",), (None,)]


def test_the_count_reads_index_ranges_only(conn: Conn) -> None:
    """One index-backed path: the caller's recent sessions, then each one's turns of the window."""
    conn.execute("SET plan_cache_mode = force_generic_plan")
    try:
        for caller in ("ROW(NULL, 'al-plan-guest')", "ROW('6c2b8f4e-0000-4000-8000-000000000000'::uuid, NULL)"):
            plan = "\n".join(r[0] for r in conn.execute(
                "EXPLAIN SELECT EXISTS (SELECT FROM chatmem_internal.counted_turns("
                f"{caller}::chatmem_internal.caller) AS t OFFSET 19)").fetchall())
            assert "Seq Scan" not in plan and "Sort" not in plan, plan
            assert "conversation_messages_user_turns_idx" in plan, plan
    finally:
        conn.execute("RESET plan_cache_mode")


# -- over HTTP and in the CLI --------------------------------------------------------------


@pytest.fixture(scope="module")
def http(app_url: str, fast_bcrypt: None) -> Iterator[httpx.Client]:
    with running_gateway(app_url) as url, httpx.Client(base_url=url, timeout=30) as client:
        yield client


def test_http_429_with_retry_after_and_the_allowance_route(admin_url: str, http: httpx.Client, conn: Conn) -> None:
    guest = f"al-http-{tag()}"
    as_guest = {"X-Anonymous-User-Id": guest}
    with settings_changed(admin_url, guest_messages_per_day=2):
        sid = http.post("/api/chat/session", headers=as_guest).json()["data"]["sessionId"]
        fresh = http.get("/api/chat/allowance", headers=as_guest)
        assert fresh.status_code == 200, fresh.text
        assert fresh.json() == {"success": True, "data": {"used": 0, "allowed": 2, "resetsAt": None}}
        for n in range(2):
            assert http.post(f"/api/chat/session/{sid}/messages", json={"content": f"m{n}"},
                             headers=as_guest).status_code == 201
        refused = http.post(f"/api/chat/session/{sid}/messages", json={"content": "m2"}, headers=as_guest)
        assert refused.status_code == 429, refused.text
        error = refused.json()["error"]
        assert error["code"] == "CM003"
        assert "the next message is allowed at " in error["message"]
        assert error["hint"] == "Sign up for more messages (POST /api/auth/register), or wait until then (Retry-After)."
        assert not SQL_WORDS.search(error["message"]) and not SQL_WORDS.search(error["hint"])
        retry_after = int(refused.headers["Retry-After"])
        assert 86_000 <= retry_after <= 86_400, retry_after
        assert error["message"].endswith(f"in {retry_after} seconds")
        data = http.get("/api/chat/allowance", headers=as_guest).json()["data"]
        assert (data["used"], data["allowed"]) == (2, 2)
        resets = datetime.fromisoformat(data["resetsAt"])
        assert timedelta(hours=23, minutes=50) < resets - datetime.now(UTC) <= timedelta(hours=24)
        assert user_turns(conn, [sid]) == 2

        # A signed-up user, by Bearer token: no limit by default.
        reg = http.post("/api/auth/register", json={"name": "A", "email": f"al-{tag()}@example.test",
                                                    "password": "password123", "anonymousUserId": guest}).json()
        bearer = {"Authorization": f"Bearer {reg['data']['token']}"}
        assert http.get("/api/chat/allowance", headers=bearer).json()["data"]["allowed"] is None
        assert http.get("/api/chat/allowance", headers=bearer).json()["data"]["used"] == 2
        assert http.post(f"/api/chat/session/{sid}/messages", json={"content": "m2"},
                         headers=bearer).status_code == 201
        bad = http.get("/api/chat/allowance", headers={"Authorization": "Bearer nope"})
        assert bad.status_code == 401 and bad.json()["error"]["code"] == "28000"


def test_the_allowance_route_is_documented(admin_url: str) -> None:
    from chatmem.gateway import create_app

    document = create_app(admin_url).openapi()
    route = document["paths"]["/api/chat/allowance"]["get"]
    assert sorted(route["responses"]) == ["200", "400", "401", "500", "503"]
    schema = document["components"]["schemas"]["Allowance"]
    assert set(schema["properties"]) == {"used", "allowed", "resetsAt"}
    post = document["paths"]["/api/chat/session/{session_id}/messages"]["post"]["responses"]
    assert "`CM003`" in post["429"]["description"] and "Retry-After" in post["429"]["headers"]


def test_the_cli_shows_the_allowance_and_a_refusal_in_one_line(
        admin_url: str, app_url: str, tmp_path: Path) -> None:
    env = {"DATABASE_URL": app_url, "CHATMEM_STATE": str(tmp_path / "state.json")}

    def cli(*args: str) -> Any:
        return CliRunner().invoke(app, list(args), env=env)

    with settings_changed(admin_url, guest_messages_per_day=1):
        new = cli("session", "new", "--json")
        assert new.exit_code == 0, new.output
        sid = new.stdout.split('"session_id": "')[1].split('"')[0]
        shown = cli("allowance")
        assert shown.exit_code == 0 and "1 message of 1 left for guest " in shown.stdout, shown.output
        assert cli("say", sid, "hello").exit_code == 0
        refused = cli("say", sid, "again")
        assert refused.exit_code == 1 and refused.stdout == ""
        line = refused.stderr.strip()
        assert len(line.splitlines()) == 1 and "the next message is allowed at" in line, line
        assert "chatmem register" in line and not SQL_WORDS.search(line), line
        as_json = cli("allowance", "--json")
        assert as_json.exit_code == 0, as_json.output
        assert '"used": 1' in as_json.stdout and '"allowed": 1' in as_json.stdout


def test_the_client_raises_allowance_used_up_with_its_wait(admin_url: str, app_url: str) -> None:
    guest = f"al-client-{tag()}"
    with chatmem.Client(app_url, max_size=1) as client, settings_changed(admin_url, guest_messages_per_day=1):
        sid = client.create_session(user_id=guest).session_id
        client.add_message(sid, guest, "user", "one")
        with pytest.raises(chatmem.AllowanceUsedUp) as info:
            client.add_message(sid, guest, "user", "two")
        assert info.value.http_status == 429
        assert info.value.retry_after is not None and 86_000 <= info.value.retry_after <= 86_400
        assert client.get_allowance(guest) == chatmem.models.Allowance(
            1, 1, client.get_allowance(guest).resets_at)
