CREATE FUNCTION api.get_qa_pairs(p_session_id text, p_user_id text)
RETURNS TABLE (id bigint, question text, answer text, created_at timestamptz)
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE
    v_caller chatmem_internal.caller := chatmem_internal.resolve_caller(p_user_id);
BEGIN
    p_session_id := chatmem_internal.check_id(p_session_id, 'p_session_id');
    PERFORM chatmem_internal.session_for(p_session_id, v_caller);
    RETURN QUERY
    SELECT q.id, q.question, q.answer, q.created_at
      FROM public.qa_pairs AS q
     WHERE q.session_id = p_session_id
     ORDER BY q.id;
END
$$;

COMMENT ON FUNCTION api.get_qa_pairs(text, text) IS
$$A session's Q&A pairs in the order they were added.
Errors: 22023 invalid input; P0002 no such session; 42501 the session belongs to someone else.$$;

REVOKE ALL ON FUNCTION api.get_qa_pairs(text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION api.get_qa_pairs(text, text) TO chatmem_app;
