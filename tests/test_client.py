"""chatmem.Client against the real database: every method, every exception class, threads."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import psycopg
import psycopg_pool
import pytest
from psycopg.conninfo import make_conninfo

import chatmem
from chatmem import api_errors, migrate
from chatmem.api_errors import CODES, ChatmemError
from helpers import run_threads

PASSWORD = "correct horse battery"
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def client(admin_url: str, fast_bcrypt: None) -> Iterator[chatmem.Client]:
    with chatmem.Client(admin_url, max_size=4) as c:
        yield c


def guest() -> str:
    return str(uuid.uuid4())


def email() -> str:
    return f"client-{uuid.uuid4().hex[:12]}@example.com"


def register(client: chatmem.Client, guest_id: str | None = None) -> chatmem.Registration:
    return client.register_user("Ada", email(), PASSWORD, anonymous_user_id=guest_id)


def session_row(admin: psycopg.Connection[Any], session_id: str) -> tuple[Any, ...]:
    row = admin.execute(
        "SELECT user_id, metadata FROM conversation_sessions WHERE session_id = %s", [session_id]
    ).fetchone()
    assert row is not None
    return tuple(row)


# -- sessions -----------------------------------------------------------------


def test_create_or_get_session_for_a_guest_then_reopen(client: chatmem.Client) -> None:
    g = guest()
    sid = f"s-{uuid.uuid4()}"
    # A smuggled anonymousUserId never decides ownership.
    created = client.create_or_get_session(
        sid, user_id=g, metadata={"topic": "billing", "anonymousUserId": "someone-else"}
    )
    assert isinstance(created, chatmem.Session)
    assert created.session_id == sid
    assert created.user_id is None
    assert created.metadata == {"topic": "billing", "anonymousUserId": g}
    assert created.owner_deleted_at is None

    again = client.create_or_get_session(sid, user_id=g)
    assert again.created_at == created.created_at
    assert again.updated_at >= created.updated_at
    assert again.metadata == created.metadata


def test_create_or_get_session_defaults_give_an_unowned_session(
    client: chatmem.Client, admin: psycopg.Connection[Any]
) -> None:
    sid = f"s-{uuid.uuid4()}"
    s = client.create_or_get_session(sid)
    assert (s.user_id, s.metadata) == (None, {})
    # Nobody owns it: any caller with the id may open it.
    assert client.create_or_get_session(sid, user_id=guest()).session_id == sid
    assert session_row(admin, sid) == (None, {})


def test_create_or_get_session_of_someone_else_is_forbidden(client: chatmem.Client) -> None:
    sid = f"s-{uuid.uuid4()}"
    client.create_or_get_session(sid, user_id=guest())
    with pytest.raises(chatmem.ForbiddenSession) as info:
        client.create_or_get_session(sid, user_id=guest())
    assert info.value.sqlstate == "42501"
    assert info.value.hint


def test_create_session_for_a_guest_uses_sql_defaults(
    client: chatmem.Client, admin: psycopg.Connection[Any]
) -> None:
    g = guest()
    new = client.create_session(user_id=g, context={"channel": "cli"})
    assert isinstance(new, chatmem.NewSession)
    assert re.fullmatch(r"session_\d{13}_[0-9a-f]{14}", new.session_id)
    assert new.user_id is None
    user_id, metadata = session_row(admin, new.session_id)
    assert user_id is None
    assert metadata["anonymousUserId"] == g
    assert metadata == {"anonymousUserId": g, "channel": "cli"}  # no default metadata (migration 0014)

    # Every argument left out: p_user_id defaults to 'anonymous', no guest id.
    bare = client.create_session()
    assert session_row(admin, bare.session_id) == (None, {})


def test_create_session_with_a_token_is_the_users(client: chatmem.Client) -> None:
    reg = register(client)
    new = client.create_session(token=reg.token, user_id=str(reg.user_id))
    assert new.user_id == reg.user_id
    other = register(client)
    with pytest.raises(chatmem.ForbiddenSession):
        client.create_session(token=reg.token, user_id=str(other.user_id))
    with pytest.raises(chatmem.NotAuthorized) as info:
        client.create_session(user_id=str(reg.user_id))
    assert info.value.sqlstate == "28000"
    assert info.value.http_status == 401


def test_create_session_rejects_a_context_that_is_not_an_object(client: chatmem.Client) -> None:
    with pytest.raises(chatmem.InvalidInput) as info:
        client.create_session(user_id=guest(), context=["not", "an", "object"])  # type: ignore[arg-type]
    assert "p_context" in info.value.message
    assert info.value.hint


def test_list_sessions_newest_first_and_empty_without_identity(client: chatmem.Client) -> None:
    g = guest()
    ids = [client.create_session(user_id=g).session_id for _ in range(3)]
    listed = client.list_sessions(g)
    assert [s.session_id for s in listed] == ids[::-1]
    assert all(isinstance(s, chatmem.Session) for s in listed)
    assert client.list_sessions(None) == []
    with pytest.raises(chatmem.InvalidInput):
        client.list_sessions("")


# -- accounts -----------------------------------------------------------------


def test_register_user_claims_the_guests_sessions(
    client: chatmem.Client, admin: psycopg.Connection[Any]
) -> None:
    g = guest()
    sids = [client.create_session(user_id=g).session_id for _ in range(3)]
    client.add_message(sids[0], g, "user", "hello before sign-up")
    address = email()
    reg = client.register_user("  Grace  ", address, PASSWORD, anonymous_user_id=g)
    assert isinstance(reg, chatmem.Registration)
    assert (reg.name, reg.email, reg.migrated, reg.migrated_sessions) == ("Grace", address, True, 3)
    assert reg.token and reg.refresh_token and reg.token != reg.refresh_token
    for sid in sids:
        user_id, metadata = session_row(admin, sid)
        assert user_id == reg.user_id
        assert "anonymousUserId" not in metadata
    user = str(reg.user_id)
    assert [m.content for m in client.get_messages(sids[0], user)] == ["hello before sign-up"]
    assert client.list_sessions(g) == []


def test_register_user_without_guest_claims_nothing(client: chatmem.Client) -> None:
    reg = register(client)
    assert (reg.migrated, reg.migrated_sessions) == (False, 0)


def test_register_user_email_taken_in_any_case(client: chatmem.Client) -> None:
    reg = register(client)
    with pytest.raises(chatmem.EmailTaken) as info:
        client.register_user("Other", reg.email.upper(), PASSWORD)
    assert info.value.sqlstate == "23505"
    assert info.value.http_status == 409
    assert "p_email" in info.value.message


def test_register_user_invalid_input(client: chatmem.Client) -> None:
    with pytest.raises(chatmem.InvalidInput) as info:
        client.register_user("Ada", email(), "short")
    assert "p_password" in info.value.message
    with pytest.raises(chatmem.InvalidInput):
        client.register_user("Ada", "not-an-email", PASSWORD)


def test_register_and_login_refuse_above_read_committed(admin_url: str, fast_bcrypt: None) -> None:
    url = make_conninfo(admin_url, options="-c default_transaction_isolation=serializable")
    with chatmem.Client(url, max_size=1) as strict:
        with pytest.raises(chatmem.WrongIsolation) as info:
            strict.register_user("Ada", email(), PASSWORD)
        assert info.value.sqlstate == "25001"
        assert info.value.http_status == 500
        with pytest.raises(chatmem.WrongIsolation):
            strict.login(email(), PASSWORD)


def test_login_claims_and_returns_tokens(client: chatmem.Client) -> None:
    reg = register(client)
    g = guest()
    sid = client.create_session(user_id=g).session_id
    logged = client.login(reg.email.upper(), PASSWORD, anonymous_user_id=g)
    assert isinstance(logged, chatmem.Login)
    assert (logged.user_id, logged.email, logged.migrated_sessions) == (reg.user_id, reg.email, 1)
    assert logged.token != reg.token
    assert [s.session_id for s in client.list_sessions(str(reg.user_id))] == [sid]
    assert client.login(reg.email, PASSWORD).migrated_sessions == 0


def test_login_wrong_password_and_unknown_email_look_the_same(client: chatmem.Client) -> None:
    reg = register(client)
    with pytest.raises(chatmem.InvalidCredentials) as wrong:
        client.login(reg.email, "wrong password!")
    with pytest.raises(chatmem.InvalidCredentials) as unknown:
        client.login(email(), PASSWORD)
    assert wrong.value.sqlstate == unknown.value.sqlstate == "28P01"
    assert wrong.value.message == unknown.value.message
    with pytest.raises(chatmem.InvalidInput):
        client.login("", PASSWORD)


def test_authenticate(client: chatmem.Client) -> None:
    reg = register(client)
    assert client.authenticate(reg.token) == reg.user_id
    assert client.authenticate(reg.refresh_token) is None
    assert client.authenticate("garbage") is None
    assert client.authenticate("") is None
    assert client.authenticate(None) is None


def test_refresh_rotates_and_reuse_revokes_the_family(client: chatmem.Client) -> None:
    reg = register(client)
    fresh = client.refresh(reg.refresh_token)
    assert isinstance(fresh, chatmem.Tokens)
    assert fresh.refresh_token != reg.refresh_token
    assert client.authenticate(fresh.token) == reg.user_id
    with pytest.raises(chatmem.NotAuthorized) as info:
        client.refresh(reg.refresh_token)  # replayed
    assert info.value.sqlstate == "28000"
    # The revocation survived the error: the whole login is gone.
    assert client.authenticate(fresh.token) is None
    with pytest.raises(chatmem.NotAuthorized):
        client.refresh(fresh.refresh_token)
    with pytest.raises(chatmem.InvalidInput):
        client.refresh("")


def test_logout(client: chatmem.Client) -> None:
    reg = register(client)
    assert client.logout(reg.token) is True
    assert client.authenticate(reg.token) is None
    assert client.logout(reg.token) is False
    assert client.logout(None) is False
    with pytest.raises(chatmem.NotAuthorized):
        client.refresh(reg.refresh_token)


def test_require_user(client: chatmem.Client) -> None:
    reg = register(client)
    assert client.require_user(reg.token) == reg.user_id
    with pytest.raises(chatmem.NotAuthorized):
        client.require_user("garbage")
    with pytest.raises(chatmem.NotAuthorized):
        client.require_user(None)


def test_require_guest(client: chatmem.Client) -> None:
    g = guest()
    assert client.require_guest(g) == g
    assert client.require_guest(None) is None
    reg = register(client)
    with pytest.raises(chatmem.NotAuthorized):
        client.require_guest(str(reg.user_id))
    with pytest.raises(chatmem.InvalidInput):
        client.require_guest("")


def test_too_many_failed_logins(client: chatmem.Client, admin: psycopg.Connection[Any]) -> None:
    row = admin.execute("SELECT login_failure_limit FROM chatmem_settings").fetchone()
    assert row is not None
    reg = register(client)
    for _ in range(row[0]):
        with pytest.raises(chatmem.InvalidCredentials):
            client.login(reg.email, "wrong password!")
    with pytest.raises(chatmem.TooManyLoginAttempts) as info:
        client.login(reg.email, PASSWORD)  # even the right password waits for the window
    assert (info.value.sqlstate, info.value.http_status) == ("CM001", 429)
    assert info.value.hint


def test_guest_session_limit(client: chatmem.Client, admin: psycopg.Connection[Any]) -> None:
    row = admin.execute("SELECT guest_sessions_per_hour FROM chatmem_settings").fetchone()
    assert row is not None
    g = guest()
    for _ in range(row[0]):
        client.create_session(user_id=g)
    with pytest.raises(chatmem.GuestSessionLimit) as info:
        client.create_session(user_id=g)
    assert (info.value.sqlstate, info.value.http_status) == ("CM002", 429)
    with pytest.raises(chatmem.GuestSessionLimit):
        client.create_or_get_session(f"s-{uuid.uuid4()}", user_id=g)
    assert len(client.list_sessions(g)) == row[0]


# -- guest data and health ---------------------------------------------------------


def test_delete_guest_data(client: chatmem.Client) -> None:
    g = guest()
    sids = [client.create_session(user_id=g).session_id for _ in range(2)]
    client.add_message(sids[0], g, "user", "forget me")
    other = guest()
    kept = client.create_session(user_id=other).session_id
    assert client.delete_guest_data(g) == 2
    assert client.list_sessions(g) == []
    assert [s.session_id for s in client.list_sessions(other)] == [kept]
    assert client.delete_guest_data(g) == 0
    with pytest.raises(chatmem.InvalidInput):
        client.delete_guest_data("anonymous")


def test_purge_guest_sessions(client: chatmem.Client, admin: psycopg.Connection[Any]) -> None:
    g = guest()
    idle = client.create_session(user_id=g).session_id
    fresh = client.create_session(user_id=g).session_id
    # Far older than anything else in the database, so only ours are idle enough.
    admin.execute("UPDATE conversation_sessions SET updated_at = now() - interval '50 years'"
                  " WHERE session_id = %s", [idle])
    assert client.purge_guest_sessions(timedelta(days=365 * 40), dry_run=True) == 1
    assert len(client.list_sessions(g)) == 2
    assert client.purge_guest_sessions(timedelta(days=365 * 40)) == 1
    assert [s.session_id for s in client.list_sessions(g)] == [fresh]
    with pytest.raises(chatmem.InvalidInput):
        client.purge_guest_sessions(timedelta(days=-1))


def test_schema_version(client: chatmem.Client, admin_url: str) -> None:
    version = client.schema_version()
    assert version is not None
    assert version == migrate.schema_version(admin_url)
    assert (ROOT / "db" / "migrations" / f"{version}.sql").exists()


# -- conversation memory --------------------------------------------------------


def test_messages_in_order_with_paging(client: chatmem.Client) -> None:
    g = guest()
    sid = client.create_session(user_id=g).session_id
    ids = [client.add_message(sid, g, role, f"m{i}")
           for i, role in enumerate(["user", "assistant", "system", "user", "assistant"])]
    assert ids == sorted(ids)
    assert all(isinstance(i, int) for i in ids)
    every = client.get_messages(sid, g)
    assert [(m.id, m.role, m.content) for m in every] == [
        (ids[0], "user", "m0"), (ids[1], "assistant", "m1"), (ids[2], "system", "m2"),
        (ids[3], "user", "m3"), (ids[4], "assistant", "m4"),
    ]
    assert all(isinstance(m, chatmem.Message) for m in every)
    latest = client.get_messages(sid, g, limit=2)
    assert [m.content for m in latest] == ["m3", "m4"]
    older = client.get_messages(sid, g, limit=2, before_id=latest[0].id)
    assert [m.content for m in older] == ["m1", "m2"]
    assert [m.content for m in client.get_messages(sid, g, before_id=ids[1])] == ["m0"]
    with pytest.raises(chatmem.InvalidInput):
        client.get_messages(sid, g, limit=0)


def test_message_refusals(client: chatmem.Client) -> None:
    g = guest()
    sid = client.create_session(user_id=g).session_id
    with pytest.raises(chatmem.InvalidInput) as bad_role:
        client.add_message(sid, g, "robot", "hi")
    assert "p_role" in bad_role.value.message
    with pytest.raises(chatmem.InvalidInput):
        client.add_message(sid, g, "user", "   ")
    with pytest.raises(chatmem.NotFound) as missing:
        client.add_message(f"missing-{uuid.uuid4()}", g, "user", "hi")
    assert (missing.value.sqlstate, missing.value.http_status) == ("P0002", 404)
    with pytest.raises(chatmem.NotFound):
        client.get_messages(f"missing-{uuid.uuid4()}", g)
    with pytest.raises(chatmem.ForbiddenSession) as forbidden:
        client.add_message(sid, guest(), "user", "not mine")
    assert forbidden.value.http_status == 403
    with pytest.raises(chatmem.ForbiddenSession):
        client.get_messages(sid, None)
    assert client.get_messages(sid, g) == []


def test_qa_pairs(client: chatmem.Client) -> None:
    g = guest()
    sid = client.create_session(user_id=g).session_id
    first = client.add_qa_pair(sid, g, "How do refunds work?", "Within 5 days.")
    second = client.add_qa_pair(sid, g, "And disputes?", "Open one in the dashboard.")
    assert second > first
    pairs = client.get_qa_pairs(sid, g)
    assert all(isinstance(p, chatmem.QAPair) for p in pairs)
    assert [(p.id, p.question, p.answer) for p in pairs] == [
        (first, "How do refunds work?", "Within 5 days."),
        (second, "And disputes?", "Open one in the dashboard."),
    ]
    with pytest.raises(chatmem.ForbiddenSession):
        client.get_qa_pairs(sid, guest())
    with pytest.raises(chatmem.NotFound):
        client.add_qa_pair(f"missing-{uuid.uuid4()}", g, "q", "a")
    with pytest.raises(chatmem.InvalidInput):
        client.add_qa_pair(sid, g, "", "a")


# -- errors -------------------------------------------------------------------


@pytest.mark.parametrize("sqlstate", sorted(CODES))
def test_every_code_in_the_table_maps_from_a_real_server_error(
    admin: psycopg.Connection[Any], sqlstate: str
) -> None:
    with pytest.raises(psycopg.Error) as raised:
        admin.execute(
            f"DO $$ BEGIN RAISE EXCEPTION USING ERRCODE = '{sqlstate}', "
            "MESSAGE = 'p_field: went wrong', HINT = 'Do it right.'; END $$"
        )
    mapped = api_errors.from_psycopg(raised.value)
    code = CODES[sqlstate]
    assert type(mapped) is code.exception
    assert isinstance(mapped, ChatmemError)
    assert (mapped.sqlstate, mapped.message, mapped.hint) == (
        sqlstate, "p_field: went wrong", "Do it right."
    )
    assert mapped.http_status == code.http_status == api_errors.http_status(sqlstate)
    assert str(mapped) == "p_field: went wrong (hint: Do it right.)"


def test_the_table_matches_the_registry_in_docs() -> None:
    documented: dict[str, tuple[str, int]] = {}
    for line in (ROOT / "docs" / "errors.md").read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 5 and re.fullmatch(r"`[0-9A-Z]{5}`", cells[0]):
            status = re.match(r"\d{3}", cells[4])
            assert status, line
            documented[cells[0].strip("`")] = (cells[3].strip("`"), int(status.group()))
    assert len(documented) >= 7
    for sqlstate, (exception, status) in documented.items():
        assert sqlstate in CODES, f"{sqlstate} is documented but not in the client's table"
        code = CODES[sqlstate]
        assert (code.exception.__name__, code.http_status) == (exception, status)
    assert CODES["CM001"].exception is chatmem.TooManyLoginAttempts
    assert CODES["CM002"].exception is chatmem.GuestSessionLimit
    assert CODES["CM001"].http_status == CODES["CM002"].http_status == 429


def test_errors_that_are_not_ours_pass_through_unchanged(client: chatmem.Client) -> None:
    # An integer too big for p_limit: PostgreSQL finds no such function (42883).
    with pytest.raises(psycopg.errors.UndefinedFunction) as info:
        client.get_messages("whatever", None, limit=2**40)
    assert not isinstance(info.value, ChatmemError)
    assert api_errors.http_status(info.value.sqlstate) is None


def test_exceptions_pickle_and_keep_their_fields() -> None:
    import pickle

    err = chatmem.NotFound("P0002", "session x not found", "Create it first.")
    back = pickle.loads(pickle.dumps(err))
    assert type(back) is chatmem.NotFound
    assert (back.sqlstate, back.message, back.hint) == (err.sqlstate, err.message, err.hint)


# -- the pool -----------------------------------------------------------------


def test_one_client_shared_by_many_threads(admin_url: str, fast_bcrypt: None) -> None:
    errors: list[BaseException] = []
    results: dict[int, list[str]] = {}
    workers, per_worker = 8, 15

    with chatmem.Client(admin_url, min_size=2, max_size=4) as shared:
        def work(n: int) -> None:
            try:
                g = guest()
                sid = shared.create_session(user_id=g).session_id
                for i in range(per_worker):
                    shared.add_message(sid, g, "user", f"w{n}-{i}")
                results[n] = [m.content for m in shared.get_messages(sid, g)]
            except BaseException as exc:
                errors.append(exc)

        run_threads(workers, work)
    assert errors == []
    assert results == {n: [f"w{n}-{i}" for i in range(per_worker)] for n in range(workers)}


def test_context_manager_closes_the_pool(admin_url: str) -> None:
    with chatmem.Client(admin_url, max_size=1) as c:
        assert not c.closed
        assert c.list_sessions(None) == []
    assert c.closed
    with pytest.raises(psycopg_pool.PoolClosed):
        c.list_sessions(None)


def test_from_env_uses_database_url(
    admin_url: str, admin: psycopg.Connection[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATABASE_URL", admin_url)
    sid = f"env-{uuid.uuid4()}"
    with chatmem.Client.from_env(max_size=1) as c:
        c.create_or_get_session(sid)
    assert session_row(admin, sid) == (None, {})
