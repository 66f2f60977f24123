"""The online part of upgrading the older system's database, before the migrations run.

Migration 0001 turns the older schema into chatmem's in place.  Run as one
transaction on a large database, its heavy statements (type changes that
rewrite tables, NOT NULL and CHECK constraints that scan them under ACCESS
EXCLUSIVE, foreign keys re-added with a full check, plain CREATE INDEX) held
locks on every big table for seconds, and every request of the product
queued behind them.

So ``chatmem migrate`` first does that heavy work here, online, in the ways
known to keep a busy database serving:

- every statement that needs ACCESS EXCLUSIVE only changes the catalog, and
  runs in a short transaction of its own with ``lock_timeout`` and retries;
- constraints are added ``NOT VALID`` and validated afterwards (validation
  takes a lock that lets reads and writes through);
- NOT NULL comes from a validated ``CHECK (column IS NOT NULL)``, which
  PostgreSQL accepts as proof instead of scanning the table;
- indexes are built ``CONCURRENTLY``;
- rows are fixed in committed batches, by primary key;
- the integer ids become ``bigint`` through a shadow column filled in batches
  and swapped in one short lock.

Afterwards 0001 finds its work done: what remains of it only reads the
catalog or takes locks for a moment.  Legacy timestamps (``timestamp``, the
server's local time) are read in the server's own time zone, whatever the
migrating session's TimeZone.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from chatmem.errors import SetupError

Conn = psycopg.Connection[tuple[Any, ...]]
Progress = Callable[[str], None]
Query = sql.SQL | sql.Composed

BATCH = 20_000
# A statement that needs ACCESS EXCLUSIVE waits at most this long for it
# (everyone who queues behind it waits as long), then lets go and retries.
LOCK_TIMEOUT_MS = 200
LOCK_ATTEMPTS = 50

TIMESTAMP_COLUMNS = {
    "users": ("created_at", "updated_at"),
    "conversation_sessions": ("created_at", "updated_at"),
    "conversation_messages": ("created_at",),
    "qa_pairs": ("created_at",),
}
# Columns 0001 makes NOT NULL on the big tables (the timestamps as well).
NOT_NULL_COLUMNS = {
    "conversation_sessions": ("metadata",),
    "conversation_messages": ("session_id", "role", "content"),
    "qa_pairs": ("session_id", "question", "answer"),
}
# Names and definitions exactly as migration 0001 makes them.
FOREIGN_KEYS = (
    ("conversation_sessions", "conversation_sessions_user_id_fkey",
     "FOREIGN KEY (user_id) REFERENCES public.users(id) ON DELETE SET NULL"),
    ("conversation_messages", "conversation_messages_session_id_fkey",
     "FOREIGN KEY (session_id) REFERENCES public.conversation_sessions(session_id) ON DELETE CASCADE"),
    ("qa_pairs", "qa_pairs_session_id_fkey",
     "FOREIGN KEY (session_id) REFERENCES public.conversation_sessions(session_id) ON DELETE CASCADE"),
)
CHECKS = (
    ("conversation_sessions", "conversation_sessions_metadata_is_object", "CHECK (jsonb_typeof(metadata) = 'object')"),
    ("conversation_messages", "conversation_messages_role_check",
     "CHECK (role IN ('user', 'assistant', 'system'))"),
)
INDEXES = (
    ("conversation_sessions_guest_idx",
     "ON public.conversation_sessions ((metadata ->> 'anonymousUserId'), created_at DESC) WHERE user_id IS NULL"),
    ("conversation_sessions_user_idx", "ON public.conversation_sessions (user_id, created_at DESC)"),
    ("conversation_messages_session_idx", "ON public.conversation_messages (session_id, id)"),
    ("qa_pairs_session_idx", "ON public.qa_pairs (session_id, id)"),
)
SERIAL_TABLES = ("conversation_messages", "qa_pairs")
TABLES = ("users", "conversation_sessions", "conversation_messages", "qa_pairs")
PRIMARY_KEYS = {"users": "id", "conversation_sessions": "session_id",
                "conversation_messages": "id", "qa_pairs": "id"}


def not_null_columns(table: str) -> tuple[str, ...]:
    """The columns of ``table`` that 0001 makes NOT NULL and this upgrade proves first."""
    return NOT_NULL_COLUMNS.get(table, ()) + TIMESTAMP_COLUMNS[table]


@dataclass(frozen=True)
class Step:
    """One step of the online upgrade: what it does, the strongest lock it takes, and for how long."""

    name: str
    lock: str
    needed: Callable[[Conn], bool]
    run: Callable[[Conn, Progress], None]


# ---------------------------------------------------------------- detection


def is_legacy(conn: Conn) -> bool:
    """The older system's tables are here and chatmem's first migration has not run on them."""
    row = conn.execute("SELECT to_regclass('public.conversation_sessions') IS NOT NULL,"
                       "       to_regclass('public._yoyo_migration') IS NOT NULL").fetchone()
    if row is None or not row[0]:
        return False
    if not row[1]:
        return True
    applied = conn.execute(
        "SELECT 1 FROM public._yoyo_migration WHERE migration_id = '0001_core_tables'").fetchone()
    return applied is None


def server_time_zone(url: str) -> str:
    """The TimeZone a session gets when its client sets none: the one the older backend's
    NOW() wrote its ``timestamp`` values in.  Read on a connection made without PGTZ and
    without a TimeZone in the connection's options."""
    params = conninfo_to_dict(url)
    if "timezone" in str(params.get("options", "")).lower():
        params.pop("options")
    saved = {k: os.environ.pop(k) for k in ("PGTZ", "PGOPTIONS") if k in os.environ}
    try:
        with psycopg.connect(make_conninfo("", **{k: str(v) for k, v in params.items() if v is not None}),
                             autocommit=True) as conn:
            row = conn.execute("SHOW TimeZone").fetchone()
    finally:
        os.environ.update(saved)
    assert row is not None
    return str(row[0])


