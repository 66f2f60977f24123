CREATE FUNCTION api.list_sessions(p_user_id text)
RETURNS SETOF public.conversation_sessions
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_caller chatmem_internal.caller := chatmem_internal.resolve_caller(p_user_id);
BEGIN
    -- Two queries, each matching one index: conversation_sessions_user_idx
    -- for a user, conversation_sessions_guest_idx for a guest.
    IF v_caller.user_id IS NOT NULL THEN
        RETURN QUERY
        SELECT s.* FROM public.conversation_sessions AS s
         WHERE s.user_id = v_caller.user_id
         ORDER BY s.created_at DESC;
    ELSIF v_caller.guest_id IS NOT NULL THEN
        RETURN QUERY
        SELECT s.* FROM public.conversation_sessions AS s
         WHERE s.user_id IS NULL AND s.metadata ->> 'anonymousUserId' = v_caller.guest_id
           AND s.owner_deleted_at IS NULL
         ORDER BY s.created_at DESC;
    END IF;
    -- No identity owns nothing: no rows.
END
$$;

COMMENT ON FUNCTION api.list_sessions(text) IS
$$The caller's sessions, newest first: a registered user's sessions, or a guest's unclaimed ones. NULL or 'anonymous' returns no rows.
Errors: 22023 an empty or malformed p_user_id.$$;

REVOKE ALL ON FUNCTION api.list_sessions(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION api.list_sessions(text) TO chatmem_app;
