CREATE FUNCTION api.add_message(p_session_id text, p_user_id text, p_role text, p_content text)
RETURNS bigint
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_caller chatmem_internal.caller := chatmem_internal.resolve_caller(p_user_id);
    v_id     bigint;
BEGIN
    p_session_id := chatmem_internal.check_id(p_session_id, 'p_session_id');
    IF p_role IS NULL OR p_role NOT IN ('user', 'assistant', 'system') THEN
        PERFORM chatmem_internal.invalid('p_role',
                                         CASE WHEN p_role IS NULL THEN 'is required'
                                              ELSE format('%L is not a role', p_role) END,
                                         'Use user, assistant or system.');
    END IF;
    p_content := chatmem_internal.check_text(p_content, 'p_content');
    -- A chat product feeds this history back to a language model: only the
    -- backend that talks to the model may put words in its mouth (or in the
    -- system prompt).  The caller's own role decides, not the owner's.
    IF p_role <> 'user'
       AND NOT pg_has_role(chatmem_internal.calling_role(), 'chatmem_assistant', 'MEMBER') THEN
        RAISE EXCEPTION USING
            ERRCODE = '42501',
            MESSAGE = format('p_role: %s turns may be written only by the assistant backend', p_role),
            HINT = 'Write user turns; assistant and system turns come from a role that is a member of chatmem_assistant.';
    END IF;

    -- One statement: mark the session active (its updated_at is what idle
    -- guest sessions are purged by) and append, only if the caller owns it.
    WITH session AS (
        UPDATE public.conversation_sessions AS s
           SET updated_at = now()
         WHERE s.session_id = p_session_id AND chatmem_internal.may_use(s, v_caller)
        RETURNING s.session_id
    )
    INSERT INTO public.conversation_messages (session_id, role, content)
    SELECT session.session_id, p_role, p_content FROM session
    RETURNING id INTO v_id;

    IF v_id IS NULL THEN
        PERFORM chatmem_internal.session_for(p_session_id, v_caller);  -- raises P0002 or 42501
        PERFORM chatmem_internal.forbidden(p_session_id);                -- claimed meanwhile
    END IF;
    RETURN v_id;
END
$$;

COMMENT ON FUNCTION api.add_message(text, text, text, text) IS
$$Append a message to a session the caller owns (p_user_id as in api.create_or_get_session) and return its id. p_role is user, assistant or system; assistant and system turns only from a caller whose role is a member of chatmem_assistant (the backend that talks to the model), 42501 for any other; p_content is non-blank text up to chatmem_settings.message_max_chars characters. Bumps the session's updated_at.
Errors: 22023 invalid input; P0002 no such session; 42501 the session belongs to someone else, or an assistant or system turn from a caller outside chatmem_assistant.$$;

REVOKE ALL ON FUNCTION api.add_message(text, text, text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION api.add_message(text, text, text, text) TO chatmem_app;
