-- Rebuilt from scratch on every migrate, in one transaction with every other
-- file of db/functions.  These schemas hold functions only, never data: no
-- table, view or trigger outside them may depend on them.
DROP SCHEMA IF EXISTS api CASCADE;
DROP SCHEMA IF EXISTS chatmem_internal CASCADE;

-- api: what applications call.  chatmem_app gets USAGE here and EXECUTE on
-- each function, and nothing on any table; chatmem_admin gets the
-- maintenance functions.
CREATE SCHEMA api;
COMMENT ON SCHEMA api IS 'chatmem''s SQL API: the only thing applications may call.';
REVOKE ALL ON SCHEMA api FROM PUBLIC;
GRANT USAGE ON SCHEMA api TO chatmem_app, chatmem_admin;

-- chatmem_internal: helpers the api functions share.  Nobody else may call them.
-- They are SECURITY INVOKER and run only inside api functions, which pin
-- search_path = pg_catalog, pg_temp; so they do not SET it again.  A SET
-- clause costs a GUC save and restore plus a search-path recomputation on
-- every call (several µs each, a third of get-or-create's own cost before
-- this was measured), and keeps LANGUAGE sql helpers from being inlined.
-- Their bodies name every object with its schema all the same.
CREATE SCHEMA chatmem_internal;
COMMENT ON SCHEMA chatmem_internal IS 'Helpers behind the api functions; not for callers.';
REVOKE ALL ON SCHEMA chatmem_internal FROM PUBLIC;

-- Deny by default: PostgreSQL grants EXECUTE on every new function to PUBLIC
-- unless told otherwise.  This holds for functions the migrating role creates.
ALTER DEFAULT PRIVILEGES REVOKE EXECUTE ON FUNCTIONS FROM PUBLIC;
