CREATE FUNCTION api.register_user(
    p_name              text,
    p_email             text,
    p_password          text,
    p_anonymous_user_id text DEFAULT NULL
)
RETURNS TABLE (user_id uuid, name text, email text, created_at timestamptz, token text,
               refresh_token text, migrated boolean, migrated_sessions integer, expires_at timestamptz)
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
-- Secrets are arguments here: nothing this call raises reaches the server
-- log (see api.login for why both settings are needed).
SET log_min_error_statement = panic
SET log_min_messages = panic
AS $$
#variable_conflict use_column
DECLARE
    v_settings public.chatmem_settings := chatmem_internal.settings();
    v_name     text := btrim(p_name);
    v_email    text := btrim(p_email);
    v_guest_id text;
    v_user     public.users;
    v_tokens   record;
    v_claimed  integer;
BEGIN
    -- First, before any other work: an oversized email is not worth reading.
    IF char_length(v_email) > 254 THEN
        PERFORM chatmem_internal.check_email(v_email);
    END IF;
    PERFORM chatmem_internal.require_read_committed('api.register_user');
    IF v_name IS NULL OR v_name = '' OR char_length(v_name) > 200 OR v_name ~ '[[:cntrl:]]' THEN
        PERFORM chatmem_internal.invalid('p_name',
            CASE WHEN v_name IS NULL THEN 'is required'
                 WHEN v_name = '' THEN 'is empty'
                 WHEN v_name ~ '[[:cntrl:]]' THEN 'contains control characters'
                 ELSE format('is %s characters long; the limit is 200', char_length(v_name)) END,
            'Give a name of 1 to 200 characters.');
    END IF;
    PERFORM chatmem_internal.check_email(v_email);
    PERFORM chatmem_internal.check_new_password(p_password, v_settings.password_min_length);
    v_guest_id := chatmem_internal.claimable_guest_id(p_anonymous_user_id);

    -- bcrypt first, outside any row lock: it is the slow part, bounded by
    -- the hashing slots (CM004 when none frees up in time).  Then one insert
    -- decides the race between registrations of the same email in any case.
    PERFORM chatmem_internal.take_hash_slot();
    INSERT INTO public.users AS u (name, email, password_hash)
    VALUES (v_name, v_email,
            chatmem_internal.crypt(p_password, chatmem_internal.bcrypt_salt(v_settings.bcrypt_cost)))
    ON CONFLICT ((lower(email))) DO NOTHING
    RETURNING u.* INTO v_user;
    IF NOT FOUND THEN
        RAISE EXCEPTION USING
            ERRCODE = '23505',
            MESSAGE = 'p_email: an account with this email already exists',
            HINT = 'Log in with api.login instead (pass the guest id there to keep the guest''s sessions).';
    END IF;

    SELECT * INTO v_tokens FROM chatmem_internal.issue_tokens(v_user.id, gen_random_uuid());
    v_claimed := chatmem_internal.claim_guest_sessions(v_user.id, v_guest_id, 'register');

    RETURN QUERY SELECT v_user.id, v_user.name, v_user.email, v_user.created_at,
                        v_tokens.token, v_tokens.refresh_token, v_claimed > 0, v_claimed, v_tokens.expires_at;
END
$$;

COMMENT ON FUNCTION api.register_user(text, text, text, text) IS
$$Create an account, sign it in, and claim the guest's sessions, in one transaction.

p_name: 1-200 characters after trimming. p_email: trimmed, local@domain.tld, at most 254 characters, unique without regard to case. p_password: at least the settings' password_min_length (default 8) characters and at most 72 bytes (bcrypt reads no further); stored as a bcrypt hash.
p_anonymous_user_id: the guest id the visitor used before signing up (NULL, empty or 'anonymous' claims nothing). Every session with user_id NULL and that guest id becomes the new user's, with its messages and Q&A pairs; the anonymousUserId key leaves its metadata; an audit row goes to session_claims (method 'register'). Should the claim fail, registration still succeeds with migrated = false and a WARNING.
Returns the user, an access token and a refresh token (shown only here), migrated and migrated_sessions, and expires_at: when the access token expires, as api.login reports it (last, so callers reading the older columns by position are unaffected).
Nothing this call raises reaches the server log.
Errors: 22023 invalid input (an email over 254 characters is refused before anything else); 23505 email already registered; CM004 too many passwords being hashed at once (retry shortly); 25001 called at an isolation level above READ COMMITTED.$$;

REVOKE ALL ON FUNCTION api.register_user(text, text, text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION api.register_user(text, text, text, text) TO chatmem_app;
