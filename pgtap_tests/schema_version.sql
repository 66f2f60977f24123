-- api.schema_version: the last applied migration, for health checks.
BEGIN;
SELECT plan(3);

SELECT function_returns('api', 'schema_version', ARRAY[]::text[], 'text', 'api.schema_version() returns text');
SELECT is(api.schema_version(),
    (SELECT migration_id::text FROM public._yoyo_migration ORDER BY applied_at_utc DESC, migration_id DESC LIMIT 1),
    'it names the last applied migration');
SELECT matches(api.schema_version(), '^[0-9]{4}_[a-z_]+$', 'it is a migration id such as 0009_guest_session_cap');

SELECT * FROM finish();
ROLLBACK;
