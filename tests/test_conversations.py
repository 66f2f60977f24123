"""Conversations a person manages (issue 12): no IDOR through rename_session,
delete_session, list_conversations, preview_claim or claim_receipt; a page of
list_conversations reads one index range, whatever the number of sessions;
and a claim racing a delete of the same guest session leaves it deleted or
claimed, whole.
"""

from __future__ import annotations

import json
import random
import threading
import time
from collections import Counter
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import psycopg
import pytest
from psycopg import sql

from chatmem import embedded, migrate, target
from helpers import Conn, World, connect, make_world, tag

PASSWORD = "correct horse"


def sqlstate_of(conn: Conn, query: str, params: list[Any]) -> str | None:
    try:
        conn.execute(query, params).fetchall()
    except psycopg.Error as exc:
        return exc.sqlstate
    return None


# ---------------------------------------------------------------- IDOR, as the application's role


@pytest.fixture
def app(admin_url: str, fast_bcrypt: None) -> Iterator[Conn]:
    """A connection acting as chatmem_app (SET ROLE), as a web backend does: only the api."""
    with connect(admin_url) as c:
        c.execute("SET ROLE chatmem_app")
        yield c


@pytest.fixture
def world(app: Conn) -> World:
    w = make_world(app, "cv", PASSWORD)
    # Here the open session is private too, and every session has a title.
    app.execute("SELECT api.add_message(%s, NULL, 'user', 'private')", [w.so])
    app.execute("SELECT api.add_qa_pair(%s, NULL, 'q', 'a')", [w.so])
    for sid, owner in ((w.sa, w.alice), (w.sga, w.ga), (w.so, None)):
        app.execute("SELECT api.rename_session(%s, %s, 'Private title')", [sid, owner])
    return w


def state(admin: Conn, sid: str) -> tuple[Any, ...]:
    """A session's row with its message and Q&A pair counts (read as the superuser)."""
    row = admin.execute(
        "SELECT (SELECT s::text FROM public.conversation_sessions AS s WHERE s.session_id = %s),"
        "       (SELECT count(*) FROM public.conversation_messages WHERE session_id = %s),"
        "       (SELECT count(*) FROM public.qa_pairs WHERE session_id = %s)", [sid, sid, sid]).fetchone()
    assert row is not None
    return tuple(row)


def listed(app: Conn, who: str | None, **page: Any) -> list[str]:
    return [r[0] for r in app.execute(
        "SELECT session_id FROM api.list_conversations(%s, p_limit => %s, p_before => %s, p_before_id => %s)",
        [who, page.get("limit", 200), page.get("before"), page.get("before_id")]).fetchall()]


def test_rename_and_delete_refuse_everyone_but_the_owner_and_change_nothing(
        app: Conn, admin: Conn, world: World) -> None:
    w = world
    before = {sid: state(admin, sid) for sid in (w.sa, w.sga, w.so)}
    for session, intruder in w.intruders():
        assert sqlstate_of(app, "SELECT api.rename_session(%s, %s, 'pwned')", [session, intruder]) == "42501", (
            f"{intruder} renamed {session}")
        assert sqlstate_of(app, "SELECT api.delete_session(%s, %s)", [session, intruder]) == "42501", (
            f"{intruder} deleted {session}")
    assert {sid: state(admin, sid) for sid in before} == before, "a refused call changed a session"
    missing = f"cv-missing-{tag()}"
    assert sqlstate_of(app, "SELECT api.rename_session(%s, %s, 'x')", [missing, w.alice]) == "P0002"
    assert sqlstate_of(app, "SELECT api.delete_session(%s, %s)", [missing, w.ga]) == "P0002"
    # The owners (and anyone, for the open session) succeed.
    for sid, owner in ((w.sa, w.alice), (w.sga, w.ga), (w.so, w.gb)):
        assert app.execute("SELECT (api.rename_session(%s, %s, 'Mine')).title", [sid, owner]).fetchone() == ("Mine",)
    for sid, owner in ((w.sa, w.alice), (w.sga, w.ga), (w.so, w.bob)):
        assert app.execute("SELECT api.delete_session(%s, %s)", [sid, owner]).fetchone() == (True,)
        assert state(admin, sid) == (None, 0, 0), f"{sid} was not deleted whole"


