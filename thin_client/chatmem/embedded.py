"""The embedded default: a project-local PostgreSQL cluster.

With no ``DATABASE_URL``, chatmem runs its own cluster from the machine's
PostgreSQL binaries: its own data folder, its own port and its own socket
folder, so it never meets a system PostgreSQL on 5432.  It listens on a Unix
socket only, in a folder only the server's OS user can enter (root excepted),
so ``trust`` authentication admits nobody else.  Run as root, the server runs
as the ``postgres`` user, since PostgreSQL refuses to run as root.

Commands that act for a user or guest do not connect as the superuser: the
cluster has two login roles without passwords (``trust`` on the private
socket), made on first use: ``chatmem_app_login``, a member of
``chatmem_app`` only, and ``chatmem_assistant_login``, also a member of
``chatmem_assistant``, for the one who writes the model's turns.
"""

from __future__ import annotations

import hashlib
import os
import pwd
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import psycopg
from psycopg import errors, sql

from chatmem.errors import SetupError

DEFAULT_PORT = 54329
SUPERUSER = "postgres"
DEFAULT_DATABASE = "chatmem"
MIN_MAJOR = 15

# The embedded cluster's login roles and the group roles (made by the
# migrations) each is a member of; nothing else is granted to them.
APP_LOGIN = "chatmem_app_login"
ASSISTANT_LOGIN = "chatmem_assistant_login"
# The gateway's second pool, for POST /api/auth/oidc: api.link_identity only
# (chatmem_identity_broker is not in chatmem_app, nor the other way round).
BROKER_LOGIN = "chatmem_identity_broker_login"
LOGIN_ROLES: dict[str, tuple[str, ...]] = {
    APP_LOGIN: ("chatmem_app",),
    ASSISTANT_LOGIN: ("chatmem_app", "chatmem_assistant"),
    BROKER_LOGIN: ("chatmem_identity_broker",),
}
# The login role pg_cron's retention job runs as (chatmem retention schedule),
# made when a job is first scheduled: a member of chatmem_admin only, so the
# job can purge guest data and nothing more.
RETENTION_LOGIN = "chatmem_retention_login"
RETENTION_GROUPS = ("chatmem_admin",)

# Settings of the embedded cluster, rewritten into chatmem.conf (included by
# postgresql.conf) before every start, so a newer chatmem updates an older
# cluster.  Durability stays at PostgreSQL's defaults (fsync,
# synchronous_commit, full_page_writes on): the crash tests and the benchmark
# rely on a cluster that keeps its promises.  shared_buffers is sized for a
# million sessions with their indexes (about 400 MB), instead of the 128 MB
# default meant for machines of twenty years ago.  Bound parameters (which
# carry passwords and tokens) stay out of statement logs even if a superuser
# turns on log_statement; docs/security.md asks the same of a DBA's server.
SERVER_SETTINGS = """# Written by chatmem before every start: edits here are lost.
listen_addresses = ''
unix_socket_permissions = 0700
shared_preload_libraries = 'pg_stat_statements'
shared_buffers = '512MB'
log_line_prefix = '%m [%p] %q%u@%d '
log_min_error_statement = error
log_parameter_max_length = 0
log_parameter_max_length_on_error = 0
"""
INCLUDE_LINE = "include_if_exists = 'chatmem.conf'\n"

# pg_cron (Debian's postgresql-15-cron), for `chatmem retention schedule`:
# loaded at start when the machine has it (a library named in
# shared_preload_libraries but missing would stop the server from starting).
# Its extension and job table live in the ``postgres`` database, which always
# exists; cron.schedule_in_database runs each job in the chatmem database it
# names.  pg_cron runs a job through a libpq connection of its own: over the
# private socket folder, where trust admits the job's login role.
CRON_LIBRARY = "pg_cron"
CRON_DATABASE = "postgres"
CRON_SETTINGS = """shared_preload_libraries = 'pg_stat_statements,pg_cron'
cron.database_name = '{database}'
cron.host = '{socket_dir}'
"""


@dataclass(frozen=True)
class Cluster:
    """Where the embedded cluster lives and how to reach it."""

    data_dir: Path
    port: int
    socket_dir: Path
    bindir: Path | None

    @property
    def log_file(self) -> Path:
        return self.data_dir / "server.log"

    def url(self, database: str | None = None, user: str = SUPERUSER) -> str:
        """A libpq URL for ``user`` (by default the superuser) on ``database`` (by default :func:`default_database`)."""
        return (
            f"postgresql://{quote(user, safe='')}@/{quote(database or default_database())}"
            f"?host={quote(str(self.socket_dir), safe='/')}&port={self.port}"
        )


