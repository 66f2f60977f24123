"""Bad input, table-driven: every refusal has its documented SQLSTATE, a message
naming the field, and changes nothing (a digest of every table before and after).

Also: input PostgreSQL refuses before a function runs, with the codes
docs/errors.md lists; SQL text in every string argument is only ever data.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql
from psycopg.types.json import Jsonb

RUN = uuid.uuid4().hex[:8]
GUEST = f"bi-guest-{RUN}"
SESSION = f"bi-session-{RUN}"
EMAIL = f"bi-{RUN}@example.test"
PASSWORD = "correct horse"

Conn = psycopg.Connection[tuple[Any, ...]]


@dataclass(frozen=True)
class Ref:
    """A value made by the setup (a token, an id), looked up when the case runs."""

    key: str


@dataclass(frozen=True)
class Bad:
    """One bad call: ``query``'s ``%(name)s`` placeholders come from the setup and ``params``."""

    name: str
    query: str
    sqlstate: str
    names: str  # what the message must name
    params: dict[str, Any] = field(default_factory=dict)


def _deep_object(depth: int) -> str:
    return '{"a":' * depth + "1" + "}" * depth


SQL_TEXT = "x'); DELETE FROM public.users; --"
CGS_ID = "SELECT api.create_or_get_session(%(v)s, %(guest)s)"
CGS_USER = "SELECT api.create_or_get_session(%(session)s, %(v)s)"
CGS_META = "SELECT api.create_or_get_session('bi-x', %(guest)s, %(v)s)"
CS_CTX = "SELECT * FROM api.create_session(%(guest)s, %(v)s)"
CS_TOKEN = "SELECT * FROM api.create_session(%(user_id)s, '{}', %(v)s)"
REG = "SELECT * FROM api.register_user(%(name)s, %(email)s, %(password)s, %(anon)s)"
LOGIN = "SELECT * FROM api.login(%(email)s, %(password)s, %(anon)s)"
REFRESH = "SELECT * FROM api.refresh(%(v)s)"
ADD = "SELECT api.add_message(%(session)s, %(guest)s, %(role)s, %(content)s)"
QA = "SELECT api.add_qa_pair(%(session)s, %(guest)s, %(question)s, %(answer)s)"
GET = "SELECT * FROM api.get_messages(%(session)s, %(guest)s, %(limit)s)"
LIST = "SELECT * FROM api.list_sessions(%(v)s)"
DELETE = "SELECT api.delete_guest_data(%(v)s)"
PURGE = "SELECT api.purge_guest_sessions(%(v)s::interval)"


def reg(**kw: Any) -> dict[str, Any]:
    return {
        "name": "Bad Input",
        "email": f"bi-new-{RUN}@example.test",
        "password": PASSWORD,
        "anon": None,
        **kw,
    }


def login(**kw: Any) -> dict[str, Any]:
    return {"email": EMAIL, "password": PASSWORD, "anon": None, **kw}


def add(**kw: Any) -> dict[str, Any]:
    return {"role": "user", "content": "hello", **kw}


def qa(**kw: Any) -> dict[str, Any]:
    return {"question": "q?", "answer": "a.", **kw}


