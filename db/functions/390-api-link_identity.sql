CREATE FUNCTION api.link_identity(
    p_provider          text,
    p_subject           text,
    p_email             text,
    p_name              text,
    p_anonymous_user_id text DEFAULT NULL
)
RETURNS TABLE (user_id uuid, created boolean, migrated_sessions integer, token text,
               refresh_token text, expires_at timestamptz)
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE
    v_settings public.chatmem_settings := chatmem_internal.settings();
    v_email    text := btrim(p_email);
    v_name     text := btrim(p_name);
    v_guest_id text;
    v_user     public.users;
    v_created  boolean := false;
    v_tokens   record;
    v_claimed  integer;
BEGIN
    -- First, before any other work: an oversized email is not worth reading.
    IF char_length(v_email) > 254 THEN
        PERFORM chatmem_internal.check_email(v_email);
    END IF;
    PERFORM chatmem_internal.require_read_committed('api.link_identity');
    p_provider := chatmem_internal.check_id(p_provider, 'p_provider');
    p_subject := chatmem_internal.check_id(p_subject, 'p_subject');
    PERFORM chatmem_internal.check_email(v_email);
    -- Providers need not send a name: the email's local part stands in.
    IF v_name IS NULL OR v_name = '' THEN
        v_name := left(split_part(v_email, '@', 1), 200);
    ELSIF char_length(v_name) > 200 OR v_name ~ '[[:cntrl:]]' THEN
        PERFORM chatmem_internal.invalid('p_name',
            CASE WHEN v_name ~ '[[:cntrl:]]' THEN 'contains control characters'
                 ELSE format('is %s characters long; the limit is 200', char_length(v_name)) END,
            'Give a name of 1 to 200 characters, or NULL to use the email''s local part.');
    END IF;
    v_guest_id := chatmem_internal.claimable_guest_id(p_anonymous_user_id);

    -- Sign-ins of one identity take turns, so two first sign-ins at once
    -- make one account, not one each.  (Two identities whose key texts
    -- collide only take turns too.)
    PERFORM pg_advisory_xact_lock(hashtextextended('chatmem identity ' || p_provider || ' ' || p_subject, 0));

    -- FOR KEY SHARE on the account: an erasure in flight (api.delete_account,
    -- which locks the row FOR UPDATE) either waits for this sign-in, and then
    -- erases what it brought too, or goes first, and then the row is gone and
    -- this makes a new account.
    SELECT u.* INTO v_user
      FROM public.user_identities AS i
      JOIN public.users AS u ON u.id = i.user_id
     WHERE i.provider = p_provider AND i.subject = p_subject
       FOR KEY SHARE OF u;
    IF FOUND THEN
        UPDATE public.user_identities AS i SET last_used_at = now()
         WHERE i.provider = p_provider AND i.subject = p_subject;
    ELSE
        -- A new identity: a new account without a password, in one statement
        -- that decides the race with a registration of the same email (the
        -- unique index on lower(email)).  Looped only for an account that is
        -- erased between the two statements below: then the email is free.
        LOOP
            INSERT INTO public.users AS u (name, email, password_hash)
            VALUES (v_name, v_email, NULL)
            ON CONFLICT ((lower(email))) DO NOTHING
            RETURNING u.* INTO v_user;
            v_created := FOUND;
            EXIT WHEN v_created;
            -- The email has an account already.  Attaching this identity to
            -- it lets whoever controls the identity into that account: only
            -- when the DBA says the providers verify emails.
            IF NOT v_settings.link_identity_by_email THEN
                RAISE EXCEPTION USING
                    ERRCODE = '23505',
                    MESSAGE = 'p_email: an account with this email already exists',
                    HINT = 'Sign in to that account with its password; linking by email needs chatmem_settings.link_identity_by_email.';
            END IF;
            SELECT u.* INTO v_user FROM public.users AS u WHERE lower(u.email) = lower(v_email)
               FOR KEY SHARE;
            EXIT WHEN FOUND;
        END LOOP;
        INSERT INTO public.user_identities (provider, subject, user_id)
        VALUES (p_provider, p_subject, v_user.id);
    END IF;

    SELECT * INTO v_tokens FROM chatmem_internal.issue_tokens(v_user.id, gen_random_uuid());
    v_claimed := chatmem_internal.claim_guest_sessions(v_user.id, v_guest_id, 'identity');

    RETURN QUERY SELECT v_user.id, v_created, v_claimed, v_tokens.token, v_tokens.refresh_token,
                        v_tokens.expires_at;
END
$$;

COMMENT ON FUNCTION api.link_identity(text, text, text, text, text) IS
$$Sign in through an external identity provider, for a backend that verified the provider's ID token itself (signature, iss, aud, exp): EXECUTE for members of chatmem_identity_broker only.

Finds the account linked to (p_provider, p_subject) (the token's iss and sub, each 1-255 characters), or creates one with p_email (a verified email: trimmed, local@domain.tld, at most 254 characters) and p_name (1-200 characters; NULL or blank: the email's local part) and no password (api.login refuses it with 28P01). In the same transaction it claims the sessions of p_anonymous_user_id exactly as api.register_user does (audit method 'identity'), and issues a token pair.
An email that already has an account (with a password or not) is linked to it only when chatmem_settings.link_identity_by_email is true; otherwise 23505. Returns user_id, created (true for a new account), migrated_sessions, the tokens and expires_at.
Errors: 22023 invalid input; 23505 an account with this email exists and linking by email is off; 25001 called above READ COMMITTED; 42501 the caller is not a member of chatmem_identity_broker.$$;

REVOKE ALL ON FUNCTION api.link_identity(text, text, text, text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION api.link_identity(text, text, text, text, text) TO chatmem_identity_broker;
-- Schema api is rebuilt on every migrate (000-schemas.sql grants its USAGE
-- to chatmem_app and chatmem_admin); the broker needs it for this one
-- function, and gets nothing else in api.
GRANT USAGE ON SCHEMA api TO chatmem_identity_broker;
