CREATE FUNCTION api.authenticate(p_token text)
RETURNS uuid
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
-- A secret is an argument here: nothing this call raises (a refusal, a
-- timeout, a cancel) reaches the server log (see api.login for why both
-- settings are needed).
SET log_min_error_statement = panic
SET log_min_messages = panic
AS $$
    SELECT t.user_id
      FROM public.auth_tokens AS t
     WHERE t.token_hash = chatmem_internal.token_hash(p_token)
       AND t.kind = 'access'
       AND t.revoked_at IS NULL
       AND t.expires_at > now()
$$;

COMMENT ON FUNCTION api.authenticate(text) IS
$$The user id of a valid access token; NULL for a NULL, empty, unknown, expired or revoked token. Never raises.$$;

REVOKE ALL ON FUNCTION api.authenticate(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION api.authenticate(text) TO chatmem_app;
