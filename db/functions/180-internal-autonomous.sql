-- A write that must survive the error its caller is about to raise (a
-- refused call rolls back everything it did).  It runs over dblink in a
-- second connection to this same database and commits on its own.
--
-- Where it connects: the foreign server chatmem_loopback if a DBA made one
-- (CREATE SERVER ... FOREIGN DATA WRAPPER dblink_fdw, with a user mapping
-- holding a password: what a non-superuser owner needs, since dblink makes
-- non-superusers authenticate by password); otherwise this server's own Unix
-- socket, as the function owner (fine for a superuser owner, e.g. the
-- embedded cluster).  The caller must hold no lock the statement needs:
-- the server cannot see a wait that passes through a client connection, so
-- such a wait would never be detected as a deadlock.
CREATE FUNCTION chatmem_internal.autonomous(p_sql text)
RETURNS boolean
LANGUAGE plpgsql VOLATILE SECURITY INVOKER
AS $$
DECLARE
    v_socket   text := split_part(current_setting('unix_socket_directories'), ',', 1);
    v_conninfo text;
    -- If the caller does hold a lock the statement needs (say, a transaction
    -- that rotated a refresh token and then replays it), give up after a
    -- moment instead of waiting forever for a wait nobody can see.
    v_sql      text := 'SET LOCAL lock_timeout = ''2s''; ' || p_sql;
BEGIN
    IF to_regprocedure('chatmem_internal.dblink_exec(text, text)') IS NULL THEN
        RAISE WARNING 'chatmem: dblink is not installed; this write is lost with the error: %', p_sql;
        RETURN false;
    END IF;
    IF EXISTS (SELECT 1 FROM pg_catalog.pg_foreign_server WHERE srvname = 'chatmem_loopback') THEN
        PERFORM chatmem_internal.dblink_exec('chatmem_loopback', v_sql);
        RETURN true;
    END IF;
    v_conninfo := format('dbname=%s user=%s port=%s host=%s application_name=chatmem_autonomous',
                         chatmem_internal.conninfo_quote(current_database()),
                         chatmem_internal.conninfo_quote(current_user),
                         current_setting('port'),
                         chatmem_internal.conninfo_quote(CASE WHEN v_socket = '' THEN 'localhost'
                                                              ELSE btrim(v_socket) END));
    PERFORM chatmem_internal.dblink_exec(v_conninfo, v_sql);
    RETURN true;
EXCEPTION WHEN OTHERS THEN
    -- The caller's own refusal matters more than this bookkeeping.
    RAISE WARNING 'chatmem: autonomous write failed (%): %', SQLERRM, p_sql;
    RETURN false;
END
$$;
COMMENT ON FUNCTION chatmem_internal.autonomous(text) IS
    'Run one statement in its own transaction (dblink to this database), so it survives the caller''s error.';

CREATE FUNCTION chatmem_internal.conninfo_quote(p_value text)
RETURNS text
LANGUAGE sql IMMUTABLE SECURITY INVOKER
AS $$ SELECT '''' || replace(replace(p_value, '\', '\\'), '''', '\''') || '''' $$;
COMMENT ON FUNCTION chatmem_internal.conninfo_quote(text) IS 'Quote a value for a libpq conninfo string.';