CASES: list[Bad] = [
    # ---- create_or_get_session: ids
    Bad("cgs session_id NULL", CGS_ID, "22023", "p_session_id", {"v": None}),
    Bad("cgs session_id empty", CGS_ID, "22023", "p_session_id", {"v": ""}),
    Bad("cgs session_id whitespace", CGS_ID, "22023", "p_session_id", {"v": " \t "}),
    Bad("cgs session_id 256 chars", CGS_ID, "22023", "p_session_id", {"v": "s" * 256}),
    Bad("cgs session_id control char", CGS_ID, "22023", "p_session_id", {"v": "bi-\x07-bell"}),
    Bad("cgs session_id newline", CGS_ID, "22023", "p_session_id", {"v": "bi-line\nbreak"}),
    Bad("cgs user_id empty", CGS_USER, "22023", "p_user_id", {"v": ""}),
    Bad("cgs user_id 256 chars", CGS_USER, "22023", "p_user_id", {"v": "u" * 256}),
    Bad("cgs user_id escape char", CGS_USER, "22023", "p_user_id", {"v": "guest\x1b[31m"}),
    # ---- metadata / context JSON
    Bad("cgs metadata array", CGS_META, "22023", "p_metadata", {"v": Jsonb([1, 2])}),
    Bad("cgs metadata string", CGS_META, "22023", "p_metadata", {"v": Jsonb("a string")}),
    Bad("cgs metadata JSON null", CGS_META, "22023", "p_metadata", {"v": Jsonb(None)}),
    Bad("cgs metadata number", CGS_META, "22023", "p_metadata", {"v": Jsonb(42)}),
    Bad(
        "cgs metadata over 64 KiB",
        CGS_META,
        "22023",
        "p_metadata",
        {"v": Jsonb({"blob": "x" * 70_000})},
    ),
    # 9,900 levels: over 64 KiB as jsonb text.
    Bad(
        "cgs metadata deeply nested",
        CGS_META.replace("%(v)s", "%(v)s::jsonb"),
        "22023",
        "p_metadata",
        {"v": _deep_object(9_900)},
    ),
    # 40 levels: small, but deeper than the 32 allowed.
    Bad(
        "cgs metadata nested 40 levels",
        CGS_META.replace("%(v)s", "%(v)s::jsonb"),
        "22023",
        "p_metadata",
        {"v": _deep_object(40)},
    ),
    Bad(
        "create_session context nested 40 levels",
        CS_CTX.replace("%(v)s", "%(v)s::jsonb"),
        "22023",
        "p_context",
        {"v": _deep_object(40)},
    ),
    Bad("create_session context array", CS_CTX, "22023", "p_context", {"v": Jsonb(["a"])}),
    Bad(
        "create_session context over 64 KiB",
        CS_CTX,
        "22023",
        "p_context",
        {"v": Jsonb({"k": "y" * 66_000})},
    ),
    Bad(
        "create_session user_id empty",
        "SELECT * FROM api.create_session(%(v)s)",
        "22023",
        "p_user_id",
        {"v": ""},
    ),
    # ---- create_session: an invalid token never opens an account's sessions
    Bad("create_session user id, garbage token", CS_TOKEN, "28000", "p_user_id", {"v": "garbage"}),
    Bad(
        "create_session user id, expired token",
        CS_TOKEN,
        "28000",
        "p_user_id",
        {"v": Ref("expired_access")},
    ),
    Bad(
        "create_session user id, revoked token",
        CS_TOKEN,
        "28000",
        "p_user_id",
        {"v": Ref("revoked_access")},
    ),
    # ---- register_user
    Bad("register name NULL", REG, "22023", "p_name", reg(name=None)),
    Bad("register name empty", REG, "22023", "p_name", reg(name="")),
    Bad("register name whitespace", REG, "22023", "p_name", reg(name="   \t ")),
    Bad("register name 201 chars", REG, "22023", "p_name", reg(name="n" * 201)),
    Bad("register name control char", REG, "22023", "p_name", reg(name="Ada\x01Lovelace")),
    Bad("register email NULL", REG, "22023", "p_email", reg(email=None)),
    Bad("register email empty", REG, "22023", "p_email", reg(email="")),
    Bad("register email no at", REG, "22023", "p_email", reg(email="not-an-email")),
    Bad("register email no tld", REG, "22023", "p_email", reg(email="ada@localhost")),
    Bad("register email two ats", REG, "22023", "p_email", reg(email="a@b@example.test")),
    Bad("register email with space", REG, "22023", "p_email", reg(email="a b@example.test")),
    Bad("register email with SQL", REG, "22023", "p_email", reg(email=f"{SQL_TEXT}@x.test")),
    Bad("register email control char", REG, "22023", "p_email", reg(email="ada\x7f@x.test")),
    Bad("register email 255 chars", REG, "22023", "p_email", reg(email="e" * 248 + "@x.test")),
    Bad("register password NULL", REG, "22023", "p_password", reg(password=None)),
    Bad("register password short", REG, "22023", "p_password", reg(password="1234567")),
    Bad("register password 73 bytes", REG, "22023", "p_password", reg(password="p" * 73)),
    Bad(
        "register password 74 bytes in 37 chars", REG, "22023", "p_password", reg(password="é" * 37)
    ),
    Bad("register guest id 256 chars", REG, "22023", "p_anonymous_user_id", reg(anon="g" * 256)),
    Bad(
        "register guest id control char",
        REG,
        "22023",
        "p_anonymous_user_id",
        reg(anon="guest\ttab"),
    ),
    Bad("register email taken, other case", REG, "23505", "p_email", reg(email=EMAIL.upper())),
    # ---- login
    Bad("login email NULL", LOGIN, "22023", "p_email", login(email=None)),
    Bad("login email blank", LOGIN, "22023", "p_email", login(email=" ")),
    Bad("login password NULL", LOGIN, "22023", "p_password", login(password=None)),
    Bad("login password empty", LOGIN, "22023", "p_password", login(password="")),
    Bad("login guest id 256 chars", LOGIN, "22023", "p_anonymous_user_id", login(anon="g" * 256)),
    # ---- refresh: missing, garbage, expired, revoked, reused
    Bad("refresh NULL", REFRESH, "22023", "p_refresh_token", {"v": None}),
    Bad("refresh empty", REFRESH, "22023", "p_refresh_token", {"v": ""}),
    Bad("refresh garbage", REFRESH, "28000", "refresh token", {"v": "garbage"}),
    Bad("refresh SQL text", REFRESH, "28000", "refresh token", {"v": SQL_TEXT}),
    Bad("refresh an access token", REFRESH, "28000", "refresh token", {"v": Ref("access")}),
    Bad("refresh expired", REFRESH, "28000", "refresh token", {"v": Ref("expired_refresh")}),
    Bad(
        "refresh revoked by logout",
        REFRESH,
        "28000",
        "refresh token",
        {"v": Ref("revoked_refresh")},
    ),
    Bad("refresh reused", REFRESH, "28000", "refresh token", {"v": Ref("reused_refresh")}),
    # ---- add_message
    Bad("add_message session NULL", ADD, "22023", "p_session_id", add(session=None)),
    Bad("add_message user_id empty", ADD, "22023", "p_user_id", add(guest="")),
    Bad("add_message role unknown", ADD, "22023", "p_role", add(role="robot")),
    Bad("add_message role wrong case", ADD, "22023", "p_role", add(role="User")),
    Bad("add_message role NULL", ADD, "22023", "p_role", add(role=None)),
    Bad("add_message role SQL text", ADD, "22023", "p_role", add(role=SQL_TEXT)),
    Bad("add_message content NULL", ADD, "22023", "p_content", add(content=None)),
    Bad("add_message content empty", ADD, "22023", "p_content", add(content="")),
    Bad("add_message content blank", ADD, "22023", "p_content", add(content=" \r\n\t ")),
    Bad("add_message content huge", ADD, "22023", "p_content", add(content="z" * 100_001)),
    Bad("add_message unknown session", ADD, "P0002", "session", add(session=f"bi-none-{RUN}")),
    # ---- add_qa_pair / get_qa_pairs
    Bad("add_qa_pair question NULL", QA, "22023", "p_question", qa(question=None)),
    Bad("add_qa_pair answer blank", QA, "22023", "p_answer", qa(answer="\n\n")),
    Bad("add_qa_pair answer huge", QA, "22023", "p_answer", qa(answer="a" * 100_001)),
    Bad("add_qa_pair session 256 chars", QA, "22023", "p_session_id", qa(session="s" * 256)),
    Bad(
        "get_qa_pairs session empty",
        "SELECT * FROM api.get_qa_pairs('', %(guest)s)",
        "22023",
        "p_session_id",
    ),
    # ---- get_messages
    Bad("get_messages limit 0", GET, "22023", "p_limit", {"limit": 0}),
    Bad("get_messages limit 1001", GET, "22023", "p_limit", {"limit": 1001}),
    Bad("get_messages limit negative", GET, "22023", "p_limit", {"limit": -5}),
    Bad("get_messages limit NULL", GET, "22023", "p_limit", {"limit": None}),
    Bad("get_messages session control char", GET, "22023", "p_session_id", {"session": "bi\x02x"}),
    # ---- list_sessions, delete_guest_data, purge_guest_sessions
    Bad("list_sessions user_id empty", LIST, "22023", "p_user_id", {"v": ""}),
    Bad("list_sessions user_id 256 chars", LIST, "22023", "p_user_id", {"v": "u" * 256}),
    Bad("delete_guest_data NULL", DELETE, "22023", "p_anonymous_user_id", {"v": None}),
    Bad(
        "delete_guest_data 'anonymous'", DELETE, "22023", "p_anonymous_user_id", {"v": "anonymous"}
    ),
    Bad("purge NULL", PURGE, "22023", "p_idle_for", {"v": None}),
    Bad("purge negative", PURGE, "22023", "p_idle_for", {"v": "-3 days"}),
    Bad(
        "purge dry_run NULL",
        "SELECT api.purge_guest_sessions('1 day', %(v)s)",
        "22023",
        "p_dry_run",
        {"v": None},
    ),
]


