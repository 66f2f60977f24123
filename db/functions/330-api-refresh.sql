CREATE FUNCTION api.refresh(p_refresh_token text)
RETURNS TABLE (token text, refresh_token text, expires_at timestamptz)
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
-- A secret is an argument here: nothing this call raises reaches the server
-- log (see api.login for why both settings are needed).
SET log_min_error_statement = panic
SET log_min_messages = panic
AS $$
#variable_conflict use_column
DECLARE
    v_hash bytea := chatmem_internal.token_hash(p_refresh_token);
    v_old  public.auth_tokens;
    v_family uuid;
BEGIN
    IF p_refresh_token IS NULL OR p_refresh_token = '' THEN
        PERFORM chatmem_internal.invalid('p_refresh_token', 'is required',
                                         'Pass the refresh_token returned by login, register_user or refresh.');
    END IF;

    -- Refreshes within one token family (one login) take turns, on an
    -- advisory lock keyed by the family.  This is what makes reuse revocation
    -- land whatever the timing: a caller that finds its token already spent
    -- does so only after the spender committed its new tokens, so the
    -- revocation below sees and revokes them; and the revoking caller holds
    -- no row lock (only the advisory lock, which the revocation, made over
    -- another connection, does not need), so that connection never waits on
    -- it.  A later refresh in the family waits for the revocation to commit,
    -- then finds its own token revoked.
    SELECT t.family_id INTO v_family FROM public.auth_tokens AS t
     WHERE t.token_hash = v_hash AND t.kind = 'refresh';
    IF FOUND THEN
        PERFORM pg_advisory_xact_lock(hashtextextended('chatmem token family ' || v_family::text, 0));
    END IF;

    -- Spend the token: only one caller can set used_at.  No row comes back
    -- for an unknown, expired, revoked or already spent token.
    UPDATE public.auth_tokens AS t
       SET used_at = now()
     WHERE t.token_hash = v_hash AND t.kind = 'refresh'
       AND t.used_at IS NULL AND t.revoked_at IS NULL AND t.expires_at > now()
    RETURNING t.* INTO v_old;

    IF NOT FOUND THEN
        SELECT t.* INTO v_old FROM public.auth_tokens AS t WHERE t.token_hash = v_hash AND t.kind = 'refresh';
        IF v_old.used_at IS NOT NULL THEN
            -- Replay of a spent refresh token: someone holds a copy.  Revoke
            -- the whole family, in a transaction of its own so that the
            -- revocation survives the error below.
            PERFORM chatmem_internal.autonomous(format(
                'UPDATE public.auth_tokens SET revoked_at = now() WHERE family_id = %L AND revoked_at IS NULL',
                v_old.family_id));
            RAISE EXCEPTION USING
                ERRCODE = '28000',
                MESSAGE = 'refresh token was already used; every token of this login is now revoked',
                HINT = 'Log in again.';
        END IF;
        RAISE EXCEPTION USING
            ERRCODE = '28000',
            MESSAGE = 'refresh token is unknown, expired or revoked',
            HINT = 'Log in again.';
    END IF;

    RETURN QUERY SELECT i.token, i.refresh_token, i.expires_at
                   FROM chatmem_internal.issue_tokens(v_old.user_id, v_old.family_id) AS i;
END
$$;

COMMENT ON FUNCTION api.refresh(text) IS
$$Exchange a refresh token for a new access token and refresh token (rotation); the presented refresh token stops working.

Presenting a refresh token that was already exchanged means a copy exists: every token descending from the same login is revoked (this revocation is committed even though the call fails) and 28000 is raised. This holds when the two exchanges run at the same time too: refreshes of one login take turns, so the revocation always includes the tokens the other exchange issued.
Errors: 22023 missing token; 28000 unknown, expired, revoked or reused token.$$;

REVOKE ALL ON FUNCTION api.refresh(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION api.refresh(text) TO chatmem_app;
