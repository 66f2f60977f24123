CREATE FUNCTION api.get_messages(
    p_session_id text,
    p_user_id    text,
    p_limit      integer DEFAULT 100,
    p_before_id  bigint  DEFAULT NULL
)
RETURNS TABLE (id bigint, role text, content text, created_at timestamptz)
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE
    v_caller chatmem_internal.caller := chatmem_internal.resolve_caller(p_user_id);
BEGIN
    p_session_id := chatmem_internal.check_id(p_session_id, 'p_session_id');
    IF p_limit IS NULL OR p_limit NOT BETWEEN 1 AND 1000 THEN
        PERFORM chatmem_internal.invalid('p_limit',
                                         CASE WHEN p_limit IS NULL THEN 'is required'
                                              ELSE format('%s is out of range', p_limit) END,
                                         'Ask for 1 to 1000 messages; page back with p_before_id.');
    END IF;
    PERFORM chatmem_internal.session_for(p_session_id, v_caller);

    -- The latest p_limit messages before the cursor (an index range scan on
    -- (session_id, id) read backwards), returned oldest first.
    RETURN QUERY
    SELECT page.id, page.role, page.content, page.created_at
      FROM (SELECT m.id, m.role, m.content, m.created_at
              FROM public.conversation_messages AS m
             WHERE m.session_id = p_session_id
               AND (p_before_id IS NULL OR m.id < p_before_id)
             ORDER BY m.id DESC
             LIMIT p_limit) AS page
     ORDER BY page.id;
END
$$;

COMMENT ON FUNCTION api.get_messages(text, text, integer, bigint) IS
$$A session's messages, oldest first: the latest p_limit (1-1000, default 100) with id below p_before_id (NULL: the newest). To page back through a long conversation, pass the smallest id you have as p_before_id.
Errors: 22023 invalid input; P0002 no such session; 42501 the session belongs to someone else.$$;

REVOKE ALL ON FUNCTION api.get_messages(text, text, integer, bigint) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION api.get_messages(text, text, integer, bigint) TO chatmem_app;
