"""Schema changes with yoyo, then an atomic reload of the stateless function schemas."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import psycopg
from yoyo import get_backend, read_migrations

from chatmem import legacy_upgrade, sql_files
from chatmem.errors import SetupError
from chatmem.target import yoyo_url

# Schemas rebuilt from db/functions on every migrate.  They hold no data, so
# dropping and recreating them is safe; nothing outside them may depend on them.
FUNCTION_SCHEMAS = ("api", "chatmem_internal")


@dataclass(frozen=True)
class MigrateResult:
    applied: list[str]
    rolled_back: list[str]
    function_files: int
    version: str | None


def _backend(url: str):  # type: ignore[no-untyped-def]
    try:
        return get_backend(yoyo_url(url))
    except psycopg.OperationalError as exc:
        raise SetupError(f"cannot connect to the database: {str(exc).strip()}") from exc


def applied_migrations(url: str) -> list[str]:
    """Ids of the applied migrations, oldest first (empty on a database chatmem never touched)."""
    with psycopg.connect(url, autocommit=True) as conn:
        has_table = conn.execute("SELECT to_regclass('public._yoyo_migration') IS NOT NULL").fetchone()
        if not has_table or not has_table[0]:
            return []
        rows = conn.execute(
            "SELECT migration_id FROM public._yoyo_migration ORDER BY applied_at_utc, migration_id"
        ).fetchall()
    return [str(r[0]) for r in rows]


def migration_ids() -> list[str]:
    """Every forward migration's id, oldest first."""
    return [p.stem for p in migration_files() if not p.stem.endswith(".rollback")]


def pending_migrations(url: str) -> list[str]:
    """Ids of the migrations not applied yet (all of them on a database chatmem never touched)."""
    applied = set(applied_migrations(url))
    return [m for m in migration_ids() if m not in applied]


def schema_version(url: str) -> str | None:
    applied = applied_migrations(url)
    return applied[-1] if applied else None


def reload_functions(url: str) -> int:
    """Rebuild the function schemas from db/functions in one transaction.

    A file that fails to load rolls the whole reload back: the live functions
    stay as they were.
    """
    files = sql_files.function_files()
    with psycopg.connect(url) as conn, conn.transaction():
        for path in files:
            try:
                conn.execute(path.read_text())
            except psycopg.Error as exc:
                raise SetupError(
                    f"loading {path.name} failed, functions left unchanged: "
                    f"{exc.diag.message_primary or exc} (SQLSTATE {exc.sqlstate})"
                ) from exc
    return len(files)


def drop_functions(url: str) -> None:
    with psycopg.connect(url) as conn, conn.transaction():
        for schema in FUNCTION_SCHEMAS:
            conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")


def migrate(url: str, progress: legacy_upgrade.Progress | None = None) -> MigrateResult:
    """Apply pending migrations, then reload every function.

    A database of the older system is first prepared online
    (:mod:`chatmem.legacy_upgrade`), so that the migrations find its heavy
    work done; ``progress`` hears about each step and batch.
    """
    report = progress or (lambda _: None)
    legacy_upgrade.run(url, report)
    backend = _backend(url)
    migrations = read_migrations(str(sql_files.migrations_dir()))
    try:
        with backend.lock():
            pending = backend.to_apply(migrations)
            for migration in pending:  # one at a time, to report each
                backend.apply_migrations(backend.to_apply(migrations)[:1])
                report(f"applied {migration.id}")
    except psycopg.Error as exc:
        raise SetupError(_migration_failure(exc)) from exc
    count = reload_functions(url)
    return MigrateResult(
        applied=[m.id for m in pending], rolled_back=[], function_files=count, version=schema_version(url)
    )


@dataclass(frozen=True)
class PlannedStep:
    """A step chatmem migrate would take, and the strongest lock it takes."""

    name: str
    lock: str


def plan(url: str) -> list[PlannedStep]:
    """What ``migrate`` would do now, in order, without doing it: the online steps a
    legacy database needs, then each pending migration (its ``-- Locks taken:`` line)."""
    steps = [PlannedStep(f"online: {s.name}", s.lock) for s in legacy_upgrade.pending(url)]
    backend = _backend(url)
    migrations = read_migrations(str(sql_files.migrations_dir()))
    for migration in backend.to_apply(migrations):
        steps.append(PlannedStep(f"migration {migration.id}", _locks_taken(migration.path)))
    steps.append(PlannedStep("reload the api and chatmem_internal functions",
                             "none on tables (schemas of functions only, one transaction)"))
    return steps


def _locks_taken(path: str) -> str:
    for line in Path(path).read_text().splitlines():
        if line.startswith("-- Locks taken:"):
            return line.removeprefix("-- Locks taken:").strip().rstrip(".")
    return "not stated: read the migration"


def rollback(url: str, *, everything: bool = False) -> MigrateResult:
    """Roll back the last migration (or all of them).

    The functions are written for the latest schema and depend on its row
    types, so they are dropped first and not reloaded: the API is down until
    the next ``chatmem migrate``.
    """
    backend = _backend(url)
    migrations = read_migrations(str(sql_files.migrations_dir()))
    with backend.lock():
        targets = backend.to_rollback(migrations)
        if not everything:
            targets = targets[:1]
        if targets:
            drop_functions(url)
        try:
            backend.rollback_migrations(targets)
        except psycopg.Error as exc:
            raise SetupError(_migration_failure(exc, "rollback")) from exc
    return MigrateResult(
        applied=[], rolled_back=[m.id for m in targets], function_files=0, version=schema_version(url)
    )


def _migration_failure(exc: psycopg.Error, action: str = "migration") -> str:
    diag = exc.diag
    parts = [f"{action} failed (that step was undone; earlier steps stay done): {diag.message_primary or exc}"]
    if diag.message_detail:
        parts.append(diag.message_detail)
    if diag.message_hint:
        parts.append(f"hint: {diag.message_hint}")
    return " ".join(parts)


def migration_files() -> list[Path]:
    return sorted(sql_files.migrations_dir().glob("*.sql"))
