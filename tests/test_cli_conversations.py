"""The CLI for conversations a person manages (issue 12): ``chatmem sessions`` paged by the command it
prints, ``session rename``, ``session delete`` (asking first on a terminal), ``claim preview`` and
``claim receipt``; each refusal one line with nothing changed, and no device reaches another's sessions."""

from __future__ import annotations

import shlex
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest

from test_cli import PASSWORD, Device, email

Admin = psycopg.Connection[Any]


@pytest.fixture
def device(app_url: str, tmp_path: Path, fast_bcrypt: None) -> Device:
    return Device(app_url, tmp_path / "laptop" / "state.json")


@pytest.fixture
def other(app_url: str, tmp_path: Path, fast_bcrypt: None) -> Device:
    return Device(app_url, tmp_path / "phone" / "state.json")


@pytest.fixture
def a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    """CliRunner's input stands for a person at a terminal (the confirmation needs one)."""
    monkeypatch.setattr("chatmem.cli.conversations.is_tty", lambda: True)


def row(admin: Admin, sid: str) -> tuple[Any, ...] | None:
    return admin.execute(
        "SELECT title, updated_at, (SELECT count(*) FROM conversation_messages m WHERE m.session_id = s.session_id)"
        "  FROM conversation_sessions s WHERE session_id = %s", [sid]).fetchone()


def next_page(out: str) -> list[str] | None:
    """The arguments of the 'Next page: chatmem ...' line, or None without one."""
    for line in out.splitlines():
        if line.startswith("Next page: "):
            words = shlex.split(line.removeprefix("Next page: "))
            assert words[0] == "chatmem"
            return words[1:]
    return None


def test_sessions_pages_by_the_command_it_prints_through_ties(device: Device, admin: Admin) -> None:
    sids = [device.new_session() for _ in range(5)]
    device.run("say", sids[0], "Where is my parcel?\nIt was due Monday.")
    device.run("session", "rename", sids[0], "Parcel")
    # Three sessions last active at the same microsecond: the cursor's id keeps them apart.
    admin.execute("UPDATE conversation_sessions SET updated_at = %s WHERE session_id = ANY(%s)",
                  [datetime(2026, 5, 6, 7, 8, 9, 101112, tzinfo=UTC), sids[1:4]])
    everything = [c["session_id"] for c in device.json("sessions", "--limit", "200")]
    assert sorted(everything) == sorted(sids)

    first = device.run("sessions", "--limit", "2").stdout
    assert "2 sessions of guest" in first and "Parcel" in first and "Where is my parcel? It was due Monday." in first
    walked, args = [], ["sessions", "--limit", "2"]
    while True:
        page = device.json(*args)
        walked += [c["session_id"] for c in page]
        following = next_page(device.run(*args).stdout)
        if following is None:
            break
        assert "--before" in following
        args = following
    assert walked == everything
    # The last page (one row) printed no next page; a full last page leads to an empty one, said so.
    assert "No more sessions" in device.run("sessions", "--limit", "5", "--before",
                                            following_cursor(device, everything[-1])).stdout
    # The JSON rows carry the cursor's halves: a script builds --before itself.
    last = device.json("sessions", "--limit", "2")[-1]
    assert [c["session_id"] for c in device.json(
        "sessions", "--limit", "200", "--before", f"{last['updated_at']}/{last['session_id']}")] == everything[2:]


def following_cursor(device: Device, sid: str) -> str:
    listed = {c["session_id"]: c for c in device.json("sessions", "--limit", "200")}
    return f"{listed[sid]['updated_at']}/{sid}"


def test_sessions_refuses_a_bad_page_in_one_line(device: Device) -> None:
    for limit in ("0", "201"):
        line = device.refused("sessions", "--limit", limit)
        assert "--limit" in line and "1 to 200" in line and "p_" not in line and "api." not in line
    assert "out of range" in device.refused("sessions", "--limit", str(2**31), code=2)
    assert "not a date and time" in device.refused("sessions", "--before", "yesterday", code=2)
    assert "no session id" in device.refused("sessions", "--before", "2026-11-30T00:00:00Z/", code=2)
    assert "--before" in device.refused("sessions", "--before", "2026-11-30T00:00:00Z/" + "x" * 256)
    # A time alone lists what was last active before it.
    device.new_session()
    assert device.json("sessions", "--before", "2000-01-01") == []
    assert len(device.json("sessions", "--before", "2999-01-01T00:00:00+01:00")) == 1


