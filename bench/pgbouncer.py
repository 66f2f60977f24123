"""PgBouncer in transaction pooling mode in front of the cluster, for the benchmark's 8-client line.

A private PgBouncer: its own config in a temporary folder, listening on a
Unix socket in that folder only, trusting the users in its own userlist.
PgBouncer refuses to run as root: as root it runs as the ``postgres`` user
(who can enter the embedded cluster's socket folder).  It is stopped by its
own process id when the block ends.

PgBouncer 1.18 (Debian 12) cannot keep protocol-level prepared statements
in transaction mode, so the line through it uses pgbench's extended protocol
(unnamed statements), and is compared with a direct run with that same
protocol.
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from psycopg.conninfo import conninfo_to_dict

from chatmem import target

PORT = 6432


def pgbouncer_path() -> str:
    for candidate in (shutil.which("pgbouncer"), "/usr/sbin/pgbouncer"):
        if candidate and Path(candidate).exists():
            return candidate
    raise RuntimeError(
        "pgbouncer not found; install Debian's pgbouncer package (make install-system)"
    )


@contextmanager
def running(
    server_url: str, databases: list[str], *, pool_size: int, pool_mode: str = "transaction"
) -> Iterator[dict[str, str]]:
    """Start PgBouncer for ``databases``; yields {database: its URL through PgBouncer}."""
    params = conninfo_to_dict(server_url)
    user = str(params.get("user") or pwd.getpwuid(os.geteuid()).pw_name)
    folder = Path(tempfile.mkdtemp(prefix="chatmem-pgb-", dir="/tmp"))
    as_user: list[str] = []
    if os.geteuid() == 0:
        as_user = ["runuser", "-u", "postgres", "--"]
        shutil.chown(folder, "postgres")
    folder.chmod(0o700)
    host_parts = [f"{key}={params[key]}" for key in ("host", "port", "password") if params.get(key)]
    lines = ["[databases]"]
    lines += [f"{db} = {' '.join(host_parts)} dbname={db} user={user}" for db in databases]
    lines += [
        "[pgbouncer]",
        "listen_addr =",
        f"listen_port = {PORT}",
        f"unix_socket_dir = {folder}",
        "auth_type = trust",
        f"auth_file = {folder}/userlist.txt",
        f"pool_mode = {pool_mode}",
        f"default_pool_size = {pool_size}",
        "max_client_conn = 200",
        f"logfile = {folder}/pgbouncer.log",
        f"pidfile = {folder}/pgbouncer.pid",
        "ignore_startup_parameters = extra_float_digits,options",
        "server_reset_query =",
        f"admin_users = {user}",
    ]
    (folder / "pgbouncer.ini").write_text("\n".join(lines) + "\n")
    (folder / "userlist.txt").write_text(f'"{user}" ""\n')
    if as_user:
        for f in ("pgbouncer.ini", "userlist.txt"):
            shutil.chown(folder / f, "postgres")
    proc = subprocess.Popen(
        [*as_user, pgbouncer_path(), str(folder / "pgbouncer.ini")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        socket = folder / f".s.PGSQL.{PORT}"
        deadline = time.monotonic() + 10
        while not socket.exists():
            if proc.poll() is not None or time.monotonic() > deadline:
                log = (
                    (folder / "pgbouncer.log").read_text()
                    if (folder / "pgbouncer.log").exists()
                    else ""
                )
                raise RuntimeError(
                    "pgbouncer did not start: "
                    f"{proc.stderr.read().decode() if proc.stderr else ''}{log}"
                )
            time.sleep(0.05)
        urls = {
            db: target.dict_to_url({"host": str(folder), "port": PORT, "dbname": db, "user": user})
            for db in databases
        }
        yield urls
    finally:
        pidfile = folder / "pgbouncer.pid"
        try:
            os.kill(int(pidfile.read_text().strip()), signal.SIGTERM)
        except (OSError, ValueError):
            proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        shutil.rmtree(folder, ignore_errors=True)


def run(
    server_url: str,
    urls: dict[str, str],
    *,
    clients: int,
    rounds: int,
    run_one: Callable[..., dict[str, Any]],
    designs: tuple[str, ...] = ("chatmem", "baseline", "bare"),
) -> dict[str, Any]:
    """Each design at ``clients`` through PgBouncer and directly, both with the extended protocol.

    ``run_one(design, n=, url=, protocol=, label=)`` runs one round (see bench/run.py).
    """
    from bench import throughput

    pool_size = 2 * (os.cpu_count() or 1)
    names = {design: str(conninfo_to_dict(url)["dbname"]) for design, url in urls.items()}
    out: dict[str, Any] = {
        "clients": clients,
        "protocol": "extended",
        "pool_mode": "transaction",
        "default_pool_size": pool_size,
        "pgbouncer": subprocess.run(
            [pgbouncer_path(), "--version"], capture_output=True, text=True
        ).stdout.splitlines()[0],
        "runs": {},
        "direct": {},
    }
    with running(server_url, sorted(set(names.values())), pool_size=pool_size) as bouncer:

        def one(key: str) -> dict[str, Any]:
            design, via = key.split("/")
            through = via == "runs"
            return run_one(
                design,
                n=clients,
                url=bouncer[names[design]] if through else None,
                protocol="extended",
                label=", through PgBouncer" if through else ", direct, extended protocol",
            )

        keys = [f"{d}/{via}" for d in designs for via in ("direct", "runs")]
        for key, figs in throughput.interleaved(keys, rounds, one).items():
            design, via = key.split("/")
            out[via][design] = throughput.combine_pgbench(figs)
    return out
