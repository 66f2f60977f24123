-- The guest cap: at most chatmem_settings.guest_sessions_per_hour new
-- sessions per guest id in any hour.  It is a rule of the API, enforced by
-- the two functions that open sessions for a guest (api.create_or_get_session
-- and api.create_session), each in the statement that inserts the session:
--
--     PERFORM chatmem_internal.lock_guest_cap(v_guest);
--     INSERT ... SELECT ... WHERE NOT EXISTS (SELECT FROM chatmem_internal.guest_cap_reached(v_guest))
--
-- Until migration 0021 it was an AFTER INSERT trigger on the table.  That
-- cost about 110,000 instructions per new session (the trigger call and its
-- pinned settings, a statement of its own for the count: a third of the
-- hot path) and made every bulk load by the table's owner (a restore, an
-- import) take the cap's locks.  The application's role reaches the table
-- only through the API, so the rule loses nothing by living there; what the
-- owner writes directly is trusted, as every other direct write is.
--
-- Exact under concurrency: the bucket lock is taken by a statement before
-- the INSERT, and held to the end of the transaction.  The INSERT's snapshot
-- (a new one per statement at READ COMMITTED, which the API requires) is
-- taken after the lock was granted, so it sees every session of the guest
-- committed by an earlier holder; two calls for one guest cannot both count
-- the same free slot.

-- 256 buckets, so a transaction holds at most 256 cap locks whatever it
-- does (migration 0013): class 'chatmem guest cap', object = the bucket the
-- guest id hashes into.  Plain SQL: inlined into the caller's expression.
CREATE FUNCTION chatmem_internal.lock_guest_cap(p_guest_id text)
RETURNS void
LANGUAGE sql VOLATILE SECURITY INVOKER
AS $$
    SELECT pg_advisory_xact_lock(hashtext('chatmem guest cap'),
                                 (hashtextextended(p_guest_id, 0) & 255)::integer)
$$;
COMMENT ON FUNCTION chatmem_internal.lock_guest_cap(text) IS
    'Take the guest cap''s lock for this guest id (one of 256 transaction-scoped advisory-lock buckets) before counting its sessions.';

-- The guest's sessions created in the last hour: what the cap counts, in
-- one place for the test and for the refusal's wording.  Plain SQL, STABLE
-- and not STRICT, so that the planner inlines it into its callers.
CREATE FUNCTION chatmem_internal.guest_sessions_of_the_hour(p_guest_id text)
RETURNS SETOF timestamptz
LANGUAGE sql STABLE SECURITY INVOKER
AS $$
    SELECT c.created_at
      FROM public.conversation_sessions AS c
     WHERE c.user_id IS NULL
       AND c.metadata ->> 'anonymousUserId' = p_guest_id
       AND c.created_at > now() - interval '1 hour'
$$;
COMMENT ON FUNCTION chatmem_internal.guest_sessions_of_the_hour(text) IS
    'The created_at of each session this guest opened in the last hour (what the guest cap counts).';

-- One row (the cap) when the guest already has guest_sessions_per_hour
-- sessions created in the last hour, none otherwise: an index range of
-- conversation_sessions_guest_idx that stops at the cap-th row.  Plain SQL,
-- STABLE and not STRICT, so the planner inlines it into the INSERT that
-- uses it.  The callers pin its plan (generic, index scans only, no JIT:
-- see migration 0016 for what the statistics did to it otherwise).
CREATE FUNCTION chatmem_internal.guest_cap_reached(p_guest_id text)
RETURNS SETOF integer
LANGUAGE sql STABLE SECURITY INVOKER
AS $$
    SELECT st.guest_sessions_per_hour
      FROM public.chatmem_settings AS st
     WHERE EXISTS (SELECT FROM chatmem_internal.guest_sessions_of_the_hour(p_guest_id)
                   OFFSET st.guest_sessions_per_hour - 1)
$$;
COMMENT ON FUNCTION chatmem_internal.guest_cap_reached(text) IS
    'One row (the cap) when this guest opened guest_sessions_per_hour sessions or more in the last hour; no row otherwise.';

-- The refusal, worded with the exact count (taken only here, when refusing).
CREATE FUNCTION chatmem_internal.refuse_guest_session(p_guest_id text)
RETURNS void
LANGUAGE plpgsql STABLE SECURITY INVOKER
AS $$
DECLARE
    v_cap   integer;
    v_count bigint;
BEGIN
    SELECT st.guest_sessions_per_hour INTO v_cap FROM public.chatmem_settings AS st;
    SELECT count(*) INTO v_count FROM chatmem_internal.guest_sessions_of_the_hour(p_guest_id);
    RAISE EXCEPTION USING
        ERRCODE = 'CM002',
        MESSAGE = format('guest %s has opened %s sessions in the last hour; the limit is %s',
                         p_guest_id, v_count, v_cap),
        HINT = 'Reuse an existing session, register, or wait; the limit is chatmem_settings.guest_sessions_per_hour.';
END
$$;
COMMENT ON FUNCTION chatmem_internal.refuse_guest_session(text) IS
    'Raise CM002 for a guest past the guest cap, naming its sessions of the last hour and the limit.';
