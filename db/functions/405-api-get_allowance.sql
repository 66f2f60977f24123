CREATE FUNCTION api.get_allowance(p_user_id text)
RETURNS TABLE(used integer, allowed integer, resets_at timestamptz)
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_caller chatmem_internal.caller := chatmem_internal.resolve_caller(p_user_id);
BEGIN
    -- The same count api.add_message checks (chatmem_internal.counted_turns),
    -- read without its lock: a front end's "3 messages left today".
    RETURN QUERY
    SELECT count(t.created_at)::integer,
           chatmem_internal.allowance_of(v_caller),
           min(t.created_at) + interval '24 hours'
      FROM chatmem_internal.counted_turns(v_caller) AS t;
END
$$;

COMMENT ON FUNCTION api.get_allowance(text) IS
$$The caller's message allowance (p_user_id as in api.create_or_get_session): one row of used, the user turns it sent in the last 24 hours through the sessions it owns (a claimed guest's included); allowed, chatmem_settings.guest_messages_per_day or user_messages_per_day for its kind (NULL: no limit, and always for no identity); resets_at, when the oldest counted turn leaves the window (NULL when none is counted). api.add_message refuses a user turn with CM003 while used >= allowed.
Errors: 22023 invalid id.$$;

REVOKE ALL ON FUNCTION api.get_allowance(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION api.get_allowance(text) TO chatmem_app;