def _tables(conn: Conn) -> list[str]:
    return [
        r[0]
        for r in conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1"
        )
    ]


def _table_digests(conn: Conn) -> dict[str, tuple[int, str]]:
    """Row count and an md5 over every row of every table in public: the full picture."""
    out = {}
    for table in _tables(conn):
        row = conn.execute(
            sql.SQL(
                "SELECT count(*), md5(coalesce(string_agg(t::text, E'\\n' ORDER BY t::text), ''))"
                " FROM public.{} AS t"
            ).format(sql.Identifier(table))
        ).fetchone()
        assert row is not None
        out[table] = (row[0], row[1])
    return out


def _table_versions(conn: Conn) -> dict[str, tuple[int, int]]:
    """Row count and newest row version (xmin) of every table in public: cheap, and any
    committed insert, update or delete changes one of the two."""
    out = {}
    for table in _tables(conn):
        row = conn.execute(
            sql.SQL("SELECT count(*), coalesce(max(xmin::text::bigint), 0) FROM public.{}").format(
                sql.Identifier(table)
            )
        ).fetchone()
        assert row is not None
        out[table] = (row[0], row[1])
    return out


def _expire(conn: Conn, *tokens: str) -> None:
    for token in tokens:
        conn.execute(
            "UPDATE public.auth_tokens SET expires_at = now() - interval '1 second'"
            " WHERE token_hash = sha256(convert_to(%s, 'UTF8'))",
            [token],
        )


