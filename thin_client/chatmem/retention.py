"""Retention on a schedule: a pg_cron job that runs ``api.purge_guest_sessions``.

pg_cron keeps its jobs in one database of the server (``cron.database_name``,
``postgres`` on the embedded cluster) and runs each in the database it names
(``cron.schedule_in_database``), so the job of a chatmem database is scheduled
through a second connection, to that cron database, with the same credentials.
One job per chatmem database, named :func:`job_name`; scheduling again
replaces it.

The job's command first does ``SET ROLE chatmem_admin``: whichever login role
pg_cron connects as (on the embedded cluster ``chatmem_retention_login``, a
member of chatmem_admin only; elsewhere the role that scheduled it), the purge
runs with chatmem_admin's rights and nothing more.

Where the server has no pg_cron, or this role may not use it,
:class:`CronUnavailable` says why and :func:`crontab_line` gives the line for
the system crontab that does the same.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from datetime import datetime
from typing import LiteralString

import psycopg
from psycopg import errors
from psycopg.conninfo import conninfo_to_dict
from psycopg.rows import class_row

from chatmem import target

ADMIN_ROLE = "chatmem_admin"
JOB_PREFIX = "chatmem retention: "
DEFAULT_AT = "17 3 * * *"

# --idle: a whole number and a unit; make_interval's argument for each unit.
_IDLE = re.compile(r"^\s*(\d{1,6})\s*(w|weeks?|d|days?|h|hours?|min|mins|minutes?)\s*$", re.IGNORECASE)
_UNITS = {"w": "weeks", "d": "days", "h": "hours"}
# One field of a five-field cron schedule: numbers, ranges, lists, steps, '*'.
_FIELD = re.compile(r"^(\*|\d{1,2}(-\d{1,2})?)(/\d{1,2})?(,(\*|\d{1,2}(-\d{1,2})?)(/\d{1,2})?)*$")
_MACROS = {"@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly"}


class CronUnavailable(Exception):
    """pg_cron cannot run this job on the server: the reason, in one sentence."""


class BadSchedule(ValueError):
    """A schedule that is not cron's (five fields, each in range)."""


class NotReady(ValueError):
    """The database or the job's role cannot run the purge yet: what to do, in one sentence."""


@dataclass(frozen=True)
class Idle:
    """How long a guest session must have been idle to be purged."""

    amount: int
    unit: str  # make_interval's: weeks, days, hours, mins

    @property
    def sql(self) -> str:
        """The interval as SQL with no quotes (safe in a shell and a crontab line)."""
        return f"make_interval({self.unit} => {self.amount})"

    def __str__(self) -> str:
        unit = "minutes" if self.unit == "mins" else self.unit
        return f"{self.amount} {unit[:-1] if self.amount == 1 else unit}"


@dataclass(frozen=True)
class Job:
    """A row of ``cron.job``."""

    jobid: int
    jobname: str
    schedule: str
    command: str
    database: str
    username: str
    active: bool


@dataclass(frozen=True)
class Run:
    """A row of ``cron.job_run_details``: one run of a job."""

    runid: int
    status: str | None
    return_message: str | None
    start_time: datetime | None
    end_time: datetime | None


@dataclass(frozen=True)
class Status:
    """The retention job of a database (None when none is scheduled) and its latest runs, newest first."""

    database: str
    cron_database: str
    job: Job | None
    runs: list[Run]


def parse_idle(text: str) -> Idle:
    """``30d``, ``12h``, ``2w``, ``90min`` or ``30 days``; a ValueError says what is wrong."""
    match = _IDLE.match(text)
    if not match:
        raise ValueError(f"{text!r} is not a duration such as 30d, 12h, 2w or 90min")
    amount, unit = int(match.group(1)), match.group(2).lower()
    if amount < 1:
        raise ValueError(f"{text!r} would purge every guest session at once: give at least 1")
    return Idle(amount, _UNITS[unit[0]] if unit[0] in "wdh" else "mins")


def check_schedule(text: str) -> str:
    """A cron schedule pg_cron 1.4 and crontab(5) both accept (five fields, minute first, or
    ``@daily`` and the like); a ValueError says what is wrong."""
    schedule = " ".join(text.split())
    fields = schedule.split(" ")
    if schedule in _MACROS or (len(fields) == 5 and all(_FIELD.match(f) for f in fields)):
        return schedule
    raise BadSchedule(f"{text!r} is not a cron schedule of five fields (minute hour day month weekday), e.g. "
                     f"'{DEFAULT_AT}'")


def job_name(database: str) -> str:
    """The retention job of ``database``: one per database, so one cron database serves several."""
    return JOB_PREFIX + database


