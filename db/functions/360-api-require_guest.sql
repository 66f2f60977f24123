CREATE FUNCTION api.require_guest(p_anonymous_user_id text)
RETURNS text
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    -- The functions that take p_user_id trust their caller to have
    -- authenticated it, and resolve a registered user's id to that user.  An
    -- id a client merely claims (a header, a form field) must never do that.
    IF (chatmem_internal.resolve_caller(p_anonymous_user_id, 'p_anonymous_user_id')).user_id IS NOT NULL THEN
        RAISE EXCEPTION USING
            ERRCODE = '28000',
            MESSAGE = 'p_anonymous_user_id names a registered account, not a guest',
            HINT = 'Send the account''s access token instead of its id.';
    END IF;
    RETURN p_anonymous_user_id;
END
$$;

COMMENT ON FUNCTION api.require_guest(text) IS
$$p_anonymous_user_id unchanged if it is a guest id (or NULL/'anonymous'); 28000 if it is a registered user's id, 22023 if malformed. For front ends that pass a client-supplied guest id as p_user_id in one statement, e.g. SELECT * FROM api.list_sessions(api.require_guest($1)).$$;

REVOKE ALL ON FUNCTION api.require_guest(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION api.require_guest(text) TO chatmem_app;
