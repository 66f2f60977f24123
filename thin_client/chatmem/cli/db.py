"""``chatmem db``: the embedded cluster (or, with DATABASE_URL, a report on that server)."""

from __future__ import annotations

import os
from typing import Annotated

import psycopg
import typer
from psycopg.conninfo import conninfo_to_dict

from chatmem import embedded, migrate, target
from chatmem.cli.output import EXIT_USAGE, FLAG, emit_json, fail, guarded

app = typer.Typer(help="Manage the embedded PostgreSQL cluster.", no_args_is_help=True)

JsonOpt = Annotated[bool, typer.Option("--json", metavar=FLAG, help="Print machine-readable JSON.")]
DatabaseOpt = Annotated[
    str | None,
    typer.Option("--database", "-d", metavar="NAME", help="Another database on the same server (e.g. chatmem_test)."),
]


@app.command()
@guarded
def up(
    database: DatabaseOpt = None,
    no_migrate: Annotated[bool, typer.Option("--no-migrate", metavar=FLAG, help="Only start the server.")] = False,
    json_out: JsonOpt = False,
) -> None:
    """Start the embedded cluster (reusing a running one), create the database and migrate it.

    With DATABASE_URL set nothing is started: that server is migrated instead.

    Example: chatmem db up
    """
    if target.external_url() is None:
        cluster = embedded.up()
        embedded.ensure_database(cluster, database or embedded.default_database())
    url = target.database_url(database=database)
    version = None if no_migrate else migrate.migrate(url).version
    if json_out:
        emit_json({"url": _redact(url), "version": version})
    else:
        typer.echo(f"PostgreSQL is up: {_redact(url)}" + (f" (schema {version})" if version else ""))


@app.command()
@guarded
def down(json_out: JsonOpt = False) -> None:
    """Stop the embedded cluster (its data stays).

    Example: chatmem db down
    """
    if target.external_url():
        fail("DATABASE_URL is set: chatmem did not start that server and will not stop it.")
    stopped = embedded.down()
    if json_out:
        emit_json({"stopped": stopped})
    else:
        typer.echo("stopped" if stopped else "not running")


@app.command()
@guarded
def status(json_out: JsonOpt = False) -> None:
    """Say whether the database runs, where its data is and which schema version it has.

    Example: chatmem db status --json
    """
    info: dict[str, object] = {}
    if url := target.external_url():
        info = {"mode": "external", "url": _redact(url)}
        running = _reachable(url)
    else:
        cluster = embedded.configured()
        running = embedded.is_running(cluster)
        url = cluster.url()
        info = {"mode": "embedded", "data_dir": str(cluster.data_dir), "port": cluster.port,
                "socket_dir": str(cluster.socket_dir), "url": url}
    info["running"] = running
    info["schema_version"] = migrate.schema_version(url) if running and _reachable(url) else None
    if json_out:
        emit_json(info)
        return
    for key, value in info.items():
        typer.echo(f"{key:15} {_shown(value)}")


@app.command()
@guarded
def url(
    database: DatabaseOpt = None,
    create: Annotated[
        bool, typer.Option("--create", metavar=FLAG, help="Create the database if it is missing.")
    ] = False,
    recreate: Annotated[
        bool, typer.Option("--recreate", metavar=FLAG,
                           help="Drop the database and create it empty (for test databases).")
    ] = False,
    env: Annotated[
        bool, typer.Option("--env", metavar=FLAG, help="Print shell exports of PGHOST, PGPORT, ... instead of a URL.")
    ] = False,
) -> None:
    """Print a libpq URL that an admin can connect with (starts the embedded cluster if needed).

    Example: psql "$(chatmem db url)"
    """
    name = database or embedded.default_database()
    if recreate and not database:
        fail("--recreate needs --database: it drops that database", code=EXIT_USAGE)
    if create or recreate or (name == embedded.default_database() and target.external_url() is None):
        target.ensure_database(name, recreate=recreate)
    conn_url = target.database_url(database=database)
    typer.echo(target.libpq_env_exports(conn_url) if env else conn_url)


@app.command()
@guarded
def psql(database: DatabaseOpt = None) -> None:
    """Open psql on the database.

    Example: chatmem db psql -d chatmem_test
    """
    conn_url = target.database_url(database=database)
    os.execvp("psql", ["psql", conn_url])


def _shown(value: object) -> str:
    """A status value for a person: yes/no, not Python's True/False; 'none' for nothing."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    return "none" if value is None else str(value)


def _reachable(url: str) -> bool:
    try:
        with psycopg.connect(url, connect_timeout=3):
            return True
    except psycopg.OperationalError:
        return False


def _redact(url: str) -> str:
    params = conninfo_to_dict(url)
    if params.get("password"):
        params["password"] = "***"
    return target.dict_to_url(params)