@pytest.fixture(scope="module")
def ctx(conn: Conn) -> dict[str, Any]:
    """A guest session, a user, and tokens that are expired, revoked and reused."""
    conn.execute("SELECT api.create_or_get_session(%s, %s)", [SESSION, GUEST])
    conn.execute("SELECT api.add_message(%s, %s, 'user', 'first')", [SESSION, GUEST])
    row = conn.execute(
        "SELECT user_id, token, refresh_token FROM api.register_user('Bad', %s, %s)",
        [EMAIL, PASSWORD],
    ).fetchone()
    assert row is not None
    user_id, access, refresh = row

    def log_in() -> tuple[str, str]:
        r = conn.execute(
            "SELECT token, refresh_token FROM api.login(%s, %s)", [EMAIL, PASSWORD]
        ).fetchone()
        assert r is not None
        return r[0], r[1]

    expired_access, expired_refresh = log_in()
    _expire(conn, expired_access, expired_refresh)
    revoked_access, revoked_refresh = log_in()
    assert conn.execute("SELECT api.logout(%s)", [revoked_access]).fetchone() == (True,)
    _, reused_refresh = log_in()
    conn.execute("SELECT * FROM api.refresh(%s)", [reused_refresh])
    # The first replay revokes the family (a write meant to survive); replays
    # after that change nothing, which is what the case below presents.
    with pytest.raises(psycopg.errors.InvalidAuthorizationSpecification):
        conn.execute("SELECT * FROM api.refresh(%s)", [reused_refresh])
    return {
        "guest": GUEST,
        "session": SESSION,
        "user_id": str(user_id),
        "access": access,
        "refresh": refresh,
        "expired_access": expired_access,
        "expired_refresh": expired_refresh,
        "revoked_access": revoked_access,
        "revoked_refresh": revoked_refresh,
        "reused_refresh": reused_refresh,
        "limit": 10,
    }


@pytest.fixture(scope="module")
def baseline(conn: Conn, ctx: dict[str, Any]) -> dict[str, tuple[int, str]]:
    """Every row of every table, after the setup and before the first refusal."""
    return _table_digests(conn)


