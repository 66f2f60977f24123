"""A claim never takes a session that has, or had, an owner (issue 14, item 6).

Every way of claiming a guest's sessions (api.register_user, api.login,
api.link_identity) must leave alone, even when its metadata still carries the
guest's id:

- a session a user owns: the older design's claim set user_id and left
  anonymousUserId in the metadata, so an upgraded database holds such rows;
- the same legacy row after its user was deleted (user_id NULL,
  owner_deleted_at set): it is nobody's now, not the guest's again.

The guest's own unowned session beside them is claimed, so each case shows
both sides.  The one-line bugs these catch: the claim's predicate without
``user_id IS NULL`` (the first) or without ``owner_deleted_at IS NULL`` (the
second, which before only api.preview_claim's listing noticed).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from helpers import Conn, tag

PASSWORD = "correct horse battery"


def register(conn: Conn, email: str, guest: str | None = None) -> tuple[Any, ...]:
    row = conn.execute("SELECT user_id, migrated_sessions FROM api.register_user('N', %s, %s, %s)",
                       [email, PASSWORD, guest]).fetchone()
    assert row is not None
    return tuple(row)


def claim_by_register(conn: Conn, run: str, guest: str) -> int:
    return int(register(conn, f"cg-new-{run}@example.test", guest)[1])


def claim_by_login(conn: Conn, run: str, guest: str) -> int:
    register(conn, f"cg-back-{run}@example.test")
    row = conn.execute("SELECT migrated_sessions FROM api.login(%s, %s, %s)",
                       [f"cg-back-{run}@example.test", PASSWORD, guest]).fetchone()
    assert row is not None
    return int(row[0])


def claim_by_identity(conn: Conn, run: str, guest: str) -> int:
    row = conn.execute("SELECT migrated_sessions FROM api.link_identity('idp', %s, %s, 'N', %s)",
                       [f"sub-{run}", f"cg-idp-{run}@example.test", guest]).fetchone()
    assert row is not None
    return int(row[0])


CLAIMS: dict[str, Callable[[Conn, str, str], int]] = {
    "register_user": claim_by_register, "login": claim_by_login, "link_identity": claim_by_identity,
}


@pytest.mark.parametrize("claim", list(CLAIMS))
def test_a_claim_takes_the_guests_unowned_session_and_no_owned_or_orphaned_one(conn: Conn, claim: str) -> None:
    run = tag()
    guest = f"cg-guest-{run}"
    owner = str(register(conn, f"cg-owner-{run}@example.test")[0])
    gone = str(register(conn, f"cg-gone-{run}@example.test")[0])
    unowned, owned, orphan = f"cg-unowned-{run}", f"cg-owned-{run}", f"cg-orphan-{run}"
    conn.execute("SELECT api.create_or_get_session(%s, %s)", [unowned, guest])
    # Legacy rows, as the older design's claim left them: a user's, with the guest's id still in.
    legacy = json.dumps({"anonymousUserId": guest, "project": "legacy"})
    conn.execute("INSERT INTO public.conversation_sessions (session_id, user_id, metadata)"
                 " VALUES (%s, %s, %s::jsonb), (%s, %s, %s::jsonb)",
                 [owned, owner, legacy, orphan, gone, legacy])
    conn.execute("DELETE FROM public.users WHERE id = %s", [gone])
    before = {sid: conn.execute("SELECT row_to_json(s)::text FROM public.conversation_sessions AS s"
                                " WHERE session_id = %s", [sid]).fetchone() for sid in (owned, orphan)}
    assert conn.execute("SELECT user_id, owner_deleted_at IS NOT NULL FROM public.conversation_sessions"
                        " WHERE session_id = %s", [orphan]).fetchone() == (None, True)

    assert CLAIMS[claim](conn, run, guest) == 1, "only the guest's unowned session is claimed"

    after = {sid: conn.execute("SELECT row_to_json(s)::text FROM public.conversation_sessions AS s"
                               " WHERE session_id = %s", [sid]).fetchone() for sid in (owned, orphan)}
    assert after == before, "the owned and the orphaned legacy rows are not touched at all"
    audited = conn.execute("SELECT session_id FROM public.session_claims WHERE anonymous_user_id = %s",
                           [guest]).fetchall()
    assert audited == [(unowned,)], "no audit row names the owned or the orphaned session"
    claimed = conn.execute("SELECT user_id IS NOT NULL, metadata ? 'anonymousUserId'"
                           " FROM public.conversation_sessions WHERE session_id = %s", [unowned]).fetchone()
    assert claimed == (True, False)
