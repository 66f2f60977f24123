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
CREATE SCHEMA chatmem_internal;
COMMENT ON SCHEMA chatmem_internal IS 'Helpers behind the api functions; not for callers.';
REVOKE ALL ON SCHEMA chatmem_internal FROM PUBLIC;

-- Deny by default: PostgreSQL grants EXECUTE on every new function to PUBLIC
-- unless told otherwise.  This holds for functions the migrating role creates.
ALTER DEFAULT PRIVILEGES REVOKE EXECUTE ON FUNCTIONS FROM PUBLIC;
