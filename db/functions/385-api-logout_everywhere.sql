CREATE FUNCTION api.logout_everywhere(p_token text)
RETURNS integer
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
-- A secret is an argument here: nothing this call raises (a refusal, a
-- timeout, a cancel) reaches the server log (see api.login for why both
-- settings are needed).
SET log_min_error_statement = panic
SET log_min_messages = panic
AS $$
DECLARE
    v_token public.auth_tokens;
BEGIN
    PERFORM chatmem_internal.require_read_committed('api.logout_everywhere');
    v_token := chatmem_internal.access_token(p_token);
    -- Exact while any of the families is being refreshed: see
    -- chatmem_internal.revoke_token_families.
    RETURN chatmem_internal.revoke_token_families(v_token.user_id, NULL);
END
$$;

COMMENT ON FUNCTION api.logout_everywhere(text) IS
$$Sign the access token's user out everywhere: revoke every token family of the user (every login, on every device), the calling token's own included, exactly even while they are being refreshed (a refresh racing this call is refused). Returns how many families had a live token. Nothing this call raises reaches the server log.
Errors: 28000 missing, invalid, expired or revoked token; 25001 called above READ COMMITTED.$$;

REVOKE ALL ON FUNCTION api.logout_everywhere(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION api.logout_everywhere(text) TO chatmem_app;
