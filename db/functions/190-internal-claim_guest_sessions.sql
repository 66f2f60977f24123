-- The claim: every unowned session of the guest becomes the user's, the
-- guest key leaves its metadata, and an audit row is written, all in one
-- statement served by conversation_sessions_guest_idx.  Two claims racing
-- for one guest cannot both take a session: the second waits on the row
-- lock, re-checks user_id IS NULL on the new row version, and skips it.
--
-- A failed claim must not fail the registration or login around it: the
-- block below is a subtransaction, so an error undoes the whole claim (never
-- half of it) and leaves a WARNING and a count of 0.
CREATE FUNCTION chatmem_internal.claim_guest_sessions(p_user_id uuid, p_anonymous_user_id text, p_method text)
RETURNS integer
LANGUAGE plpgsql VOLATILE SECURITY INVOKER
AS $$
DECLARE
    v_claimed integer;
BEGIN
    IF p_anonymous_user_id IS NULL OR btrim(p_anonymous_user_id) = '' OR p_anonymous_user_id = 'anonymous' THEN
        RETURN 0;
    END IF;
    BEGIN
        WITH claimed AS (
            UPDATE public.conversation_sessions AS s
               SET user_id = p_user_id,
                   metadata = s.metadata - 'anonymousUserId',
                   updated_at = now()
             WHERE s.user_id IS NULL
               AND s.metadata ->> 'anonymousUserId' = p_anonymous_user_id
               AND s.owner_deleted_at IS NULL
            RETURNING s.session_id
        )
        INSERT INTO public.session_claims (session_id, anonymous_user_id, user_id, method)
        SELECT c.session_id, p_anonymous_user_id, p_user_id, p_method FROM claimed AS c;
        GET DIAGNOSTICS v_claimed = ROW_COUNT;
    EXCEPTION WHEN OTHERS THEN
        RAISE WARNING 'chatmem: claiming the sessions of guest % failed and was skipped: % (SQLSTATE %)',
            p_anonymous_user_id, SQLERRM, SQLSTATE;
        RETURN 0;
    END;
    RETURN v_claimed;
END
$$;
COMMENT ON FUNCTION chatmem_internal.claim_guest_sessions(uuid, text, text) IS
    'Give a guest''s unowned sessions to a user, with an audit row each; returns how many. Never raises.';
