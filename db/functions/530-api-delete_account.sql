CREATE FUNCTION api.delete_account(p_token text, p_password text)
RETURNS integer
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
-- Secrets are arguments here: nothing this call raises reaches the server
-- log (see api.login for why both settings are needed).
SET log_min_error_statement = panic
SET log_min_messages = panic
AS $$
DECLARE
    v_token        public.auth_tokens;
    v_user         public.users;
    v_email        text;
    v_signed_in_at timestamptz;
    v_sessions     integer;
BEGIN
    PERFORM chatmem_internal.require_read_committed('api.delete_account');
    v_token := chatmem_internal.access_token(p_token);

    -- The email's turn, as api.login takes it: a wrong password is a guess
    -- like a failed login (counted, throttled, exact under concurrency), and
    -- logins, password changes and resets of this account wait for the
    -- erasure, then find no account.
    SELECT u.* INTO v_user FROM public.users AS u WHERE u.id = v_token.user_id;
    v_email := lower(v_user.email);
    PERFORM chatmem_internal.email_turn(v_email);
    v_token := chatmem_internal.access_token(p_token);  -- again, in the turn
    SELECT u.* INTO v_user FROM public.users AS u WHERE u.id = v_token.user_id;

    IF v_user.password_hash IS NOT NULL THEN
        -- A NULL password is no guess: refused without a count or a bcrypt.
        IF p_password IS NULL OR p_password = '' THEN
            RAISE EXCEPTION USING
                ERRCODE = '28P01',
                MESSAGE = 'p_password: wrong password',
                HINT = 'Give the account''s password to erase it.';
        END IF;
        PERFORM chatmem_internal.refuse_if_throttled(v_email);
        PERFORM chatmem_internal.take_hash_slot();
        IF NOT chatmem_internal.check_password(p_password, v_user.password_hash) THEN
            PERFORM chatmem_internal.count_login_failure(v_email);
            RAISE EXCEPTION USING
                ERRCODE = '28P01',
                MESSAGE = 'p_password: wrong password',
                HINT = 'Give the account''s password to erase it.';
        END IF;
    ELSE
        -- An account made through an identity provider has no password to
        -- prove; a recent sign-in proves the person instead.  Recent is the
        -- sign-in (the start of the token's family), not the last refresh: a
        -- stolen refresh token must not be enough.
        IF p_password IS NOT NULL THEN
            RAISE EXCEPTION USING
                ERRCODE = '28P01',
                MESSAGE = 'p_password: this account has no password',
                HINT = 'Pass NULL, with a token from a sign-in of the last 5 minutes.';
        END IF;
        SELECT min(t.created_at) INTO v_signed_in_at
          FROM public.auth_tokens AS t WHERE t.family_id = v_token.family_id;
        IF v_signed_in_at <= now() - interval '5 minutes' THEN
            RAISE EXCEPTION USING
                ERRCODE = '28000',
                MESSAGE = 'erasing an account without a password needs a sign-in of the last 5 minutes',
                HINT = 'Sign in again through your identity provider, then erase the account with the new token.';
        END IF;
    END IF;

    -- Every token family first, with each family's lock (see
    -- chatmem_internal.revoke_token_families): a refresh in flight finishes
    -- before, and one that comes later is refused, instead of inserting
    -- tokens for an account that is going away.  Then a password reset
    -- request for the email waits (its turn), so none inserts a row for this
    -- account meanwhile; then the account's row, FOR UPDATE: a sign-in
    -- through a provider in flight (api.link_identity holds it FOR KEY SHARE)
    -- has committed what it claimed, and a later one waits and then finds no
    -- account.  This order (family locks before the row lock) is the one
    -- that cannot deadlock with a refresh, whose token insert takes FOR KEY
    -- SHARE on the row while it holds its family's lock.
    PERFORM chatmem_internal.revoke_token_families(v_user.id, NULL);
    PERFORM pg_advisory_xact_lock(hashtextextended('chatmem password reset ' || v_email, 0));
    PERFORM FROM public.users AS u WHERE u.id = v_user.id FOR UPDATE;

    -- Sessions go with their messages and Q&A pairs (cascades); deleted
    -- before the user, whose foreign key would otherwise keep them as
    -- orphans.  Then every row that names the account: its claim audit, its
    -- failed logins, reset tokens asked for its email (also before it had an
    -- account), and the user, with its tokens, identities and reset tokens
    -- (cascades).
    DELETE FROM public.conversation_sessions AS s WHERE s.user_id = v_user.id;
    GET DIAGNOSTICS v_sessions = ROW_COUNT;
    DELETE FROM public.session_claims AS c WHERE c.user_id = v_user.id;
    DELETE FROM public.login_failures AS f WHERE f.email = v_email;
    DELETE FROM public.password_reset_tokens AS r
     WHERE r.email_hash = sha256(convert_to(v_email, 'UTF8')) OR r.user_id = v_user.id;
    DELETE FROM public.users AS u WHERE u.id = v_user.id;
    RETURN v_sessions;
END
$$;

COMMENT ON FUNCTION api.delete_account(text, text) IS
$$Erase the access token's user and everything that is theirs (GDPR article 17), after checking the password; returns how many sessions were erased.

Erased: the account, its sessions with their messages and Q&A pairs, its tokens (every login is revoked first, exactly even while being refreshed), identities, password reset tokens, failed-login rows, and the claim audit rows naming it. Nothing of the account remains in any table; other accounts' and guests' data is untouched (a guest's unclaimed sessions stay the guest's: erase them with api.delete_guest_data).
p_password: the account's password (a wrong one counts as a failed login, as in api.login; NULL is refused too). An account made through an identity provider has none: pass NULL, with a token from a sign-in (api.link_identity) of the last 5 minutes (a refresh does not renew it). Nothing this call raises reaches the server log.
Errors: 28000 missing, invalid, expired or revoked token, or (no password) a sign-in older than 5 minutes; 28P01 wrong or missing password (or a password given for an account without one); CM001 too many failed attempts; CM004 too many passwords being checked at once (retry shortly); 25001 called above READ COMMITTED.$$;

REVOKE ALL ON FUNCTION api.delete_account(text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION api.delete_account(text, text) TO chatmem_app;
