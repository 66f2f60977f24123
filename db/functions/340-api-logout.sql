CREATE FUNCTION api.logout(p_token text)
RETURNS boolean
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
-- A secret is an argument here: nothing this call raises (a refusal, a
-- timeout, a cancel) reaches the server log (see api.login for why both
-- settings are needed).
SET log_min_error_statement = panic
SET log_min_messages = panic
AS $$
DECLARE
    v_revoked_live boolean;
BEGIN
    -- The access token and the refresh token issued with it share a pair_id.
    -- An expired access token still logs out: its refresh token may live on.
    WITH revoked AS (
        UPDATE public.auth_tokens AS t
           SET revoked_at = now()
         WHERE t.pair_id = (SELECT a.pair_id FROM public.auth_tokens AS a
                             WHERE a.token_hash = chatmem_internal.token_hash(p_token) AND a.kind = 'access'
                               AND a.revoked_at IS NULL)
           AND t.revoked_at IS NULL
        RETURNING t.expires_at > now() AND t.used_at IS NULL AS was_live
    )
    SELECT coalesce(bool_or(revoked.was_live), false) INTO v_revoked_live FROM revoked;
    RETURN v_revoked_live;
END
$$;

COMMENT ON FUNCTION api.logout(text) IS
$$Revoke an access token and the refresh token issued with it (also when the access token has expired). Returns true when a live token was revoked, false for NULL, unknown or already revoked tokens. Never raises.$$;

REVOKE ALL ON FUNCTION api.logout(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION api.logout(text) TO chatmem_app;
