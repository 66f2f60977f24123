"""Retention on a schedule (issue 12): ``chatmem retention schedule|status|unschedule``.

The real scheduler runs the job: pg_cron, in the test server, every minute;
the test waits for its first run in ``cron.job_run_details`` and then checks
the data.  Where pg_cron cannot be used (here: a role with no rights on it),
``schedule`` prints a crontab line, which the test runs with sh to see that
it purges the same sessions.
"""

from __future__ import annotations

import os
import random
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict
from typer.testing import CliRunner, Result

from chatmem import embedded, retention, target
from chatmem.cli.app import app
from conftest import TEST_ROLE_PASSWORD, login_role_url
from helpers import Conn, connect, tag

CHATMEM = str(Path(sys.executable).parent / "chatmem")
# Stale here means idle for 60 years, purged at 3000 weeks (57.5 years):
# older than anything another test module makes (test_lifecycle's idle
# sessions are 30 years old), so a job running during the suite purges only ours.
AGE = "60 years"
IDLE = "3000w"


@dataclass
class Data:
    """Sessions of one test: which the purge must delete, which it must keep."""

    stale_guest: list[str]
    kept: dict[str, str]  # session id -> why it must stay


def make_data(conn: Conn, run: str) -> Data:
    """Two stale unclaimed guest sessions (with messages and Q&A pairs), and four it must keep: a
    stale session claimed at sign-up, a stale user's session, a fresh guest session and a stale open one."""
    guest, claimer = f"ret-g-{run}", f"ret-c-{run}"
    stale = [f"ret-stale-{run}-{i}" for i in range(2)]
    kept = {f"ret-claimed-{run}": "claimed at sign-up", f"ret-user-{run}": "a user's",
            f"ret-fresh-{run}": "a guest's, recently active", f"ret-open-{run}": "an open session (no guest id)"}
    for sid in stale:
        conn.execute("SELECT api.create_or_get_session(%s, %s)", [sid, guest])
        conn.execute("SELECT api.add_message(%s, %s, 'user', 'old')", [sid, guest])
        conn.execute("SELECT api.add_qa_pair(%s, %s, 'q', 'a')", [sid, guest])
    claimed, user_sid, fresh, open_sid = kept
    conn.execute("SELECT api.create_or_get_session(%s, %s)", [claimed, claimer])
    conn.execute("SELECT api.add_message(%s, %s, 'user', 'keep me')", [claimed, claimer])
    row = conn.execute("SELECT user_id FROM api.register_user('R', %s, 'correct horse', %s)",
                       [f"ret-{run}@example.test", claimer]).fetchone()
    assert row is not None
    conn.execute("SELECT api.create_or_get_session(%s, %s)", [user_sid, str(row[0])])
    conn.execute("SELECT api.create_or_get_session(%s, %s)", [fresh, guest])
    conn.execute("SELECT api.create_or_get_session(%s, NULL)", [open_sid])
    conn.execute("UPDATE public.conversation_sessions SET created_at = now() - %s::interval,"
                 " updated_at = now() - %s::interval WHERE session_id = ANY(%s) AND session_id <> %s",
                 [AGE, AGE, [*stale, *kept], fresh])
    assert conn.execute("SELECT user_id IS NOT NULL FROM public.conversation_sessions WHERE session_id = %s",
                        [claimed]).fetchone() == (True,), "the sign-up claimed the guest's session"
    return Data(stale, kept)


def assert_purged(conn: Conn, data: Data) -> None:
    left = {r[0] for r in conn.execute("SELECT session_id FROM public.conversation_sessions"
                                       " WHERE session_id = ANY(%s)", [[*data.stale_guest, *data.kept]])}
    assert not left & set(data.stale_guest), "stale guest sessions survived the purge"
    for sid, why in data.kept.items():
        assert sid in left, f"the purge deleted {sid}, {why}"
    orphans = conn.execute(
        "SELECT (SELECT count(*) FROM public.conversation_messages WHERE session_id = ANY(%s)),"
        " (SELECT count(*) FROM public.qa_pairs WHERE session_id = ANY(%s))",
        [data.stale_guest, data.stale_guest]).fetchone()
    assert orphans == (0, 0), "messages or Q&A pairs of purged sessions are left"


