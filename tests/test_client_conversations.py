"""chatmem.Client for conversations a person manages (issue 12): typed rows, mapped refusals, no IDOR.

The client connects as a login role in chatmem_app only, as a web backend
would; the superuser connection only reads what happened.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

import chatmem
from chatmem.models import ClaimPreviewItem, ClaimReceiptItem, Conversation, Session
from helpers import Conn, World, make_world, tag

PASSWORD = "correct horse"


@pytest.fixture(scope="module")
def client(app_url: str) -> Iterator[chatmem.Client]:
    with chatmem.Client(app_url, max_size=2) as c:
        yield c


@pytest.fixture
def world(admin: Conn, fast_bcrypt: None) -> World:
    return make_world(admin, "clc", PASSWORD)


def row_of(admin: Conn, sid: str) -> tuple[Any, ...] | None:
    """A session's title and updated_at with its message and Q&A counts (None once deleted)."""
    return admin.execute(
        "SELECT s.title, s.updated_at,"
        "       (SELECT count(*) FROM conversation_messages m WHERE m.session_id = s.session_id),"
        "       (SELECT count(*) FROM qa_pairs q WHERE q.session_id = s.session_id)"
        "  FROM conversation_sessions s WHERE s.session_id = %s", [sid]).fetchone()


# -- rename ------------------------------------------------------------------------------


def test_rename_sets_and_clears_a_title_without_moving_the_session(
        client: chatmem.Client, admin: Conn, world: World) -> None:
    before = row_of(admin, world.sa)
    assert before is not None
    renamed = client.rename_session(world.sa, world.alice, "  Refunds  ")
    assert isinstance(renamed, Session)
    assert (renamed.session_id, renamed.title) == (world.sa, "Refunds")
    assert renamed.updated_at == before[1]
    assert client.rename_session(world.sga, world.ga, "Guest's").title == "Guest's"
    for cleared in (None, "", "   "):
        client.rename_session(world.sa, world.alice, "x")
        assert client.rename_session(world.sa, world.alice, cleared).title is None
    assert row_of(admin, world.sa) == (None, *before[1:])


@pytest.mark.parametrize("title,words", [("t" * 201, "201 characters"), ("a\tb", "control"),
                                         ("a\nb", "control"), ("a\u2028b", "control")])
def test_a_bad_title_is_invalid_input_and_changes_nothing(
        client: chatmem.Client, admin: Conn, world: World, title: str, words: str) -> None:
    client.rename_session(world.sa, world.alice, "Kept")
    before = row_of(admin, world.sa)
    with pytest.raises(chatmem.InvalidInput) as caught:
        client.rename_session(world.sa, world.alice, title)
    assert caught.value.sqlstate == "22023" and words in caught.value.message and caught.value.hint
    assert row_of(admin, world.sa) == before
    assert client.rename_session(world.sa, world.alice, "t" * 200).title == "t" * 200


def test_rename_and_delete_refuse_everyone_but_the_owner(
        client: chatmem.Client, admin: Conn, world: World) -> None:
    for sid, owner in ((world.sa, world.alice), (world.sga, world.ga)):
        client.rename_session(sid, owner, "Mine")
    before = {sid: row_of(admin, sid) for sid in (world.sa, world.sga)}
    for session, intruder in world.intruders():
        with pytest.raises(chatmem.ForbiddenSession):
            client.rename_session(session, intruder, "pwned")
        with pytest.raises(chatmem.ForbiddenSession):
            client.delete_session(session, intruder)
    missing = f"clc-missing-{tag()}"
    with pytest.raises(chatmem.NotFound):
        client.rename_session(missing, world.alice, "x")
    with pytest.raises(chatmem.NotFound):
        client.delete_session(missing, world.alice)
    with pytest.raises(chatmem.InvalidInput):
        client.delete_session("   ", world.alice)
    assert {sid: row_of(admin, sid) for sid in (world.sa, world.sga)} == before


# -- delete --------------------------------------------------------------------------------


def test_delete_takes_the_session_with_its_messages_and_pairs(
        client: chatmem.Client, admin: Conn, world: World) -> None:
    assert row_of(admin, world.sa) is not None
    assert client.delete_session(world.sa, world.alice) is True
    assert row_of(admin, world.sa) is None
    assert admin.execute("SELECT count(*) FROM conversation_messages WHERE session_id = %s",
                         [world.sa]).fetchone() == (0,)
    # A guest deletes its own before signing up.
    assert client.delete_session(world.sga, world.ga) is True
    assert row_of(admin, world.sga) is None
    with pytest.raises(chatmem.NotFound):
        client.delete_session(world.sga, world.ga)


