-- depends: 0011_guest_id_statistics
-- Locks taken: ACCESS EXCLUSIVE on chatmem_settings for a moment (two columns with constant defaults: no rewrite).
-- Limits that hold when attackers run calls in parallel (issue 10).
-- Nothing here is slow; the timeouts keep a busy settings table from
-- queueing every login behind this migration.
SET LOCAL lock_timeout = '5s';
SET LOCAL statement_timeout = '60s';

-- Password hashing is the one thing a caller can make the server spend tens
-- of milliseconds of a core on.  At most max_concurrent_hashes bcrypt runs
-- at once; a call that waits longer than hash_wait for its turn is refused
-- with CM004 before hashing, so a login spray cannot take every core.
ALTER TABLE public.chatmem_settings
    -- A small count in the one-row settings table, like its other integer columns.
    -- squawk-ignore prefer-bigint-over-int
    ADD COLUMN IF NOT EXISTS max_concurrent_hashes integer NOT NULL DEFAULT 1
        CONSTRAINT chatmem_settings_max_concurrent_hashes_check CHECK (max_concurrent_hashes >= 1),
    ADD COLUMN IF NOT EXISTS hash_wait interval NOT NULL DEFAULT '1 second'
        CONSTRAINT chatmem_settings_hash_wait_check CHECK (hash_wait BETWEEN '0' AND '1 minute');
COMMENT ON COLUMN public.chatmem_settings.max_concurrent_hashes IS
    'How many bcrypt computations (login, registration) may run at once; about half the database server''s cores.';
COMMENT ON COLUMN public.chatmem_settings.hash_wait IS
    'How long a login or registration waits for a free hashing slot before it is refused with CM004 (0: not at all).';

-- The default: half the cores of the machine the server runs on, at least
-- one.  Only the server knows its cores; reading /proc/cpuinfo needs a
-- superuser or pg_read_server_files, and elsewhere the value stays 1.
DO $$
DECLARE
    v_cores integer;
BEGIN
    BEGIN
        SELECT count(*) INTO v_cores
          FROM regexp_matches(pg_read_file('/proc/cpuinfo'), '^processor\s*:', 'gmn') AS m;
    EXCEPTION WHEN OTHERS THEN
        v_cores := NULL;  -- not Linux, or not allowed to read the file: keep 1
    END;
    IF v_cores > 2 THEN
        UPDATE public.chatmem_settings SET max_concurrent_hashes = v_cores / 2, updated_at = now();
    END IF;
END
$$;

-- chatmem_assistant: the backend that talks to the language model.  Only its
-- members may write assistant and system turns (api.add_message); a browser
-- acting through the application's role may write user turns only.
DO $$
BEGIN
    CREATE ROLE chatmem_assistant NOLOGIN;
EXCEPTION WHEN duplicate_object THEN
    NULL;  -- roles are cluster-wide: another database of this cluster made it
END
$$;
COMMENT ON ROLE chatmem_assistant IS
    'chatmem: may write assistant and system turns with api.add_message (grant it with chatmem_app to the model backend''s login role).';
