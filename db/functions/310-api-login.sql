CREATE FUNCTION api.login(
    p_email             text,
    p_password          text,
    p_anonymous_user_id text DEFAULT NULL
)
RETURNS TABLE (user_id uuid, name text, email text, token text, refresh_token text,
               expires_at timestamptz, migrated_sessions integer)
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
-- Secrets are arguments here: a failed call must not copy its statement text
-- (with the password or token in it) into the server log.
SET log_min_error_statement = panic
AS $$
#variable_conflict use_column
DECLARE
    v_settings public.chatmem_settings := chatmem_internal.settings();
    v_email    text := btrim(p_email);
    v_guest_id text;
    v_user     public.users;
    v_tokens   record;
    v_claimed  integer;
BEGIN
    PERFORM chatmem_internal.require_read_committed('api.login');
    IF v_email IS NULL OR v_email = '' THEN
        PERFORM chatmem_internal.invalid('p_email', 'is required', 'Give the email you registered with.');
    END IF;
    IF p_password IS NULL OR p_password = '' THEN
        PERFORM chatmem_internal.invalid('p_password', 'is required', 'Give your password.');
    END IF;
    v_guest_id := chatmem_internal.claimable_guest_id(p_anonymous_user_id);

    -- Throttle guessing per email (known or not, so this tells nothing about
    -- which emails exist).  Checked before bcrypt: a throttled call is cheap.
    IF (SELECT count(*) FROM public.login_failures AS f
         WHERE f.email = lower(v_email)
           AND f.failed_at > now() - v_settings.login_failure_window) >= v_settings.login_failure_limit THEN
        RAISE EXCEPTION USING
            ERRCODE = 'CM001',
            MESSAGE = format('too many failed logins for this email in the last %s', v_settings.login_failure_window),
            HINT = 'Wait and try again later, or reset the password.';
    END IF;

    SELECT u.* INTO v_user FROM public.users AS u WHERE lower(u.email) = lower(v_email);
    IF NOT FOUND THEN
        -- Pay for one bcrypt anyway, so an unknown email takes as long as a
        -- wrong password and timing does not tell which emails exist.
        PERFORM chatmem_internal.crypt(p_password, chatmem_internal.bcrypt_salt(v_settings.bcrypt_cost));
    END IF;
    -- crypt() of a NULL hash is NULL: "IS NOT TRUE" treats that as a mismatch.
    IF (chatmem_internal.crypt(p_password, v_user.password_hash) = v_user.password_hash) IS NOT TRUE THEN
        -- The failure must be counted although this call fails: written in
        -- a transaction of its own (the caller holds no lock it could need).
        PERFORM chatmem_internal.autonomous(format(
            'INSERT INTO public.login_failures (email) VALUES (%L)', lower(v_email)));
        RAISE EXCEPTION USING
            ERRCODE = '28P01',
            MESSAGE = 'invalid email or password',
            HINT = 'Check the email and the password, or register if you have no account.';
    END IF;

    DELETE FROM public.login_failures AS f WHERE f.email = lower(v_email);
    SELECT * INTO v_tokens FROM chatmem_internal.issue_tokens(v_user.id, gen_random_uuid());
    v_claimed := chatmem_internal.claim_guest_sessions(v_user.id, v_guest_id, 'login');

    RETURN QUERY SELECT v_user.id, v_user.name, v_user.email, v_tokens.token, v_tokens.refresh_token,
                        v_tokens.expires_at, v_claimed;
END
$$;

COMMENT ON FUNCTION api.login(text, text, text) IS
$$Sign in with email (any case) and password; claim the guest's sessions.

Returns the user, a new access token (valid until expires_at) and refresh token, and migrated_sessions: how many sessions of p_anonymous_user_id (the guest id used before logging in; NULL, empty or 'anonymous' claims nothing) became the user's, exactly as api.register_user claims them (audit method 'login').
After chatmem_settings.login_failure_limit (default 5) failures for one email within login_failure_window (default 15 minutes), further attempts are refused with CM001 until the window has passed; a successful login clears the count.
Errors: 28P01 wrong email or password (the same message and about the same time for both); CM001 too many failed attempts; 22023 missing input; 25001 called above READ COMMITTED.$$;

REVOKE ALL ON FUNCTION api.login(text, text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION api.login(text, text, text) TO chatmem_app;
