CREATE FUNCTION api.delete_guest_data(p_anonymous_user_id text)
RETURNS integer
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_deleted integer;
BEGIN
    p_anonymous_user_id := chatmem_internal.check_id(p_anonymous_user_id, 'p_anonymous_user_id');
    IF p_anonymous_user_id = 'anonymous' THEN
        PERFORM chatmem_internal.invalid('p_anonymous_user_id', '''anonymous'' is no guest id',
                                         'Pass the guest id whose sessions should be erased.');
    END IF;
    -- Served by conversation_sessions_guest_idx; messages and Q&A pairs go by cascade.
    DELETE FROM public.conversation_sessions AS s
     WHERE s.user_id IS NULL
       AND s.metadata ->> 'anonymousUserId' = p_anonymous_user_id
       AND s.owner_deleted_at IS NULL;
    GET DIAGNOSTICS v_deleted = ROW_COUNT;
    RETURN v_deleted;
END
$$;

COMMENT ON FUNCTION api.delete_guest_data(text) IS
$$Erase a guest's unclaimed sessions with their messages and Q&A pairs (a guest's right to delete its data before registering); returns how many sessions were deleted. Sessions already claimed by an account are not touched.
Errors: 22023 a NULL, empty, 'anonymous' or malformed guest id.$$;

REVOKE ALL ON FUNCTION api.delete_guest_data(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION api.delete_guest_data(text) TO chatmem_app;
