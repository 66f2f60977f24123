"""``chatmem retention``: purge idle guest sessions on a schedule, with pg_cron.

A shell over :mod:`chatmem.retention`.  On the embedded cluster the job runs
as ``chatmem_retention_login`` (a member of chatmem_admin only); on a
``DATABASE_URL`` server, as the role of that URL, which must be a member of
chatmem_admin.  Where the server has no pg_cron, ``schedule`` says so and
prints the system crontab line that does the same.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import psycopg
import typer

from chatmem import embedded, retention, target
from chatmem.cli.output import EXIT_REFUSED, EXIT_USAGE, FLAG, emit_json, fail, guarded, table

app = typer.Typer(
    help="Purge idle guest sessions on a schedule (a pg_cron job in the database server).\n\n"
         "Example: chatmem retention schedule --idle 30d",
    no_args_is_help=True,
)

JsonOpt = Annotated[bool, typer.Option("--json", metavar=FLAG, help="Print machine-readable JSON.")]
DatabaseUrlOpt = Annotated[
    str | None,
    typer.Option("--database-url", metavar="URL",
                 help="Server and database to use (default: DATABASE_URL, else the embedded cluster)."),
]


def _target(database_url: str | None) -> tuple[str, str | None, str]:
    """(URL to schedule through, login role the job runs as or None for the URL's own, URL for a crontab line)."""
    url = database_url or target.external_url()
    if url is not None:
        return url, None, url
    cluster, name = target.ready_embedded(embedded.default_database())
    with psycopg.connect(cluster.url(name), autocommit=True) as conn:
        embedded.ensure_login_role(conn, embedded.RETENTION_LOGIN, embedded.RETENTION_GROUPS)
    return cluster.url(name), embedded.RETENTION_LOGIN, cluster.url(name, user=embedded.RETENTION_LOGIN)


@app.command()
@guarded
def schedule(
    idle: Annotated[
        str, typer.Option("--idle", metavar="DURATION", show_default=False,
                          help="Purge guest sessions idle for longer than this: 30d, 12h, 2w or 90min.")
    ],
    at: Annotated[
        str, typer.Option("--at", metavar="CRON",
                          help="When to run, as a cron schedule in UTC (minute hour day month weekday).")
    ] = retention.DEFAULT_AT,
    database_url: DatabaseUrlOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Install (or replace) the job that purges unclaimed guest sessions idle for longer than --idle.

    The job runs inside PostgreSQL (pg_cron), as chatmem_admin.  Where the
    server has no pg_cron, the command says so, prints the equivalent line for
    the system crontab and exits with 1.

    Example: chatmem retention schedule --idle 30d --at '17 3 * * *'
    """
    example = "e.g. chatmem retention schedule --idle 30d --at '17 3 * * *'"
    try:
        wanted = retention.parse_idle(idle)
    except ValueError as exc:
        fail(f"--idle: {exc}", example, code=EXIT_USAGE)
    try:
        at = retention.check_schedule(at)
    except ValueError as exc:
        fail(f"--at: {exc}", example, code=EXIT_USAGE)
    url, run_as, crontab_url = _target(database_url)
    try:
        job = retention.schedule(url, wanted, at, run_as=run_as)
    except retention.CronUnavailable as exc:
        line = retention.crontab_line(crontab_url, wanted, at)
        if json_out:
            emit_json({"scheduled": False, "reason": str(exc), "crontab": line})
        else:
            keep = "; keep its password in ~/.pgpass" if retention.has_password(crontab_url) else ""
            typer.echo(f"chatmem: no pg_cron job: {exc}; add this line to the system crontab instead "
                       f"(crontab -e){keep}:", err=True)
            typer.echo(line)
        raise typer.Exit(EXIT_REFUSED) from None
    except retention.BadSchedule as exc:
        fail(f"--at: {exc}", example, code=EXIT_USAGE)
    except retention.NotReady as exc:
        fail(str(exc), "migrate the database, or pass --database-url as a member of chatmem_admin")
    if json_out:
        emit_json({"scheduled": True, "job": job})
        return
    typer.echo(f"scheduled job {job.jobid} ({job.jobname}): at '{job.schedule}' UTC, purge guest sessions idle "
               f"for more than {wanted}, in database {job.database} as {job.username}")


@app.command()
@guarded
def status(
    runs: Annotated[int, typer.Option("--runs", metavar="N", min=1, max=100,
                                      help="How many of the latest runs to show.")] = 5,
    database_url: DatabaseUrlOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Show the retention job of the database and its latest runs (from pg_cron's run log).

    Example: chatmem retention status --runs 10
    """
    url, _, _ = _target(database_url)
    try:
        found = retention.status(url, runs)
    except retention.CronUnavailable as exc:
        fail(f"cannot use pg_cron: {exc}", "see docs/operations/retention.md for the crontab way")
    if json_out:
        emit_json(found)
        return
    job = found.job
    if job is None:
        typer.echo(f"no retention job for database {found.database} "
                   "(schedule one: chatmem retention schedule --idle 30d)")
        return
    for key, value in (("job", f"{job.jobid} ({job.jobname})"), ("schedule", f"{job.schedule} (UTC)"),
                       ("active", "yes" if job.active else "no"), ("database", job.database),
                       ("runs as", job.username), ("command", job.command),
                       ("cron database", found.cron_database)):
        typer.echo(f"{key:14} {value}")
    if not found.runs:
        typer.echo("no run yet")
        return
    typer.echo("latest runs, newest first:")
    typer.echo(table(["STARTED", "SECONDS", "STATUS", "MESSAGE"],
                     [[_when(r.start_time), _seconds(r.start_time, r.end_time), r.status, r.return_message]
                      for r in found.runs]))


@app.command()
@guarded
def unschedule(database_url: DatabaseUrlOpt = None, json_out: JsonOpt = False) -> None:
    """Remove the retention job of the database (nothing happens if there is none).

    Example: chatmem retention unschedule
    """
    url, _, _ = _target(database_url)
    try:
        removed = retention.unschedule(url)
    except retention.CronUnavailable as exc:
        fail(f"cannot use pg_cron: {exc}", "remove the line from the system crontab instead (crontab -e)")
    if json_out:
        emit_json({"removed": removed})
        return
    if not removed:
        typer.echo("no retention job to remove")
    for job in removed:
        typer.echo(f"removed job {job.jobid} ({job.jobname})")


def _when(moment: datetime | None) -> str:
    return moment.isoformat(sep=" ", timespec="seconds") if moment else ""


def _seconds(start: datetime | None, end: datetime | None) -> str:
    return f"{(end - start).total_seconds():.2f}" if start and end else ""
