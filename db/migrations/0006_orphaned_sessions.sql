-- depends: 0005_dblink
-- Locks taken: ACCESS EXCLUSIVE on conversation_sessions for a moment (a nullable column and a trigger: catalog only).
-- When a user is deleted, the foreign key's ON DELETE SET NULL keeps their
-- sessions with user_id NULL.  Such a session must not turn into an open one
-- (usable by whoever knows its id) nor become claimable: mark it as the key
-- is nulled, and let the API treat marked sessions as nobody's.
--
-- Catalog changes only, but under ACCESS EXCLUSIVE on a busy table: the
-- timeouts (SET LOCAL: yoyo runs each migration in a transaction of its own)
-- make a wait for that lock fail the migration after 5 s instead of queueing
-- every request behind it.
SET LOCAL lock_timeout = '5s';
SET LOCAL statement_timeout = '60s';

-- yoyo runs this migration in one transaction and records it, so it never runs
-- twice: a non-robust statement cannot meet a half-done state.
-- squawk-ignore prefer-robust-stmts
ALTER TABLE public.conversation_sessions ADD COLUMN owner_deleted_at timestamptz;
COMMENT ON COLUMN public.conversation_sessions.owner_deleted_at IS
    'Set when the owning user was deleted (user_id nulled by the foreign key). Such sessions are readable by no one through the API.';

CREATE FUNCTION public.conversation_sessions_mark_orphaned()
RETURNS trigger
LANGUAGE plpgsql VOLATILE SECURITY INVOKER SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    NEW.owner_deleted_at := now();
    RETURN NEW;
END
$$;
COMMENT ON FUNCTION public.conversation_sessions_mark_orphaned() IS
    'Trigger: a session whose user_id goes from a user to NULL lost its owner; mark it.';
REVOKE ALL ON FUNCTION public.conversation_sessions_mark_orphaned() FROM PUBLIC;

CREATE TRIGGER conversation_sessions_mark_orphaned
    BEFORE UPDATE OF user_id ON public.conversation_sessions
    FOR EACH ROW
    WHEN (OLD.user_id IS NOT NULL AND NEW.user_id IS NULL)
    EXECUTE FUNCTION public.conversation_sessions_mark_orphaned();
