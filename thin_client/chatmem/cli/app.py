"""The root of the ``chatmem`` command."""

from __future__ import annotations

from typing import Annotated

import typer

from chatmem import migrate as migrations
from chatmem import target
from chatmem.cli import accounts, allowance, chat, conversations, db, retention
from chatmem.cli.output import EXIT_USAGE, FLAG, OneLineErrors, emit_json, fail, guarded
from chatmem.cli.serve import serve

app = typer.Typer(
    name="chatmem",
    cls=OneLineErrors,
    help=(
        "chatmem: conversations that survive sign-up, stored in PostgreSQL.\n\n"
        "Example: chatmem session new, then chatmem say SESSION_ID 'Hello'"
    ),
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
CONVERSATIONS, ACCOUNT, DATABASE = "Conversations", "Account", "Database"
app.add_typer(chat.session_app, name="session", rich_help_panel=CONVERSATIONS)
# Conversations a person manages (issue 12): the paged list, rename, delete, claims.
chat.session_app.command("rename")(conversations.session_rename)
chat.session_app.command("delete")(conversations.session_delete)
app.command(rich_help_panel=CONVERSATIONS)(conversations.sessions)
app.add_typer(conversations.claim_app, name="claim", rich_help_panel=ACCOUNT)
app.command(rich_help_panel=CONVERSATIONS)(chat.say)
app.command(rich_help_panel=CONVERSATIONS)(chat.history)
app.command(rich_help_panel=CONVERSATIONS)(chat.qa)
app.command(rich_help_panel=CONVERSATIONS)(allowance.allowance)
app.command(rich_help_panel=ACCOUNT)(chat.register)
app.command(rich_help_panel=ACCOUNT)(chat.login)
app.command(rich_help_panel=ACCOUNT)(chat.logout)
app.command(rich_help_panel=ACCOUNT)(chat.whoami)
app.command(rich_help_panel=ACCOUNT)(accounts.passwd)
app.add_typer(accounts.account_app, name="account", rich_help_panel=ACCOUNT)
app.add_typer(db.app, name="db", rich_help_panel=DATABASE)
app.add_typer(retention.app, name="retention", rich_help_panel=DATABASE)
app.command(rich_help_panel="HTTP")(guarded(serve))

DatabaseUrlOpt = Annotated[
    str | None,
    typer.Option(
        "--database-url", metavar="URL", help="Server to use (default: DATABASE_URL, else the embedded cluster)."
    ),
]


@app.command(rich_help_panel=DATABASE)
@guarded
def migrate(
    database_url: DatabaseUrlOpt = None,
    rollback: Annotated[
        bool, typer.Option("--rollback", metavar=FLAG, help="Roll back the last migration.")
    ] = False,
    rollback_all: Annotated[
        bool, typer.Option("--all", metavar=FLAG, help="With --rollback: roll back every migration.")
    ] = False,
    plan: Annotated[
        bool, typer.Option("--plan", help="List each pending step and the lock it takes; change nothing.")
    ] = False,
    json_out: Annotated[bool, typer.Option("--json", metavar=FLAG, help="Print machine-readable JSON.")] = False,
) -> None:
    """Apply pending migrations, then reload every function of schema api.

    A database of the older system is first upgraded online (batches, NOT VALID
    constraints, concurrent indexes, short locks); long steps print their progress.

    Example: chatmem migrate --plan --database-url postgresql://admin@db.example.com/chatmem
    """
    if rollback_all and not rollback:
        fail("--all only goes with --rollback", code=EXIT_USAGE)
    if plan and rollback:
        fail("--plan does not go with --rollback", code=EXIT_USAGE)
    url = target.database_url(database_url)
    if plan:
        steps = migrations.plan(url)
        if json_out:
            emit_json([step.__dict__ for step in steps])
            return
        for number, step in enumerate(steps, 1):
            typer.echo(f"{number:2}. {step.name}\n    lock: {step.lock}")
        return

    def progress(message: str) -> None:
        if not message.startswith("applied "):  # listed below, once
            typer.echo(message, err=True)

    result = (migrations.rollback(url, everything=rollback_all) if rollback
              else migrations.migrate(url, progress=None if json_out else progress))
    if json_out:
        emit_json(result.__dict__)
        return
    for name in result.applied:
        typer.echo(f"applied      {name}")
    for name in result.rolled_back:
        typer.echo(f"rolled back  {name}")
    if not result.applied and not result.rolled_back:
        typer.echo("no migration pending")
    if result.function_files:
        typer.echo(f"reloaded {result.function_files} function files")
    elif result.rolled_back:
        typer.echo("the api schema was dropped: run 'chatmem migrate' to bring the API back")
    typer.echo(f"schema version: {result.version or 'none'}")


def main() -> None:
    """Console entry point."""
    app()