# -- the paged list -----------------------------------------------------------------------------


def test_pages_walk_every_conversation_once_in_order_even_through_ties(
        client: chatmem.Client, admin: Conn) -> None:
    guest = f"clc-pager-{tag()}"
    sids = [f"clc-page-{tag()}-{i}" for i in range(7)]
    for sid in sids:
        client.create_or_get_session(sid, user_id=guest)
    client.add_message(sids[0], guest, "user", "x" * 300)
    # Five sessions last active at the same microsecond: only the id orders them.
    moment = datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)
    admin.execute("UPDATE conversation_sessions SET updated_at = %s WHERE session_id = ANY(%s)",
                  [moment, sids[:5]])
    everything = client.list_conversations(guest, limit=200)
    assert all(isinstance(r, Conversation) for r in everything)
    order = [(r.updated_at, r.session_id) for r in everything]
    assert order == sorted(order, reverse=True) and len(order) == 7
    first = next(r for r in everything if r.session_id == sids[0])
    assert (first.message_count, first.last_message, first.title) == (1, "x" * 200, None)

    walked: list[str] = []
    page = client.list_conversations(guest, limit=3)
    while page:
        walked += [r.session_id for r in page]
        page = client.list_conversations(guest, limit=3, before=page[-1].updated_at, before_id=page[-1].session_id)
    assert walked == [r.session_id for r in everything]
    # A time alone: the sessions last active before it.
    assert {r.session_id for r in client.list_conversations(guest, before=moment + timedelta(microseconds=1))} \
        == set(sids[:5])
    assert client.list_conversations(guest, limit=1) == everything[:1]


@pytest.mark.parametrize("page,words", [({"limit": 0}, "p_limit"), ({"limit": 201}, "p_limit"),
                                        ({"before_id": "x"}, "p_before_id"),
                                        ({"before": datetime.now(UTC), "before_id": ""}, "p_before_id")])
def test_a_bad_page_is_invalid_input(client: chatmem.Client, world: World, page: dict[str, Any],
                                     words: str) -> None:
    with pytest.raises(chatmem.InvalidInput) as caught:
        client.list_conversations(world.alice, **page)
    assert caught.value.message.startswith(words) and caught.value.hint


def test_each_caller_lists_only_its_own(client: chatmem.Client, world: World) -> None:
    assert [r.session_id for r in client.list_conversations(world.alice)] == [world.sa]
    assert [r.session_id for r in client.list_conversations(world.ga)] == [world.sga]
    for nobody in (world.bob, world.gb, None, "anonymous"):
        assert client.list_conversations(nobody) == []


# -- claims ------------------------------------------------------------------------------------


def test_preview_then_receipt_of_a_claim(client: chatmem.Client, world: World) -> None:
    preview = client.preview_claim(world.ga)
    assert preview == [ClaimPreviewItem(world.sga, None, preview[0].created_at, 1, 1)]
    assert client.preview_claim(world.gb) == []
    assert client.preview_claim(None) == [] and client.preview_claim("anonymous") == []
    with pytest.raises(chatmem.NotAuthorized):
        client.preview_claim(world.alice)  # an account's id is no guest's
    with pytest.raises(chatmem.InvalidInput):
        client.preview_claim("g" * 256)

    started = datetime.now(UTC) - timedelta(seconds=5)
    reg = client.register_user("Carol", f"clc-carol-{tag()}@example.test", PASSWORD, anonymous_user_id=world.ga)
    assert reg.migrated_sessions == 1
    assert client.preview_claim(world.ga) == []
    receipt = client.claim_receipt(reg.token)
    assert receipt == [ClaimReceiptItem(world.sga, world.ga, "register", receipt[0].claimed_at)]
    assert client.claim_receipt(reg.token, since=started) == receipt
    assert client.claim_receipt(reg.token, since=datetime.now(UTC) + timedelta(hours=1)) == []
    # Another account's token sees none of it.
    assert client.claim_receipt(world.bob_token) == []
    for bad in (None, "", "not-a-token"):
        with pytest.raises(chatmem.NotAuthorized):
            client.claim_receipt(bad)