# ---------------------------------------------------------------- catalog questions


def column_type(conn: Conn, table: str, column: str) -> str | None:
    row = conn.execute(
        "SELECT format_type(atttypid, atttypmod) FROM pg_attribute"
        " WHERE attrelid = to_regclass(%s) AND attname = %s AND NOT attisdropped",
        [f"public.{table}", column]).fetchone()
    return None if row is None else str(row[0])


def is_not_null(conn: Conn, table: str, column: str) -> bool:
    row = conn.execute(
        "SELECT attnotnull FROM pg_attribute WHERE attrelid = to_regclass(%s) AND attname = %s",
        [f"public.{table}", column]).fetchone()
    return bool(row and row[0])


def constraint(conn: Conn, table: str, name: str) -> tuple[str, bool] | None:
    """(definition, validated) of a constraint, or None."""
    row = conn.execute(
        "SELECT pg_get_constraintdef(oid), convalidated FROM pg_constraint"
        " WHERE conrelid = to_regclass(%s) AND conname = %s", [f"public.{table}", name]).fetchone()
    return None if row is None else (str(row[0]), bool(row[1]))


def index_state(conn: Conn, name: str) -> bool | None:
    """True for a valid index of that name, False for an invalid one (a failed concurrent build)."""
    row = conn.execute(
        "SELECT i.indisvalid FROM pg_index i WHERE i.indexrelid = to_regclass(%s)", [f"public.{name}"]).fetchone()
    return None if row is None else bool(row[0])


def is_identity(conn: Conn, table: str) -> bool:
    row = conn.execute(
        "SELECT attidentity <> '' FROM pg_attribute WHERE attrelid = to_regclass(%s) AND attname = 'id'",
        [f"public.{table}"]).fetchone()
    return bool(row and row[0])


def plain_definition(definition: str) -> str:
    """A constraint definition as pg_get_constraintdef prints it (no schema on public tables)."""
    return definition.replace("public.", "")


# ---------------------------------------------------------------- running statements


