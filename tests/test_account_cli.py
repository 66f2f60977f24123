"""Account commands (issue 13): passwd, logout --everywhere, account export and account delete.

Each command runs through typer's CliRunner against the real test database,
as a login role in chatmem_app only; each refusal is one line on stderr, and
the database is checked for what did not change.
"""

from __future__ import annotations

import json
import stat
import uuid
from pathlib import Path
from typing import Any

import psycopg
import pytest

from chatmem.cli.app import app
from test_cli import Device

PASSWORD = "password123"
NEW_PASSWORD = "new-password-456"


@pytest.fixture
def laptop(app_url: str, tmp_path: Path, fast_bcrypt: None) -> Device:
    return Device(app_url, tmp_path / "laptop" / "state.json")


@pytest.fixture
def phone(app_url: str, tmp_path: Path, fast_bcrypt: None) -> Device:
    return Device(app_url, tmp_path / "phone" / "state.json")


@pytest.fixture
def a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    """CliRunner's input stands for a person at a terminal (the prompts need one)."""
    monkeypatch.setattr("chatmem.cli.accounts.is_tty", lambda: True)


def email() -> str:
    return f"cli-acct-{uuid.uuid4().hex[:12]}@example.com"


def signed_up(device: Device, address: str) -> None:
    device.run("register", "--name", "Acct", "--email", address, "--password", PASSWORD)


def whoami_code(device: Device) -> int:
    """whoami's exit status: 0 while the saved login is valid, 1 once it was revoked."""
    result = device.runner.invoke(app, ["whoami"], env={"DATABASE_URL": device.url,
                                                        "CHATMEM_STATE": str(device.state)})
    assert "Traceback" not in result.output
    return result.exit_code


def refused_after_prompts(device: Device, *args: str, input: str) -> str:
    """A refusal after the prompts (which are on stdout): one line on stderr."""
    lines = device.run(*args, input=input, code=1).stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), lines
    return lines[0]


def password_hash(admin: psycopg.Connection[Any], address: str) -> str | None:
    row = admin.execute("SELECT password_hash FROM users WHERE lower(email) = lower(%s)", [address]).fetchone()
    return None if row is None else row[0]


# -- passwd ------------------------------------------------------------------------------------


def test_passwd_changes_the_password_keeps_this_login_and_signs_out_the_other_device(
        laptop: Device, phone: Device, a_terminal: None) -> None:
    address = email()
    signed_up(laptop, address)
    phone.run("login", "--email", address, "--password", PASSWORD)
    result = laptop.run("passwd", input=f"{PASSWORD}\n{NEW_PASSWORD}\n{NEW_PASSWORD}\n")
    assert "Password changed for Acct" in result.stdout
    assert PASSWORD not in result.output and NEW_PASSWORD not in result.output
    assert whoami_code(laptop) == 0
    assert whoami_code(phone) == 1
    phone.refused("login", "--email", address, "--password", PASSWORD)
    phone.run("login", "--email", address, "--password", NEW_PASSWORD)


def test_passwd_refusals_are_one_line_and_change_nothing(
        laptop: Device, admin: psycopg.Connection[Any], monkeypatch: pytest.MonkeyPatch) -> None:
    address = email()
    signed_up(laptop, address)
    before = password_hash(admin, address)
    # No terminal: one line, exit 2, no Python warning about getpass.
    line = laptop.refused("passwd", input=f"{PASSWORD}\n", code=2)
    assert "no terminal" in line
    monkeypatch.setattr("chatmem.cli.accounts.is_tty", lambda: True)
    wrong = refused_after_prompts(laptop, "passwd", input=f"not-the-password\n{NEW_PASSWORD}\n{NEW_PASSWORD}\n")
    assert "the current password: wrong password" in wrong and "forgot password" in wrong
    short = refused_after_prompts(laptop, "passwd", input=f"{PASSWORD}\nshort\nshort\n")
    assert "the new password: is shorter than 8 characters" in short
    assert password_hash(admin, address) == before
    laptop.run("logout")
    assert "not logged in" in laptop.refused("passwd", input="x\n")


