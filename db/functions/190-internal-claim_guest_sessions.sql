-- A guest's own sessions: unowned (user_id NULL, never a deleted user's) and
-- carrying its id.  This is what a claim moves, what api.preview_claim shows
-- before it, and what a guest lists (api.list_conversations): one predicate,
-- so the three cannot drift apart.
--
-- A plain SQL expression, so the planner inlines it where it is called: the
-- caller's WHERE gets these three conditions themselves, as before they were
-- shared.  They match the partial index on the guest id
-- (conversation_sessions_guest_idx; the list adds a condition to reach
-- conversation_sessions_guest_activity_idx), and an UPDATE or DELETE
-- re-checks them on the newest row version after waiting for a lock.  Hence
-- no "IS TRUE" (a test of the whole expression could use no index): NULL, for
-- a NULL guest id, counts as false in a WHERE.
CREATE FUNCTION chatmem_internal.guest_owns(p_session public.conversation_sessions, p_guest_id text)
RETURNS boolean
LANGUAGE sql IMMUTABLE SECURITY INVOKER
AS $$
    SELECT p_session.user_id IS NULL
       AND p_session.owner_deleted_at IS NULL
       AND p_session.metadata ->> 'anonymousUserId' = p_guest_id
$$;
COMMENT ON FUNCTION chatmem_internal.guest_owns(public.conversation_sessions, text) IS
    'True for an unclaimed session of this guest (what a claim moves, what the guest lists); NULL for a NULL guest id.';

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
             WHERE chatmem_internal.guest_owns(s, p_anonymous_user_id)
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