def default_database() -> str:
    """The database commands use on the embedded cluster: ``CHATMEM_DATABASE``, else ``chatmem``."""
    return os.environ.get("CHATMEM_DATABASE") or DEFAULT_DATABASE


def _default_data_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "chatmem" / "pgdata"


def running_as_root() -> bool:
    return os.geteuid() == 0


def _server_user() -> str | None:
    """The OS user that runs the server: ``postgres`` when we are root, else ourselves."""
    if not running_as_root():
        return None
    try:
        pwd.getpwnam("postgres")
    except KeyError as exc:
        raise SetupError(
            "running as root, but there is no 'postgres' OS user to run PostgreSQL as; "
            "install Debian's postgresql package (make install-system) or run as a normal user."
        ) from exc
    return "postgres"


def _runuser() -> str:
    """util-linux's runuser (in sbin, which a root PATH may lack)."""
    found = shutil.which("runuser") or next(
        (p for p in ("/usr/sbin/runuser", "/sbin/runuser") if Path(p).exists()), None
    )
    if found is None:
        raise SetupError("running as root, but 'runuser' (util-linux) is missing: install util-linux.")
    return found


def _as_server_user(cmd: list[str]) -> list[str]:
    user = _server_user()
    return [_runuser(), "-u", user, "--", *cmd] if user else cmd


def _reachable_by_server_user(path: Path) -> bool:
    """Can the server user create and enter ``path`` (every parent traversable)?"""
    user = _server_user()
    if user is None:
        return True
    existing = path
    while not existing.exists():
        existing = existing.parent
    probe = [_runuser(), "-u", user, "--", "test", "-x", str(existing)]
    return subprocess.run(probe, capture_output=True).returncode == 0


def find_bindir() -> Path:
    """The bin folder of PostgreSQL 15 or newer holding initdb, pg_ctl and postgres."""
    candidates: list[Path] = []
    if env := os.environ.get("CHATMEM_PG_BINDIR"):
        candidates.append(Path(env))
    if pg_config := shutil.which("pg_config"):
        out = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True)
        if out.returncode == 0:
            candidates.append(Path(out.stdout.strip()))

    def version_key(p: Path) -> int:
        return int(p.parent.name) if p.parent.name.isdigit() else 0

    debian = sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=version_key, reverse=True)
    candidates.extend(debian)
    for bindir in candidates:
        if (bindir / "initdb").exists() and (bindir / "pg_ctl").exists():
            major = _major_version(bindir)
            if major >= MIN_MAJOR:
                return bindir
    raise SetupError(
        f"no PostgreSQL {MIN_MAJOR}+ server binaries found (initdb, pg_ctl); "
        "run 'make install-system' as root, or set CHATMEM_PG_BINDIR, or set DATABASE_URL."
    )


def _major_version(bindir: Path) -> int:
    out = subprocess.run([str(bindir / "postgres"), "--version"], capture_output=True, text=True)
    match = re.search(r"(\d+)(?:\.\d+)?", out.stdout)
    return int(match.group(1)) if match else 0


def configured() -> Cluster:
    """The cluster described by the environment (it may not exist yet)."""
    wanted = Path(os.environ.get("CHATMEM_DATA_DIR") or _default_data_dir()).resolve()
    data_dir = wanted
    if not _reachable_by_server_user(wanted):
        # e.g. a checkout under /root (mode 0700): postgres cannot enter it.
        digest = hashlib.sha1(str(wanted).encode()).hexdigest()[:10]
        data_dir = Path(f"/var/tmp/chatmem-{digest}/pgdata")
    port = int(os.environ.get("CHATMEM_PG_PORT") or DEFAULT_PORT)
    # Unix socket paths are limited to 107 bytes: keep the folder short.
    digest = hashlib.sha1(f"{data_dir}:{port}".encode()).hexdigest()[:10]
    socket_dir = Path(os.environ.get("CHATMEM_SOCKET_DIR") or f"/tmp/chatmem-{digest}")
    return Cluster(data_dir=data_dir, port=port, socket_dir=socket_dir, bindir=None)


def _connect_admin(cluster: Cluster, database: str = "postgres") -> psycopg.Connection[tuple[object, ...]]:
    return psycopg.connect(cluster.url(database), autocommit=True, connect_timeout=3)


