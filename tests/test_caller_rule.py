"""api.create_or_get_session decides who calls as chatmem_internal.resolve_caller does.

The hot path carries its own inlined copy of the caller rule (commit 3d5f713,
for speed): a UUID that is a registered user's id is that user, any other
valid id a guest id, NULL and 'anonymous' nobody, an invalid id 22023.
Every other function goes through resolve_caller.  These tests drive both
over the same callers and fail as soon as the two disagree, on a new session
(the owner written) and on existing sessions (let in, or 42501), so a change
to either copy that is not made to the other is caught.
"""

from __future__ import annotations

from typing import Any

import psycopg
import pytest

from helpers import Conn, tag

PASSWORD = "correct horse battery"
Outcome = tuple[Any, ...]


def callers(user: str, deleted_user: str) -> dict[str, str | None]:
    """The callers both copies must agree on, by what makes each one interesting."""
    bare = user.replace("-", "")
    return {
        "NULL": None,
        "anonymous": "anonymous",
        "ANONYMOUS (not the keyword)": "ANONYMOUS",
        "a guest id": f"guest-{tag()}",
        "a guest UUID": "9b2e6a41-3d7c-4f0e-8a55-1c2d3e4f5a6b",
        "a user's id": user,
        "a user's id, upper case": user.upper(),
        # Spellings PostgreSQL's uuid input accepts but the rule does not: guest ids.
        "a user's id in braces": "{" + user + "}",
        "a user's id without hyphens": bare,
        "a user's id, hyphens every 4 digits": "-".join(bare[i:i + 4] for i in range(0, 32, 4)),
        "a user's id, leading space": " " + user,
        "a user's id, trailing space": user + " ",
        "a user's id, trailing newline": user + "\n",
        "36 hyphens": "-" * 36,
        "a UUID-shaped id with a non-hex digit": "g" + user[1:],
        "a deleted user's id": deleted_user,
        "255 characters": "g" * 255,
        "256 characters": "g" * 256,
        "empty": "",
        "spaces only": "   ",
        "a tab": "\t",
        "a control character inside": "guest\x01id",
    }


def attempt(conn: Conn, query: str, params: list[Any]) -> Outcome:
    """The row ``query`` returns, or the error it raises as ('error', SQLSTATE, message)."""
    try:
        with conn.transaction():
            row = conn.execute(query, params).fetchone()
    except psycopg.Error as exc:
        return ("error", exc.sqlstate, exc.diag.message_primary)
    assert row is not None
    return tuple(row)


@pytest.fixture(scope="module")
def people(conn: Conn) -> dict[str, str]:
    """A registered user with a session, a guest's session, an open session, and a
    session whose user a DBA deleted (its id now a stranger's)."""
    run = tag()

    def register(name: str) -> str:
        row = conn.execute("SELECT user_id FROM api.register_user(%s, %s, %s)",
                           [name, f"caller-rule-{name}-{run}@example.test", PASSWORD]).fetchone()
        assert row is not None
        return str(row[0])

    user, deleted = register("alice"), register("gone")
    out = {"user": user, "deleted_user": deleted, "guest": f"guest-owner-{run}",
           "user_session": f"cr-user-{run}", "guest_session": f"cr-guest-{run}",
           "open_session": f"cr-open-{run}", "orphan_session": f"cr-orphan-{run}"}
    for sid, owner in ((out["user_session"], user), (out["guest_session"], out["guest"]),
                       (out["open_session"], None), (out["orphan_session"], deleted)):
        conn.execute("SELECT api.create_or_get_session(%s, %s)", [sid, owner])
    conn.execute("DELETE FROM public.users WHERE id = %s", [deleted])
    return out


def test_a_new_session_is_written_for_the_caller_resolve_caller_names(conn: Conn, people: dict[str, str]) -> None:
    disagree = {}
    for name, caller in callers(people["user"], people["deleted_user"]).items():
        resolved = attempt(conn, "SELECT (c).user_id, (c).guest_id"
                                 " FROM chatmem_internal.resolve_caller(%s) AS c", [caller])
        written = attempt(conn, "SELECT user_id, metadata ->> 'anonymousUserId'"
                                " FROM api.create_or_get_session(%s, %s, '{}')", [f"cr-new-{tag()}", caller])
        if written != resolved:
            disagree[name] = {"create_or_get_session": written, "resolve_caller": resolved}
    assert not disagree, disagree


def test_an_existing_session_lets_in_whom_resolve_caller_and_may_use_let_in(
    conn: Conn, people: dict[str, str]
) -> None:
    disagree = {}
    for name, caller in callers(people["user"], people["deleted_user"]).items():
        for kind in ("user_session", "guest_session", "open_session", "orphan_session"):
            sid = people[kind]
            ruled = attempt(conn, "SELECT chatmem_internal.may_use(s, chatmem_internal.resolve_caller(%s))"
                                  " FROM public.conversation_sessions AS s WHERE s.session_id = %s", [caller, sid])
            expected: Outcome = ruled if ruled[0] == "error" else (
                (sid,) if ruled[0] else ("error", "42501", f"session {sid} belongs to someone else"))
            got = attempt(conn, "SELECT session_id FROM api.create_or_get_session(%s, %s)", [sid, caller])
            if got != expected:
                disagree[f"{name} on {kind}"] = {"create_or_get_session": got, "resolve_caller + may_use": expected}
    assert not disagree, disagree


def test_the_matrix_holds_each_kind_of_outcome(conn: Conn, people: dict[str, str]) -> None:
    """A control: the callers cover a user, guests, nobody and every 22023 reason."""
    outcomes = {}
    for name, caller in callers(people["user"], people["deleted_user"]).items():
        outcomes[name] = attempt(conn, "SELECT (c).user_id::text, (c).guest_id"
                                       " FROM chatmem_internal.resolve_caller(%s) AS c", [caller])
    assert outcomes["a user's id"] == outcomes["a user's id, upper case"] == (people["user"], None)
    assert outcomes["NULL"] == outcomes["anonymous"] == (None, None)
    for name in ("a user's id in braces", "a user's id without hyphens", "a user's id, leading space",
                 "a deleted user's id", "36 hyphens", "255 characters", "ANONYMOUS (not the keyword)"):
        assert outcomes[name][0] is None and outcomes[name][1] is not None, (name, outcomes[name])
    for name in ("empty", "spaces only", "256 characters", "a tab", "a control character inside",
                 "a user's id, trailing newline"):
        assert outcomes[name][:2] == ("error", "22023"), (name, outcomes[name])
        assert "p_user_id" in outcomes[name][2], outcomes[name]
