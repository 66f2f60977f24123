-- Message allowances: the user turns a caller sent in the last 24 hours,
-- counted through the sessions the caller owns now.  A user's turns are those
-- of the user's sessions, the guest sessions it claimed included (a claim
-- moves the sessions, and their turns with them); a guest's, those of its
-- unclaimed sessions.  Nobody (no identity) has none.  A deleted session's
-- turns no longer count (docs/security.md says what that allows).
--
-- Two arms, one per kind of caller, each the form its index serves (the
-- caller's other arm finds its NULL key at once): the caller's sessions
-- active in the window, a range of conversation_sessions_user_activity_idx or
-- conversation_sessions_guest_activity_idx, since a session's updated_at is
-- never older than its newest message (api.add_message sets both in one
-- statement); then each session's user turns of the window, a range of
-- conversation_messages_user_turns_idx.  Plain SQL, not SECURITY DEFINER and
-- with no SET, so that the planner inlines it into the calling statement.
CREATE FUNCTION chatmem_internal.counted_turns(p_caller chatmem_internal.caller)
RETURNS TABLE(created_at timestamptz)
LANGUAGE sql STABLE SECURITY INVOKER
AS $$
    -- Each session's turns are a subquery of its own (OFFSET 0 keeps the
    -- planner from folding it into a join), ordered as the index is: so it
    -- is an index range of that one session, whatever the statistics say.
    -- Folded into a join, the plan depended on them: with those of an empty
    -- or new table, every call scanned all the messages.
    SELECT t.created_at
      FROM public.conversation_sessions AS s
     CROSS JOIN LATERAL (
            SELECT m.created_at
              FROM public.conversation_messages AS m
             WHERE m.session_id = s.session_id
               AND m.role = 'user'
               AND m.created_at > now() - interval '24 hours'
             ORDER BY m.created_at DESC
            OFFSET 0) AS t
     WHERE s.user_id = p_caller.user_id
       AND s.owner_deleted_at IS NULL
       AND s.updated_at > now() - interval '24 hours'
    UNION ALL
    SELECT t.created_at
      FROM public.conversation_sessions AS s
     CROSS JOIN LATERAL (
            SELECT m.created_at
              FROM public.conversation_messages AS m
             WHERE m.session_id = s.session_id
               AND m.role = 'user'
               AND m.created_at > now() - interval '24 hours'
             ORDER BY m.created_at DESC
            OFFSET 0) AS t
     WHERE s.user_id IS NULL
       AND s.owner_deleted_at IS NULL
       AND s.metadata ? 'anonymousUserId'
       AND s.metadata ->> 'anonymousUserId' = p_caller.guest_id
       AND s.updated_at > now() - interval '24 hours'
$$;
COMMENT ON FUNCTION chatmem_internal.counted_turns(chatmem_internal.caller) IS
    'The created_at of each user turn the caller sent in the last 24 hours (through the sessions it owns): what message allowances count.';

-- Whether the caller's counted turns have reached p_allowance: the test
-- api.add_message makes before every counted turn, stopping at the
-- p_allowance-th turn.  Its plan is pinned, as the guest cap's is (migration
-- 0016): generic (planned once per connection), index scans only.  Left to
-- the statistics, a table analyzed while empty or small (a new install, a
-- TRUNCATE) got a plan that read every message of the table on each call,
-- until the next ANALYZE.  (No jit = off: no disabled node is ever chosen
-- here, so no cost reaches jit_above_cost.)
CREATE FUNCTION chatmem_internal.allowance_reached(p_caller chatmem_internal.caller, p_allowance integer)
RETURNS boolean
LANGUAGE plpgsql STABLE SECURITY INVOKER
SET plan_cache_mode = force_generic_plan
SET enable_seqscan = off
SET enable_bitmapscan = off
AS $$
BEGIN
    RETURN EXISTS (SELECT FROM chatmem_internal.counted_turns(p_caller) AS t OFFSET p_allowance - 1);
END
$$;
COMMENT ON FUNCTION chatmem_internal.allowance_reached(chatmem_internal.caller, integer) IS
    'True when the caller sent p_allowance or more user turns in the last 24 hours (index ranges only, a pinned plan).';

-- The allowance that applies to a caller: chatmem_settings' per-day limit of
-- its kind, NULL for no limit (and always for nobody, who is not counted).
CREATE FUNCTION chatmem_internal.allowance_of(p_caller chatmem_internal.caller)
RETURNS integer
LANGUAGE sql STABLE SECURITY INVOKER
AS $$
    SELECT CASE WHEN p_caller.user_id IS NOT NULL THEN s.user_messages_per_day
                WHEN p_caller.guest_id IS NOT NULL THEN s.guest_messages_per_day END
      FROM public.chatmem_settings AS s
$$;
COMMENT ON FUNCTION chatmem_internal.allowance_of(chatmem_internal.caller) IS
    'How many user turns the caller may send in a rolling 24 hours (chatmem_settings); NULL for no limit.';

-- The refusal, once the caller's turns have reached p_allowance: CM003 with
-- when the next turn is allowed (the moment the p_allowance-th newest turn
-- leaves the window) in the message, in seconds too, which the gateway
-- answers as Retry-After.
CREATE FUNCTION chatmem_internal.allowance_exhausted(p_caller chatmem_internal.caller, p_allowance integer)
RETURNS void
LANGUAGE plpgsql STABLE SECURITY INVOKER
-- The same pinned plan as allowance_reached: refusals are cheap too.
SET plan_cache_mode = force_generic_plan
SET enable_seqscan = off
SET enable_bitmapscan = off
AS $$
DECLARE
    v_used    bigint;
    v_next    timestamptz;
    v_message text;
BEGIN
    SELECT count(*) INTO v_used FROM chatmem_internal.counted_turns(p_caller) AS t;
    SELECT t.created_at + interval '24 hours' INTO v_next
      FROM chatmem_internal.counted_turns(p_caller) AS t
     ORDER BY t.created_at DESC
    OFFSET p_allowance - 1 LIMIT 1;
    v_message := format('%s has sent %s messages in the last 24 hours, the allowance is %s; '
                        'the next message is allowed at %s, in %s seconds',
                        CASE WHEN p_caller.user_id IS NOT NULL THEN 'this account'
                             ELSE format('guest %s', p_caller.guest_id) END,
                        v_used, p_allowance,
                        to_char(v_next AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'),
                        greatest(1, ceil(extract(epoch FROM v_next - clock_timestamp())))::bigint);
    RAISE EXCEPTION USING
        ERRCODE = 'CM003',
        MESSAGE = v_message,
        HINT = CASE WHEN p_caller.user_id IS NOT NULL
                    THEN 'Wait until then; the allowance is chatmem_settings.user_messages_per_day.'
                    ELSE 'Sign up for more messages, or wait until then; the allowance is '
                         'chatmem_settings.guest_messages_per_day.' END;
END
$$;
COMMENT ON FUNCTION chatmem_internal.allowance_exhausted(chatmem_internal.caller, integer) IS
    'Raise CM003: the caller has sent its allowance of user turns in the last 24 hours; the message says when the next is allowed.';
