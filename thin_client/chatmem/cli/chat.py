"""Conversation and account commands: a shell over :class:`chatmem.Client`.

Each command acts as this device's guest (the id in the state file) until
``register`` or ``login``, then as that user, and makes the one or two API
calls it needs; every decision (ownership, claiming, validation) is the SQL
API's.  On the embedded cluster they connect as its login role in
``chatmem_app`` only; ``say --role assistant|system`` plays the model's
backend, as ``chatmem_assistant_login``.  ``DATABASE_URL`` is used as given.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Annotated, Any, TypeVar

import psycopg
import typer
from psycopg_pool import PoolTimeout

from chatmem import state, target
from chatmem.api_errors import NotAuthorized
from chatmem.cli.output import EXIT_USAGE, FLAG, emit_json, fail, guarded, is_tty, plain, table
from chatmem.client import Client
from chatmem.state import State

T = TypeVar("T")

# How long a command waits for its connection before it says why it has none.
CONNECT_TIMEOUT = 5.0

JsonOpt = Annotated[bool, typer.Option("--json", metavar=FLAG, help="Print machine-readable JSON.")]
SessionIdArg = Annotated[
    str, typer.Argument(metavar="SESSION_ID", **plain(), help="The session's id.", show_default=False)
]
PasswordOpt = Annotated[
    str | None,
    typer.Option("--password", metavar="PASSWORD",
                 help="The password (it stays in shell history: prefer the prompt or --password-stdin)."),
]
PasswordStdinOpt = Annotated[
    bool, typer.Option("--password-stdin", metavar=FLAG, help="Read the password from the first line of stdin.")
]

session_app = typer.Typer(
    help="Start, open, rename or delete a conversation session.\n\nExample: chatmem session new",
    no_args_is_help=True,
)


# -- sessions ---------------------------------------------------------------------


@session_app.command("new")
@guarded
def session_new(
    context: Annotated[
        str | None,
        typer.Option("--context", metavar="JSON", help="A JSON object merged into the session's metadata."),
    ] = None,
    json_out: JsonOpt = False,
) -> None:
    """Start a new session, as the logged-in user or else as this device's guest.

    Example: chatmem session new --context '{"topic": "refunds"}'
    """
    ctx = _json_object(context, "--context")
    st = state.load()
    with _client() as client:
        if st.logged_in:
            user_id = st.user_id
            new, st = _with_token(
                client, st, lambda token: client.create_session(
                    user_id=user_id, context=ctx, token=token)
            )
        else:
            new = client.create_session(user_id=st.guest_id, context=ctx)
    if json_out:
        emit_json(new)
    else:
        typer.echo(f"Started session {new.session_id} as {_who(st)}.")


@session_app.command("open")
@guarded
def session_open(
    session_id: SessionIdArg,
    metadata: Annotated[
        str | None,
        typer.Option("--metadata", metavar="JSON", help="A JSON object stored as metadata if the session is new."),
    ] = None,
    json_out: JsonOpt = False,
) -> None:
    """Open a session by id, creating it if it does not exist yet.

    Example: chatmem session open support-42 --metadata '{"channel": "email"}'
    """
    meta = _json_object(metadata, "--metadata")
    st = state.load()
    with _client() as client:
        s = client.create_or_get_session(session_id, user_id=st.identity, metadata=meta)
    if json_out:
        emit_json(s)
        return
    fresh = s.created_at == s.updated_at
    typer.echo(f"{'Created' if fresh else 'Opened'} session {s.session_id} as {_who(st)}.")


# -- conversation memory -------------------------------------------------------------


@guarded
def say(
    session_id: SessionIdArg,
    text: Annotated[str, typer.Argument(metavar="TEXT", **plain(), help="The message.",
                                        show_default=False)],
    role: Annotated[
        str, typer.Option("--role", metavar="ROLE", help="Who speaks: user, assistant or system (the last two as "
                                                         "the model's backend, a member of chatmem_assistant).")
    ] = "user",
    json_out: JsonOpt = False,
) -> None:
    """Add a message to one of your sessions.

    Example: chatmem say session_1700000000000_abc "How do refunds work?"
    """
    st = state.load()
    with _client(_speaker(role)) as client:
        message_id = client.add_message(session_id, st.identity, role, text)
    if json_out:
        emit_json({"id": message_id, "session_id": session_id, "role": role})
    else:
        typer.echo(f"Message #{message_id} ({role}) added to {session_id}.")


@guarded
def history(
    session_id: SessionIdArg,
    limit: Annotated[
        int | None,
        typer.Option("--limit", metavar="N", help="How many of the latest messages (1-1000, default 100)."),
    ] = None,
    before: Annotated[
        int | None,
        typer.Option("--before", metavar="MESSAGE_ID",
                     help="Only messages with an id below this one: page back with the smallest id shown."),
    ] = None,
    json_out: JsonOpt = False,
) -> None:
    """Show a session's messages, oldest first, and its Q&A pairs.

    Example: chatmem history session_1700000000000_abc --limit 20
    """
    # The SQL types' ranges: a number beyond them would reach the server as
    # another type, and be refused as a missing function, not as a bad value.
    _in_range(limit, "--limit", INT32, "Ask for 1 to 1000 messages with --limit; page back with --before.")
    _in_range(before, "--before", INT64, "Pass a message id: chatmem history --json shows them.")
    st = state.load()
    with _client() as client:
        messages = client.get_messages(session_id, st.identity, limit=limit, before_id=before)
        pairs = client.get_qa_pairs(session_id, st.identity)
    if json_out:
        emit_json({"session_id": session_id, "messages": messages, "qa_pairs": pairs})
        return
    if messages:
        typer.echo(table(
            ["ID", "TIME", "ROLE", "MESSAGE"],
            [[m.id, _when(m.created_at), m.role, _one_line(m.content)] for m in messages],
        ))
    else:
        typer.echo(f"No messages in {session_id} yet.")
    if pairs:
        typer.echo("")
        typer.echo(table(["ID", "TIME", "QUESTION", "ANSWER"],
                         [[p.id, _when(p.created_at), _one_line(p.question), _one_line(p.answer)]
                          for p in pairs]))


@guarded
def qa(
    session_id: SessionIdArg,
    question: Annotated[
        str, typer.Argument(metavar="QUESTION", **plain(), help="The question.", show_default=False)
    ],
    answer: Annotated[
        str, typer.Argument(metavar="ANSWER", **plain(), help="Its answer.", show_default=False)
    ],
    json_out: JsonOpt = False,
) -> None:
    """Record a question and its answer in one of your sessions.

    Example: chatmem qa session_1700000000000_abc "Refund time?" "5 to 10 business days."
    """
    st = state.load()
    with _client() as client:
        pair_id = client.add_qa_pair(session_id, st.identity, question, answer)
    if json_out:
        emit_json({"id": pair_id, "session_id": session_id})
    else:
        typer.echo(f"Q&A pair #{pair_id} added to {session_id}.")


# -- accounts ----------------------------------------------------------------------


@guarded
def register(
    name: Annotated[str, typer.Option("--name", metavar="NAME", help="Your name (1-200 characters).")],
    email: Annotated[str, typer.Option("--email", metavar="EMAIL", help="Your email; you log in with it.")],
    password: PasswordOpt = None,
    password_stdin: PasswordStdinOpt = False,
    json_out: JsonOpt = False,
) -> None:
    """Create an account and log in; this guest's sessions become the account's.

    The password is asked for without echo unless --password or --password-stdin is given.

    Example: chatmem register --name Ada --email ada@example.com
    """
    secret = _password(password, password_stdin, confirm=True)
    st = state.load()
    with _client() as client:
        reg = client.register_user(name, email, secret, anonymous_user_id=st.guest_id)
        _revoke_quietly(client, st)
    new = State(guest_id=st.guest_id, user_id=str(reg.user_id), name=reg.name, email=reg.email,
                token=reg.token, refresh_token=reg.refresh_token)
    state.save(new)
    if json_out:
        answer: dict[str, object] = {
            "user_id": reg.user_id, "name": reg.name, "email": reg.email, "created_at": reg.created_at}
        if reg.expires_at is not None:  # once api.register_user reports it, as api.login does
            answer["expires_at"] = reg.expires_at
        emit_json({**answer, "guest_id": st.guest_id, "migrated": reg.migrated,
                   "migrated_sessions": reg.migrated_sessions})
        return
    typer.echo(f"Registered and logged in as {_who(new)}.")
    typer.echo(_claimed(reg.migrated_sessions, st.guest_id))


@guarded
def login(
    email: Annotated[str, typer.Option("--email", metavar="EMAIL", help="The email you registered with.")],
    password: PasswordOpt = None,
    password_stdin: PasswordStdinOpt = False,
    json_out: JsonOpt = False,
) -> None:
    """Log in; sessions this guest started meanwhile become the account's.

    The password is asked for without echo unless --password or --password-stdin is given.

    Example: chatmem login --email ada@example.com
    """
    secret = _password(password, password_stdin, confirm=False)
    st = state.load()
    with _client() as client:
        result = client.login(email, secret, anonymous_user_id=st.guest_id)
        _revoke_quietly(client, st)
    new = State(guest_id=st.guest_id, user_id=str(result.user_id), name=result.name,
                email=result.email, token=result.token, refresh_token=result.refresh_token)
    state.save(new)
    if json_out:
        emit_json({"user_id": result.user_id, "name": result.name, "email": result.email,
                   "expires_at": result.expires_at, "guest_id": st.guest_id,
                   "migrated_sessions": result.migrated_sessions})
        return
    typer.echo(f"Logged in as {_who(new)}.")
    typer.echo(_claimed(result.migrated_sessions, st.guest_id))


@guarded
def logout(
    everywhere: Annotated[
        bool, typer.Option("--everywhere", metavar=FLAG,
                           help="Sign the account out on every device (every login), this one included.")
    ] = False,
    json_out: JsonOpt = False,
) -> None:
    """Log out: revoke the tokens and act as this device's guest again.

    Example: chatmem logout --everywhere
    """
    st = state.load()
    revoked = False
    revoked_logins: int | None = None
    if everywhere and not st.logged_in:
        fail("not logged in: there is no account to sign out everywhere",
             hint="log in first: chatmem login --email EMAIL")
    if st.logged_in:
        with _client() as client:
            if everywhere:
                count, _ = _with_token(client, st, client.logout_everywhere)
                revoked_logins, revoked = count, count > 0
            else:
                revoked = client.logout(st.token)
        state.save(st.logged_out())
    if json_out:
        answer: dict[str, object] = {"was_logged_in": st.logged_in, "revoked": revoked, "guest_id": st.guest_id}
        if revoked_logins is not None:
            answer["revoked_logins"] = revoked_logins
        emit_json(answer)
    elif revoked_logins is not None:
        logins = "login was" if revoked_logins == 1 else "logins were"
        typer.echo(f"Logged out {_who(st)} everywhere: {revoked_logins} {logins} signed out; "
                   f"acting as guest {st.guest_id} again.")
    elif st.logged_in:
        typer.echo(f"Logged out {_who(st)}; acting as guest {st.guest_id} again.")
    else:
        typer.echo(f"Not logged in; acting as guest {st.guest_id}.")


@guarded
def whoami(json_out: JsonOpt = False) -> None:
    """Say who commands act as, checking the login with the server.

    Exits with 1 when the saved login is no longer valid (log in again).

    Example: chatmem whoami --json
    """
    st = state.load()
    valid: bool | None = None
    if st.logged_in:
        with _client() as client:
            valid = client.authenticate(st.token) is not None
            if not valid and st.refresh_token:
                try:
                    tokens = client.refresh(st.refresh_token)
                except NotAuthorized:
                    pass
                else:
                    st = st.with_tokens(tokens.token, tokens.refresh_token)
                    state.save(st)
                    valid = client.authenticate(st.token) is not None
    if json_out:
        emit_json({"logged_in": st.logged_in, "login_valid": valid, "user_id": st.user_id,
                   "name": st.name, "email": st.email, "guest_id": st.guest_id})
        if valid is False:
            raise typer.Exit(1)
        return
    if not st.logged_in:
        typer.echo(f"guest {st.guest_id} (not logged in)")
        return
    if not valid:
        fail(f"the saved login of {_who(st)} is no longer valid",
             hint=f"log in again: chatmem login --email {st.email}")
    typer.echo(f"{_who(st)}, user id {st.user_id} (device guest id {st.guest_id})")


# -- helpers -----------------------------------------------------------------------


def _speaker(role: str) -> target.AppRole:
    """Who writes a turn of ``role``: the model's backend for assistant and system turns."""
    return "assistant" if role in ("assistant", "system") else "app"


