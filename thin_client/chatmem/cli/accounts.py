"""Account commands after sign-up (issue 13): ``passwd``, ``account export``, ``account delete``.

(``logout --everywhere`` extends ``logout`` in chatmem.cli.chat.)  Each acts
for the saved login (chatmem.state), refreshing its token once if the server
refuses it, and makes one API call.  Secrets are asked for on a terminal,
without echo; without a terminal a command says what to do on one line.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated

import typer

from chatmem import state
from chatmem.cli.chat import JsonOpt, PasswordStdinOpt, _client, _who, _with_token
from chatmem.cli.output import EXIT_USAGE, FLAG, emit_json, fail, guarded, is_tty, jsonable
from chatmem.state import State

account_app = typer.Typer(
    help="Your account's data: download a copy of it, or erase it.\n\nExample: chatmem account export --output me.json",
    no_args_is_help=True,
)


def _logged_in(what: str) -> State:
    st = state.load()
    if not st.logged_in:
        fail(f"not logged in: {what} needs an account", hint="log in first: chatmem login --email EMAIL")
    return st


def _secret(prompt: str, *, confirm: bool = False) -> str:
    """A secret typed at a terminal, without echo; a one-line refusal without a terminal."""
    if not is_tty():
        # getpass would warn and read stdin anyway: say what to do instead.
        fail("no terminal to ask for the password on", hint="run this command in a terminal", code=EXIT_USAGE)
    return str(typer.prompt(prompt, hide_input=True, confirmation_prompt=confirm))


@guarded
def passwd(json_out: JsonOpt = False) -> None:
    """Change your password; every other login of the account is signed out, this one stays.

    Asks for the current password and the new one (twice) on the terminal.

    Example: chatmem passwd
    """
    st = _logged_in("changing the password")
    current = _secret("Current password")
    new = _secret("New password", confirm=True)
    with _client() as client:
        _, st = _with_token(client, st, lambda token: client.change_password(token, current, new))
    if json_out:
        emit_json({"changed": True, "user_id": st.user_id, "email": st.email})
    else:
        typer.echo(f"Password changed for {_who(st)}; every other login of the account was signed out.")


@account_app.command("export")
@guarded
def export(
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", metavar="FILE",
                     help="Write the JSON to FILE (readable by you only) instead of standard output."),
    ] = None,
) -> None:
    """Download everything chatmem stores about your account, as one JSON document.

    Profile, sessions with their messages and Q&A pairs, which guest sessions were
    claimed and when, and sign-ins (never a password hash or a token).

    Example: chatmem account export --output my-chatmem-data.json
    """
    st = _logged_in("exporting data")
    with _client() as client:
        document, st = _with_token(client, st, client.export_user_data)
    text = json.dumps(jsonable(document), indent=2, ensure_ascii=False) + "\n"
    if output is None:
        typer.echo(text, nl=False)
        return
    try:
        # Personal data: readable by its owner only, like the state file.
        fd = os.open(output, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
    except OSError as exc:
        fail(f"--output: cannot write {output}: {exc.strerror}", hint="choose a file in a folder you can write to")
    sessions = len(document.get("sessions", []))
    typer.echo(f"Wrote the data of {_who(st)} ({sessions} session{'' if sessions == 1 else 's'}) to {output}.")


@account_app.command("delete")
@guarded
def delete(
    yes: Annotated[
        bool, typer.Option("--yes", metavar=FLAG, help="Do not ask to type the email to confirm (for scripts).")
    ] = False,
    password_stdin: PasswordStdinOpt = False,
    json_out: JsonOpt = False,
) -> None:
    """Erase your account and everything that is yours: sessions, messages, Q&A pairs, logins.

    Asks you to type the account's email to confirm (--yes skips it), then for the
    password (or reads it from stdin with --password-stdin). There is no undo.

    Example: chatmem account delete
    """
    st = _logged_in("erasing an account")
    if not yes:
        if not is_tty():
            fail("no terminal to confirm the erasure on",
                 hint="run it in a terminal, or pass --yes (and --password-stdin) in a script", code=EXIT_USAGE)
        typed = typer.prompt(f"This erases {st.email} and all its conversations for good. Type the email to confirm")
        if str(typed).strip().lower() != (st.email or "").lower():
            fail("the email typed does not match the account's; nothing was erased",
                 hint=f"type {st.email} exactly, or press Ctrl-C to keep the account")
    if password_stdin:
        line = typer.get_text_stream("stdin").readline()
        if not line:
            fail("--password-stdin: stdin is empty", code=EXIT_USAGE)
        password = line.rstrip("\r\n")
    else:
        password = _secret("Password")
    with _client() as client:
        erased, st = _with_token(client, st, lambda token: client.delete_account(token, password))
    state.save(st.logged_out())
    if json_out:
        emit_json({"deleted": True, "user_id": st.user_id, "email": st.email, "erased_sessions": erased,
                   "guest_id": st.guest_id})
        return
    typer.echo(f"Erased the account {_who(st)} and its {erased} session{'' if erased == 1 else 's'}; "
               f"acting as guest {st.guest_id} again.")
