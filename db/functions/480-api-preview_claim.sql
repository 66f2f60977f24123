CREATE FUNCTION api.preview_claim(p_anonymous_user_id text)
RETURNS TABLE (session_id text, title text, created_at timestamptz, message_count bigint, qa_count bigint)
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE
    -- The guest id exactly as api.register_user and api.login take it: NULL,
    -- blank or 'anonymous' claims nothing; a malformed one is 22023.
    v_guest_id text := chatmem_internal.claimable_guest_id(p_anonymous_user_id);
BEGIN
    IF v_guest_id IS NULL THEN
        RETURN;
    END IF;
    -- A client-supplied id: a registered user's id is refused (28000) as
    -- api.require_guest refuses it, so that this never lists an account's sessions.
    PERFORM api.require_guest(v_guest_id);

    -- The claim's own predicate (chatmem_internal.guest_owns), so this lists
    -- exactly the sessions a registration or login now would move.
    RETURN QUERY
    SELECT s.session_id::text, s.title, s.created_at, summary.message_count, summary.qa_count
      FROM public.conversation_sessions AS s
     CROSS JOIN LATERAL chatmem_internal.session_summary(s.session_id) AS summary
     WHERE chatmem_internal.guest_owns(s, v_guest_id)
     ORDER BY s.created_at DESC, s.session_id DESC;
END
$$;

COMMENT ON FUNCTION api.preview_claim(text) IS
$$What signing up or logging in now with this guest id would move to the account, for a "your 3 conversations will be saved" moment: the guest's unclaimed sessions (the claim's own rule), newest first, each with its title, created_at, message_count and qa_count. NULL, empty or 'anonymous' lists nothing, as it claims nothing.
Errors: 28000 p_anonymous_user_id is a registered user's id (as api.require_guest); 22023 a malformed id (over 255 characters, control characters).$$;

REVOKE ALL ON FUNCTION api.preview_claim(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION api.preview_claim(text) TO chatmem_app;
