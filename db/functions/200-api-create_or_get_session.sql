CREATE FUNCTION api.create_or_get_session(
    p_session_id text,
    p_user_id    text  DEFAULT NULL,
    p_metadata   jsonb DEFAULT '{}'
)
RETURNS public.conversation_sessions
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_caller   chatmem_internal.caller := chatmem_internal.resolve_caller(p_user_id);
    v_metadata jsonb := chatmem_internal.json_object_arg(p_metadata, 'p_metadata');
    v_session  public.conversation_sessions;
BEGIN
    p_session_id := chatmem_internal.check_id(p_session_id, 'p_session_id');
    IF v_caller.guest_id IS NOT NULL THEN
        v_metadata := v_metadata || jsonb_build_object('anonymousUserId', v_caller.guest_id);
    END IF;

    -- Get-or-create in one statement: concurrent calls with the same new id
    -- meet in the primary key; one inserts, the others take the update arm.
    -- The update arm runs only for the owner; for anyone else it updates
    -- nothing and returns no row, which we turn into 42501.
    INSERT INTO public.conversation_sessions AS s (session_id, user_id, metadata)
    VALUES (p_session_id, v_caller.user_id, v_metadata)
    ON CONFLICT (session_id) DO UPDATE
        SET updated_at = now()
        WHERE chatmem_internal.may_use(s, v_caller)
    RETURNING s.* INTO v_session;

    IF NOT FOUND THEN
        PERFORM chatmem_internal.forbidden(p_session_id);
    END IF;
    RETURN v_session;
END
$$;

COMMENT ON FUNCTION api.create_or_get_session(text, text, jsonb) IS
$$Open a conversation session by id, creating it if it does not exist. For callers that authenticated the user themselves.

p_user_id is the caller: NULL or 'anonymous' (no identity), a registered user's id, or a guest id (any other string of 1-255 characters, e.g. a UUID kept in browser storage). A new session of a registered user has that user_id; a guest's has user_id NULL and metadata.anonymousUserId set to the guest id; with no identity, neither. p_metadata (a JSON object, NULL as {}) is stored on creation only; an anonymousUserId key in it is ignored.
An existing session has its updated_at bumped and is returned to its owner (the same user or guest; a session with neither is open to anyone who has its id).
Returns the session row. Errors: 22023 invalid id or metadata; 42501 the session belongs to someone else.
Race-free: concurrent calls with the same new id leave one row and all succeed.$$;

REVOKE ALL ON FUNCTION api.create_or_get_session(text, text, jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION api.create_or_get_session(text, text, jsonb) TO chatmem_app;
