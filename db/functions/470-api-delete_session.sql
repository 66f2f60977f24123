CREATE FUNCTION api.delete_session(p_session_id text, p_user_id text)
RETURNS boolean
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_caller chatmem_internal.caller := chatmem_internal.resolve_caller(p_user_id);
BEGIN
    p_session_id := chatmem_internal.check_id(p_session_id, 'p_session_id');

    -- One statement, the ownership check in its WHERE: the row lock and the
    -- check go together.  A claim (or any write) that holds the row is waited
    -- for, then READ COMMITTED re-evaluates the WHERE on the row as that write
    -- left it: a guest's session claimed meanwhile is the user's now and is
    -- not deleted; a session deleted first is skipped by the claim, which
    -- writes no audit row for it.  Either way the session ends deleted or
    -- claimed, whole.  Its messages and Q&A pairs go by cascade, in this
    -- same statement.
    DELETE FROM public.conversation_sessions AS s
     WHERE s.session_id = p_session_id AND chatmem_internal.may_use(s, v_caller);
    IF FOUND THEN
        RETURN true;
    END IF;
    PERFORM chatmem_internal.session_for(p_session_id, v_caller);  -- raises P0002 or 42501
    -- The session became the caller's only after the DELETE looked (created,
    -- or claimed by the caller, at that moment): nothing was deleted.
    RETURN false;
END
$$;

COMMENT ON FUNCTION api.delete_session(text, text) IS
$$Delete a session the caller owns (p_user_id as in api.create_or_get_session; a guest may delete its own sessions before signing up) with its messages and Q&A pairs, in one transaction. Returns true when the session was deleted; false, with nothing deleted, only for a session that became the caller's while this call ran (created, or claimed by the caller, at that moment).
A claim and a delete of the same guest session at the same moment never leave half of each: the session ends deleted (and is not claimed) or claimed (and the delete is refused with 42501).
Errors: 22023 invalid input; P0002 no such session; 42501 the session belongs to someone else.$$;

REVOKE ALL ON FUNCTION api.delete_session(text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION api.delete_session(text, text) TO chatmem_app;
