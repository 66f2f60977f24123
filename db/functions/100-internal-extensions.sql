-- pgcrypto and dblink live in whatever schema they were installed in (a
-- legacy database may hold pgcrypto in public).  These wrappers find that
-- schema once, at load time, and name it in their bodies, so every caller
-- keeps search_path = pg_catalog, pg_temp and no schema others can create in
-- is ever searched.
DO $do$
DECLARE
    v_pgcrypto text := (SELECT extnamespace::regnamespace::text FROM pg_catalog.pg_extension
                         WHERE extname = 'pgcrypto');
    v_dblink   text := (SELECT extnamespace::regnamespace::text FROM pg_catalog.pg_extension
                         WHERE extname = 'dblink');
BEGIN
    IF v_pgcrypto IS NULL THEN
        RAISE EXCEPTION 'pgcrypto is not installed' USING HINT = 'Run chatmem migrate.';
    END IF;

    EXECUTE format($f$
        CREATE FUNCTION chatmem_internal.crypt(p_password text, p_salt text) RETURNS text
        LANGUAGE sql IMMUTABLE STRICT SECURITY INVOKER
        AS $$ SELECT %1$s.crypt(p_password, p_salt) $$;

        CREATE FUNCTION chatmem_internal.bcrypt_salt(p_cost integer) RETURNS text
        LANGUAGE sql VOLATILE STRICT SECURITY INVOKER
        AS $$ SELECT %1$s.gen_salt('bf', p_cost) $$;

        CREATE FUNCTION chatmem_internal.random_bytes(p_count integer) RETURNS bytea
        LANGUAGE sql VOLATILE STRICT SECURITY INVOKER
        AS $$ SELECT %1$s.gen_random_bytes(p_count) $$;
    $f$, v_pgcrypto);

    -- Without dblink (a server where it cannot be installed) the autonomous
    -- writes are skipped with a WARNING; everything else works.
    IF v_dblink IS NOT NULL THEN
        EXECUTE format($f$
            CREATE FUNCTION chatmem_internal.dblink_exec(p_conninfo text, p_sql text) RETURNS text
            LANGUAGE sql VOLATILE STRICT SECURITY INVOKER
            AS $$ SELECT %1$s.dblink_exec(p_conninfo, p_sql) $$;
        $f$, v_dblink);
    END IF;
END
$do$;

COMMENT ON FUNCTION chatmem_internal.crypt(text, text) IS 'pgcrypto''s crypt(), wherever pgcrypto lives.';
COMMENT ON FUNCTION chatmem_internal.bcrypt_salt(integer) IS 'A new bcrypt salt of the given cost (pgcrypto gen_salt).';
COMMENT ON FUNCTION chatmem_internal.random_bytes(integer) IS 'Bytes from pgcrypto''s CSPRNG.';
