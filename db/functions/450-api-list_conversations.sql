-- What a conversation list shows beside each session: how many messages and
-- Q&A pairs it holds, and the newest message cut to 200 characters.  A SQL
-- function of one SELECT, so the planner inlines it into the caller's query
-- (LATERAL, per listed session) and drops the columns the caller does not
-- use: api.list_conversations computes no qa_count, api.preview_claim no
-- last_message.  Each count and the newest message are read from the
-- (session_id, id) indexes of their tables, for the listed sessions only.
CREATE FUNCTION chatmem_internal.session_summary(p_session_id text)
RETURNS TABLE (message_count bigint, qa_count bigint, last_message text)
LANGUAGE sql STABLE SECURITY INVOKER
AS $$
    SELECT (SELECT count(*) FROM public.conversation_messages AS m WHERE m.session_id = p_session_id),
           (SELECT count(*) FROM public.qa_pairs AS q WHERE q.session_id = p_session_id),
           (SELECT left(m.content, 200) FROM public.conversation_messages AS m
             WHERE m.session_id = p_session_id
             ORDER BY m.id DESC
             LIMIT 1)
$$;
COMMENT ON FUNCTION chatmem_internal.session_summary(text) IS
    'A session''s message and Q&A pair counts and its newest message cut to 200 characters (NULL without messages).';

CREATE FUNCTION api.list_conversations(
    p_user_id   text,
    p_limit     integer     DEFAULT 50,
    p_before    timestamptz DEFAULT NULL,
    p_before_id text        DEFAULT NULL
)
RETURNS TABLE (session_id text, title text, created_at timestamptz, updated_at timestamptz,
               message_count bigint, last_message text)
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE
    v_caller chatmem_internal.caller := chatmem_internal.resolve_caller(p_user_id);
BEGIN
    IF p_limit IS NULL OR p_limit NOT BETWEEN 1 AND 200 THEN
        PERFORM chatmem_internal.invalid('p_limit',
                                         CASE WHEN p_limit IS NULL THEN 'is required'
                                              ELSE format('%s is out of range', p_limit) END,
                                         'Ask for 1 to 200 conversations; page on with p_before and p_before_id.');
    END IF;
    IF p_before_id IS NOT NULL THEN
        IF p_before IS NULL THEN
            PERFORM chatmem_internal.invalid('p_before_id', 'is given without p_before',
                                             'Pass the updated_at and the session_id of the last row you hold, together.');
        END IF;
        p_before_id := chatmem_internal.check_id(p_before_id, 'p_before_id');
    END IF;

    -- Keyset paging on (updated_at, session_id), newest first.  Every page is
    -- one range scan of an index in that order (conversation_sessions_user_
    -- activity_idx for a user, conversation_sessions_guest_activity_idx for a
    -- guest) that starts at the cursor and stops after p_limit rows, however
    -- many sessions lie before or after it; the summary is read for those
    -- rows only.
    --
    -- The first page and the next ones are separate statements: a
    -- "p_before IS NULL OR ..." would be a filter in a generic plan, and each
    -- page would read from the newest session on.  With a NULL p_before_id the
    -- row comparison is true exactly for the rows updated before p_before (the
    -- first pair decides, or nothing does).
    --
    -- Each query states the whole predicate of its index, without which the
    -- planner cannot use it: "owner_deleted_at IS NULL" for a user (true of
    -- every session that has a user) and "metadata ? 'anonymousUserId'" for a
    -- guest (implied by guest_owns).  Migration 0017 says why the indexes
    -- carry these conditions.
    IF v_caller.user_id IS NOT NULL THEN
        IF p_before IS NULL THEN
            RETURN QUERY
            SELECT s.session_id::text, s.title, s.created_at, s.updated_at, summary.message_count, summary.last_message
              FROM public.conversation_sessions AS s
             CROSS JOIN LATERAL chatmem_internal.session_summary(s.session_id) AS summary
             WHERE s.user_id = v_caller.user_id
               AND s.owner_deleted_at IS NULL
             ORDER BY s.updated_at DESC, s.session_id DESC
             LIMIT p_limit;
        ELSE
            RETURN QUERY
            SELECT s.session_id::text, s.title, s.created_at, s.updated_at, summary.message_count, summary.last_message
              FROM public.conversation_sessions AS s
             CROSS JOIN LATERAL chatmem_internal.session_summary(s.session_id) AS summary
             WHERE s.user_id = v_caller.user_id
               AND s.owner_deleted_at IS NULL
               AND (s.updated_at, s.session_id) < (p_before, p_before_id)
             ORDER BY s.updated_at DESC, s.session_id DESC
             LIMIT p_limit;
        END IF;
    ELSIF v_caller.guest_id IS NOT NULL THEN
        IF p_before IS NULL THEN
            RETURN QUERY
            SELECT s.session_id::text, s.title, s.created_at, s.updated_at, summary.message_count, summary.last_message
              FROM public.conversation_sessions AS s
             CROSS JOIN LATERAL chatmem_internal.session_summary(s.session_id) AS summary
             WHERE chatmem_internal.guest_owns(s, v_caller.guest_id)
               AND s.metadata ? 'anonymousUserId'
             ORDER BY s.updated_at DESC, s.session_id DESC
             LIMIT p_limit;
        ELSE
            RETURN QUERY
            SELECT s.session_id::text, s.title, s.created_at, s.updated_at, summary.message_count, summary.last_message
              FROM public.conversation_sessions AS s
             CROSS JOIN LATERAL chatmem_internal.session_summary(s.session_id) AS summary
             WHERE chatmem_internal.guest_owns(s, v_caller.guest_id)
               AND s.metadata ? 'anonymousUserId'
               AND (s.updated_at, s.session_id) < (p_before, p_before_id)
             ORDER BY s.updated_at DESC, s.session_id DESC
             LIMIT p_limit;
        END IF;
    END IF;
    -- No identity owns nothing: no rows.
END
$$;

COMMENT ON FUNCTION api.list_conversations(text, integer, timestamptz, text) IS
$$The caller's conversations by most recent activity first, one page at a time: a registered user's sessions, or a guest's unclaimed ones (p_user_id as in api.create_or_get_session; NULL or 'anonymous' lists nothing). Each row has the session's id, title (NULL if none), created_at, updated_at (its last activity), message_count and last_message (the newest message's content cut to 200 characters; NULL without messages).
Ordered by (updated_at DESC, session_id DESC), at most p_limit (1-200, default 50) rows. For the next page pass the last row's updated_at as p_before and its session_id as p_before_id; p_before alone lists the sessions last active before that time. Every page costs the same, however many sessions the caller has.
Errors: 22023 invalid input (p_limit out of range, p_before_id without p_before, a malformed id).$$;

REVOKE ALL ON FUNCTION api.list_conversations(text, integer, timestamptz, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION api.list_conversations(text, integer, timestamptz, text) TO chatmem_app;
