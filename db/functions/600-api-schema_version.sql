CREATE FUNCTION api.schema_version()
RETURNS text
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
    SELECT m.migration_id FROM public._yoyo_migration AS m
     ORDER BY m.applied_at_utc DESC, m.migration_id DESC
     LIMIT 1
$$;

COMMENT ON FUNCTION api.schema_version() IS
$$The id of the last applied migration (e.g. 0009_guest_session_cap): what a health check reports.$$;

REVOKE ALL ON FUNCTION api.schema_version() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION api.schema_version() TO chatmem_app;