def run_locked(conn: Conn, what: str, statements: list[Query]) -> None:
    """Run ``statements`` in one short-lock transaction (retried as a whole)."""
    for attempt in range(1, LOCK_ATTEMPTS + 1):
        try:
            with conn.transaction():
                conn.execute(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT_MS}ms'")
                for statement in statements:
                    conn.execute(statement)
            return
        except psycopg.errors.LockNotAvailable:
            time.sleep(min(2.0, 0.05 * attempt))
    raise SetupError(f"{what}: the tables stayed busy through {LOCK_ATTEMPTS} attempts to lock them "
                     "for a moment; nothing of this step was done. Run chatmem migrate again at a quieter time.")


def in_batches(conn: Conn, table: str, key: str, update: Query, progress: Progress, what: str) -> None:
    """Run ``update`` (which filters on ``{key} > %(after)s AND {key} <= %(upto)s``) over the
    whole table, BATCH rows of the key at a time, each batch committed on its own."""
    total_row = conn.execute(sql.SQL("SELECT count(*) FROM public.{}").format(sql.Identifier(table))).fetchone()
    total = int(total_row[0]) if total_row else 0
    after: Any = None
    done = 0
    next_key = sql.SQL(
        "SELECT k FROM (SELECT {key} AS k FROM public.{table}"
        " WHERE {key} > %(after)s OR %(after)s IS NULL ORDER BY {key} LIMIT {batch}) AS b"
        " ORDER BY k DESC LIMIT 1"
    ).format(key=sql.Identifier(key), table=sql.Identifier(table), batch=sql.Literal(BATCH))
    while True:
        row = conn.execute(next_key, {"after": after}).fetchone()
        upto = row[0] if row else None
        if upto is None:
            break
        with conn.transaction():
            conn.execute(update, {"after": after, "upto": upto})
        after = upto
        done = min(total, done + BATCH)
        progress(f"{what}: {done:,} of {total:,} rows")


def key_range(key: str) -> sql.Composed:
    return sql.SQL("({k} > %(after)s OR %(after)s IS NULL) AND {k} <= %(upto)s").format(k=sql.Identifier(key))


def ident(table: str) -> sql.Composed:
    return sql.SQL("public.{}").format(sql.Identifier(table))


def nn_check_name(table: str, column: str) -> str:
    return f"{table}_{column}_not_null"[:63]


def utc_like(conn: Conn, zone: str) -> bool:
    """Whether local time in ``zone`` is UTC, summer and winter: then reading a ``timestamp``
    as ``timestamptz`` in that zone changes no stored value and needs no table rewrite."""
    row = conn.execute(
        "SELECT bool_and((t AT TIME ZONE %s) = (t AT TIME ZONE 'UTC'))"
        "  FROM (VALUES (timestamp '1990-01-15'), ('1990-07-15'), ('2020-01-15'), ('2020-07-15')) AS v(t)",
        [zone]).fetchone()
    return bool(row and row[0])


# ---------------------------------------------------------------- the steps


def _catalog_needed(conn: Conn) -> bool:
    return any(column_type(conn, t, c) == "timestamp without time zone"
               for t, cols in TIMESTAMP_COLUMNS.items() for c in cols) or any(
        column_type(conn, "users", c) != "text" for c in ("name", "email", "password_hash")) or (
        column_type(conn, "conversation_messages", "role") != "text") or _missing_constraints(conn)


def _missing_constraints(conn: Conn) -> bool:
    for table in TABLES:
        for column in not_null_columns(table):
            if not is_not_null(conn, table, column) and constraint(conn, table, nn_check_name(table, column)) is None:
                return True
    for table, name, _ in CHECKS:
        if constraint(conn, table, name) is None:
            return True
    for table, name, definition in FOREIGN_KEYS:
        found = constraint(conn, table, name)
        replaced = found is not None and found[0] == plain_definition(definition)
        if not replaced and constraint(conn, table, name + "_new") is None:
            return True
    return False


