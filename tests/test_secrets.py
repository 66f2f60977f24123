"""Secrets never reach the server log, even when the call that carries them fails.

The embedded cluster logs to ``server.log`` in its data folder
(``chatmem.embedded.configured().log_file``) with ``log_min_error_statement =
error``: a failed statement is copied into the log.  The functions that take a
password or a token set ``log_min_error_statement = panic`` for themselves, so
their failures log the error but never the statement.  The test reads the log
file itself (the suite runs as root, or as the cluster's owner).
"""

from __future__ import annotations

import time
import uuid
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from chatmem import embedded

Conn = psycopg.Connection[tuple[Any, ...]]
PASSWORD = "correct horse"


def server_log(conn: Conn) -> Path:
    """The log file of the server we are connected to (the embedded cluster's layout)."""
    row = conn.execute("SHOW data_directory").fetchone()
    assert row is not None
    data_dir = Path(row[0])
    configured = embedded.configured()
    log = configured.log_file if configured.data_dir == data_dir else data_dir / "server.log"
    assert log.is_file(), f"no server log at {log}: the suite must run against the embedded cluster"
    return log


def read_from(log: Path, offset: int, until: str) -> str:
    """The log's text after ``offset``, once ``until`` has appeared in it.

    The server writes each line at once; the wait only covers the file system."""
    deadline = time.monotonic() + 10
    while True:
        with log.open("rb") as f:
            f.seek(offset)
            text = f.read().decode("utf-8", errors="replace")
        if until in text or time.monotonic() > deadline:
            return text
        time.sleep(0.05)


def fails(conn: Conn, statement: sql.Composed | str, params: list[Any] | None = None) -> str | None:
    try:
        conn.execute(statement, params)
    except psycopg.Error as exc:
        return exc.sqlstate
    return None


def call(function: str, *args: Any) -> sql.Composed:
    """``SELECT * FROM api.<function>(<literal>, ...)``: the secret sits in the statement's text."""
    return sql.SQL("SELECT * FROM api.{}({})").format(
        sql.Identifier(function), sql.SQL(", ").join(sql.Literal(a) for a in args)
    )


def test_failed_logins_registrations_and_refreshes_leave_no_secret_in_the_server_log(
    conn: Conn,
) -> None:
    run = uuid.uuid4().hex[:10]
    email = f"sec-{run}@example.test"
    user = conn.execute(
        "SELECT user_id, token, refresh_token FROM api.register_user('Sec', %s, %s)",
        [email, PASSWORD],
    ).fetchone()
    assert user is not None
    spent = conn.execute("SELECT refresh_token FROM api.refresh(%s)", [user[2]]).fetchone()
    assert spent is not None
    log = server_log(conn)
    offset = log.stat().st_size

    secrets = {
        "login password": f"Login-Secret-{run}",
        "unknown-email password": f"Nobody-Secret-{run}",
        "taken-email password": f"Taken-Secret-{run}",
        "invalid-name password": f"Name-Secret-{run}",
        "garbage refresh token": f"refresh-secret-{run}",
        "create_session token": f"session-token-secret-{run}",
        "require_user token": f"require-token-secret-{run}",
        "bound login password": f"Bound-Secret-{run}",
        "bound refresh token": f"bound-refresh-secret-{run}",
        "replayed refresh token": user[2],  # real, already spent: its replay revokes the login
    }
    # The secret as a literal in the statement text: what log_min_error_statement would copy.
    assert fails(conn, call("login", email, secrets["login password"])) == "28P01"
    assert (
        fails(conn, call("login", f"nobody-{run}@example.test", secrets["unknown-email password"]))
        == "28P01"
    )
    assert (
        fails(conn, call("register_user", "Sec", email.upper(), secrets["taken-email password"]))
        == "23505"
    )
    assert (
        fails(
            conn,
            call("register_user", "", f"new-{run}@example.test", secrets["invalid-name password"]),
        )
        == "22023"
    )
    assert fails(conn, call("refresh", secrets["garbage refresh token"])) == "28000"
    assert fails(conn, call("refresh", secrets["replayed refresh token"])) == "28000"
    assert (
        fails(conn, call("create_session", str(user[0]), "{}", secrets["create_session token"]))
        == "28000"
    )
    assert fails(conn, call("require_user", secrets["require_user token"])) == "28000"
    # And as bound parameters (psycopg's default).
    assert (
        fails(conn, "SELECT * FROM api.login(%s, %s)", [email, secrets["bound login password"]])
        == "28P01"
    )
    assert fails(conn, "SELECT * FROM api.refresh(%s)", [secrets["bound refresh token"]]) == "28000"
    # A control: a failing statement without secrets is logged whole, so the
    # absence above is not an artefact of reading the wrong file.
    marker = f"sec-control-{run}"
    assert fails(conn, "SELECT * FROM api.get_messages(%s, NULL)", [marker]) == "P0002"
    assert (
        fails(
            conn,
            sql.SQL("SELECT * FROM api.get_messages({}, NULL)").format(
                sql.Literal(marker + "-literal")
            ),
        )
        == "P0002"
    )

    text = read_from(log, offset, marker + "-literal")
    assert f"STATEMENT:  SELECT * FROM api.get_messages('{marker}-literal', NULL)" in text, (
        "the control statement is not in the log: is this the server's log file?"
    )
    assert "invalid email or password" in text, (
        "the failed logins were logged (without their statements)"
    )
    assert "refresh token is unknown, expired or revoked" in text
    assert "an account with this email already exists" in text
    for what, secret in secrets.items():
        assert secret not in text, f"the {what} reached the server log"