def is_running(cluster: Cluster) -> bool:
    """True when our cluster answers on its socket.

    Decided by connecting and comparing ``data_directory``: after a hard kill,
    ``pg_ctl status`` may still report a server for a moment.
    """
    if not (cluster.socket_dir / f".s.PGSQL.{cluster.port}").exists():
        return False
    try:
        with _connect_admin(cluster) as conn:
            row = conn.execute("SHOW data_directory").fetchone()
    except psycopg.OperationalError:
        return False
    served = Path(str(row[0])).resolve() if row else None
    if served != cluster.data_dir:
        raise SetupError(
            f"port {cluster.port} in {cluster.socket_dir} is taken by another cluster "
            f"(data in {served}); set CHATMEM_PG_PORT to a free port."
        )
    return True


def _run(cmd: list[str], what: str, cluster: Cluster) -> None:
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        detail = (done.stderr or done.stdout).strip().splitlines()
        tail = detail[-1] if detail else "no output"
        raise SetupError(f"{what} failed: {tail} (server log: {cluster.log_file})")


def _prepare_dir(path: Path, mode: int) -> None:
    path.mkdir(parents=True, exist_ok=True)
    user = _server_user()
    if user:
        shutil.chown(path, user=user, group=None)
    path.chmod(mode)


def _initdb(cluster: Cluster, bindir: Path) -> None:
    _prepare_dir(cluster.data_dir, 0o700)
    _run(
        _as_server_user([
            str(bindir / "initdb"),
            "-D", str(cluster.data_dir),
            "-U", SUPERUSER,
            "-A", "trust",
            "-E", "UTF8",
            "--locale=C.UTF-8",
        ]),
        "initdb",
        cluster,
    )


def has_cron(bindir: Path) -> bool:
    """Does this PostgreSQL installation have pg_cron's library (postgresql-15-cron)?"""
    return (bindir.parent / "lib" / f"{CRON_LIBRARY}.so").exists()


def _write_settings(cluster: Cluster, bindir: Path) -> None:
    """chatmem.conf with SERVER_SETTINGS (and CRON_SETTINGS when pg_cron is installed),
    and postgresql.conf including it."""
    main_conf = cluster.data_dir / "postgresql.conf"
    if INCLUDE_LINE not in main_conf.read_text():
        with main_conf.open("a") as conf:
            conf.write("\n# chatmem's own settings\n" + INCLUDE_LINE)
    ours = cluster.data_dir / "chatmem.conf"
    text = SERVER_SETTINGS
    if has_cron(bindir):
        # A later line wins: this one replaces SERVER_SETTINGS' library list.
        text += CRON_SETTINGS.format(database=CRON_DATABASE, socket_dir=cluster.socket_dir)
    ours.write_text(text)
    user = _server_user()
    if user:
        shutil.chown(ours, user=user, group=None)


def up(cluster: Cluster | None = None, announce: Callable[[str], None] | None = None) -> Cluster:
    """Start the cluster (creating it on first use); a running one is reused.

    A running cluster started by an older chatmem without pg_cron, on a
    machine that now has it, is restarted once to load it, and ``announce``
    (by default a line on stderr) says so.
    """
    cluster = cluster or configured()
    if is_running(cluster):
        if _cron_missing(cluster):
            _restart_for_cron(cluster, announce)
        return cluster
    bindir = find_bindir()
    if not (cluster.data_dir / "PG_VERSION").exists():
        _initdb(cluster, bindir)
    _write_settings(cluster, bindir)
    _prepare_dir(cluster.socket_dir, 0o700)
    _pg_ctl(cluster, bindir, ["start"], "starting PostgreSQL")
    return cluster


def _pg_ctl(cluster: Cluster, bindir: Path, action: list[str], what: str) -> None:
    """``pg_ctl start`` or ``restart`` on our port and socket, then wait until it accepts connections."""
    options = f"-p {cluster.port} -k {cluster.socket_dir}"
    _run(
        _as_server_user([
            str(bindir / "pg_ctl"), "-D", str(cluster.data_dir), "-l", str(cluster.log_file),
            "-o", options, "-w", "-t", "60", *action,
        ]),
        what,
        cluster,
    )
    deadline = time.monotonic() + 30
    while not is_running(cluster):
        if time.monotonic() > deadline:
            raise SetupError(f"PostgreSQL did not accept connections; see {cluster.log_file}")
        time.sleep(0.1)


def _cron_missing(cluster: Cluster) -> bool:
    """Does the running cluster lack pg_cron while the machine has it?"""
    with _connect_admin(cluster) as conn:
        row = conn.execute(
            "SELECT %s = ANY (string_to_array(replace(current_setting('shared_preload_libraries'), ' ', ''), ','))",
            [CRON_LIBRARY]).fetchone()
    return not (row and row[0]) and has_cron(find_bindir())