def _catalog_run(conn: Conn, progress: Progress, zone: str) -> None:
    in_place = utc_like(conn, zone)
    for table in TABLES:
        changes: list[Query] = []
        for column in TIMESTAMP_COLUMNS[table]:
            # Elsewhere the shadow-column step has done this first.
            if in_place and column_type(conn, table, column) == "timestamp without time zone":
                # Read in the server's zone (set below), not the migrating session's.
                changes.append(sql.SQL("ALTER COLUMN {c} TYPE timestamptz, ALTER COLUMN {c} SET DEFAULT now()")
                               .format(c=sql.Identifier(column)))
        if table == "users":
            for column in ("name", "email", "password_hash"):
                if column_type(conn, table, column) != "text":
                    changes.append(sql.SQL("ALTER COLUMN {} TYPE text").format(sql.Identifier(column)))
        if table == "conversation_messages" and column_type(conn, table, "role") != "text":
            changes.append(sql.SQL("ALTER COLUMN role TYPE text"))
        if table == "conversation_sessions":
            changes.append(sql.SQL("ALTER COLUMN user_id DROP NOT NULL, ALTER COLUMN metadata SET DEFAULT '{}'"))
        # NOT NULL and CHECK constraints, NOT VALID: they hold for every new row at
        # once, and the old rows are checked later without blocking anyone.
        for column in not_null_columns(table):
            name = nn_check_name(table, column)
            if not is_not_null(conn, table, column) and constraint(conn, table, name) is None:
                changes.append(sql.SQL("ADD CONSTRAINT {} CHECK ({} IS NOT NULL) NOT VALID")
                               .format(sql.Identifier(name), sql.Identifier(column)))
        for t, name, definition in CHECKS:
            if t == table and constraint(conn, table, name) is None:
                changes.append(sql.SQL("ADD CONSTRAINT {} {} NOT VALID").format(
                    sql.Identifier(name), sql.SQL(definition)))
        for t, name, definition in FOREIGN_KEYS:
            found = constraint(conn, table, name) if t == table else None
            if t == table and (found is None or found[0] != plain_definition(definition)) \
                    and constraint(conn, table, name + "_new") is None:
                changes.append(sql.SQL("ADD CONSTRAINT {} {} NOT VALID")
                               .format(sql.Identifier(name + "_new"), sql.SQL(definition)))
        if changes:
            run_locked(conn, f"changing the columns of {table}", [
                sql.SQL("SET LOCAL TimeZone = {}").format(sql.Literal(zone)),
                sql.SQL("ALTER TABLE {} ").format(ident(table)) + sql.SQL(", ").join(changes)])
            progress(f"{table}: columns changed, constraints added (NOT VALID)")


def _timestamps_needed(conn: Conn, zone: str) -> bool:
    return not utc_like(conn, zone) and any(
        column_type(conn, t, c) == "timestamp without time zone" or column_type(conn, t, c + "_new") is not None
        for t, cols in TIMESTAMP_COLUMNS.items() for c in cols)


