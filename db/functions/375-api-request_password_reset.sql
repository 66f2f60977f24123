CREATE FUNCTION api.request_password_reset(p_email text)
RETURNS text
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_settings   public.chatmem_settings := chatmem_internal.settings();
    v_email      text := lower(btrim(p_email));
    v_email_hash bytea;
    v_user_id    uuid;
    v_token      text := encode(chatmem_internal.random_bytes(32), 'hex');
BEGIN
    -- First, before any other work: an oversized email is not worth reading.
    IF char_length(v_email) > 254 THEN
        PERFORM chatmem_internal.check_email(v_email);
    END IF;
    PERFORM chatmem_internal.require_read_committed('api.request_password_reset');
    PERFORM chatmem_internal.check_email(v_email);
    v_email_hash := sha256(convert_to(v_email, 'UTF8'));

    -- The answer must not tell whether the email has an account, neither by
    -- its shape nor by its time.  So both cases do the same work: the same
    -- token, the same insert (an unknown email's row has no user: a decoy
    -- that resets nothing), the same cap, the same clean-up, and the same
    -- commit with its WAL flush, which a path that wrote nothing would skip
    -- (that alone would tell them apart: milliseconds against microseconds).
    --
    -- Requests for one email take turns (a transaction-scoped advisory lock
    -- keyed by it), and each looks the account up and counts the email's rows
    -- after its turn came (a fresh snapshot per statement at READ COMMITTED):
    -- so the cap is exact however many requests arrive at once, and a request
    -- never inserts a row for an account that api.delete_account (which takes
    -- this turn too) has just erased.
    PERFORM pg_advisory_xact_lock(hashtextextended('chatmem password reset ' || v_email, 0));
    SELECT u.id INTO v_user_id FROM public.users AS u WHERE lower(u.email) = v_email;
    INSERT INTO public.password_reset_tokens (token_hash, email_hash, user_id, expires_at)
    VALUES (chatmem_internal.token_hash(v_token), v_email_hash, v_user_id, now() + v_settings.password_reset_ttl);

    -- At most 3 per email: the newest three stay, a fourth request
    -- invalidates the oldest.  Ids come from an identity, drawn in the
    -- email's turn, so they order the requests as they took turns.
    DELETE FROM public.password_reset_tokens AS r
     WHERE r.email_hash = v_email_hash
       AND r.id < (SELECT min(newest.id)
                     FROM (SELECT n.id FROM public.password_reset_tokens AS n
                            WHERE n.email_hash = v_email_hash
                            ORDER BY n.id DESC LIMIT 3) AS newest);

    -- Clean-up as we go: two expired rows of anyone's for each new row, so
    -- the table holds little more than the live tokens (rows another call is
    -- deleting are skipped, never waited for).
    DELETE FROM public.password_reset_tokens AS r
     WHERE r.id IN (SELECT x.id FROM public.password_reset_tokens AS x
                     WHERE x.expires_at <= now()
                     ORDER BY x.expires_at LIMIT 2
                       FOR UPDATE SKIP LOCKED);
    RETURN v_token;
END
$$;

COMMENT ON FUNCTION api.request_password_reset(text) IS
$$Ask for a password reset for an email (any case): returns a single-use reset token (32 random bytes in hex; only its SHA-256 is stored) for the caller to send to that address, valid for chatmem_settings.password_reset_ttl (default 30 minutes); api.reset_password takes it.
For an email with no account it returns a token of the same shape that resets nothing, in the same time: the answer never tells whether an account exists. Send it all the same.
At most 3 tokens per email are valid at once: a fourth request invalidates the oldest (exact under concurrency). Works for accounts made through an identity provider too: the reset gives them a password.
Errors: 22023 a missing or malformed email, or one over 254 characters (refused before anything else); 25001 called above READ COMMITTED.$$;

REVOKE ALL ON FUNCTION api.request_password_reset(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION api.request_password_reset(text) TO chatmem_app;
