"""The benchmark's databases, and what it records about the machine and the server."""

from __future__ import annotations

import os
import platform
import shutil
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from chatmem import embedded, migrate, target

BENCH_DIR = Path(__file__).resolve().parent
BASELINE_SCHEMA = BENCH_DIR / "baselines" / "node_schema.sql"

Conn = psycopg.Connection[Any]

# The server settings that move these figures; all go into the results file.
RECORDED_SETTINGS = [
    "server_version",
    "shared_buffers",
    "effective_cache_size",
    "work_mem",
    "maintenance_work_mem",
    "synchronous_commit",
    "fsync",
    "full_page_writes",
    "wal_sync_method",
    "wal_level",
    "wal_buffers",
    "commit_delay",
    "max_wal_size",
    "checkpoint_timeout",
    "max_connections",
    "random_page_cost",
    "jit",
    "data_checksums",
    "huge_pages",
    "shared_preload_libraries",
    "track_io_timing",
]


def pgbench_path() -> str:
    """pgbench from the same PostgreSQL installation as the embedded cluster's server."""
    try:
        candidate = embedded.find_bindir() / "pgbench"
        if candidate.exists():
            return str(candidate)
    except Exception:  # no server binaries here (DATABASE_URL names a remote server)
        pass
    found = shutil.which("pgbench")
    if not found:
        raise SystemExit(
            "error: pgbench not found; run 'make install-system' (it ships with the server)"
        )
    return found


def recreate_database(server_url: str, name: str) -> str:
    """Drop (if it exists) and create database ``name``; return its URL."""
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return target.with_database(server_url, name)


def drop_database(server_url: str, name: str) -> None:
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


def setup_chatmem(url: str) -> str:
    """Migrate a new database to the current schema; returns the schema version."""
    result = migrate.migrate(url)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
    return result.version or "?"


def setup_baseline(url: str) -> None:
    """The older Node.js system's schema (bench/baselines/node_schema.sql)."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(BASELINE_SCHEMA.read_text())


def server_info(conn: Conn) -> dict[str, Any]:
    row = conn.execute("SELECT version()").fetchone()
    settings = {
        name: setting
        for name, setting in conn.execute(
            (
                "SELECT name, current_setting(name) FROM pg_settings"
                " WHERE name = ANY(%s) ORDER BY name"
            ),
            [RECORDED_SETTINGS],
        ).fetchall()
    }
    return {"version": row[0] if row else "?", "settings": settings}


def chatmem_settings(conn: Conn) -> dict[str, Any]:
    row = conn.execute(
        "SELECT bcrypt_cost, guest_sessions_per_hour, password_min_length"
        "  FROM public.chatmem_settings"
    ).fetchone()
    assert row is not None
    return {"bcrypt_cost": row[0], "guest_sessions_per_hour": row[1], "password_min_length": row[2]}


def loadavg() -> list[float]:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return []


def machine_info() -> dict[str, Any]:
    """What the figures were measured on."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_gib = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_gib = round(int(line.split()[1]) / 1024 / 1024, 1)
                break
    except OSError:
        pass
    return {
        "hostname": platform.node(),
        "os": platform.platform(),
        "cpu": cpu,
        "cpus": os.cpu_count(),
        "memory_gib": mem_gib,
        "python": platform.python_version(),
        "psycopg": psycopg.__version__,
        "loadavg_at_start": loadavg(),
    }


def checkpoint(conn: Conn) -> None:
    """Flush dirty buffers so a timed run does not pay for the previous one's writes."""
    conn.execute("CHECKPOINT")