@contextmanager
def _client(acting_as: target.AppRole = "app") -> Iterator[Client]:
    """A one-connection client on DATABASE_URL or the embedded cluster (started if needed)."""
    pool_log = logging.getLogger("psycopg.pool")
    if not pool_log.handlers:
        # The pool logs each failed attempt; the command reports the failure once.
        pool_log.addHandler(logging.NullHandler())
        pool_log.propagate = False
    url = target.app_url(acting_as)
    # One direct connection first: an unreachable server is reported at once,
    # with libpq's reason, instead of after the pool's timeout.
    _check_connection(url)
    client = Client(url, min_size=1, max_size=1, timeout=CONNECT_TIMEOUT)
    try:
        yield client
    except PoolTimeout:
        _check_connection(url)
        raise
    finally:
        client.close()


def _check_connection(url: str) -> None:
    try:
        with psycopg.connect(url, connect_timeout=int(CONNECT_TIMEOUT)):
            pass
    except psycopg.OperationalError as exc:
        reason = "; ".join(ln.strip() for ln in str(exc).splitlines() if ln.strip())
        fail(f"cannot connect to the database: {reason or type(exc).__name__}",
             hint="check DATABASE_URL, or start the embedded cluster with `chatmem db up`")


def _with_token(client: Client, st: State, call: Callable[[str | None], T]) -> tuple[T, State]:
    """Run ``call`` with the access token, refreshing it once if the server refuses it."""
    try:
        return call(st.token), st
    except NotAuthorized:
        refresh_token = st.refresh_token
        if not refresh_token:
            raise
    try:
        tokens = client.refresh(refresh_token)
    except NotAuthorized:
        fail(f"the saved login of {_who(st)} has expired or was revoked",
             hint=f"log in again: chatmem login --email {st.email}")
    st = st.with_tokens(tokens.token, tokens.refresh_token)
    state.save(st)
    return call(st.token), st


