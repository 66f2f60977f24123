-- The database role a call acts as.  Inside a SECURITY DEFINER function
-- current_user is the function's owner; the caller's role is the one its
-- session SET ROLE to (the GUC "role", which PostgreSQL lets a session set
-- only to a role its login is a member of), else the login role itself.
CREATE FUNCTION chatmem_internal.calling_role()
RETURNS name
LANGUAGE sql STABLE SECURITY INVOKER
AS $$
    SELECT CASE current_setting('role') WHEN 'none' THEN session_user
                ELSE current_setting('role')::name END
$$;
COMMENT ON FUNCTION chatmem_internal.calling_role() IS
    'The role the caller acts as (its SET ROLE, else its login role), seen from inside a SECURITY DEFINER function.';
