CREATE FUNCTION api.require_user(p_token text)
RETURNS uuid
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
-- A secret is an argument here: nothing this call raises (a refusal, a
-- timeout, a cancel) reaches the server log (see api.login for why both
-- settings are needed).
SET log_min_error_statement = panic
SET log_min_messages = panic
AS $$
DECLARE
    v_user_id uuid := api.authenticate(p_token);
BEGIN
    IF v_user_id IS NULL THEN
        RAISE EXCEPTION USING
            ERRCODE = '28000',
            MESSAGE = 'access token is missing, invalid, expired or revoked',
            HINT = 'Log in again, or exchange your refresh token with api.refresh.';
    END IF;
    RETURN v_user_id;
END
$$;

COMMENT ON FUNCTION api.require_user(text) IS
$$The user id of a valid access token; raises 28000 otherwise. For front ends that act as the token's user in one statement, e.g. SELECT * FROM api.list_sessions(api.require_user($1)::text).$$;

REVOKE ALL ON FUNCTION api.require_user(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION api.require_user(text) TO chatmem_app;