def _timestamps_run(conn: Conn, progress: Progress, zone: str) -> None:
    """The server's zone is not UTC, so each stored value changes: converting in place would
    rewrite the table under ACCESS EXCLUSIVE.  Instead: a timestamptz shadow of each column,
    kept in step by a trigger, filled in batches, and swapped in for the old one in one
    short lock."""
    for table, columns in TIMESTAMP_COLUMNS.items():
        todo = [c for c in columns if column_type(conn, table, c) == "timestamp without time zone"]
        if not todo:
            continue
        sync = sql.Identifier(f"{table}_timestamps_sync")
        if any(column_type(conn, table, c + "_new") is None for c in todo):
            body = sql.SQL(" ").join(
                sql.SQL("NEW.{n} := NEW.{c} AT TIME ZONE {z};").format(
                    n=sql.Identifier(c + "_new"), c=sql.Identifier(c), z=sql.Literal(zone)) for c in todo)
            run_locked(conn, f"adding timestamptz copies of {table}'s timestamps", [
                sql.SQL("ALTER TABLE {} ").format(ident(table)) + sql.SQL(", ").join(
                    sql.SQL("ADD COLUMN IF NOT EXISTS {} timestamptz").format(sql.Identifier(c + "_new"))
                    for c in todo),
                sql.SQL("CREATE OR REPLACE FUNCTION public.{f}() RETURNS trigger LANGUAGE plpgsql "
                        "SET search_path = pg_catalog AS $$ BEGIN {body} RETURN NEW; END $$").format(f=sync, body=body),
                sql.SQL("DROP TRIGGER IF EXISTS {f} ON {t}").format(f=sync, t=ident(table)),
                sql.SQL("CREATE TRIGGER {f} BEFORE INSERT OR UPDATE ON {t} FOR EACH ROW "
                        "EXECUTE FUNCTION public.{f}()").format(f=sync, t=ident(table)),
            ])
        converted = [sql.SQL("{c} AT TIME ZONE {z}").format(c=sql.Identifier(c), z=sql.Literal(zone)) for c in todo]
        update = sql.SQL("UPDATE public.{t} SET {sets} WHERE {range} AND ({differs})").format(
            t=sql.Identifier(table), range=key_range(PRIMARY_KEYS[table]),
            sets=sql.SQL(", ").join(sql.SQL("{} = {}").format(sql.Identifier(c + "_new"), v)
                                    for c, v in zip(todo, converted, strict=True)),
            differs=sql.SQL(" OR ").join(sql.SQL("{} IS DISTINCT FROM {}").format(sql.Identifier(c + "_new"), v)
                                         for c, v in zip(todo, converted, strict=True)))
        in_batches(conn, table, PRIMARY_KEYS[table], update, progress, f"{table}: timestamps read in {zone}")
        swap: list[Query] = [sql.SQL("DROP TRIGGER {f} ON {t}").format(f=sync, t=ident(table)),
                             sql.SQL("DROP FUNCTION public.{f}()").format(f=sync)]
        for column in todo:
            swap += [
                sql.SQL("ALTER TABLE {t} DROP COLUMN {c}").format(t=ident(table), c=sql.Identifier(column)),
                sql.SQL("ALTER TABLE {t} RENAME COLUMN {n} TO {c}").format(
                    t=ident(table), n=sql.Identifier(column + "_new"), c=sql.Identifier(column)),
                sql.SQL("ALTER TABLE {t} ALTER COLUMN {c} SET DEFAULT now()").format(
                    t=ident(table), c=sql.Identifier(column)),
            ]
        run_locked(conn, f"swapping {table}'s timestamps for their timestamptz copies", swap)
        progress(f"{table}: timestamps are timestamptz now, read in {zone}")


def _backfill_needed(conn: Conn) -> bool:
    # Rows are fixed before the constraints that need them fixed are validated.
    return _validate_needed(conn)


def _backfill_run(conn: Conn, progress: Progress) -> None:
    for table, columns in TIMESTAMP_COLUMNS.items():
        key = PRIMARY_KEYS[table]
        sets: list[Query] = [sql.SQL("{c} = coalesce({c}, now())").format(c=sql.Identifier(c)) for c in columns]
        needs: list[Query] = [sql.SQL("{} IS NULL").format(sql.Identifier(c)) for c in columns]
        if table == "conversation_sessions":
            sets.append(sql.SQL("metadata = CASE WHEN jsonb_typeof(metadata) = 'object' THEN metadata ELSE '{}' END"))
            needs.append(sql.SQL("jsonb_typeof(metadata) IS DISTINCT FROM 'object'"))
        update = sql.SQL("UPDATE public.{t} SET {sets} WHERE {range} AND ({needs})").format(
            t=sql.Identifier(table), sets=sql.SQL(", ").join(sets), range=key_range(key),
            needs=sql.SQL(" OR ").join(needs))
        in_batches(conn, table, key, update, progress, f"{table}: missing timestamps and metadata")


def _ids_needed(conn: Conn) -> bool:
    return any(not is_identity(conn, t) for t in SERIAL_TABLES if column_type(conn, t, "id") is not None)