def assert_untouched(conn: Conn, data: Data) -> None:
    count = conn.execute("SELECT count(*) FROM public.conversation_sessions WHERE session_id = ANY(%s)",
                         [[*data.stale_guest, *data.kept]]).fetchone()
    assert count == (len(data.stale_guest) + len(data.kept),)


def cleanup(conn: Conn, run: str) -> None:
    conn.execute("DELETE FROM public.conversation_sessions WHERE session_id LIKE %s", [f"ret-%-{run}%"])
    conn.execute("DELETE FROM public.users WHERE email = %s", [f"ret-{run}@example.test"])


@pytest.fixture
def data(admin: Conn) -> Iterator[Data]:
    run = tag()
    try:
        yield make_data(admin, run)
    finally:
        cleanup(admin, run)


@dataclass
class Cli:
    """``chatmem retention`` against the test database: on the embedded cluster as a person
    runs it (no URL: the job runs as chatmem_retention_login), elsewhere with --database-url."""

    env: dict[str, str]
    url_args: list[str]
    cron_url: str
    database: str

    def run(self, *args: str, code: int = 0, url_args: list[str] | None = None) -> Result:
        result = CliRunner().invoke(app, ["retention", *args, *(self.url_args if url_args is None else url_args)],
                                    env=self.env)
        assert result.exit_code == code, (args, result.exit_code, result.stdout, result.stderr)
        assert "Traceback" not in result.output
        return result

    def jobs(self) -> list[tuple[Any, ...]]:
        with connect(self.cron_url) as cron:
            return cron.execute("SELECT jobid, schedule, username, command FROM cron.job WHERE jobname = %s",
                                [retention.job_name(self.database)]).fetchall()


@pytest.fixture
def cli(admin_url: str, admin: Conn) -> Iterator[Cli]:
    params = conninfo_to_dict(admin_url)
    row = admin.execute("SELECT current_database(), current_setting('cron.database_name', true),"
                        " current_setting('data_directory'),"
                        " EXISTS (SELECT 1 FROM pg_file_settings WHERE sourcefile LIKE '%/chatmem.conf')").fetchone()
    assert row is not None
    database, cron_database, data_dir, ours = row
    assert cron_database, "the test server has no pg_cron: install postgresql-15-cron (make install-system)"
    host = str(params.get("host") or "")
    if ours and host.startswith("/"):
        env = {"DATABASE_URL": "", "CHATMEM_DATA_DIR": data_dir, "CHATMEM_PG_PORT": str(params.get("port") or 5432),
               "CHATMEM_SOCKET_DIR": host, "CHATMEM_DATABASE": database}
        url_args: list[str] = []
    else:
        env, url_args = {"DATABASE_URL": ""}, ["--database-url", admin_url]
    cli = Cli(env, url_args, target.with_database(admin_url, cron_database), database)
    cli.run("unschedule")
    try:
        yield cli
    finally:
        cli.run("unschedule")


# ------------------------------------------------------------------ the real scheduler


