"""``make demo``: the older system's story, played through the real ``chatmem`` command.

A guest opens three sessions and chats in them; the same guest registers and
is told that 3 sessions were claimed; the history is intact under the
account; a login from a second device sees the same sessions; a look into the
database shows ``user_id`` set and no ``anonymousUserId`` left.

Every step runs the installed ``chatmem`` console script in a subprocess and
prints the command and its output, so what you read is what you could type.
Each run uses fresh state files and a fresh email, so it can be run again and
again.  It uses ``DATABASE_URL`` when set, else the embedded cluster.

Run: python -m chatmem.demo
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shlex
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from typing import Any

import psycopg

from chatmem import target
from chatmem.cli.output import table

PASSWORD = "demo-password-123"
TOPICS = [
    ("refunds", "How long does a refund take?", "Usually 5 to 10 business days."),
    ("disputes", "A customer disputed a charge. What now?", "Respond with evidence within 7 days."),
    ("payouts", "When do payouts arrive?", "Two business days after the charge, by default."),
]


class DemoFailed(Exception):
    pass


def chatmem_command() -> list[str]:
    """The ``chatmem`` console script next to this interpreter, else on PATH."""
    beside = Path(sys.executable).parent / "chatmem"
    if beside.exists():
        return [str(beside)]
    if found := shutil.which("chatmem"):
        return [found]
    return [sys.executable, "-m", "chatmem"]


class Device:
    """A person's machine: its own state file, as a browser has its own local storage."""

    def __init__(self, name: str, state_file: Path) -> None:
        self.name = name
        self.state_file = state_file

    def run(self, *args: str, stdin: str | None = None, shown_stdin: str | None = None) -> str:
        shown = shlex.join(["chatmem", *args])
        if shown_stdin:
            shown += f"  < {shown_stdin}"
        print(f"\n  {self.name}$ {shown}")
        env = {**os.environ, "CHATMEM_STATE": str(self.state_file)}
        done = subprocess.run(
            [*chatmem_command(), *args], input=stdin, capture_output=True, text=True, env=env,
        )
        for line in (done.stdout + done.stderr).rstrip().splitlines():
            print(f"    {line}")
        if done.returncode != 0:
            raise DemoFailed(f"`{shown}` exited with {done.returncode}")
        return done.stdout

    def state(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(self.state_file.read_text())
        return data


def step(number: int, title: str) -> None:
    print(f"\n\n== {number}. {title} ==")


def check(ok: bool, what: str) -> None:
    print(f"    {'OK  ' if ok else 'FAIL'} {what}")
    if not ok:
        raise DemoFailed(what)


def query(sql: str, params: list[Any]) -> list[tuple[Any, ...]]:
    """Run one query as the database admin, printing it with its values, then its rows."""
    with psycopg.connect(target.database_url(), autocommit=True) as conn:
        cur = psycopg.ClientCursor(conn)
        print("\n  (as the database admin)")
        for line in textwrap.dedent(cur.mogrify(sql, params)).strip().splitlines():
            print(f"  sql> {line}")
        rows = cur.execute(sql, params).fetchall()
        headers = [d.name for d in cur.description or []]
    for line in table(headers, rows).splitlines():
        print(f"    {line}")
    return rows


def play(folder: Path) -> None:
    laptop = Device("laptop", folder / "laptop.json")
    phone = Device("phone", folder / "phone.json")
    email = f"demo+{time.strftime('%Y%m%d%H%M%S')}-{secrets.token_hex(2)}@example.com"

    step(1, "Start PostgreSQL and install the SQL API")
    laptop.run("db", "up")

    step(2, "A visitor arrives: the CLI makes a guest id, as the browser kept one in localStorage")
    laptop.run("whoami")
    guest = laptop.state()["guest_id"]

    step(3, "The guest opens three sessions and chats in them")
    sessions: list[str] = []
    for topic, question, answer in TOPICS:
        out = laptop.run("session", "new", "--context", json.dumps({"topic": topic}))
        match = re.search(r"Started session (\S+) as", out)
        if not match:
            raise DemoFailed("`chatmem session new` printed no session id")
        sid = match.group(1)
        sessions.append(sid)
        laptop.run("say", sid, question)
        laptop.run("say", sid, answer, "--role", "assistant")
    laptop.run("qa", sessions[0], TOPICS[0][1], TOPICS[0][2])
    laptop.run("sessions")

    step(4, "In the database the sessions have no user yet, only the guest id in metadata")
    query("""
        SELECT session_id, user_id, metadata->>'anonymousUserId' AS guest_id
          FROM conversation_sessions WHERE session_id = ANY(%s) ORDER BY created_at
    """, [sessions])

    step(5, "Before signing up, the guest sees what will be kept and what is left of today's messages")
    out = laptop.run("claim", "preview")
    check(all(sid in out for sid in sessions), "the preview lists the 3 sessions sign-up would keep")
    laptop.run("allowance")

    step(6, "The same guest signs up, and is told how many sessions were claimed")
    out = laptop.run("register", "--name", "Demo User", "--email", email, "--password-stdin",
                     stdin=PASSWORD + "\n", shown_stdin="password")
    check("3 sessions were claimed" in out, "registration claimed the guest's 3 sessions")
    user_id = laptop.state()["user_id"]

    step(7, "Under the account, every session and its history are intact")
    laptop.run("whoami")
    laptop.run("sessions")
    out = laptop.run("history", sessions[0])
    check(TOPICS[0][1] in out and TOPICS[0][2] in out, "the first session's messages are there")

    step(8, "A second device logs in and sees the same sessions")
    phone.run("whoami")
    phone.run("login", "--email", email, "--password-stdin",
              stdin=PASSWORD + "\n", shown_stdin="password")
    out = phone.run("sessions")
    check(all(sid in out for sid in sessions), "the phone lists all three sessions")
    phone.run("history", sessions[1])

    step(9, "The database agrees: user_id is set and no anonymousUserId is left")
    rows = query("""
        SELECT s.session_id, s.user_id, s.metadata ? 'anonymousUserId' AS has_guest_id,
               (SELECT count(*) FROM conversation_messages m
                 WHERE m.session_id = s.session_id) AS messages
          FROM conversation_sessions s WHERE s.session_id = ANY(%s) ORDER BY s.created_at
    """, [sessions])
    check(len(rows) == 3 and all(str(r[1]) == user_id for r in rows),
          f"all 3 sessions belong to user {user_id}")
    check(not any(r[2] for r in rows), "no session keeps an anonymousUserId")
    check(all(r[3] == 2 for r in rows), "every session kept its 2 messages")
    left = query("""
        SELECT count(*) AS guest_sessions_left FROM conversation_sessions
         WHERE metadata->>'anonymousUserId' = %s
    """, [guest])
    check(left[0][0] == 0, f"guest {guest} has no sessions left")
    audit = query("""
        SELECT method, count(*) AS sessions FROM session_claims
         WHERE anonymous_user_id = %s AND user_id = %s GROUP BY method
    """, [guest, user_id])
    check(audit == [("register", 3)], "the audit recorded 3 claims by registration")


def main() -> int:
    print("chatmem demo: guest chats that survive sign-up")
    where = "DATABASE_URL" if target.external_url() else "the embedded PostgreSQL cluster"
    print(f"(using {where}; state files for two devices in a temporary folder)")
    with tempfile.TemporaryDirectory(prefix="chatmem-demo-") as folder:
        try:
            play(Path(folder))
        except DemoFailed as exc:
            print(f"\ndemo failed: {exc}", file=sys.stderr)
            return 1
    print("\n\nDone: the guest's conversations survived sign-up and follow the account.")
    print("Try it yourself: chatmem session new, chatmem say SESSION_ID 'Hello', chatmem --help.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
