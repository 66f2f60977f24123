CREATE FUNCTION api.login(
    p_email             text,
    p_password          text,
    p_anonymous_user_id text DEFAULT NULL
)
RETURNS TABLE (user_id uuid, name text, email text, token text, refresh_token text,
               expires_at timestamptz, migrated_sessions integer)
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE
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

    SELECT u.* INTO v_user FROM public.users AS u WHERE lower(u.email) = lower(v_email);
    IF NOT FOUND THEN
        -- Pay for one bcrypt anyway, so an unknown email takes as long as a
        -- wrong password and timing does not tell which emails exist.
        PERFORM chatmem_internal.crypt(p_password,
                                       chatmem_internal.bcrypt_salt((chatmem_internal.settings()).bcrypt_cost));
    END IF;
    -- crypt() of a NULL hash is NULL: "IS NOT TRUE" treats that as a mismatch.
    IF (chatmem_internal.crypt(p_password, v_user.password_hash) = v_user.password_hash) IS NOT TRUE THEN
        RAISE EXCEPTION USING
            ERRCODE = '28P01',
            MESSAGE = 'invalid email or password',
            HINT = 'Check the email and the password, or register if you have no account.';
    END IF;

    SELECT * INTO v_tokens FROM chatmem_internal.issue_tokens(v_user.id, gen_random_uuid());
    v_claimed := chatmem_internal.claim_guest_sessions(v_user.id, v_guest_id, 'login');

    RETURN QUERY SELECT v_user.id, v_user.name, v_user.email, v_tokens.token, v_tokens.refresh_token,
                        v_tokens.expires_at, v_claimed;
END
$$;

COMMENT ON FUNCTION api.login(text, text, text) IS
$$Sign in with email (any case) and password; claim the guest's sessions.

Returns the user, a new access token (valid until expires_at) and refresh token, and migrated_sessions: how many sessions of p_anonymous_user_id (the guest id used before logging in; NULL, empty or 'anonymous' claims nothing) became the user's, exactly as api.register_user claims them (audit method 'login').
Errors: 28P01 wrong email or password (the same message and about the same time for both); 22023 missing input; 25001 called above READ COMMITTED.$$;

REVOKE ALL ON FUNCTION api.login(text, text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION api.login(text, text, text) TO chatmem_app;