def _revoke_quietly(client: Client, st: State) -> None:
    """A new login replaces the saved one: revoke the old tokens (False if already dead)."""
    if st.token:
        client.logout(st.token)


def _password(given: str | None, from_stdin: bool, *, confirm: bool) -> str:
    if given is not None and from_stdin:
        fail("give either --password or --password-stdin, not both", code=EXIT_USAGE)
    if given is not None:
        return given
    if from_stdin:
        line = typer.get_text_stream("stdin").readline()
        if not line:
            fail("--password-stdin: stdin is empty", code=EXIT_USAGE)
        return line.rstrip("\r\n")
    if not is_tty():
        # getpass would warn and read stdin anyway; say what to do instead.
        fail("no terminal to ask for the password on",
             hint="pipe it in with --password-stdin (echo \"$PASSWORD\" | chatmem ... --password-stdin), "
                  "or run in a terminal", code=EXIT_USAGE)
    return str(typer.prompt("Password", hide_input=True, confirmation_prompt=confirm))


INT32 = (-(2**31), 2**31 - 1)
INT64 = (-(2**63), 2**63 - 1)


def _in_range(value: int | None, option: str, bounds: tuple[int, int], hint: str) -> None:
    if value is not None and not bounds[0] <= value <= bounds[1]:
        fail(f"{option}: {value} is out of range", hint=hint, code=EXIT_USAGE)


