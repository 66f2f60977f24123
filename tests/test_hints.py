"""Hints in the caller's language (issue 11): no HTTP or CLI error text names SQL.

Over HTTP a message names the JSON field, header or query parameter, and a
hint the route to use; in the CLI the flag, argument or command.  Callers of
the SQL API (and chatmem.Client) keep the SQL texts.  One table maps each:
chatmem.api_errors.NAMES and HINTS, beside the SQLSTATE table.

Two checks: every SQL name and hint the gateway and the CLI can reach has a
translation without ``api.`` or ``p_`` (read from the SQL sources, so a new
hint cannot slip past), and real refusals over HTTP and through the CLI,
one of each kind, contain neither.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from typer.testing import CliRunner

import chatmem
from chatmem.api_errors import HINTS, NAMES, RAISES, ChatmemError, in_words
from chatmem.cli.app import app
from gateway_server import running_gateway
from helpers import settings_changed

DB = Path(__file__).parent.parent / "db"
SQL_WORDS = re.compile(r"\bapi\.|\bp_")  # not /openapi.json
LITERAL = r"'((?:[^']|'')*)'"


def reachable_sql() -> str:
    """The SQL the gateway and the CLI reach: the api functions of the status table (RAISES),
    every internal helper, and the migrations' triggers."""
    files = [p for p in sorted((DB / "functions").glob("*.sql"))
             if "-internal-" in p.name or p.stem.split("-api-")[-1] in RAISES]
    files += [p for p in sorted((DB / "migrations").glob("*.sql")) if not p.name.endswith(".rollback.sql")]
    return "\n".join(p.read_text() for p in files)


def sql_hints(source: str) -> set[str]:
    """Every literal hint: ``HINT = '...'`` and the last literal of a chatmem_internal.invalid(...) call."""
    hints = {m.replace("''", "'") for m in re.findall(rf"HINT = {LITERAL}", source)}
    for call in re.findall(r"chatmem_internal\.invalid\((.*?)\);", source, re.DOTALL):
        literals = re.findall(LITERAL, call)
        if literals:
            hints.add(literals[-1].replace("''", "'"))
    return hints


def sql_names(source: str) -> set[str]:
    """Every parameter or function name a message can start with."""
    names = set(re.findall(r"'((?:p_|api\.)[a-z_]+)'", source))
    names |= set(re.findall(r"MESSAGE = (?:format\()?'(p_[a-z_]+)", source))
    return names


def test_the_sql_texts_are_found() -> None:
    """A control for the two tests below: the patterns still find what they look for."""
    source = reachable_sql()
    assert "Create it first with api.create_or_get_session or api.create_session." in sql_hints(source)
    assert "Ask for 1 to 1000 messages; page back with p_before_id." in sql_hints(source)
    assert {"p_email", "p_user_id", "p_limit", "api.register_user"} <= sql_names(source)


def test_every_reachable_hint_that_names_sql_has_words_for_http_and_the_cli() -> None:
    for hint in sql_hints(reachable_sql()):
        if SQL_WORDS.search(hint):
            assert hint in HINTS, f"no HTTP/CLI words for the SQL hint {hint!r} (chatmem.api_errors.HINTS)"
    for words in HINTS.values():
        for text in (words.http, words.cli):
            assert not SQL_WORDS.search(text), text


def test_every_reachable_sql_name_has_words_for_http_and_the_cli() -> None:
    for name in sql_names(reachable_sql()):
        assert name in NAMES, f"no HTTP/CLI words for {name} (chatmem.api_errors.NAMES)"
    for words in NAMES.values():
        for text in (words.http, words.cli):
            assert not SQL_WORDS.search(text), text


def test_docs_errors_md_lists_every_name() -> None:
    registry = (DB.parent / "docs" / "errors.md").read_text()
    for name in NAMES:
        assert f"`{name}`" in registry, f"docs/errors.md does not say how {name} reads over HTTP and in the CLI"