@pytest.mark.slow
def test_a_job_scheduled_every_minute_purges_stale_guest_sessions_and_keeps_claimed_ones(
    cli: Cli, data: Data, admin: Conn
) -> None:
    out = cli.run("schedule", "--idle", IDLE, "--at", "* * * * *").stdout
    assert "scheduled job" in out and "3000 weeks" in out, out
    [(jobid, schedule, username, command)] = cli.jobs()
    assert schedule == "* * * * *"
    assert command.startswith("SET ROLE chatmem_admin;"), command
    if not cli.url_args:
        assert username == embedded.RETENTION_LOGIN
        # The job's login role can become chatmem_admin and nothing else.
        groups = {r[0] for r in admin.execute(
            "SELECT g.rolname FROM pg_auth_members m JOIN pg_roles g ON g.oid = m.roleid"
            " JOIN pg_roles u ON u.oid = m.member WHERE u.rolname = %s", [username])}
        assert groups == {"chatmem_admin"}
        assert admin.execute("SELECT rolsuper FROM pg_roles WHERE rolname = %s", [username]).fetchone() == (False,)
    assert_untouched(admin, data)  # nothing ran yet: scheduling deletes nothing

    deadline = time.monotonic() + 100  # the next minute, plus pg_cron's own start-up
    finished = None
    with connect(cli.cron_url) as cron:
        while finished is None and time.monotonic() < deadline:
            finished = cron.execute(
                "SELECT status, return_message FROM cron.job_run_details"
                " WHERE jobid = %s AND status IN ('succeeded', 'failed') ORDER BY runid LIMIT 1", [jobid]).fetchone()
            if finished is None:
                time.sleep(1)
    assert finished is not None, "pg_cron did not run the job within 100 s"
    assert finished[0] == "succeeded", finished
    assert_purged(admin, data)

    shown = cli.run("status").stdout
    assert f"job            {jobid} " in shown and "succeeded" in shown, shown
    status = cli.run("status", "--json").stdout
    assert '"status": "succeeded"' in status

    removed = cli.run("unschedule").stdout
    assert f"removed job {jobid}" in removed
    assert cli.jobs() == []
    assert "no retention job" in cli.run("status").stdout


# ------------------------------------------------------------------ scheduling, status, removal


def test_scheduling_again_replaces_the_job_and_status_shows_it(cli: Cli) -> None:
    cli.run("schedule", "--idle", "30d")
    cli.run("schedule", "--idle", "12h", "--at", "5 */2 * * *")
    [(_, schedule, _, command)] = cli.jobs()
    assert schedule == "5 */2 * * *"
    assert "make_interval(hours => 12)" in command
    shown = cli.run("status").stdout
    assert "5 */2 * * * (UTC)" in shown and "no run yet" in shown
    assert len(cli.run("unschedule", "--json").stdout.split('"jobid"')) == 2
    assert "no retention job to remove" in cli.run("unschedule").stdout


@pytest.mark.parametrize(("args", "flag"), [
    (["--idle", "30x"], "--idle"),
    (["--idle", "0d"], "--idle"),
    (["--idle", "30 days; DROP TABLE users"], "--idle"),
    (["--idle", "30d", "--at", "daily"], "--at"),
    (["--idle", "30d", "--at", "* * * *"], "--at"),
    (["--idle", "30d", "--at", "* * * * * ; rm -rf /"], "--at"),
    (["--idle", "30d", "--at", "61 * * * *"], "--at"),  # five fields, refused by pg_cron itself
])
def test_bad_input_is_one_line_naming_the_flag_and_schedules_nothing(cli: Cli, args: list[str], flag: str) -> None:
    result = cli.run("schedule", *args, code=2)
    [line] = result.stderr.strip().splitlines()
    assert line.startswith(f"error: {flag}: ") and "(hint: e.g. chatmem retention schedule" in line, line
    assert "api." not in line and "p_" not in line
    assert result.stdout == ""
    assert cli.jobs() == []


def test_a_role_outside_chatmem_admin_cannot_be_the_job_s_runner(cli: Cli, app_url: str) -> None:
    result = cli.run("schedule", "--idle", "30d", code=1, url_args=["--database-url", app_url])
    [line] = result.stderr.strip().splitlines()
    assert "cannot run the job" in line and "member of chatmem_admin" in line, line
    assert cli.jobs() == []


def test_every_retention_command_has_help_with_an_example_and_a_json_flag() -> None:
    for command in (["retention"], ["retention", "schedule"], ["retention", "status"], ["retention", "unschedule"]):
        out = CliRunner().invoke(app, [*command, "--help"], env={"COLUMNS": "120"}).stdout
        assert "Example: chatmem retention" in out, command
        if len(command) == 2:
            assert "--json" in out, command


# ------------------------------------------------------------------ no pg_cron: a crontab line