def test_list_conversations_shows_each_caller_only_its_own(app: Conn, world: World) -> None:
    w = world
    assert listed(app, w.alice) == [w.sa]
    assert listed(app, w.ga) == [w.sga]
    for caller in (w.bob, w.gb, None, "anonymous"):
        assert set(listed(app, caller)).isdisjoint({w.sa, w.sga, w.so}), f"{caller} saw a session not its own"
    # A cursor is only a position: someone else's session as p_before_id
    # reveals nothing of it, and lists only the caller's own.
    cursor = app.execute("SELECT updated_at FROM api.list_conversations(%s) WHERE session_id = %s",
                         [w.alice, w.sa]).fetchone()
    assert cursor is not None
    app.execute("SELECT api.create_or_get_session(%s, %s)", [f"cv-bob-{tag()}", w.bob])
    for caller in (w.bob, w.gb):
        page = listed(app, caller, before=cursor[0].replace(year=cursor[0].year + 1), before_id=w.sa)
        assert w.sa not in page and w.sga not in page
    # Once alice claims ga's sessions, ga lists nothing; alice lists both.
    app.execute("SELECT FROM api.login(%s, %s, %s)", [w.alice_email, PASSWORD, w.ga])
    assert listed(app, w.ga) == []
    assert set(listed(app, w.alice)) == {w.sa, w.sga}


def test_preview_claim_shows_only_the_guests_own_and_never_an_accounts(app: Conn, world: World) -> None:
    w = world
    preview = app.execute("SELECT session_id, title, message_count, qa_count FROM api.preview_claim(%s)",
                          [w.ga]).fetchall()
    assert preview == [(w.sga, "Private title", 1, 1)]
    assert app.execute("SELECT * FROM api.preview_claim(%s)", [w.gb]).fetchall() == []
    # A client that sends a registered user's id as its guest id learns nothing of the account.
    for account in (w.alice, w.bob, w.alice.upper()):
        assert sqlstate_of(app, "SELECT * FROM api.preview_claim(%s)", [account]) == "28000"


def test_claim_receipt_shows_only_the_tokens_account(app: Conn, world: World) -> None:
    w = world
    guest = f"cv-receipt-{tag()}"
    app.execute("SELECT api.create_or_get_session(%s, %s)", [f"{guest}-s", guest])
    email = f"cv-receipt-{tag()}@example.test"
    row = app.execute("SELECT user_id, token FROM api.register_user('Carol', %s, %s, %s)",
                      [email, PASSWORD, guest]).fetchone()
    assert row is not None
    carol_token = row[1]
    assert app.execute("SELECT session_id, anonymous_user_id, method FROM api.claim_receipt(%s)",
                       [carol_token]).fetchall() == [(f"{guest}-s", guest, "register")]
    for other in (w.alice_token, w.bob_token):
        assert app.execute("SELECT * FROM api.claim_receipt(%s)", [other]).fetchall() == []
    for forged in ("", "0" * 64, carol_token[:-1] + ("0" if carol_token[-1] != "0" else "1"), w.alice, None):
        assert sqlstate_of(app, "SELECT * FROM api.claim_receipt(%s)", [forged]) == "28000", forged


def test_the_application_role_reaches_none_of_this_around_the_api(app: Conn, world: World) -> None:
    w = world
    for statement in (f"UPDATE public.conversation_sessions SET title = 'x' WHERE session_id = '{w.sa}'",
                      f"DELETE FROM public.conversation_sessions WHERE session_id = '{w.sa}'",
                      "SELECT * FROM public.session_claims",
                      "SELECT * FROM chatmem_internal.session_summary('x')",
                      "SELECT chatmem_internal.guest_owns(NULL, 'x')"):
        assert sqlstate_of(app, statement, []) == "42501", statement


# ---------------------------------------------------------------- plans: one index range per page

SESSIONS = 10_000
PAGE = 50
BIG_USER = "0b5e55ed-0000-4000-8000-000000010000"
BIG_GUEST = "cv-plan-big-guest"


