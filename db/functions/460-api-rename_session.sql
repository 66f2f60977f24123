CREATE FUNCTION api.rename_session(p_session_id text, p_user_id text, p_title text)
RETURNS public.conversation_sessions
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_caller  chatmem_internal.caller := chatmem_internal.resolve_caller(p_user_id);
    -- Surrounding spaces are not part of a title; nothing left clears it.
    v_title   text := nullif(btrim(p_title, ' '), '');
    v_session public.conversation_sessions;
BEGIN
    p_session_id := chatmem_internal.check_id(p_session_id, 'p_session_id');
    IF char_length(v_title) > 200 THEN
        PERFORM chatmem_internal.invalid('p_title', format('is %s characters long; the limit is 200',
                                                          char_length(v_title)),
                                         'Use a title of at most 200 characters, or NULL to clear it.');
    -- A title is one line of text: no C0 or C1 control character (tabs and
    -- newlines included), no line or paragraph separator.  Spelled out rather
    -- than [[:cntrl:]], whose meaning beyond ASCII depends on the locale.
    ELSIF v_title ~ '[\u0001-\u001f\u007f-\u009f\u2028\u2029]' THEN
        PERFORM chatmem_internal.invalid('p_title', 'contains control characters',
                                         'Use a title on one line, without tabs, newlines or other control characters.');
    END IF;

    -- One statement: the title changes only if the caller owns the session
    -- (re-checked on the newest row version if a claim held it meanwhile).
    -- updated_at stays: renaming is not activity, and the list keeps its order.
    UPDATE public.conversation_sessions AS s
       SET title = v_title
     WHERE s.session_id = p_session_id AND chatmem_internal.may_use(s, v_caller)
    RETURNING s.* INTO v_session;

    IF NOT FOUND THEN
        PERFORM chatmem_internal.session_for(p_session_id, v_caller);  -- raises P0002 or 42501
        PERFORM chatmem_internal.forbidden(p_session_id);                -- changed hands meanwhile
    END IF;
    RETURN v_session;
END
$$;

COMMENT ON FUNCTION api.rename_session(text, text, text) IS
$$Give a session the caller owns (p_user_id as in api.create_or_get_session) a title, and return the session row. Surrounding spaces are dropped; NULL, empty or spaces-only clears the title (NULL). The session's updated_at is not changed.
Errors: 22023 invalid input (a title over 200 characters, or with a control character: tabs and newlines included); P0002 no such session; 42501 the session belongs to someone else.$$;

REVOKE ALL ON FUNCTION api.rename_session(text, text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION api.rename_session(text, text, text) TO chatmem_app;