def test_rename_sets_and_clears_and_refuses_bad_titles(device: Device, admin: Admin) -> None:
    sid = device.new_session()
    assert device.json("session", "rename", sid, "  Refunds  ")["title"] == "Refunds"
    assert "now titled 'Refunds'" in device.run("session", "rename", sid, "Refunds").stdout
    before = row(admin, sid)
    for bad, words in (("t" * 201, "201 characters"), ("a\tb", "control characters")):
        line = device.refused("session", "rename", sid, bad)
        assert words in line and "TITLE" in line and "p_" not in line
    assert row(admin, sid) == before
    assert "has no title now" in device.run("session", "rename", sid, "").stdout
    assert before is not None and row(admin, sid) == (None, *before[1:])


def test_delete_asks_on_a_terminal_and_needs_yes_without_one(
        device: Device, admin: Admin, a_terminal: None) -> None:
    sid = device.new_session()
    device.run("say", sid, "hello")
    declined = device.run("session", "delete", sid, input="n\n", code=1)
    assert "Aborted" in declined.stderr and row(admin, sid) is not None
    accepted = device.run("session", "delete", sid, input="y\n")
    assert "Deleted session" in accepted.stdout and row(admin, sid) is None
    assert admin.execute("SELECT count(*) FROM conversation_messages WHERE session_id = %s", [sid]).fetchone() == (0,)
    assert "does not exist" in device.refused("session", "delete", sid, "--yes")


def test_delete_without_a_terminal_needs_yes(device: Device, admin: Admin) -> None:
    sid = device.new_session()
    assert "--yes" in device.refused("session", "delete", sid, code=2)
    assert row(admin, sid) is not None
    assert device.json("session", "delete", sid, "--yes") == {"session_id": sid, "deleted": True}
    assert row(admin, sid) is None


def test_no_device_renames_deletes_or_lists_anothers_sessions(
        device: Device, other: Device, admin: Admin) -> None:
    guest_sid = device.new_session()
    device.run("register", "--name", "Owner", "--email", email(), "--password", PASSWORD)  # claims guest_sid
    user_sid = device.new_session()
    device.run("session", "rename", user_sid, "Mine")
    other.run("register", "--name", "Other", "--email", email(), "--password", PASSWORD)
    guest_device = Device(other.url, other.state.parent / "guest.json")
    before = [row(admin, s) for s in (guest_sid, user_sid)]
    for intruder in (other, guest_device):
        for sid in (guest_sid, user_sid):
            assert "belongs to someone else" in intruder.refused("session", "rename", sid, "pwned")
            assert "belongs to someone else" in intruder.refused("session", "delete", sid, "--yes")
        assert intruder.json("sessions") == []
    assert [row(admin, s) for s in (guest_sid, user_sid)] == before
    assert {c["session_id"] for c in device.json("sessions")} == {guest_sid, user_sid}


def test_claim_preview_then_receipt(device: Device) -> None:
    guest = device.json("whoami")["guest_id"]
    assert f"Guest {guest} has no sessions to keep" in device.run("claim", "preview").stdout
    sids = [device.new_session() for _ in range(2)]
    device.run("say", sids[0], "hi")
    device.run("qa", sids[0], "Q?", "A.")
    preview = device.json("claim", "preview")
    assert {(p["session_id"], p["message_count"], p["qa_count"]) for p in preview} == {
        (sids[0], 1, 1), (sids[1], 0, 0)}
    assert "Sign up to keep these 2 conversations" in device.run("claim", "preview").stdout
    assert "not logged in" in device.refused("claim", "receipt")

    device.run("register", "--name", "Keeper", "--email", email(), "--password", PASSWORD)
    assert device.json("claim", "preview") == []
    receipt = device.json("claim", "receipt")
    assert sorted((r["session_id"], r["anonymous_user_id"], r["method"]) for r in receipt) == sorted(
        (sid, guest, "register") for sid in sids)
    assert "register" in device.run("claim", "receipt").stdout
    assert device.json("claim", "receipt", "--since", "2999-01-01") == []
    assert "not a date and time" in device.refused("claim", "receipt", "--since", "soon", code=2)
