-- The live access token a call acts with, or 28000 with api.require_user's
-- own message (NULL, empty, unknown, expired, revoked, or a refresh token).
CREATE FUNCTION chatmem_internal.access_token(p_token text)
RETURNS public.auth_tokens
LANGUAGE plpgsql STABLE SECURITY INVOKER
AS $$
DECLARE
    v_token public.auth_tokens;
BEGIN
    SELECT t.* INTO v_token
      FROM public.auth_tokens AS t
     WHERE t.token_hash = chatmem_internal.token_hash(p_token)
       AND t.kind = 'access'
       AND t.revoked_at IS NULL
       AND t.expires_at > now();
    IF NOT FOUND THEN
        RAISE EXCEPTION USING
            ERRCODE = '28000',
            MESSAGE = 'access token is missing, invalid, expired or revoked',
            HINT = 'Log in again, or exchange your refresh token with api.refresh.';
    END IF;
    RETURN v_token;
END
$$;
COMMENT ON FUNCTION chatmem_internal.access_token(text) IS
    'The auth_tokens row of a live access token; 28000 otherwise.';

-- Revoke every token family of a user but p_keep_family (NULL: every one),
-- exactly, while api.refresh may be rotating any of them.
--
-- The race: a refresh spends its token and inserts the family's next pair in
-- one transaction.  A plain UPDATE ... WHERE user_id = ... would wait for a
-- refresh in flight to commit, revoke the token it spent, and miss the pair
-- it inserted (not in the UPDATE's snapshot): a live family left behind.
--
-- The design: api.refresh rotates a family only while it holds the family's
-- advisory lock ('chatmem token family ' || family_id).  For each family
-- found live, this takes the same lock, then revokes every unrevoked token of
-- the family in a new statement, whose snapshot therefore holds everything a
-- finished refresh inserted.  A refresh that comes later finds its token
-- revoked (it waits on this transaction's row lock, then re-checks) and fails
-- with 28000; if this transaction rolls back, it goes ahead.  So once a
-- family is revoked here, its lock is no longer needed, and it is released
-- at once: the lock table holds one family lock of this call at a time, so a
-- user with thousands of logins (each a family) cannot exhaust it, and no
-- lock order between families is needed.  The lock is session-level for that
-- reason (a transaction-scoped one could not be released early), and is
-- released on every error path below.
--
-- Lock order, kept by every caller: an email's turn and a hashing slot
-- (advisory, transaction-scoped) come before this; a lock on the users row
-- that conflicts with a refresh's foreign-key check (FOR UPDATE, in
-- api.delete_account) comes after, since a refresh holding its family's lock
-- takes FOR KEY SHARE on that row.  A refresh never waits for anything this
-- holds while this waits for the refresh's family: this holds row locks only
-- in families it has released, and a refresh takes row locks only in its own.
--
-- A family that starts after the families are listed (a new login) is not
-- revoked: api.change_password and api.reset_password hold the email's turn,
-- which logins take too, so none can start meanwhile; for
-- api.logout_everywhere a login that starts meanwhile comes after it.
-- Requires READ COMMITTED (a new snapshot per statement).
CREATE FUNCTION chatmem_internal.revoke_token_families(p_user_id uuid, p_keep_family uuid)
RETURNS integer
LANGUAGE plpgsql VOLATILE SECURITY INVOKER
AS $$
DECLARE
    v_family  uuid;
    v_next    bigint;
    v_key     bigint;  -- the family lock held right now, if any
    v_live    boolean;
    v_revoked integer := 0;
BEGIN
    -- One block (one subtransaction) around the whole loop, not one per
    -- family: thousands of subtransactions would overflow the backend's
    -- subtransaction cache and slow every other session's snapshots.
    BEGIN
        FOR v_family IN
            SELECT DISTINCT t.family_id
              FROM public.auth_tokens AS t
             WHERE t.user_id = p_user_id AND t.revoked_at IS NULL
               AND t.family_id IS DISTINCT FROM p_keep_family
             ORDER BY t.family_id
        LOOP
            v_next := hashtextextended('chatmem token family ' || v_family::text, 0);
            PERFORM pg_advisory_lock(v_next);
            v_key := v_next;
            WITH revoked AS (
                UPDATE public.auth_tokens AS t
                   SET revoked_at = now()
                 WHERE t.family_id = v_family AND t.user_id = p_user_id AND t.revoked_at IS NULL
                RETURNING t.expires_at > now() AND t.used_at IS NULL AS was_live
            )
            SELECT coalesce(bool_or(revoked.was_live), false) INTO v_live FROM revoked;
            PERFORM pg_advisory_unlock(v_key);
            v_key := NULL;
            IF v_live THEN
                v_revoked := v_revoked + 1;
            END IF;
        END LOOP;
    EXCEPTION WHEN query_canceled OR others THEN
        -- A session-level lock outlives the transaction: never leave one
        -- behind (a cancel or a statement timeout included).
        IF v_key IS NOT NULL THEN
            PERFORM pg_advisory_unlock(v_key);
        END IF;
        RAISE;
    END;
    RETURN v_revoked;
END
$$;
COMMENT ON FUNCTION chatmem_internal.revoke_token_families(uuid, uuid) IS
    'Revoke every token family of the user except p_keep_family, exact while api.refresh rotates them; returns how many families had a live token.';
