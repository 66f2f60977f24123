CREATE FUNCTION api.create_or_get_session(
    p_session_id text,
    p_user_id    text  DEFAULT NULL,
    p_metadata   jsonb DEFAULT '{}'
)
RETURNS public.conversation_sessions
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
-- The guest cap's query is part of the insert: its plan is pinned (generic,
-- planned once per connection; index scans only; no JIT, which a disabled
-- plan type's cost penalty would otherwise trigger).  See 188-internal-guest_cap.
SET plan_cache_mode = force_generic_plan
SET enable_seqscan = off
SET enable_bitmapscan = off
SET jit = off
AS $$
DECLARE
    v_user_id uuid;
    v_guest   text;
    v_session public.conversation_sessions;
BEGIN
    -- This is the hot path of every chat front end, written for cost: each
    -- PL/pgSQL statement and each function in an expression costs
    -- microseconds per call (expressions are set up anew in every
    -- transaction, and every call is one), so the common case is one lookup,
    -- one test and one insert.  The rules are inlined SQL (see 120, 130, 140);
    -- when one fails, the shared helpers raise 22023 for the first bad
    -- argument, in the order the API has always checked them: p_user_id,
    -- p_metadata, p_session_id.
    --
    -- Who is calling, as chatmem_internal.resolve_caller decides it (kept in
    -- step with it, inlined to spare a function call): a UUID that is a
    -- registered user's id is that user; any other valid id is a guest id;
    -- NULL and 'anonymous' are nobody.  Cast before the query: a uuid
    -- parameter keeps one cached plan.
    IF chatmem_internal.is_uuid(p_user_id) THEN
        v_user_id := p_user_id::uuid;
        SELECT u.id INTO v_user_id FROM public.users AS u WHERE u.id = v_user_id;
    ELSIF NOT (p_user_id IS NULL OR p_user_id = 'anonymous' OR chatmem_internal.is_valid_id(p_user_id)) THEN
        PERFORM chatmem_internal.resolve_caller(p_user_id);  -- raises 22023 naming p_user_id
    END IF;
    IF (chatmem_internal.is_valid_id(p_session_id)
        AND (p_metadata IS NULL OR chatmem_internal.is_json_object_arg(p_metadata))) IS NOT TRUE THEN
        PERFORM chatmem_internal.json_object_arg(p_metadata, 'p_metadata');
        PERFORM chatmem_internal.check_id(p_session_id, 'p_session_id');
    END IF;

    -- A guest (a valid id that is no registered user's) takes the cap's lock
    -- before the statement that counts its sessions (188-internal-guest_cap).
    IF v_user_id IS NULL AND p_user_id <> 'anonymous' THEN
        v_guest := p_user_id;
        PERFORM chatmem_internal.lock_guest_cap(v_guest);
    END IF;

    -- Get-or-create in one statement: concurrent calls with the same new id
    -- meet in the primary key; one inserts, the others take the update arm.
    -- A guest's new session records the guest id in metadata (a caller's own
    -- anonymousUserId key is dropped first), so the proposed row names the
    -- caller: EXCLUDED.user_id is the user, EXCLUDED's anonymousUserId the
    -- guest.  The update arm runs only for the owner; for anyone else it
    -- updates nothing and returns no row.  A guest at the cap proposes no
    -- row at all; the rare path below tells those cases apart.
    INSERT INTO public.conversation_sessions AS s (session_id, user_id, metadata)
    SELECT p_session_id, v_user_id,
           CASE WHEN v_guest IS NOT NULL
                THEN (coalesce(p_metadata, '{}') - 'anonymousUserId')
                     || jsonb_build_object('anonymousUserId', v_guest)
                ELSE coalesce(p_metadata, '{}') - 'anonymousUserId' END
     WHERE v_guest IS NULL
        OR NOT EXISTS (SELECT FROM chatmem_internal.guest_cap_reached(v_guest))
    ON CONFLICT (session_id) DO UPDATE
        SET updated_at = now()
        WHERE chatmem_internal.may_use(
                  s, ROW(excluded.user_id, excluded.metadata ->> 'anonymousUserId')::chatmem_internal.caller)
    RETURNING s.* INTO v_session;

    IF NOT FOUND THEN
        -- Someone else's session (42501), or a guest at the cap: reopening
        -- one of its own sessions is no new session and is not refused;
        -- a new one is (CM002).
        UPDATE public.conversation_sessions AS s
           SET updated_at = now()
         WHERE s.session_id = p_session_id
           AND chatmem_internal.may_use(s, ROW(v_user_id, v_guest)::chatmem_internal.caller)
        RETURNING s.* INTO v_session;
        IF NOT FOUND THEN
            IF v_guest IS NOT NULL
               AND NOT EXISTS (SELECT FROM public.conversation_sessions AS s WHERE s.session_id = p_session_id) THEN
                PERFORM chatmem_internal.refuse_guest_session(v_guest);
            END IF;
            PERFORM chatmem_internal.forbidden(p_session_id);
        END IF;
    END IF;
    RETURN v_session;
END
$$;

COMMENT ON FUNCTION api.create_or_get_session(text, text, jsonb) IS
$$Open a conversation session by id, creating it if it does not exist. For callers that authenticated the user themselves.

p_user_id is the caller: NULL or 'anonymous' (no identity), a registered user's id, or a guest id (any other string of 1-255 characters, e.g. a UUID kept in browser storage). A new session of a registered user has that user_id; a guest's has user_id NULL and metadata.anonymousUserId set to the guest id; with no identity, neither. p_metadata (a JSON object, NULL as {}) is stored on creation only; an anonymousUserId key in it is ignored.
An existing session has its updated_at bumped and is returned to its owner (the same user or guest; a session with neither is open to anyone who has its id).
Returns the session row. Errors: 22023 invalid id or metadata; 42501 the session belongs to someone else; CM002 a guest's new session past chatmem_settings.guest_sessions_per_hour in the last hour (reopening its own sessions is never refused).
Race-free: concurrent calls with the same new id leave one row and all succeed.$$;

REVOKE ALL ON FUNCTION api.create_or_get_session(text, text, jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION api.create_or_get_session(text, text, jsonb) TO chatmem_app;
