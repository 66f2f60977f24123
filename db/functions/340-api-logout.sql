CREATE FUNCTION api.logout(p_token text)
RETURNS boolean
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    -- The access token and the refresh token issued with it share a pair_id.
    UPDATE public.auth_tokens AS t
       SET revoked_at = now()
     WHERE t.pair_id = (SELECT a.pair_id FROM public.auth_tokens AS a
                         WHERE a.token_hash = chatmem_internal.token_hash(p_token)
                           AND a.kind = 'access' AND a.revoked_at IS NULL AND a.expires_at > now())
       AND t.revoked_at IS NULL;
    RETURN FOUND;
END
$$;

COMMENT ON FUNCTION api.logout(text) IS
$$Revoke an access token and the refresh token issued with it. Returns true when a live token was revoked, false for NULL, unknown, expired or already revoked tokens. Never raises.$$;

REVOKE ALL ON FUNCTION api.logout(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION api.logout(text) TO chatmem_app;
