CREATE FUNCTION api.change_password(p_token text, p_current_password text, p_new_password text)
RETURNS boolean
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
-- Secrets are arguments here: nothing this call raises reaches the server
-- log (see api.login for why both settings are needed).
SET log_min_error_statement = panic
SET log_min_messages = panic
AS $$
DECLARE
    v_settings public.chatmem_settings := chatmem_internal.settings();
    v_token    public.auth_tokens;
    v_user     public.users;
    v_email    text;
BEGIN
    PERFORM chatmem_internal.require_read_committed('api.change_password');
    v_token := chatmem_internal.access_token(p_token);
    IF p_current_password IS NULL OR p_current_password = '' THEN
        PERFORM chatmem_internal.invalid('p_current_password', 'is required', 'Give your current password.');
    END IF;
    PERFORM chatmem_internal.check_new_password(p_new_password, v_settings.password_min_length, 'p_new_password');

    -- The email's turn, as api.login takes it: a wrong current password is a
    -- guess like a failed login, counted by the same throttle and exact under
    -- concurrency alike; and no login reads the hash this call replaces
    -- until it commits (a login that went first has committed its token
    -- family, which the revocation below then sees).
    SELECT u.* INTO v_user FROM public.users AS u WHERE u.id = v_token.user_id;
    v_email := lower(v_user.email);
    PERFORM chatmem_internal.email_turn(v_email);
    PERFORM chatmem_internal.refuse_if_throttled(v_email);
    -- Read again in the turn: a change, reset or erasure that went first has
    -- committed (its revocation may have taken this very token).
    v_token := chatmem_internal.access_token(p_token);
    SELECT u.* INTO v_user FROM public.users AS u WHERE u.id = v_token.user_id;

    PERFORM chatmem_internal.take_hash_slot();
    IF NOT chatmem_internal.check_password(p_current_password, v_user.password_hash) THEN
        PERFORM chatmem_internal.count_login_failure(v_email);
        RAISE EXCEPTION USING
            ERRCODE = '28P01',
            MESSAGE = 'p_current_password: wrong password',
            HINT = CASE WHEN v_user.password_hash IS NULL
                        THEN 'This account signs in through an identity provider and has no password; set one with api.request_password_reset.'
                        ELSE 'Give your current password, or reset it with api.request_password_reset.' END;
    END IF;

    UPDATE public.users AS u
       SET password_hash = chatmem_internal.hash_password(p_new_password),
           updated_at = now()
     WHERE u.id = v_user.id;
    -- As a successful login does: the right password clears the count.
    DELETE FROM public.login_failures AS f WHERE f.email = v_email;
    -- Reset links asked for before the change would undo it.
    DELETE FROM public.password_reset_tokens AS r WHERE r.user_id = v_user.id;
    PERFORM chatmem_internal.revoke_token_families(v_user.id, v_token.family_id);
    RETURN true;
END
$$;

COMMENT ON FUNCTION api.change_password(text, text, text) IS
$$Change the password of the access token's user, who proves the current one.

p_new_password obeys registration's rules (at least password_min_length characters, at most 72 bytes). Every other token family (every other login, on any device) of the user is revoked, exactly even while they are being refreshed; the calling token's family stays valid. Outstanding password reset tokens are invalidated and the failed-login count cleared. Returns true.
A wrong current password counts as a failed login for the account's email (chatmem_settings.login_failure_limit per login_failure_window, then CM001, exactly as api.login). Nothing this call raises reaches the server log.
Errors: 28000 missing, invalid, expired or revoked token; 22023 missing current password or a new password that breaks the rules; 28P01 wrong current password (also for an account without a password); CM001 too many failed attempts; CM004 too many passwords being checked at once (retry shortly); 25001 called above READ COMMITTED.$$;

REVOKE ALL ON FUNCTION api.change_password(text, text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION api.change_password(text, text, text) TO chatmem_app;