# -- logout --everywhere ------------------------------------------------------------------------


def test_logout_everywhere_signs_out_every_device(laptop: Device, phone: Device) -> None:
    address = email()
    signed_up(laptop, address)
    phone.run("login", "--email", address, "--password", PASSWORD)
    answer = laptop.json("logout", "--everywhere")
    assert answer["revoked_logins"] == 2 and answer["revoked"] is True
    assert laptop.saved().get("user_id") is None
    assert whoami_code(phone) == 1
    line = laptop.refused("logout", "--everywhere")
    assert "not logged in" in line and "chatmem login" in line
    # Plain logout is unchanged.
    assert "Not logged in" in laptop.run("logout").stdout


# -- account export -------------------------------------------------------------------------------


def test_account_export_writes_everything_to_a_private_file_or_stdout(laptop: Device, tmp_path: Path) -> None:
    sid = laptop.new_session()
    laptop.run("say", sid, "before sign-up")
    address = email()
    signed_up(laptop, address)
    out = tmp_path / "me.json"
    result = laptop.run("account", "export", "--output", str(out))
    assert str(out) in result.stdout and "1 session" in result.stdout
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    document = json.loads(out.read_text())
    assert document["profile"]["email"] == address
    assert [s["session_id"] for s in document["sessions"]] == [sid]
    assert [m["content"] for m in document["sessions"][0]["messages"]] == ["before sign-up"]
    token = laptop.saved()["token"]
    assert token not in out.read_text()
    printed = json.loads(laptop.run("account", "export").stdout)
    assert printed["profile"] == document["profile"]
    line = laptop.refused("account", "export", "--output", str(tmp_path / "missing" / "x.json"))
    assert "--output: cannot write" in line
    laptop.run("logout")
    assert "not logged in" in laptop.refused("account", "export")


# -- account delete -------------------------------------------------------------------------------


def test_account_delete_asks_for_the_email_and_password_then_erases_everything(
        laptop: Device, admin: psycopg.Connection[Any], a_terminal: None) -> None:
    address = email()
    signed_up(laptop, address)
    sid = laptop.new_session()
    laptop.run("say", sid, "mine")
    user_id = laptop.saved()["user_id"]

    line = refused_after_prompts(laptop, "account", "delete", input="someone@else.example\n")
    assert "does not match" in line and "nothing was erased" in line
    wrong = refused_after_prompts(laptop, "account", "delete", input=f"{address}\nwrong-password\n")
    assert "wrong password" in wrong
    assert admin.execute("SELECT count(*) FROM conversation_sessions WHERE user_id = %s",
                         [user_id]).fetchone() == (1,)

    result = laptop.run("account", "delete", input=f"{address.upper()}\n{PASSWORD}\n")
    assert "Erased the account" in result.stdout and "1 session" in result.stdout
    assert PASSWORD not in result.output
    assert laptop.saved().get("user_id") is None
    assert admin.execute("SELECT (SELECT count(*) FROM users WHERE id = %s),"
                         " (SELECT count(*) FROM conversation_sessions WHERE session_id = %s)",
                         [user_id, sid]).fetchone() == (0, 0)


def test_account_delete_in_a_script_needs_yes_and_the_password_on_stdin(
        laptop: Device, admin: psycopg.Connection[Any]) -> None:
    address = email()
    signed_up(laptop, address)
    line = laptop.refused("account", "delete", code=2)
    assert "no terminal" in line and "--yes" in line
    line = laptop.refused("account", "delete", "--yes", code=2)
    assert "no terminal" in line
    assert password_hash(admin, address) is not None
    erased = laptop.json("account", "delete", "--yes", "--password-stdin", input=f"{PASSWORD}\n")
    assert erased["deleted"] is True and erased["erased_sessions"] == 0 and erased["email"] == address
    assert password_hash(admin, address) is None
    assert admin.execute("SELECT count(*) FROM users WHERE lower(email) = lower(%s)", [address]).fetchone() == (0,)