@pytest.fixture(scope="module")
def plan_db(admin_url: str) -> Iterator[str]:
    """A migrated database of its own: 10,000 sessions of one user and 10,000 of one guest
    (two messages each), among 5,000 sessions of other users and guests."""
    name = f"chatmem_scratch_conv_{tag()}"
    embedded.create_database(admin_url, name)
    url = target.with_database(admin_url, name)
    try:
        migrate.migrate(url)
        with connect(url) as conn:
            conn.execute("INSERT INTO public.users (id, name, email, password_hash)"
                         " VALUES (%s, 'Big', 'big@example.test', 'not a hash')", [BIG_USER])
            conn.execute("INSERT INTO public.users (name, email, password_hash)"
                         " SELECT 'U' || u, 'u' || u || '@example.test', 'not a hash'"
                         "   FROM generate_series(1, 100) AS u")
            # Seeding, not the API: the per-guest cap would refuse 10,000 new
            # sessions of one guest in an hour.  Every fifth session shares its
            # updated_at with the next, so pages meet runs of equal times.
            conn.execute("SET session_replication_role = replica")
            conn.execute("""
                INSERT INTO public.conversation_sessions (session_id, user_id, metadata, created_at, updated_at)
                SELECT 'big-u-' || i, %(user)s::uuid, '{}', now() - i * interval '1 minute',
                       now() - (i - i %% 5 / 4) * interval '1 minute'
                  FROM generate_series(1, %(n)s) AS i
                UNION ALL
                SELECT 'big-g-' || i, NULL, jsonb_build_object('anonymousUserId', %(guest)s::text),
                       now() - i * interval '1 minute', now() - (i - i %% 5 / 4) * interval '1 minute'
                  FROM generate_series(1, %(n)s) AS i
                UNION ALL
                SELECT 'other-' || i,
                       CASE WHEN i %% 2 = 0 THEN (SELECT u.id FROM public.users AS u
                                                   WHERE u.email = 'u' || (1 + i %% 100) || '@example.test') END,
                       CASE WHEN i %% 2 = 1
                            THEN jsonb_build_object('anonymousUserId', 'other-guest-' || i %% 300) ELSE '{}' END,
                       now() - i * interval '1 second', now() - i * interval '1 second'
                  FROM generate_series(1, 5000) AS i""", {"user": BIG_USER, "guest": BIG_GUEST, "n": SESSIONS})
            conn.execute("""
                INSERT INTO public.conversation_messages (session_id, role, content)
                SELECT s.session_id, 'user', 'message ' || n || ' of ' || s.session_id
                  FROM public.conversation_sessions AS s, generate_series(1, 2) AS n""")
            conn.execute("RESET session_replication_role")
            for table in ("conversation_sessions", "conversation_messages", "qa_pairs", "users"):
                conn.execute(f"VACUUM ANALYZE public.{table}")
        yield url
    finally:
        with connect(admin_url) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def page_plans(conn: Conn, caller: str, before: datetime | None, before_id: str | None,
               ) -> tuple[list[tuple[str, datetime]], list[dict[str, Any]]]:
    """One page of api.list_conversations, and the plans (EXPLAIN ANALYZE, from
    auto_explain) of the statements the function ran to make it."""
    logged: list[str] = []

    def keep(diagnostic: psycopg.errors.Diagnostic) -> None:
        logged.append(diagnostic.message_primary or "")

    conn.add_notice_handler(keep)
    try:
        rows = conn.execute(
            "SELECT session_id, updated_at FROM api.list_conversations(%s, %s, %s::timestamptz, %s::text)",
            [caller, PAGE, before, before_id]).fetchall()
    finally:
        conn.remove_notice_handler(keep)
    plans = []
    for message in logged:
        if "plan:" in message:
            document = json.loads(message.split("plan:", 1)[1])
            if "conversation_sessions" in document["Query Text"] and "LIMIT" in document["Query Text"]:
                plans.append(document["Plan"])
    return [(r[0], r[1]) for r in rows], plans


def nodes(plan: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield plan
    for child in plan.get("Plans", []):
        yield from nodes(child)


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["force_custom_plan", "force_generic_plan"])
@pytest.mark.parametrize("caller,index", [(BIG_USER, "conversation_sessions_user_activity_idx"),
                                          (BIG_GUEST, "conversation_sessions_guest_activity_idx")],
                         ids=["user", "guest"])