@pytest.fixture
def no_cron_url(admin_url: str, admin: Conn) -> str:
    """A login role in chatmem_admin with no right on pg_cron: a managed server's admin before
    the DBA grants it, or a server without pg_cron, as far as this role can tell."""
    url = login_role_url(admin_url, "chatmem_test_retention", ("chatmem_admin",))
    assert admin.execute("SELECT rolsuper FROM pg_roles WHERE rolname = 'chatmem_test_retention'").fetchone() == (
        False,)
    return url


def test_without_pg_cron_schedule_says_so_on_one_line_and_prints_a_crontab_line_that_works(
    cli: Cli, no_cron_url: str, data: Data, admin: Conn
) -> None:
    result = cli.run("schedule", "--idle", IDLE, "--at", "17 3 * * *", code=1, url_args=["--database-url", no_cron_url])
    [said] = result.stderr.strip().splitlines()
    assert said.startswith("chatmem: no pg_cron job: ") and "crontab" in said and "~/.pgpass" in said, said
    assert "api." not in said and "p_" not in said
    [line] = result.stdout.strip().splitlines()
    assert line.startswith("17 3 * * * psql "), line
    assert TEST_ROLE_PASSWORD not in line, "the crontab line carries no password"
    assert "chatmem_test_retention@" in line
    assert cli.jobs() == []
    assert_untouched(admin, data)

    # What cron would run: the line after its five fields, with crontab's \% turned back into %.
    command = line.split(" ", 5)[5].replace("\\%", "%")
    env = {**os.environ, "PGPASSWORD": TEST_ROLE_PASSWORD}
    done = subprocess.run(["sh", "-c", command], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert_purged(admin, data)

    as_json = cli.run("schedule", "--idle", "30d", "--json", code=1, url_args=["--database-url", no_cron_url])
    assert '"scheduled": false' in as_json.stdout and '"crontab": "17 3 * * * psql' in as_json.stdout


def test_status_and_unschedule_without_pg_cron_rights_are_one_line(cli: Cli, no_cron_url: str) -> None:
    for command in ("status", "unschedule"):
        result = cli.run(command, code=1, url_args=["--database-url", no_cron_url])
        [line] = result.stderr.strip().splitlines()
        assert line.startswith("error: cannot use pg_cron: this role may not use pg_cron's jobs"), line


def test_the_crontab_line_escapes_percent_signs_and_drops_the_password(admin: Conn) -> None:
    url = "postgresql://ops:s3cr%25t@db.example.com:5432/chat%25mem?sslmode=require"
    line = retention.crontab_line(url, retention.parse_idle("2w"), "@daily")
    assert "s3cr" not in line
    assert "%" not in line.replace("\\%", ""), "a bare % ends the command in crontab(5)"
    assert line.startswith("@daily psql -X -q -v ON_ERROR_STOP=1 -d 'postgresql://ops@db.example.com:5432/")
    # The interval the job passes is the one asked for, as PostgreSQL reads it.
    for text, expected in (("30d", "30 days"), ("12h", "12:00:00"), ("2w", "14 days"), ("90min", "01:30:00"),
                           ("1 day", "1 day"), ("3 weeks", "21 days")):
        got = admin.execute(sql.SQL("SELECT {}::text").format(sql.SQL(retention.parse_idle(text).sql))).fetchone()
        assert got == (expected,), text


# ------------------------------------------------------------------ an older embedded cluster


@pytest.fixture
def old_cluster(tmp_path: Path) -> Iterator[tuple[dict[str, str], str]]:
    """A running embedded cluster as an older chatmem left it (chatmem.conf without pg_cron),
    and its superuser's URL (to look without `chatmem`, which would start pg_cron)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CHATMEM_", "DATABASE_URL", "PG"))}
    env.update(CHATMEM_DATA_DIR=str(tmp_path / "pgdata"), CHATMEM_PG_PORT=str(random.randint(55000, 59000)))
    # Where chatmem puts it (a folder the server's user can reach, which tmp_path may not be).
    where = subprocess.run(
        [sys.executable, "-c",
         "from chatmem import embedded; c = embedded.configured(); print(c.data_dir, c.socket_dir)"],
        env=env, capture_output=True, text=True, check=True).stdout.split()
    data_dir, socket_dir = Path(where[0]), where[1]
    try:
        up = subprocess.run([CHATMEM, "db", "up", "--no-migrate"], env=env, capture_output=True, text=True, timeout=120)
        assert up.returncode == 0, up.stderr
        subprocess.run([CHATMEM, "db", "down"], env=env, capture_output=True, timeout=60, check=True)
        (data_dir / "chatmem.conf").write_text(embedded.SERVER_SETTINGS)  # what chatmem wrote before pg_cron
        start = [str(embedded.find_bindir() / "pg_ctl"), "-D", str(data_dir), "-l", str(data_dir / "server.log"),
                 "-o", f"-p {env['CHATMEM_PG_PORT']} -k {socket_dir}", "-w", "start"]
        if os.geteuid() == 0:
            start = ["runuser", "-u", "postgres", "--", *start]
        subprocess.run(start, capture_output=True, timeout=60, check=True)
        yield env, f"postgresql://postgres@/postgres?host={socket_dir}&port={env['CHATMEM_PG_PORT']}"
    finally:
        subprocess.run([CHATMEM, "db", "down"], env=env, capture_output=True, timeout=60)
        shutil.rmtree(data_dir.parent if data_dir.name == "pgdata" and "chatmem" in str(data_dir) else data_dir,
                      ignore_errors=True)


@pytest.mark.slow
def test_an_older_running_cluster_gets_pg_cron_on_its_next_start_and_says_so_once(
    old_cluster: tuple[dict[str, str], str],
) -> None:
    env, url = old_cluster

    def libraries() -> str:
        with psycopg.connect(url) as conn:
            row = conn.execute("SHOW shared_preload_libraries").fetchone()
        return str(row[0]) if row else ""

    assert "pg_cron" not in libraries()
    up = subprocess.run([CHATMEM, "db", "up"], env=env, capture_output=True, text=True, timeout=120)
    assert up.returncode == 0, up.stderr
    said = [line for line in up.stderr.splitlines() if "pg_cron" in line]
    assert len(said) == 1 and said[0].startswith("chatmem: restarting the embedded PostgreSQL"), up.stderr
    assert "pg_cron" in libraries()
    again = subprocess.run([CHATMEM, "db", "up"], env=env, capture_output=True, text=True, timeout=60)
    assert again.returncode == 0 and "pg_cron" not in again.stderr, again.stderr


def test_a_role_in_chatmem_admin_that_a_dba_let_use_pg_cron_schedules_its_own_job(
    cli: Cli, admin_url: str, data: Data
) -> None:
    """docs/operations/retention.md's managed-server recipe: no superuser, the cron database's name
    hidden from the role, the job running as the role itself."""
    ops = login_role_url(admin_url, "chatmem_test_retention_ops", ("chatmem_admin",))
    with connect(cli.cron_url) as cron:
        cron.execute("GRANT USAGE ON SCHEMA cron TO chatmem_test_retention_ops")
        cron.execute("GRANT EXECUTE ON FUNCTION cron.schedule_in_database(text, text, text, text, text, boolean)"
                     " TO chatmem_test_retention_ops")
    try:
        out = cli.run("schedule", "--idle", IDLE, url_args=["--database-url", ops]).stdout
        assert "as chatmem_test_retention_ops" in out, out
        [(_, _, username, _)] = cli.jobs()
        assert username == "chatmem_test_retention_ops"
        assert "no run yet" in cli.run("status", url_args=["--database-url", ops]).stdout
        assert "removed job" in cli.run("unschedule", url_args=["--database-url", ops]).stdout
        assert cli.jobs() == []
    finally:
        with connect(cli.cron_url) as cron:
            cron.execute("REVOKE ALL ON SCHEMA cron FROM chatmem_test_retention_ops")
            cron.execute("REVOKE ALL ON FUNCTION cron.schedule_in_database(text, text, text, text, text, boolean)"
                         " FROM chatmem_test_retention_ops")