def _json_object(text: str | None, option: str) -> dict[str, Any] | None:
    if text is None:
        return None
    try:
        value = json.loads(text)
    except ValueError as exc:
        fail(f"{option}: not valid JSON ({exc})", hint='e.g. \'{"topic": "refunds"}\'',
             code=EXIT_USAGE)
    if not isinstance(value, dict):
        fail(f"{option}: must be a JSON object", hint='e.g. \'{"topic": "refunds"}\'',
             code=EXIT_USAGE)
    if any("\ud800" <= c <= "\udfff" for c in json.dumps(value, ensure_ascii=False)):
        fail(f"{option}: holds a lone UTF-16 surrogate (a \\ud800-\\udfff escape), which is no character",
             hint="escape characters outside the BMP as a surrogate pair, or write them as UTF-8", code=EXIT_USAGE)
    return value


def _who(st: State) -> str:
    return f"{st.name} <{st.email}>" if st.logged_in else f"guest {st.guest_id}"


def _claimed(count: int, guest_id: str) -> str:
    were = "session was" if count == 1 else "sessions were"
    return f"{count} {were} claimed from guest {guest_id}."


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" + ("" if n == 1 else "s")


def _when(moment: datetime) -> str:
    return moment.astimezone().strftime("%Y-%m-%d %H:%M:%S")


def _one_line(text: str, width: int = 60) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"
