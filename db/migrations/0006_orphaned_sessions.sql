-- depends: 0005_dblink
-- Locks taken: ACCESS EXCLUSIVE on conversation_sessions for a moment (a nullable column and a trigger: catalog only).
-- When a user is deleted, the foreign key's ON DELETE SET NULL keeps their
-- sessions with user_id NULL.  Such a session must not turn into an open one
-- (usable by whoever knows its id) nor become claimable: mark it as the key
-- is nulled, and let the API treat marked sessions as nobody's.
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
