CREATE FUNCTION api.add_message(p_session_id text, p_user_id text, p_role text, p_content text)
RETURNS bigint
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_caller chatmem_internal.caller := chatmem_internal.resolve_caller(p_user_id);
    v_id     bigint;
    v_allowance integer;
BEGIN
    p_session_id := chatmem_internal.check_id(p_session_id, 'p_session_id');
    IF p_role IS NULL OR p_role NOT IN ('user', 'assistant', 'system') THEN
        PERFORM chatmem_internal.invalid('p_role',
                                         CASE WHEN p_role IS NULL THEN 'is required'
                                              ELSE format('%L is not a role', p_role) END,
                                         'Use user, assistant or system.');
    END IF;
    p_content := chatmem_internal.check_text(p_content, 'p_content');
    -- A chat product feeds this history back to a language model: only the
    -- backend that talks to the model may put words in its mouth (or in the
    -- system prompt).  The caller's own role decides, not the owner's.
    IF p_role <> 'user'
       AND NOT pg_has_role(chatmem_internal.calling_role(), 'chatmem_assistant', 'MEMBER') THEN
        RAISE EXCEPTION USING
            ERRCODE = '42501',
            MESSAGE = format('p_role: %s turns may be written only by the assistant backend', p_role),
            HINT = 'Write user turns; assistant and system turns come from a role that is a member of chatmem_assistant.';
    END IF;

    -- Message allowances: a user turn is refused with CM003 once the caller
    -- sent its allowance of them in the last 24 hours (chatmem_settings).
    -- Exact under concurrency: the caller's turns take turns on a lock, and
    -- the count, a statement after the lock was granted, sees every turn
    -- committed before (hence READ COMMITTED: a snapshot taken earlier
    -- would not).  Callers hash into 256 advisory-lock buckets (class
    -- 'chatmem allowance', object = bucket), as the guest cap's do (0013):
    -- a transaction that adds turns for thousands of callers holds at most
    -- 256 of these locks.  The count stops at the allowance-th turn: a few
    -- index probes, whatever the history.
    -- (chatmem_internal.allowance_of's query, and require_read_committed's
    -- test, written out: a SQL function in an expression is planned anew in
    -- every transaction, a statement of this function once per connection.)
    IF p_role = 'user' THEN
        SELECT CASE WHEN v_caller.user_id IS NOT NULL THEN s.user_messages_per_day
                    WHEN v_caller.guest_id IS NOT NULL THEN s.guest_messages_per_day END
          INTO v_allowance
          FROM public.chatmem_settings AS s;
        IF v_allowance IS NOT NULL THEN
            IF current_setting('transaction_isolation') <> 'read committed' THEN
                PERFORM chatmem_internal.require_read_committed('api.add_message');  -- raises 25001
            END IF;
            PERFORM pg_advisory_xact_lock(hashtext('chatmem allowance'),
                                          (hashtextextended(coalesce(v_caller.user_id::text, v_caller.guest_id), 0)
                                           & 255)::integer);
            IF EXISTS (SELECT FROM chatmem_internal.counted_turns(v_caller) AS t OFFSET v_allowance - 1) THEN
                -- Someone else's session, or none, is refused as before.
                PERFORM chatmem_internal.session_for(p_session_id, v_caller);   -- raises P0002 or 42501
                PERFORM chatmem_internal.allowance_exhausted(v_caller, v_allowance);  -- raises CM003
            END IF;
        END IF;
    END IF;

    -- One statement: mark the session active (its updated_at is what idle
    -- guest sessions are purged by) and append, only if the caller owns it.
    WITH session AS (
        UPDATE public.conversation_sessions AS s
           SET updated_at = now()
         WHERE s.session_id = p_session_id AND chatmem_internal.may_use(s, v_caller)
        RETURNING s.session_id
    )
    INSERT INTO public.conversation_messages (session_id, role, content)
    SELECT session.session_id, p_role, p_content FROM session
    RETURNING id INTO v_id;

    IF v_id IS NULL THEN
        PERFORM chatmem_internal.session_for(p_session_id, v_caller);  -- raises P0002 or 42501
        PERFORM chatmem_internal.forbidden(p_session_id);                -- claimed meanwhile
    END IF;
    RETURN v_id;
END
$$;

COMMENT ON FUNCTION api.add_message(text, text, text, text) IS
$$Append a message to a session the caller owns (p_user_id as in api.create_or_get_session) and return its id. p_role is user, assistant or system; assistant and system turns only from a caller whose role is a member of chatmem_assistant (the backend that talks to the model), 42501 for any other; p_content is non-blank text up to chatmem_settings.message_max_chars characters. Bumps the session's updated_at.
Message allowances: a user turn of a guest, or of a user, counts against chatmem_settings.guest_messages_per_day or user_messages_per_day (NULL: no limit) over a rolling 24 hours, through the sessions the caller owns (a claimed guest's turns count for the account); with no identity nothing is counted. Exact under concurrency; a counted call must run at READ COMMITTED.
Errors: 22023 invalid input; P0002 no such session; 42501 the session belongs to someone else, or an assistant or system turn from a caller outside chatmem_assistant; CM003 the caller's allowance is used up (the message says when the next turn is allowed); 25001 a counted call above READ COMMITTED.$$;

REVOKE ALL ON FUNCTION api.add_message(text, text, text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION api.add_message(text, text, text, text) TO chatmem_app;