def test_sql_callers_keep_the_sql_texts() -> None:
    error = chatmem.NotFound("P0002", "session x does not exist",
                             "Create it first with api.create_or_get_session or api.create_session.")
    assert str(error).endswith("(hint: Create it first with api.create_or_get_session or api.create_session.)")
    assert in_words(error, "http")[1] == "Create one with POST /api/chat/session and use the sessionId it answers."
    assert in_words(error, "cli")[1] == "Create one first: chatmem session new (or chatmem session open SESSION_ID)."
    # Only a leading name is ours: a session id that looks like one is the caller's data.
    echoed = ChatmemError("42501", "session p_x belongs to someone else", None)
    assert in_words(echoed, "http")[0] == "session p_x belongs to someone else"
    named = ChatmemError("22023", "p_anonymous_user_id: is empty", None)
    assert in_words(named, "http")[0] == "X-Anonymous-User-Id: is empty"
    assert in_words(named, "http", {"p_anonymous_user_id": "anonymousUserId"})[0] == "anonymousUserId: is empty"


# -- real refusals --------------------------------------------------------------------


def assert_in_callers_words(text: str) -> None:
    assert not SQL_WORDS.search(text), text


@pytest.fixture(scope="module")
def http(app_url: str, fast_bcrypt: None) -> Iterator[httpx.Client]:
    with running_gateway(app_url) as url, httpx.Client(base_url=url, timeout=30) as client:
        yield client


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def test_http_refusals_name_fields_headers_and_routes(http: httpx.Client, admin_url: str) -> None:
    password = "password123"
    alice = http.post("/api/auth/register", json={
        "name": "Alice", "email": f"{unique('h')}@example.com", "password": password}).json()["data"]
    bob = http.post("/api/auth/register", json={
        "name": "Bob", "email": f"{unique('h')}@example.com", "password": password}).json()["data"]
    guest = unique("guest")
    sid = http.post("/api/chat/session", json={"userId": guest}).json()["data"]["sessionId"]
    as_guest = {"X-Anonymous-User-Id": guest}
    deep: dict[str, Any] = {}
    for _ in range(40):
        deep = {"k": deep}

    refusals: list[tuple[httpx.Response, int, str]] = [
        (http.post("/api/chat/session", json={"userId": "   "}), 400, "userId: is empty"),
        (http.post("/api/chat/session", json={"userId": "x" * 300}), 400, "userId: is 300 characters long"),
        (http.post("/api/chat/session", headers={"X-Anonymous-User-Id": "x" * 300}), 400,
         "X-Anonymous-User-Id: is 300"),
        (http.post("/api/chat/session", json={"context": deep}), 400, "context: is nested more than 32"),
        (http.post("/api/chat/session", json={"userId": alice["user"]["id"]}), 401, "userId names a registered"),
        (http.post("/api/chat/session", json={"userId": alice["user"]["id"]},
                   headers={"Authorization": f"Bearer {bob['token']}"}), 403, "userId names another account"),
        (http.get(f"/api/chat/session/{unique('missing')}/messages", headers=as_guest), 404, "does not exist"),
        (http.get(f"/api/chat/session/{sid}/messages", headers={"X-Anonymous-User-Id": unique("other")}), 403,
         "belongs to someone else"),
        (http.get(f"/api/chat/session/{sid}/messages", headers={"X-Anonymous-User-Id": alice["user"]["id"]}),
         401, "X-Anonymous-User-Id names a registered account"),
        (http.get("/api/chat/sessions", headers={"X-Anonymous-User-Id": ""}), 400, "X-Anonymous-User-Id: is empty"),
        (http.get(f"/api/chat/session/{sid}/messages?limit=5000", headers=as_guest), 400, "limit:"),
        (http.post(f"/api/chat/session/{sid}/messages", json={"content": " \n"}, headers=as_guest), 400,
         "content: is empty"),
        (http.post(f"/api/chat/session/{sid}/messages", json={"content": "hi", "role": "system"},
                   headers=as_guest), 403, "role: system turns"),
        (http.post(f"/api/chat/session/{sid}/qa", json={"question": "q", "answer": ""}, headers=as_guest), 400,
         "answer: is empty"),
        (http.get("/api/chat/sessions", headers={"Authorization": "Bearer not-a-token"}), 401, "access token"),
        (http.get("/api/chat/sessions", headers={"Authorization": alice["token"]}), 401, "Authorization:"),
        (http.post("/api/auth/register", json={"name": " ", "email": "a@b.co", "password": password}), 400,
         "name: is empty"),
        (http.post("/api/auth/register", json={"name": "N", "email": "nope", "password": password}), 400,
         "email: is not an email address"),
        (http.post("/api/auth/register", json={"name": "N", "email": f"{unique('h')}@example.com",
                                               "password": "é" * 40}), 400, "password: is 80 bytes"),
        (http.post("/api/auth/register", json={"name": "N", "email": f"{unique('h')}@example.com",
                                               "password": password, "anonymousUserId": "a\tb"}), 400,
         "anonymousUserId: contains control characters"),
        (http.post("/api/auth/register", json={"name": "N", "email": alice["user"]["email"],
                                               "password": password}), 409, "email: an account"),
        (http.post("/api/auth/login", json={"email": " ", "password": password}), 400, "email: is required"),
        (http.post("/api/auth/login", json={"email": "a@b.co", "password": ""}), 400, "password: is required"),
        (http.post("/api/auth/login", json={"email": f"{unique('h')}@example.com", "password": password}), 401,
         "invalid email or password"),
        (http.post("/api/auth/refresh", json={"refreshToken": ""}), 400, "refreshToken: is required"),
        (http.post("/api/auth/refresh", json={"refreshToken": "nope"}), 401, "refresh token is unknown"),
        (http.delete("/api/chat/sessions"), 405, "Method Not Allowed"),
        (http.get("/api/nothing"), 404, "Not Found"),
    ]
    with settings_changed(admin_url, guest_sessions_per_hour=1):
        capped = unique("capped")
        http.post("/api/chat/session", json={"userId": capped})
        refusals.append((http.post("/api/chat/session", json={"userId": capped}), 429, "guest"))

    for response, status, start in refusals:
        assert response.status_code == status, response.text
        error = response.json()["error"]
        assert start in error["message"], (start, error)
        assert error["hint"], error
        assert_in_callers_words(error["message"])
        assert_in_callers_words(error["hint"])