def test_every_page_of_ten_thousand_sessions_is_one_index_range_no_sort(
        plan_db: str, caller: str, index: str, mode: str) -> None:
    with connect(plan_db) as conn:
        conn.execute("LOAD 'auto_explain'")
        for setting, value in (("auto_explain.log_min_duration", "0"), ("auto_explain.log_analyze", "on"),
                               ("auto_explain.log_timing", "off"), ("auto_explain.log_nested_statements", "on"),
                               ("auto_explain.log_format", "json"), ("client_min_messages", "log"),
                               ("plan_cache_mode", mode)):
            conn.execute(f"SET {setting} = '{value}'")
        everything = conn.execute(
            "SELECT session_id, updated_at FROM public.conversation_sessions"
            " WHERE session_id LIKE %s ORDER BY updated_at DESC, session_id DESC",
            ["big-u-%" if caller == BIG_USER else "big-g-%"]).fetchall()
        assert len(everything) == SESSIONS

        # Walk every page: together they are the whole list, in order, once.
        seen: list[tuple[str, datetime]] = []
        before: tuple[datetime, str] | None = None
        pages = 0
        while True:
            rows, plans = page_plans(conn, caller, *(before if before else (None, None)))
            assert len(plans) == 1, f"expected the plan of one page query, got {len(plans)}"
            plan_nodes = list(nodes(plans[0]))
            types = [n["Node Type"] for n in plan_nodes]
            assert not {"Sort", "Incremental Sort"} & set(types), f"page {pages} sorts: {types}"
            assert "Seq Scan" not in types, f"page {pages} scans a table: {types}"
            sessions = [n for n in plan_nodes if n.get("Relation Name") == "conversation_sessions"]
            assert [n["Node Type"] for n in sessions] == ["Index Scan"], types
            assert sessions[0]["Index Name"] == index
            # It reads the page and no more: not the sessions before the cursor.
            assert sessions[0]["Actual Rows"] * sessions[0]["Actual Loops"] <= PAGE, sessions[0]
            assert sessions[0].get("Rows Removed by Filter", 0) == 0, sessions[0]
            seen += rows
            pages += 1
            if len(rows) < PAGE:
                break
            before = (rows[-1][1], rows[-1][0])
        assert seen == [(r[0], r[1]) for r in everything]
        assert pages == SESSIONS // PAGE + 1


@pytest.mark.slow
def test_a_deep_page_costs_what_the_first_page_costs(plan_db: str) -> None:
    """The same work on page 1 and on page 200, by the buffers each reads (not by the clock)."""
    with connect(plan_db) as conn:
        deep = conn.execute("SELECT updated_at, session_id FROM public.conversation_sessions"
                            " WHERE session_id = 'big-u-9950'").fetchone()
        assert deep is not None
        conn.execute("LOAD 'auto_explain'")
        for setting, value in (("auto_explain.log_min_duration", "0"), ("auto_explain.log_analyze", "on"),
                               ("auto_explain.log_buffers", "on"), ("auto_explain.log_timing", "off"),
                               ("auto_explain.log_nested_statements", "on"), ("auto_explain.log_format", "json"),
                               ("client_min_messages", "log")):
            conn.execute(f"SET {setting} = '{value}'")

        def buffers(before: datetime | None, before_id: str | None) -> int:
            _, plans = page_plans(conn, BIG_USER, before, before_id)
            return int(plans[0]["Shared Hit Blocks"] + plans[0]["Shared Read Blocks"])

        first, last = buffers(None, None), buffers(deep[0], deep[1])
        assert last <= 1.5 * first + 10, (first, last)


# ---------------------------------------------------------------- a claim racing a delete

ROUNDS = 30


