CREATE FUNCTION api.claim_receipt(p_token text, p_since timestamptz DEFAULT NULL)
RETURNS TABLE (session_id text, anonymous_user_id text, method text, claimed_at timestamptz)
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
-- A secret is an argument here: nothing this call raises (a refusal, a
-- timeout, a cancel) reaches the server log (see api.login for why both
-- settings are needed).
SET log_min_error_statement = panic
SET log_min_messages = panic
AS $$
#variable_conflict use_column
DECLARE
    -- Resolved before the query, so an invalid token is refused (28000)
    -- whether or not anything was claimed.
    v_user_id uuid := api.require_user(p_token);
BEGIN
    -- From the audit, which outlives the sessions: a claimed session deleted
    -- since is still listed.  Served by session_claims_user_idx.
    RETURN QUERY
    SELECT c.session_id::text, c.anonymous_user_id, c.method, c.claimed_at
      FROM public.session_claims AS c
     WHERE c.user_id = v_user_id
       AND (p_since IS NULL OR c.claimed_at >= p_since)
     ORDER BY c.claimed_at DESC, c.id DESC;
END
$$;

COMMENT ON FUNCTION api.claim_receipt(text, timestamptz) IS
$$The claims that moved guest sessions into the account of the access token p_token, newest first, from the audit: each claimed session's id, the guest id it came from, the method (register or login) and claimed_at. p_since (optional) keeps the claims made at or after that time. Nothing this call raises reaches the server log.
Errors: 28000 the access token is missing, invalid, expired or revoked.$$;

REVOKE ALL ON FUNCTION api.claim_receipt(text, timestamptz) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION api.claim_receipt(text, timestamptz) TO chatmem_app;