def test_at_least_forty_cases_across_every_function() -> None:
    assert len(CASES) >= 40
    assert len({c.name for c in CASES}) == len(CASES)
    called = {c.query.split("api.")[1].split("(")[0] for c in CASES}
    assert called == {
        "create_or_get_session",
        "create_session",
        "register_user",
        "login",
        "refresh",
        "add_message",
        "add_qa_pair",
        "get_qa_pairs",
        "get_messages",
        "list_sessions",
        "delete_guest_data",
        "purge_guest_sessions",
    }


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_bad_input_is_refused_with_its_code_naming_the_field_and_changes_nothing(
    conn: Conn, ctx: dict[str, Any], baseline: dict[str, tuple[int, str]], case: Bad
) -> None:
    params = {k: ctx[v.key] if isinstance(v, Ref) else v for k, v in case.params.items()}
    before = _table_versions(conn)
    with pytest.raises(psycopg.Error) as caught:
        conn.execute(case.query, {**ctx, **params})
    error = caught.value
    assert error.sqlstate == case.sqlstate, f"{case.name}: {error.sqlstate} {error}"
    message = error.diag.message_primary or ""
    assert case.names in message, f"{case.name}: {message!r} does not name {case.names!r}"
    assert error.diag.message_hint, f"{case.name}: no HINT"
    assert _table_versions(conn) == before, f"{case.name} changed a table"


def test_refused_inputs_leave_the_guest_session_as_it_was(conn: Conn, ctx: dict[str, Any]) -> None:
    rows = conn.execute("SELECT content FROM api.get_messages(%s, %s)", [SESSION, GUEST]).fetchall()
    assert rows == [("first",)]


# What PostgreSQL itself refuses before a function runs: docs/errors.md, last table.
CGS_PRE = "SELECT api.create_or_get_session('bi-pre', %s, %s)"
GET_PRE = "SELECT * FROM api.get_messages('bi-pre', %s, %s)"
PRE_FUNCTION: list[tuple[str, Any, list[Any] | None, str | None]] = [
    ("malformed JSON", CGS_PRE, [GUEST, "{bad json"], "22P02"),
    ("\\u0000 in JSON", CGS_PRE, [GUEST, '{"a": "\\u0000"}'], "22P05"),
    ("JSON nested deeper than the stack", CGS_PRE, [GUEST, _deep_object(20_000)], "54001"),
    ("NUL byte in a text literal", "SELECT * FROM api.list_sessions(E'bi\\000x')", None, "22021"),
    ("NUL byte in a text parameter", "SELECT * FROM api.list_sessions(%s)", ["bi\x00x"], None),
    ("invalid UTF-8 in the statement", b"SELECT * FROM api.list_sessions('bi\xff')", None, "22021"),
    ("invalid UTF-8 escape", "SELECT * FROM api.list_sessions(E'bi\\xff')", None, "22021"),
    ("non-integer p_limit", GET_PRE, [GUEST, "ten"], "22P02"),
    ("non-integer p_before_id", GET_PRE.replace(")", ", %s)"), [GUEST, 10, "x"], "22P02"),
    ("p_limit out of range as text", GET_PRE, [GUEST, "99999999999"], "22003"),
    ("p_limit out of range as a bigint", GET_PRE, [GUEST, 99_999_999_999], "42883"),
    ("unparsable interval", "SELECT api.purge_guest_sessions(%s)", ["fortnight-ish"], "22007"),
]


@pytest.mark.parametrize(
    "name,query,params,sqlstate", PRE_FUNCTION, ids=[p[0] for p in PRE_FUNCTION]
)
def test_postgresql_refuses_before_the_function_runs_with_the_documented_code(
    conn: Conn, name: str, query: Any, params: list[Any] | None, sqlstate: str | None
) -> None:
    before = _table_versions(conn)
    if sqlstate is None:
        # psycopg refuses a NUL in a text parameter itself, before sending anything.
        with pytest.raises(psycopg.DataError, match="NUL"):
            conn.execute(query, params)
    else:
        with pytest.raises(psycopg.Error) as caught:
            conn.execute(query, params)
        assert caught.value.sqlstate == sqlstate, f"{name}: {caught.value}"
    assert _table_versions(conn) == before


def test_every_table_is_byte_for_byte_unchanged_after_all_the_refusals_above(
    conn: Conn, baseline: dict[str, tuple[int, str]]
) -> None:
    """The full snapshot, taken once before the first refusal and once after the last."""
    assert _table_digests(conn) == baseline


@pytest.mark.parametrize(
    "token", [None, "", "garbage", Ref("expired_access"), Ref("revoked_access"), Ref("refresh")]
)
def test_authenticate_and_logout_never_raise_for_invalid_tokens(
    conn: Conn, ctx: dict[str, Any], token: str | Ref | None
) -> None:
    value = ctx[token.key] if isinstance(token, Ref) else token
    assert conn.execute("SELECT api.authenticate(%s)", [value]).fetchone() == (None,)
    assert conn.execute("SELECT api.logout(%s)", [value]).fetchone() == (False,)