@pytest.mark.slow
def test_a_claim_racing_a_delete_of_the_same_guest_session_leaves_it_deleted_or_claimed_whole(
        admin_url: str, fast_bcrypt: None) -> None:
    """Each round: a guest with three sessions (a message and a Q&A pair each)
    registers on one connection while, on another, it deletes one of them; a
    barrier releases both, the delete after a random few milliseconds so that
    either may come first.  In every other round a third connection holds that
    session's row lock until both calls wait for it: the one that gets the row
    second must then re-check it as the first one left it."""
    outcomes: Counter[str] = Counter()
    rng = random.Random(12)
    for round_ in range(ROUNDS):
        run = tag()
        guest = f"cv-race-{run}"
        ids = [f"cv-race-{run}-{i}" for i in range(3)]
        target_id = ids[round_ % 3]
        with connect(admin_url) as c:
            for sid in ids:
                c.execute("SELECT api.create_or_get_session(%s, %s)", [sid, guest])
                c.execute("SELECT api.add_message(%s, %s, 'user', 'hello')", [sid, guest])
                c.execute("SELECT api.add_qa_pair(%s, %s, 'q', 'a')", [sid, guest])
        results = race_once(admin_url, guest, target_id, f"cv-race-{run}@example.test",
                            delay=rng.uniform(0, 0.02), contended=round_ % 2 == 1)

        user_id, migrated = results["claim"]
        deleted = results["delete"] == (True,)
        assert deleted or results["delete"] == "42501", f"round {round_}: the delete gave {results['delete']}"
        outcomes[("contended " if round_ % 2 else "") + ("deleted" if deleted else "claimed")] += 1
        with connect(admin_url) as c:
            rows = {r[0]: r[1:] for r in c.execute(
                "SELECT session_id, user_id, metadata ? 'anonymousUserId' FROM public.conversation_sessions"
                " WHERE session_id = ANY(%s)", [ids]).fetchall()}
            counts = {r[0]: (r[1], r[2]) for r in c.execute(
                "SELECT s, (SELECT count(*) FROM public.conversation_messages WHERE session_id = s),"
                "          (SELECT count(*) FROM public.qa_pairs WHERE session_id = s)"
                "  FROM unnest(%s::text[]) AS s", [ids]).fetchall()}
            audit = sorted(r[0] for r in c.execute(
                "SELECT session_id FROM public.session_claims WHERE anonymous_user_id = %s", [guest]).fetchall())
            methods = c.execute("SELECT DISTINCT user_id, method FROM public.session_claims"
                                " WHERE anonymous_user_id = %s", [guest]).fetchall()
        kept = sorted(set(ids) - {target_id}) if deleted else sorted(ids)
        assert sorted(rows) == kept, f"round {round_}: sessions left {sorted(rows)}"
        assert all(r == (user_id, False) for r in rows.values()), f"round {round_}: not all claimed: {rows}"
        assert audit == kept, f"round {round_}: the audit disagrees: {audit}"
        assert methods == [(user_id, "register")]
        assert migrated == len(kept)
        for sid in ids:
            assert counts[sid] == ((0, 0) if deleted and sid == target_id else (1, 1)), (
                f"round {round_}: {sid} has {counts[sid]} messages and Q&A pairs")
    # Both orders happened, so both paths were checked.
    assert sum(n for k, n in outcomes.items() if k.endswith("deleted")) > 0, outcomes
    assert sum(n for k, n in outcomes.items() if k.endswith("claimed")) > 0, outcomes


def race_once(url: str, guest: str, target_id: str, email: str, *, delay: float,
              contended: bool) -> dict[str, Any]:
    """Register ``email`` claiming ``guest``'s sessions and delete ``target_id`` as
    ``guest``, on two connections released together; return what each call gave."""
    barrier = threading.Barrier(2)
    pids: dict[str, int] = {}
    results: dict[str, Any] = {}
    failures: list[BaseException] = []

    def claim() -> None:
        with connect(url) as c:
            pids["claim"] = c.execute("SELECT pg_backend_pid()").fetchone()[0]  # type: ignore[index]
            barrier.wait()
            results["claim"] = c.execute(
                "SELECT user_id, migrated_sessions FROM api.register_user('Racer', %s, %s, %s)",
                [email, PASSWORD, guest]).fetchone()

    def delete() -> None:
        with connect(url) as c:
            pids["delete"] = c.execute("SELECT pg_backend_pid()").fetchone()[0]  # type: ignore[index]
            barrier.wait()
            time.sleep(delay)
            try:
                results["delete"] = c.execute("SELECT api.delete_session(%s, %s)", [target_id, guest]).fetchone()
            except psycopg.Error as exc:
                results["delete"] = exc.sqlstate

    def guarded(body: Any) -> None:
        try:
            body()
        except BaseException as exc:
            failures.append(exc)

    blocker = psycopg.connect(url) if contended else None
    try:
        if blocker is not None:
            blocker.execute("SELECT FROM public.conversation_sessions WHERE session_id = %s FOR UPDATE", [target_id])
        threads = [threading.Thread(target=guarded, args=(body,)) for body in (claim, delete)]
        for t in threads:
            t.start()
        if blocker is not None:
            waiting_for_both(url, pids)
            blocker.commit()
        for t in threads:
            t.join(60)
            assert not t.is_alive(), "a worker hung (deadlock?)"
    finally:
        if blocker is not None:
            blocker.close()
    if failures:
        raise failures[0]
    return results


def waiting_for_both(url: str, pids: dict[str, int], timeout: float = 20) -> None:
    """Return once the claim and the delete both wait on a lock (the blocker's row lock)."""
    deadline = time.monotonic() + timeout
    with connect(url) as c:
        while time.monotonic() < deadline:
            if len(pids) == 2:
                waiting = c.execute("SELECT count(*) FROM pg_stat_activity WHERE pid = ANY(%s)"
                                    " AND wait_event_type = 'Lock'", [list(pids.values())]).fetchone()
                if waiting == (2,):
                    return
            time.sleep(0.002)
    raise AssertionError("the claim and the delete never both waited on the row lock")
