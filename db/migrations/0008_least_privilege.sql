-- depends: 0007_login_failures
-- Locks taken: none on tables (roles and grants).
-- Nobody but the owner creates objects in our schemas.  PostgreSQL 15 no
-- longer grants CREATE on public to PUBLIC in new databases, but a database
-- created by an older release (the legacy system's) still has it.
REVOKE CREATE ON SCHEMA public FROM PUBLIC;

-- chatmem_admin: maintenance functions (api.purge_guest_sessions) only.
DO $$
BEGIN
    CREATE ROLE chatmem_admin NOLOGIN;
EXCEPTION WHEN duplicate_object THEN
    NULL;
END
$$;
