CREATE FUNCTION api.add_qa_pair(p_session_id text, p_user_id text, p_question text, p_answer text)
RETURNS bigint
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_caller chatmem_internal.caller := chatmem_internal.resolve_caller(p_user_id);
    v_id     bigint;
BEGIN
    p_session_id := chatmem_internal.check_id(p_session_id, 'p_session_id');
    p_question := chatmem_internal.check_text(p_question, 'p_question');
    p_answer := chatmem_internal.check_text(p_answer, 'p_answer');

    WITH session AS (
        UPDATE public.conversation_sessions AS s
           SET updated_at = now()
         WHERE s.session_id = p_session_id AND chatmem_internal.may_use(s, v_caller)
        RETURNING s.session_id
    )
    INSERT INTO public.qa_pairs (session_id, question, answer)
    SELECT session.session_id, p_question, p_answer FROM session
    RETURNING id INTO v_id;

    IF v_id IS NULL THEN
        PERFORM chatmem_internal.session_for(p_session_id, v_caller);  -- raises P0002 or 42501
        PERFORM chatmem_internal.forbidden(p_session_id);                -- claimed meanwhile
    END IF;
    RETURN v_id;
END
$$;

COMMENT ON FUNCTION api.add_qa_pair(text, text, text, text) IS
$$Record a question and its answer in a session the caller owns (p_user_id as in api.create_or_get_session); returns the pair's id. Both are non-blank text up to chatmem_settings.message_max_chars characters. Bumps the session's updated_at.
Errors: 22023 invalid input; P0002 no such session; 42501 the session belongs to someone else.$$;

REVOKE ALL ON FUNCTION api.add_qa_pair(text, text, text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION api.add_qa_pair(text, text, text, text) TO chatmem_app;
