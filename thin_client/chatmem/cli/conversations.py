"""Conversations a person manages (issue 12): rename, delete, a paged list, what a sign-up would keep.

Like :mod:`chatmem.cli.chat`, each command acts as the logged-in user, else
as this device's guest (the state file), and makes one API call; ownership
and validation are the SQL API's.

``chatmem sessions`` pages with a cursor that carries both halves of the
list's order, ``UPDATED_AT/SESSION_ID`` (the last row's last activity and
id): sessions active at the same microsecond are neither skipped nor shown
twice.  Under a full page it prints the exact command for the next one.
"""

from __future__ import annotations

import shlex
from datetime import UTC, datetime
from typing import Annotated

import typer

from chatmem import state
from chatmem.cli.chat import (
    INT32,
    JsonOpt,
    SessionIdArg,
    _client,
    _count,
    _in_range,
    _one_line,
    _when,
    _who,
    _with_token,
)
from chatmem.cli.output import EXIT_USAGE, FLAG, emit_json, fail, guarded, is_tty, plain, table
from chatmem.models import Conversation

claim_app = typer.Typer(
    help="What signing up or logging in keeps, and what it kept.\n\nExample: chatmem claim preview",
    no_args_is_help=True,
)

# api.list_conversations's default page, for knowing whether a page was full.
DEFAULT_PAGE = 50
PAGE_HINT = "Ask for 1 to 200 conversations with --limit; page on with --before."
CURSOR_HINT = ("pass --before as UPDATED_AT/SESSION_ID, as chatmem sessions prints it "
               "(or a time alone, e.g. 2026-11-30T12:00:00Z)")


# -- the cursor -------------------------------------------------------------------------


def cursor(row: Conversation) -> str:
    """The ``--before`` value for the page after ``row``: its updated_at (UTC, to the microsecond) and id."""
    moment = row.updated_at.astimezone(UTC).isoformat().replace("+00:00", "Z")
    return f"{moment}/{row.session_id}"


def parse_cursor(value: str) -> tuple[datetime, str | None]:
    """``UPDATED_AT/SESSION_ID`` (or ``UPDATED_AT`` alone) as the list's ``before`` and ``before_id``.

    A time carries no '/', so the first one ends it; the session id is the
    rest, whatever it holds.  A time without an offset is this machine's local time.
    """
    moment_text, slash, session_id = value.partition("/")
    if slash and not session_id:
        fail(f"--before: no session id after the '/' in {value!r}", hint=CURSOR_HINT, code=EXIT_USAGE)
    try:
        moment = datetime.fromisoformat(moment_text.strip())
    except ValueError:
        fail(f"--before: {moment_text!r} is not a date and time", hint=CURSOR_HINT, code=EXIT_USAGE)
    if moment.tzinfo is None:
        moment = moment.astimezone()
    return moment, (session_id if slash else None)


# -- commands -----------------------------------------------------------------------------


@guarded
def sessions(
    limit: Annotated[
        int | None,
        typer.Option("--limit", metavar="N", help="How many conversations per page (1-200, default 50)."),
    ] = None,
    before: Annotated[
        str | None,
        typer.Option("--before", metavar="UPDATED_AT/SESSION_ID",
                     help="Start after this row: the cursor printed under the previous page "
                          "(or a time alone: conversations last active before it)."),
    ] = None,
    json_out: JsonOpt = False,
) -> None:
    """List your conversations a page at a time, most recent activity first, with titles and previews.

    The user's after login, else this guest's.  Under a full page the next page's command is printed.

    Example: chatmem sessions --limit 20
    """
    _in_range(limit, "--limit", INT32, PAGE_HINT)
    before_at, before_id = parse_cursor(before) if before is not None else (None, None)
    st = state.load()
    with _client() as client:
        rows = client.list_conversations(st.identity, limit=limit, before=before_at, before_id=before_id)
    if json_out:
        emit_json(rows)
        return
    if not rows:
        if before is None:
            typer.echo(f"No sessions yet for {_who(st)}. Start one: chatmem session new")
        else:
            typer.echo(f"No more sessions of {_who(st)}.")
        return
    typer.echo(f"{_count(len(rows), 'session')} of {_who(st)}, most recent activity first:")
    typer.echo(table(
        ["SESSION", "TITLE", "LAST ACTIVE", "MESSAGES", "LAST MESSAGE"],
        [[r.session_id, _one_line(r.title or "", 40), _when(r.updated_at), r.message_count,
          _one_line(r.last_message or "", 50)] for r in rows]))
    if len(rows) == (limit or DEFAULT_PAGE):
        page = [] if limit is None else ["--limit", str(limit)]
        typer.echo("")
        typer.echo("Next page: " + shlex.join(["chatmem", "sessions", *page, "--before", cursor(rows[-1])]))


