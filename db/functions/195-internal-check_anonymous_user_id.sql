-- The guest id passed to register_user and login: NULL, blank or
-- 'anonymous' claims nothing; anything else must be a valid id.
CREATE FUNCTION chatmem_internal.claimable_guest_id(p_anonymous_user_id text)
RETURNS text
LANGUAGE plpgsql STABLE SECURITY INVOKER
AS $$
BEGIN
    IF p_anonymous_user_id IS NULL OR btrim(p_anonymous_user_id) = '' OR p_anonymous_user_id = 'anonymous' THEN
        RETURN NULL;
    END IF;
    RETURN chatmem_internal.check_id(p_anonymous_user_id, 'p_anonymous_user_id');
END
$$;
COMMENT ON FUNCTION chatmem_internal.claimable_guest_id(text) IS
    'The guest id to claim, or NULL for none; 22023 for an over-long id or one with control characters.';