def _restart_for_cron(cluster: Cluster, announce: Callable[[str], None] | None) -> None:
    """Rewrite chatmem.conf and restart the running cluster, so that it loads pg_cron.

    A library in shared_preload_libraries loads only at server start.  The
    restart is ``fast``: open sessions are ended, as by any restart.
    """
    bindir = find_bindir()
    _write_settings(cluster, bindir)
    line = f"chatmem: restarting the embedded PostgreSQL in {cluster.data_dir} once, to load pg_cron"
    if announce is None:
        print(line, file=sys.stderr)
    else:
        announce(line)
    _pg_ctl(cluster, bindir, ["-m", "fast", "restart"], "restarting PostgreSQL")


def down(cluster: Cluster | None = None, mode: str = "fast") -> bool:
    """Stop the cluster; False when it was not running."""
    cluster = cluster or configured()
    if not (cluster.data_dir / "postmaster.pid").exists():
        return False
    bindir = find_bindir()
    _run(
        _as_server_user([str(bindir / "pg_ctl"), "-D", str(cluster.data_dir), "-m", mode, "-w", "stop"]),
        "stopping PostgreSQL",
        cluster,
    )
    return True


def ensure_login_roles(cluster: Cluster, database: str) -> None:
    """Make the cluster's login roles (:data:`LOGIN_ROLES`) if they are missing.

    Their group roles come from the migrations, so ``database`` must be
    migrated: otherwise a :class:`SetupError` says to migrate it.
    """
    try:
        conn = _connect_admin(cluster, database)
    except psycopg.OperationalError:
        _missing_database(cluster, database)
        raise
    with conn:
        row = conn.execute(
            "SELECT to_regnamespace('api') IS NOT NULL AND to_regrole('chatmem_assistant') IS NOT NULL"
            "   AND to_regrole('chatmem_identity_broker') IS NOT NULL"
        ).fetchone()
        if not row or not row[0]:
            raise SetupError(
                f"database {database!r} has no chatmem API yet, or an older one without its login roles: "
                "run `chatmem migrate` (or `chatmem db up`)"
            )
        for name, groups in LOGIN_ROLES.items():
            ensure_login_role(conn, name, groups)


def _missing_database(cluster: Cluster, database: str) -> None:
    """Raise a SetupError if ``database`` does not exist (the usual reason a connection to it fails)."""
    with _connect_admin(cluster) as conn:
        if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [database]).fetchone():
            return
    raise SetupError(f"database {database!r} does not exist on the embedded cluster: run `chatmem db up`")


def ensure_login_role(conn: psycopg.Connection[tuple[object, ...]], name: str, groups: tuple[str, ...]) -> None:
    """Create LOGIN role ``name`` as a member of ``groups``, or add the memberships it lacks.

    Roles are cluster-wide, and two commands may start at the same moment on
    any of its databases: the loser of a race looks again instead of failing.
    """
    for attempt in range(3):
        try:
            _create_or_complete(conn, name, groups)
            return
        except (errors.DuplicateObject, errors.UniqueViolation):
            if attempt == 2:
                raise


def _create_or_complete(conn: psycopg.Connection[tuple[object, ...]], name: str, groups: tuple[str, ...]) -> None:
    row = conn.execute("SELECT to_regrole(%s) IS NULL", [name]).fetchone()
    absent = bool(row and row[0])
    missing = list(groups) if absent else [g for g in groups if not _is_member(conn, name, g)]
    role, listed = sql.Identifier(name), sql.SQL(", ").join(map(sql.Identifier, missing))
    if absent:
        conn.execute(sql.SQL("CREATE ROLE {} LOGIN IN ROLE {}").format(role, listed))
    elif missing:
        conn.execute(sql.SQL("GRANT {} TO {}").format(listed, role))


def _is_member(conn: psycopg.Connection[tuple[object, ...]], role: str, group: str) -> bool:
    row = conn.execute("SELECT pg_has_role(%s, %s, 'MEMBER')", [role, group]).fetchone()
    return bool(row and row[0])


def ensure_database(cluster: Cluster, database: str) -> None:
    """Create ``database`` on the cluster if it does not exist."""
    create_database(cluster.url("postgres"), database)


def create_database(admin_url: str, name: str, *, recreate: bool = False) -> bool:
    """Create database ``name`` through ``admin_url`` if it is missing (dropped first with
    ``recreate``); True when this call created it."""
    with psycopg.connect(admin_url, autocommit=True) as conn:
        if recreate:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            return False
        try:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        except psycopg.errors.DuplicateDatabase:
            return False  # another command made it a moment ago
        return True
