CREATE FUNCTION api.login(
    p_email             text,
    p_password          text,
    p_anonymous_user_id text DEFAULT NULL
)
RETURNS TABLE (user_id uuid, name text, email text, token text, refresh_token text,
               expires_at timestamptz, migrated_sessions integer)
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
-- Secrets are arguments here.  Nothing this call raises reaches the server
-- log: neither the statement (log_min_error_statement) nor the message,
-- whose CONTEXT would carry the bound parameters if the caller has set
-- log_parameter_max_length_on_error (any role may).  The caller still gets
-- every error in full.
SET log_min_error_statement = panic
SET log_min_messages = panic
AS $$
#variable_conflict use_column
DECLARE
    v_settings   public.chatmem_settings := chatmem_internal.settings();
    v_email      text := lower(btrim(p_email));
    v_guest_id   text;
    v_user       public.users;
    v_valid      boolean;
    v_tokens     record;
    v_claimed    integer;
BEGIN
    -- First, before any other work: an oversized email can neither be
    -- counted (it would not fit the index) nor be worth reading.
    IF char_length(v_email) > 254 THEN
        PERFORM chatmem_internal.invalid('p_email',
            format('is %s characters long; the limit is 254', char_length(v_email)),
            'Give the email you registered with.');
    END IF;
    PERFORM chatmem_internal.require_read_committed('api.login');
    IF v_email IS NULL OR v_email = '' THEN
        PERFORM chatmem_internal.invalid('p_email', 'is required', 'Give the email you registered with.');
    END IF;
    IF p_password IS NULL OR p_password = '' THEN
        PERFORM chatmem_internal.invalid('p_password', 'is required', 'Give your password.');
    END IF;
    v_guest_id := chatmem_internal.claimable_guest_id(p_anonymous_user_id);

    -- Throttle guessing per email (known or not, so this tells nothing about
    -- which emails exist).  Attempts for one email take turns, and each counts
    -- the failures committed before its turn, so however many arrive at once,
    -- at most login_failure_limit of them reach bcrypt per window; the rest
    -- get CM001 cheaply (chatmem_internal.refuse_if_throttled says how).
    PERFORM chatmem_internal.email_turn(v_email);
    PERFORM chatmem_internal.refuse_if_throttled(v_email);

    -- CM004 when the server is busy hashing: decided before the account is
    -- looked up, so it tells nothing about it.
    PERFORM chatmem_internal.take_hash_slot();

    -- Every path spends what one bcrypt at the current cost takes, so timing
    -- does not tell whether the email has an account, or an account with a
    -- password, also right after bcrypt_cost was raised: no row (unknown
    -- email) and a NULL hash (an account made through an identity provider)
    -- both pay a dummy bcrypt; a cheaper hash is padded (see
    -- chatmem_internal.check_password).
    SELECT u.* INTO v_user FROM public.users AS u WHERE lower(u.email) = v_email;
    v_valid := chatmem_internal.check_password(p_password, v_user.password_hash);
    IF v_valid AND chatmem_internal.bcrypt_cost(v_user.password_hash) IS DISTINCT FROM v_settings.bcrypt_cost THEN
        -- Stored at another cost (or by another algorithm): rehash now,
        -- while the password is at hand.
        UPDATE public.users AS u
           SET password_hash = chatmem_internal.hash_password(p_password),
               updated_at = now()
         WHERE u.id = v_user.id;
    END IF;

    IF NOT v_valid THEN
        -- The failure must be counted although this call fails: written in
        -- a transaction of its own.  This call holds the email's advisory
        -- lock, which that write does not need, and no row lock.
        PERFORM chatmem_internal.count_login_failure(v_email);
        RAISE EXCEPTION USING
            ERRCODE = '28P01',
            MESSAGE = 'invalid email or password',
            HINT = 'Check the email and the password, or register if you have no account.';
    END IF;

    DELETE FROM public.login_failures AS f WHERE f.email = v_email;
    SELECT * INTO v_tokens FROM chatmem_internal.issue_tokens(v_user.id, gen_random_uuid());
    v_claimed := chatmem_internal.claim_guest_sessions(v_user.id, v_guest_id, 'login');

    RETURN QUERY SELECT v_user.id, v_user.name, v_user.email, v_tokens.token, v_tokens.refresh_token,
                        v_tokens.expires_at, v_claimed;
END
$$;

COMMENT ON FUNCTION api.login(text, text, text) IS
$$Sign in with email (any case) and password; claim the guest's sessions.

Returns the user, a new access token (valid until expires_at) and refresh token, and migrated_sessions: how many sessions of p_anonymous_user_id (the guest id used before logging in; NULL, empty or 'anonymous' claims nothing) became the user's, exactly as api.register_user claims them (audit method 'login').
After chatmem_settings.login_failure_limit (default 5) failures for one email within login_failure_window (default 15 minutes), further attempts are refused with CM001 until the window has passed; a successful login clears the count. Exact under concurrency: attempts for one email take turns, and at most login_failure_limit of them per window are checked against the password.
A password stored at another bcrypt cost than chatmem_settings.bcrypt_cost is rehashed at the current cost by a successful login. Unknown emails, wrong passwords and accounts without a password (made through an identity provider: refused like a wrong password) take the time of one bcrypt at the current cost. Nothing this call raises reaches the server log.
Errors: 28P01 wrong email or password, or an account without a password (the same message and about the same time for each); CM001 too many failed attempts; CM004 too many passwords being checked at once (retry shortly); 22023 missing input or an email over 254 characters; 25001 called above READ COMMITTED.$$;

REVOKE ALL ON FUNCTION api.login(text, text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION api.login(text, text, text) TO chatmem_app;