def test_the_errors_doc_lists_every_pre_function_code() -> None:
    doc = (Path(__file__).parent.parent / "docs" / "errors.md").read_text()
    table = doc.split("## Refused by PostgreSQL before a function runs", 1)[1]
    for name, _, _, code in PRE_FUNCTION:
        if code is not None:
            assert f"`{code}`" in table, f"{name}: {code} is missing from docs/errors.md"


def test_sql_text_in_every_string_is_stored_as_data(conn: Conn) -> None:
    """SQL in ids, names, emails, passwords, content and JSON is data, never code."""
    evil = f"bi-{RUN}'); DELETE FROM public.users; DROP TABLE public.qa_pairs; --"
    users_before = conn.execute("SELECT count(*) FROM public.users").fetchone()
    session = conn.execute(
        "SELECT session_id FROM api.create_or_get_session(%s, %s, %s)",
        [evil, evil, Jsonb({evil: evil})],
    ).fetchone()
    assert session == (evil,)
    stored = conn.execute(
        "SELECT metadata FROM public.conversation_sessions WHERE session_id = %s", [evil]
    ).fetchone()
    assert stored == ({evil: evil, "anonymousUserId": evil},)
    conn.execute("SELECT api.add_message(%s, %s, 'user', %s)", [evil, evil, evil])
    conn.execute("SELECT api.add_qa_pair(%s, %s, %s, %s)", [evil, evil, evil, evil])
    messages = conn.execute("SELECT content FROM api.get_messages(%s, %s)", [evil, evil])
    assert messages.fetchall() == [(evil,)]
    pairs = conn.execute("SELECT question, answer FROM api.get_qa_pairs(%s, %s)", [evil, evil])
    assert pairs.fetchall() == [(evil, evil)]
    listed = conn.execute("SELECT session_id FROM api.list_sessions(%s)", [evil]).fetchall()
    assert listed == [(evil,)]
    made = conn.execute(
        "SELECT session_id FROM api.create_session(%s, %s)", [evil, Jsonb({"note": evil})]
    ).fetchone()
    assert made is not None
    # A name and a password may hold SQL text; an email's local part may too.
    email = f"bi-{RUN}';--@example.test"
    registered = conn.execute(
        "SELECT user_id, migrated_sessions FROM api.register_user(%s, %s, %s, %s)",
        [evil[:200], email, "'; DROP--x", evil],
    ).fetchone()
    assert registered is not None
    assert registered[1] == 2  # both sessions of the guest id were claimed
    user = conn.execute("SELECT name, email FROM public.users WHERE id = %s", [registered[0]])
    assert user.fetchone() == (evil[:200], email)
    logged_in = conn.execute(
        "SELECT count(*) FROM api.login(%s, %s)", [email.upper(), "'; DROP--x"]
    )
    assert logged_in.fetchone() == (1,)
    assert conn.execute("SELECT api.delete_guest_data(%s)", [evil]).fetchone() == (0,)
    users_after = conn.execute("SELECT count(*) FROM public.users").fetchone()
    assert users_before is not None
    assert users_after == (users_before[0] + 1,)
    assert conn.execute("SELECT to_regclass('public.qa_pairs') IS NOT NULL").fetchone() == (True,)


def test_smuggled_anonymous_user_id_in_metadata_never_decides_ownership(conn: Conn) -> None:
    victim = f"bi-victim-{RUN}"
    row = conn.execute(
        "SELECT metadata FROM api.create_or_get_session(%s, NULL, %s)",
        [f"bi-smuggle-{RUN}", Jsonb({"anonymousUserId": victim, "t": 1})],
    ).fetchone()
    assert row == ({"t": 1},)
    made = conn.execute(
        "SELECT session_id FROM api.create_session('anonymous', %s)",
        [Jsonb({"anonymousUserId": victim})],
    ).fetchone()
    assert made is not None
    has_key = conn.execute(
        "SELECT metadata ? 'anonymousUserId' FROM public.conversation_sessions"
        " WHERE session_id = %s",
        [made[0]],
    ).fetchone()
    assert has_key == (False,)
    assert conn.execute("SELECT count(*) FROM api.list_sessions(%s)", [victim]).fetchone() == (0,)
    claimed = conn.execute(
        "SELECT migrated_sessions FROM api.register_user('V', %s, %s, %s)",
        [f"bi-victim-{RUN}@example.test", PASSWORD, victim],
    ).fetchone()
    assert claimed == (0,)