def _ids_run(conn: Conn, progress: Progress) -> None:
    for table in SERIAL_TABLES:
        if is_identity(conn, table):
            continue
        shadow_index = f"{table}_id_new_key"
        sync = sql.Identifier(f"{table}_id_new_sync")
        if column_type(conn, table, "id_new") is None:
            # The trigger keeps new rows' shadow id equal to the serial id
            # (column defaults are applied before BEFORE triggers fire).
            run_locked(conn, f"adding {table}.id_new", [
                sql.SQL("ALTER TABLE {} ADD COLUMN id_new bigint").format(ident(table)),
                sql.SQL("CREATE OR REPLACE FUNCTION public.{f}() RETURNS trigger LANGUAGE plpgsql "
                        "SET search_path = pg_catalog AS $$ BEGIN NEW.id_new := NEW.id; RETURN NEW; END $$")
                .format(f=sync),
                sql.SQL("CREATE TRIGGER {f} BEFORE INSERT OR UPDATE ON {t} FOR EACH ROW EXECUTE FUNCTION public.{f}()")
                .format(f=sync, t=ident(table)),
            ])
        in_batches(conn, table, "id", sql.SQL(
            "UPDATE public.{t} SET id_new = id WHERE {range} AND id_new IS DISTINCT FROM id").format(
                t=sql.Identifier(table), range=key_range("id")), progress, f"{table}: 64-bit ids")
        if index_state(conn, shadow_index) is False:
            conn.execute(sql.SQL("DROP INDEX CONCURRENTLY public.{}").format(sql.Identifier(shadow_index)))
        if index_state(conn, shadow_index) is None:
            progress(f"{table}: building the unique index of the 64-bit ids (CONCURRENTLY)")
            conn.execute(sql.SQL("CREATE UNIQUE INDEX CONCURRENTLY {} ON {} (id_new)")
                         .format(sql.Identifier(shadow_index), ident(table)))
        check = nn_check_name(table, "id_new")
        if constraint(conn, table, check) is None:
            run_locked(conn, f"checking {table}.id_new", [
                sql.SQL("ALTER TABLE {} ADD CONSTRAINT {} CHECK (id_new IS NOT NULL) NOT VALID")
                .format(ident(table), sql.Identifier(check))])
        conn.execute(sql.SQL("ALTER TABLE {} VALIDATE CONSTRAINT {}").format(ident(table), sql.Identifier(check)))
        # The swap: catalog changes only, in one short lock.  The identity
        # continues after the old sequence (which may be past the highest id),
        # read under that lock: read before it, a row the older backend
        # inserts in between would take the identity's first id.
        seq_row = conn.execute("SELECT pg_get_serial_sequence(%s, 'id')", [f"public.{table}"]).fetchone()
        sequence = seq_row[0] if seq_row else None
        next_id = sql.SQL("(SELECT greatest(coalesce(max(id), 0), {last}) + 1 FROM {t})").format(
            last=sql.SQL("(SELECT last_value FROM {})").format(sql.SQL(sequence)) if sequence else sql.Literal(0),
            t=ident(table))
        pkey = sql.Identifier(f"{table}_pkey")
        run_locked(conn, f"swapping {table}.id for its 64-bit copy", [
            sql.SQL("CREATE TEMP TABLE IF NOT EXISTS chatmem_next_id (n bigint) ON COMMIT DROP"),
            sql.SQL("LOCK TABLE {} IN ACCESS EXCLUSIVE MODE").format(ident(table)),
            sql.SQL("INSERT INTO chatmem_next_id SELECT {}").format(next_id),
            sql.SQL("DROP TRIGGER {f} ON {t}").format(f=sync, t=ident(table)),
            sql.SQL("DROP FUNCTION public.{f}()").format(f=sync),
            sql.SQL("ALTER TABLE {t} DROP CONSTRAINT {pk}").format(t=ident(table), pk=pkey),
            sql.SQL("ALTER TABLE {t} DROP COLUMN id").format(t=ident(table)),
            sql.SQL("ALTER TABLE {t} RENAME COLUMN id_new TO id").format(t=ident(table)),
            sql.SQL("ALTER TABLE {t} ALTER COLUMN id SET NOT NULL").format(t=ident(table)),
            sql.SQL("ALTER TABLE {t} ADD CONSTRAINT {pk} PRIMARY KEY USING INDEX {ix}").format(
                t=ident(table), pk=pkey, ix=sql.Identifier(shadow_index)),
            sql.SQL("ALTER TABLE {t} DROP CONSTRAINT {c}").format(t=ident(table), c=sql.Identifier(check)),
            sql.SQL("DO $$ BEGIN EXECUTE format('ALTER TABLE public.%I ALTER COLUMN id ADD GENERATED ALWAYS AS "
                    "IDENTITY (START WITH %s)', {t}, (SELECT n FROM chatmem_next_id)); END $$").format(
                t=sql.Literal(table)),
        ])
        progress(f"{table}: ids are 64-bit identity now")