def purge_command(idle: Idle) -> str:
    """The SQL the job runs: as chatmem_admin, purge guest sessions idle for longer than ``idle``."""
    return f"SET ROLE {ADMIN_ROLE}; SELECT api.purge_guest_sessions({idle.sql})"


def schedule(url: str, idle: Idle, at: str, *, run_as: str | None = None) -> Job:
    """Install (or replace) the retention job of ``url``'s database; return it.

    ``run_as`` is the login role pg_cron connects as (default: ``url``'s own
    role); it must be a member of chatmem_admin.  Raises
    :class:`CronUnavailable` when pg_cron cannot run it on this server.
    """
    at = check_schedule(at)
    with psycopg.connect(url, autocommit=True) as conn:
        current = conn.execute("SELECT current_user").fetchone()
        assert current is not None
        role = run_as or str(current[0])
        _check_runner(conn, role)  # first: without it, no crontab line would work either
        database, cron_database, _ = _cron_target(conn)
    name = job_name(database)
    with _cron_connect(url, cron_database, create=True) as cron:
        try:
            with cron.transaction():
                # Replace, not add: one job per database, whoever scheduled it before.
                for (jobid,) in cron.execute("SELECT jobid FROM cron.job WHERE jobname = %s", [name]).fetchall():
                    cron.execute("SELECT cron.unschedule(%s)", [jobid])
                # The job's role is named only when it is another: pg_cron 1.4
                # refuses any username from a role that is not a superuser.
                row = cron.execute(
                    "SELECT cron.schedule_in_database(%s, %s, %s, %s, NULLIF(%s, current_user), true)",
                    [name, at, purge_command(idle), database, role],
                ).fetchone()
        except errors.InvalidParameterValue as exc:  # pg_cron's own check of the schedule
            raise BadSchedule(f"pg_cron refuses the schedule {at!r} ({exc.diag.message_primary})") from exc
        except errors.InsufficientPrivilege as exc:
            raise _no_rights(cron_database, exc) from exc
        assert row is not None
        job = _job(cron, _JOB_BY_ID, row[0])
    assert job is not None
    return job


def status(url: str, runs: int = 5) -> Status:
    """The retention job of ``url``'s database and its ``runs`` latest runs."""
    with psycopg.connect(url, autocommit=True) as conn:
        database, cron_database, _ = _cron_target(conn)
    with _cron_connect(url, cron_database, create=False) as cron:
        if not _has_extension(cron):
            return Status(database, cron_database, None, [])
        found: list[Run] = []
        try:
            job = _job(cron, _JOB_BY_NAME, job_name(database))
            if job is not None:
                with cron.cursor(row_factory=class_row(Run)) as cur:
                    found = cur.execute(
                        "SELECT runid, status, return_message, start_time, end_time FROM cron.job_run_details"
                        " WHERE jobid = %s ORDER BY start_time DESC NULLS LAST, runid DESC LIMIT %s",
                        [job.jobid, runs],
                    ).fetchall()
        except errors.InsufficientPrivilege as exc:
            raise _no_rights(cron_database, exc) from exc
    return Status(database, cron_database, job, found)


def unschedule(url: str) -> list[Job]:
    """Remove the retention job of ``url``'s database; return what was removed (nothing if none)."""
    with psycopg.connect(url, autocommit=True) as conn:
        database, cron_database, _ = _cron_target(conn)
    with _cron_connect(url, cron_database, create=False) as cron:
        if not _has_extension(cron):
            return []
        try:
            with cron.transaction(), cron.cursor(row_factory=class_row(Job)) as cur:
                jobs = cur.execute(_JOBS_BY_NAME, [job_name(database)]).fetchall()
                for job in jobs:
                    cron.execute("SELECT cron.unschedule(%s)", [job.jobid])
        except errors.InsufficientPrivilege as exc:
            raise _no_rights(cron_database, exc) from exc
    return jobs


def crontab_line(url: str, idle: Idle, at: str) -> str:
    """The system crontab line that does what the pg_cron job would: psql as ``url``'s role.

    The URL loses its password (keep it in ~/.pgpass); ``%`` is escaped, as
    crontab(5) turns a bare one into a newline.
    """
    params = conninfo_to_dict(url)
    params.pop("password", None)
    command = purge_command(idle)
    line = (f"{check_schedule(at)} psql -X -q -v ON_ERROR_STOP=1 -d {_sh(target.dict_to_url(params))}"
            f" -c {_sh(command)}")
    return line.replace("%", "\\%")


def has_password(url: str) -> bool:
    return bool(conninfo_to_dict(url).get("password"))