class Device:
    def __init__(self, url: str, state: Path) -> None:
        self.env = {"DATABASE_URL": url, "CHATMEM_STATE": str(state)}

    def refused(self, *args: str, code: int = 1) -> str:
        result = CliRunner().invoke(app, list(args), env=self.env)
        assert result.exit_code == code, (args, result.output)
        assert result.stdout == ""
        return result.stderr.strip()

    def ok(self, *args: str) -> str:
        result = CliRunner().invoke(app, list(args), env=self.env)
        assert result.exit_code == 0, (args, result.output)
        return result.stdout


def test_cli_refusals_name_flags_arguments_and_commands(
        app_url: str, tmp_path: Path, admin: psycopg.Connection[Any], fast_bcrypt: None) -> None:
    laptop, phone = Device(app_url, tmp_path / "laptop.json"), Device(app_url, tmp_path / "phone.json")
    sid = laptop.ok("session", "new", "--json").split('"session_id": "')[1].split('"')[0]
    address = f"{unique('h')}@example.com"
    phone.ok("register", "--name", "P", "--email", address, "--password", "password123")
    deep = "{" + '"k": {' * 40 + "}" * 41

    refusals = [
        (laptop.refused("say", unique("missing"), "hi"), "does not exist", "chatmem session new"),
        (phone.refused("say", sid, "not mine"), "belongs to someone else", "chatmem sessions"),
        (laptop.refused("say", sid, "  "), "TEXT: is empty", None),
        (laptop.refused("say", sid, "beep", "--role", "robot"), "--role: 'robot' is not a role", None),
        (laptop.refused("qa", sid, "q", " "), "ANSWER: is empty", None),
        (laptop.refused("history", sid, "--limit", "0"), "--limit: 0 is out of range", "--before"),
        (laptop.refused("session", "open", "x" * 300), "SESSION_ID: is 300 characters long", None),
        (laptop.refused("session", "new", "--context", deep), "--context: is nested more than 32", None),
        (laptop.refused("register", "--name", " ", "--email", f"{unique('h')}@example.com", "--password",
                        "password123"), "--name: is empty", None),
        (laptop.refused("register", "--name", "L", "--email", "nope", "--password", "password123"),
         "--email: is not an email address", None),
        (laptop.refused("register", "--name", "L", "--email", f"{unique('h')}@example.com", "--password", "short"),
         "--password: is shorter than 8 characters", None),
        (laptop.refused("register", "--name", "L", "--email", address, "--password", "password123"),
         "--email: an account with this email already exists", "chatmem login --email"),
        (laptop.refused("login", "--email", f"{unique('h')}@example.com", "--password", "password123"),
         "invalid email or password", None),
    ]
    for line, message, hint in refusals:
        assert line.startswith("error: ") and len(line.splitlines()) == 1, line
        assert message in line, (message, line)
        if hint is not None:
            assert hint in line.split("(hint: ", 1)[1], (hint, line)
        assert_in_callers_words(line)