def _validate_needed(conn: Conn) -> bool:
    row = conn.execute("""SELECT EXISTS (SELECT 1 FROM pg_constraint WHERE NOT convalidated
                            AND conrelid = ANY(ARRAY['public.users', 'public.conversation_sessions',
                                'public.conversation_messages', 'public.qa_pairs']::regclass[]))""").fetchone()
    return bool(row and row[0])


def _validate_run(conn: Conn, progress: Progress) -> None:
    rows = conn.execute("""SELECT conrelid::regclass::text, conname FROM pg_constraint WHERE NOT convalidated
                            AND conrelid = ANY(ARRAY['public.users', 'public.conversation_sessions',
                                'public.conversation_messages', 'public.qa_pairs']::regclass[])
                          ORDER BY 1, 2""").fetchall()
    for table, name in rows:
        progress(f"{table}: validating {name}")
        try:
            conn.execute(sql.SQL("ALTER TABLE {} VALIDATE CONSTRAINT {}").format(sql.SQL(table), sql.Identifier(name)))
        except psycopg.errors.CheckViolation as exc:
            raise SetupError(f"{table}: rows break {name} ({exc.diag.message_primary}); fix them, then run "
                             "chatmem migrate again (what is done so far stays done).") from exc


def _email_needed(conn: Conn) -> bool:
    return index_state(conn, "users_email_lower_key") is not True


def _email_run(conn: Conn, progress: Progress) -> None:
    _build_index(conn, progress, "users_email_lower_key", "UNIQUE", "ON public.users (lower(email))")


def _build_index(conn: Conn, progress: Progress, name: str, kind: str, definition: str) -> None:
    if index_state(conn, name) is False:  # a concurrent build that failed: start over
        conn.execute(sql.SQL("DROP INDEX CONCURRENTLY public.{}").format(sql.Identifier(name)))
    if index_state(conn, name) is None:
        progress(f"building index {name} (CONCURRENTLY)")
        conn.execute(sql.SQL("CREATE {} INDEX CONCURRENTLY {} {}").format(
            sql.SQL(kind), sql.Identifier(name), sql.SQL(definition)))


def _indexes_needed(conn: Conn) -> bool:
    return any(index_state(conn, name) is not True for name, _ in INDEXES)


def _indexes_run(conn: Conn, progress: Progress) -> None:
    for name, definition in INDEXES:
        _build_index(conn, progress, name, "", definition)


def _finish_needed(conn: Conn) -> bool:
    return any(constraint(conn, t, nn_check_name(t, c)) is not None
               for t in TABLES for c in not_null_columns(t)) or any(
        constraint(conn, t, n + "_new") is not None for t, n, _ in FOREIGN_KEYS)


def _finish_run(conn: Conn, progress: Progress) -> None:
    for table in TABLES:
        changes: list[Query] = []
        drops: list[Query] = []
        for column in not_null_columns(table):
            name = nn_check_name(table, column)
            if constraint(conn, table, name) is not None:
                # A validated CHECK (column IS NOT NULL) spares SET NOT NULL its scan.
                changes.append(sql.SQL("ALTER COLUMN {} SET NOT NULL").format(sql.Identifier(column)))
                drops.append(sql.SQL("DROP CONSTRAINT {}").format(sql.Identifier(name)))
        statements: list[Query] = []
        if changes:
            statements.append(sql.SQL("ALTER TABLE {} ").format(ident(table)) + sql.SQL(", ").join(changes))
            statements.append(sql.SQL("ALTER TABLE {} ").format(ident(table)) + sql.SQL(", ").join(drops))
        for t, name, _ in FOREIGN_KEYS:
            if t == table and constraint(conn, table, name + "_new") is not None:
                statements.append(sql.SQL("ALTER TABLE {} DROP CONSTRAINT IF EXISTS {}").format(
                    ident(table), sql.Identifier(name)))
                statements.append(sql.SQL("ALTER TABLE {} RENAME CONSTRAINT {} TO {}").format(
                    ident(table), sql.Identifier(name + "_new"), sql.Identifier(name)))
        if statements:
            run_locked(conn, f"finishing {table}", statements)
            progress(f"{table}: NOT NULL set from validated checks, foreign keys in place")