_JOBS_BY_NAME = ("SELECT jobid, jobname, schedule, command, database, username, active FROM cron.job"
                 " WHERE jobname = %s ORDER BY jobid DESC")
_JOB_BY_NAME = _JOBS_BY_NAME + " LIMIT 1"
_JOB_BY_ID = ("SELECT jobid, jobname, schedule, command, database, username, active FROM cron.job"
              " WHERE jobid = %s")


def _job(cron: psycopg.Connection[tuple[object, ...]], query: LiteralString, value: object) -> Job | None:
    with cron.cursor(row_factory=class_row(Job)) as cur:
        return cur.execute(query, [value]).fetchone()


def _cron_target(conn: psycopg.Connection[tuple[object, ...]]) -> tuple[str, str, str]:
    """(this database, pg_cron's database, this role); CronUnavailable when pg_cron is not loaded."""
    row = conn.execute("SELECT current_database(), current_user").fetchone()
    assert row is not None
    database, role = str(row[0]), str(row[1])
    try:
        found = conn.execute(
            "SELECT current_setting('cron.database_name', true),"
            " 'pg_cron' = ANY (string_to_array(replace(current_setting('shared_preload_libraries'), ' ', ''), ','))"
        ).fetchone()
        assert found is not None
        cron_database, loaded = found
    except errors.InsufficientPrivilege:
        # A role that may not read server settings (neither superuser nor in
        # pg_read_all_settings), as on a managed server.  cron.database_name
        # exists only where pg_cron is loaded; its value is hidden: pg_cron's
        # database is this one if it holds the extension, else its default.
        try:
            conn.execute("SELECT current_setting('cron.database_name', true)")
            loaded = False
        except errors.InsufficientPrivilege:
            loaded = True
        cron_database = database if _has_extension(conn) else "postgres"
    if not loaded or cron_database is None:
        raise CronUnavailable("pg_cron is not loaded on this server (it must be in shared_preload_libraries)")
    return database, str(cron_database), role


def _check_runner(conn: psycopg.Connection[tuple[object, ...]], role: str) -> None:
    """The job's role must exist, log in and be able to become chatmem_admin; the database must be migrated."""
    row = conn.execute(
        "SELECT to_regprocedure('api.purge_guest_sessions(interval, boolean)') IS NOT NULL,"
        " (SELECT rolcanlogin FROM pg_catalog.pg_roles WHERE rolname = %s),"
        " to_regrole(%s) IS NOT NULL AND pg_has_role(%s, %s, 'MEMBER')",
        [role, ADMIN_ROLE, role, ADMIN_ROLE],
    ).fetchone()
    assert row is not None
    migrated, can_login, member = row
    if not migrated:
        raise NotReady("this database has no chatmem API yet: run `chatmem migrate` first")
    if can_login is None or not can_login or not member:
        raise NotReady(f"role {role} cannot run the job: it must be a login role and a member of {ADMIN_ROLE} "
                         f"(GRANT {ADMIN_ROLE} TO {role})")


def _cron_connect(url: str, cron_database: str, *, create: bool) -> psycopg.Connection[tuple[object, ...]]:
    """A connection to pg_cron's database with ``url``'s credentials; with ``create``, the
    extension is created there if missing (which needs a superuser, or a managed server's admin)."""
    try:
        cron = psycopg.connect(target.with_database(url, cron_database), autocommit=True, connect_timeout=10)
    except psycopg.OperationalError as exc:
        reason = (str(exc).strip().splitlines() or ["connection refused"])[-1]
        raise CronUnavailable(f"cannot connect to pg_cron's database {cron_database}: {reason}") from exc
    if create and not _has_extension(cron):
        try:
            cron.execute("CREATE EXTENSION IF NOT EXISTS pg_cron")
        except (errors.InsufficientPrivilege, errors.UndefinedFile, errors.FeatureNotSupported) as exc:
            cron.close()
            raise CronUnavailable(f"pg_cron's extension is not created in database {cron_database}, "
                                  f"and this role cannot create it ({exc.diag.message_primary})") from exc
    return cron


def _no_rights(cron_database: str, exc: psycopg.Error) -> CronUnavailable:
    return CronUnavailable(f"this role may not use pg_cron's jobs in database {cron_database} "
                           f"({exc.diag.message_primary}; a superuser can grant USAGE ON SCHEMA cron)")


def _has_extension(cron: psycopg.Connection[tuple[object, ...]]) -> bool:
    return cron.execute("SELECT 1 FROM pg_catalog.pg_extension WHERE extname = 'pg_cron'").fetchone() is not None


def _sh(text: str) -> str:
    return shlex.quote(text)
