CREATE FUNCTION api.reset_password(p_reset_token text, p_new_password text)
RETURNS uuid
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
-- Secrets are arguments here: nothing this call raises reaches the server
-- log (see api.login for why both settings are needed).
SET log_min_error_statement = panic
SET log_min_messages = panic
AS $$
DECLARE
    v_settings public.chatmem_settings := chatmem_internal.settings();
    v_hash     bytea := chatmem_internal.token_hash(p_reset_token);
    v_user     public.users;
    v_email    text;
BEGIN
    PERFORM chatmem_internal.require_read_committed('api.reset_password');
    -- The new password first: a refused one leaves the token usable.
    PERFORM chatmem_internal.check_new_password(p_new_password, v_settings.password_min_length, 'p_new_password');

    -- Whose token is it?  Looked up without a lock, to take that account's
    -- turn before anything else; the token is consumed (and so checked
    -- again) in the turn.
    SELECT u.* INTO v_user
      FROM public.password_reset_tokens AS r
      JOIN public.users AS u ON u.id = r.user_id
     WHERE r.token_hash = v_hash AND r.expires_at > now();
    IF FOUND THEN
        -- The email's turn, as api.login takes it: no login reads the hash
        -- this replaces until this commits, and a login that went first has
        -- committed its token family, which the revocation below sees.
        v_email := lower(v_user.email);
        PERFORM chatmem_internal.email_turn(v_email);
        PERFORM chatmem_internal.take_hash_slot();
        -- Consume: of two calls with one token, the second waits for the
        -- first's row lock, then finds the row gone and is refused; if the
        -- first fails, its delete is undone and the second goes ahead.
        DELETE FROM public.password_reset_tokens AS r
         WHERE r.token_hash = v_hash AND r.user_id = v_user.id AND r.expires_at > now();
    END IF;
    IF NOT FOUND THEN
        RAISE EXCEPTION USING
            ERRCODE = '28000',
            MESSAGE = 'reset token is unknown, expired or already used',
            HINT = 'Ask for a new one with api.request_password_reset.';
    END IF;

    UPDATE public.users AS u
       SET password_hash = chatmem_internal.hash_password(p_new_password),
           updated_at = now()
     WHERE u.id = v_user.id;
    -- Whoever held the old password, or a token, is out: every family goes,
    -- and the throttle starts afresh for the owner.
    PERFORM chatmem_internal.revoke_token_families(v_user.id, NULL);
    DELETE FROM public.login_failures AS f WHERE f.email = v_email;
    -- The other reset tokens of the account are spent with this one.
    DELETE FROM public.password_reset_tokens AS r WHERE r.user_id = v_user.id;
    RETURN v_user.id;
END
$$;

COMMENT ON FUNCTION api.reset_password(text, text) IS
$$Set a new password with a token from api.request_password_reset, and return the user id.

The token is consumed (a second use, like an expired or unknown token or one asked for an email with no account: 28000; of two calls with one token at once exactly one succeeds), and so are the account's other reset tokens. p_new_password obeys registration's rules (22023, checked first: the token stays usable). Every token family of the user is revoked (every login, on every device, exactly even while they are being refreshed), and the failed-login count of the account is cleared. Nothing this call raises reaches the server log.
Errors: 22023 a new password that breaks the rules; 28000 unknown, expired or used reset token; CM004 too many passwords being hashed at once (retry shortly); 25001 called above READ COMMITTED.$$;

REVOKE ALL ON FUNCTION api.reset_password(text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION api.reset_password(text, text) TO chatmem_app;