def steps(zone: str) -> list[Step]:
    """The online steps, in order, each with the strongest lock it takes."""
    return [
        Step(f"timestamps to timestamptz through shadow columns filled in batches (the server's zone {zone} "
             "is not UTC, so every value changes)", "ROW EXCLUSIVE in batches; ACCESS EXCLUSIVE for a moment "
             "per table to swap", lambda c: _timestamps_needed(c, zone), lambda c, p: _timestamps_run(c, p, zone)),
        Step("change column types and add constraints NOT VALID (timestamps read in the server's zone "
             f"{zone})", "ACCESS EXCLUSIVE for a moment per table (catalog only; lock_timeout, retried)",
             _catalog_needed, lambda c, p: _catalog_run(c, p, zone)),
        Step("fill missing timestamps and fix non-object metadata, in batches", "ROW EXCLUSIVE (rows of one batch)",
             _backfill_needed, _backfill_run),
        Step("turn serial ids into 64-bit identity ids: shadow column filled in batches, unique index "
             "built concurrently, swapped in one short lock",
             "ROW EXCLUSIVE in batches; ACCESS EXCLUSIVE for a moment to swap", _ids_needed, _ids_run),
        Step("validate the new constraints", "SHARE UPDATE EXCLUSIVE (reads and writes go on)",
             _validate_needed, _validate_run),
        Step("unique index on lower(email), built concurrently", "SHARE UPDATE EXCLUSIVE",
             _email_needed, _email_run),
        Step("chatmem's indexes, built concurrently", "SHARE UPDATE EXCLUSIVE", _indexes_needed, _indexes_run),
        Step("set NOT NULL from the validated checks, put the foreign keys in place",
             "ACCESS EXCLUSIVE for a moment per table (catalog only; lock_timeout, retried)",
             _finish_needed, _finish_run),
    ]


def pending(url: str) -> list[Step]:
    """The steps ``run`` would go through on the database at ``url``: all of them for a
    database of the older system (each skips what is already done), none otherwise."""
    with psycopg.connect(url, autocommit=True) as conn:
        if not is_legacy(conn):
            return []
    return steps(server_time_zone(url))


def preflight(conn: Conn) -> None:
    """Refuse, before changing anything, rows that chatmem's schema cannot hold."""
    problems = []
    clashes = conn.execute("""SELECT string_agg(spellings, '; ' ORDER BY spellings) FROM (
        SELECT string_agg(email, ' = ' ORDER BY email) AS spellings FROM public.users
         GROUP BY lower(email) HAVING count(*) > 1) AS clash""").fetchone()
    if clashes and clashes[0]:
        problems.append(f"users differ only in the case of their email: {clashes[0]}. Merge or rename these "
                        "accounts")
    roles = conn.execute("""SELECT string_agg(DISTINCT role, ', ') FROM public.conversation_messages
                             WHERE role NOT IN ('user', 'assistant', 'system')""").fetchone()
    if roles and roles[0]:
        problems.append(f"messages have roles chatmem does not know: {roles[0]}. Make them user, assistant "
                        "or system")
    for table in SERIAL_TABLES:
        orphans = conn.execute(sql.SQL("SELECT count(*) FROM {} WHERE session_id IS NULL").format(
            ident(table))).fetchone()
        if orphans and orphans[0]:
            problems.append(f"{orphans[0]} rows of {table} belong to no session. Delete them or give them one")
    if problems:
        raise SetupError("the older database holds rows chatmem cannot take: " + "; ".join(problems)
                         + ". Nothing was changed; run chatmem migrate again once they are fixed.")


def run(url: str, progress: Progress) -> int:
    """Do the online steps a legacy database needs; how many ran."""
    with psycopg.connect(url, autocommit=True) as conn:
        if not is_legacy(conn):
            return 0
        preflight(conn)
        zone = server_time_zone(url)
        count = 0
        for step in steps(zone):
            if step.needed(conn):
                progress(f"step: {step.name}")
                step.run(conn, progress)
                count += 1
        return count