@guarded
def session_rename(
    session_id: SessionIdArg,
    title: Annotated[str, typer.Argument(
        metavar="TITLE", **plain(), show_default=False,
        help="The new title: one line, at most 200 characters; '' clears it.")],
    json_out: JsonOpt = False,
) -> None:
    """Give one of your sessions a title ('' clears it); its place in the list stays.

    Example: chatmem session rename session_1700000000000_abc "Refund for order 1042"
    """
    st = state.load()
    with _client() as client:
        s = client.rename_session(session_id, st.identity, title)
    if json_out:
        emit_json({"session_id": s.session_id, "title": s.title, "updated_at": s.updated_at})
    elif s.title is None:
        typer.echo(f"Session {s.session_id} has no title now.")
    else:
        typer.echo(f"Session {s.session_id} is now titled {s.title!r}.")


@guarded
def session_delete(
    session_id: SessionIdArg,
    yes: Annotated[bool, typer.Option("--yes", "-y", metavar=FLAG,
                                      help="Delete without asking (for scripts).")] = False,
    json_out: JsonOpt = False,
) -> None:
    """Delete one of your sessions with all its messages and Q&A pairs (asks first on a terminal).

    A guest may delete its own sessions before signing up.  Without a terminal, pass --yes.

    Example: chatmem session delete session_1700000000000_abc --yes
    """
    if not yes:
        if not is_tty():
            fail("no terminal to confirm the deletion on", hint="pass --yes to delete without asking",
                 code=EXIT_USAGE)
        typer.confirm(f"Delete session {session_id} with all its messages and Q&A pairs?", abort=True)
    st = state.load()
    with _client() as client:
        deleted = client.delete_session(session_id, st.identity)
    if json_out:
        emit_json({"session_id": session_id, "deleted": deleted})
        if not deleted:
            raise typer.Exit(1)
        return
    if not deleted:
        fail(f"session {session_id} became yours while this ran; nothing was deleted",
             hint=f"run it again: chatmem session delete {shlex.quote(session_id)}")
    typer.echo(f"Deleted session {session_id} with its messages and Q&A pairs.")


@claim_app.command("preview")
@guarded
def claim_preview(json_out: JsonOpt = False) -> None:
    """Show which of this device's guest sessions signing up or logging in now would keep.

    Example: chatmem claim preview
    """
    st = state.load()
    with _client() as client:
        rows = client.preview_claim(st.guest_id)
    if json_out:
        emit_json(rows)
        return
    if not rows:
        typer.echo(f"Guest {st.guest_id} has no sessions to keep.")
        return
    keep = _count(len(rows), "conversation")
    typer.echo(table(
        ["SESSION", "TITLE", "CREATED", "MESSAGES", "Q&A"],
        [[r.session_id, _one_line(r.title or "", 40), _when(r.created_at), r.message_count, r.qa_count]
         for r in rows]))
    typer.echo("")
    if st.logged_in:
        typer.echo(f"Log in again to move these {keep} of guest {st.guest_id} into the account of {_who(st)}: "
                   f"chatmem login --email {st.email}")
    else:
        typer.echo(f"Sign up to keep these {keep}: chatmem register --name NAME --email EMAIL "
                   "(or chatmem login --email EMAIL).")


@claim_app.command("receipt")
@guarded
def claim_receipt(
    since: Annotated[
        str | None,
        typer.Option("--since", metavar="TIME", help="Only claims made at or after this time, e.g. 2026-11-30."),
    ] = None,
    json_out: JsonOpt = False,
) -> None:
    """List the guest sessions that signing up and logging in moved into your account, newest first.

    Example: chatmem claim receipt --since 2026-11-01
    """
    since_at = None
    if since is not None:
        try:
            since_at = datetime.fromisoformat(since.strip())
        except ValueError:
            fail(f"--since: {since!r} is not a date and time", hint="e.g. 2026-11-30 or 2026-11-30T12:00:00Z",
                 code=EXIT_USAGE)
        if since_at.tzinfo is None:
            since_at = since_at.astimezone()
    st = state.load()
    if not st.logged_in:
        fail(f"not logged in (acting as guest {st.guest_id})", hint="log in first: chatmem login --email EMAIL")
    with _client() as client:
        rows, st = _with_token(client, st, lambda token: client.claim_receipt(token, since=since_at))
    if json_out:
        emit_json(rows)
        return
    if not rows:
        typer.echo(f"No guest sessions were claimed into the account of {_who(st)}.")
        return
    typer.echo(table(["SESSION", "FROM GUEST", "HOW", "CLAIMED"],
                     [[r.session_id, r.anonymous_user_id, r.method, _when(r.claimed_at)] for r in rows]))
