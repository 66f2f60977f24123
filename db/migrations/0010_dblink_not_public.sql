-- depends: 0009_guest_session_cap
-- Locks taken: none on tables (grants).
-- dblink lets whoever may call it open connections from the database server
-- to any host.  Only chatmem's own functions need it (they run as the
-- owner), so PUBLIC loses EXECUTE on the extension's functions.
DO $$
DECLARE
    v_function regprocedure;
BEGIN
    FOR v_function IN
        SELECT d.objid::regprocedure
          FROM pg_catalog.pg_depend AS d
          JOIN pg_catalog.pg_extension AS e ON e.oid = d.refobjid
         WHERE e.extname = 'dblink' AND d.classid = 'pg_catalog.pg_proc'::regclass AND d.deptype = 'e'
    LOOP
        EXECUTE format('REVOKE EXECUTE ON FUNCTION %s FROM PUBLIC', v_function);
    END LOOP;
END
$$;
