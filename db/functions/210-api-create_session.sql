CREATE FUNCTION api.create_session(
    p_user_id text  DEFAULT 'anonymous',
    p_context jsonb DEFAULT '{}',
    p_token   text  DEFAULT NULL
)
RETURNS TABLE (session_id text, user_id uuid, created_at timestamptz)
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
-- A secret is an argument here: nothing this call raises (a refusal, a
-- timeout, a cancel) reaches the server log (see api.login for why both
-- settings are needed).
SET log_min_error_statement = panic
SET log_min_messages = panic
-- The guest cap's query is part of the insert: its plan is pinned, as in
-- api.create_or_get_session (see 188-internal-guest_cap).
SET plan_cache_mode = force_generic_plan
SET enable_seqscan = off
SET enable_bitmapscan = off
SET jit = off
AS $$
#variable_conflict use_column
DECLARE
    v_named_user uuid;
    v_guest      text;
    v_token_user uuid;
    v_owner      uuid;
    v_session_id text;
BEGIN
    -- Written for cost, as api.create_or_get_session is (the web front
    -- end's hot path): who p_user_id names, resolved inline as
    -- chatmem_internal.resolve_caller does it (a registered user's UUID is
    -- that user, any other valid id a guest id, NULL or 'anonymous' nobody),
    -- and the argument checks as inlined SQL; the helpers that word an
    -- error run only for bad input, in the order the API has always checked
    -- (p_user_id, then p_context).
    IF chatmem_internal.is_uuid(p_user_id) THEN
        v_named_user := p_user_id::uuid;
        SELECT u.id INTO v_named_user FROM public.users AS u WHERE u.id = v_named_user;
    ELSIF NOT (p_user_id IS NULL OR p_user_id = 'anonymous' OR chatmem_internal.is_valid_id(p_user_id)) THEN
        PERFORM chatmem_internal.resolve_caller(p_user_id);  -- raises 22023 naming p_user_id
    END IF;
    IF (p_context IS NULL OR chatmem_internal.is_json_object_arg(p_context)) IS NOT TRUE THEN
        PERFORM chatmem_internal.json_object_arg(p_context, 'p_context');  -- raises 22023
    END IF;
    -- api.authenticate costs more than the rest of a guest's call (its own
    -- settings and lookups): a guest sends no token, so it is not asked.
    IF p_token IS NOT NULL THEN
        v_token_user := api.authenticate(p_token);
    END IF;

    IF v_token_user IS NOT NULL THEN
        -- The token decides; a guest id beside it is ignored.
        IF v_named_user IS NOT NULL AND v_named_user <> v_token_user THEN
            RAISE EXCEPTION USING
                ERRCODE = '42501',
                MESSAGE = 'p_user_id names another account than the token''s',
                HINT = 'Omit p_user_id, or pass the id of the token''s own user.';
        END IF;
        v_owner := v_token_user;
    ELSIF v_named_user IS NOT NULL THEN
        -- Knowing an account's id must not open sessions in it.
        RAISE EXCEPTION USING
            ERRCODE = '28000',
            MESSAGE = 'p_user_id names a registered account, but no valid token was given',
            HINT = 'Pass the account''s access token in p_token (log in again if it expired).';
    ELSIF p_user_id <> 'anonymous' THEN
        -- A guest: the cap's lock before the statement that counts its
        -- sessions (188-internal-guest_cap).
        v_guest := p_user_id;
        PERFORM chatmem_internal.lock_guest_cap(v_guest);
    END IF;

    -- The older system's id format, session_<epoch ms>_<random>, with the
    -- random part from a CSPRNG: 56 bits as 14 hex digits (the older system
    -- wrote Math.random() in base 36; hex digits are base-36 digits too, and
    -- encode() is one function call where converting to base 36 took either
    -- a loop or an eleven-digit expression, 50,000-70,000 instructions a
    -- call, an eighth of this function).
    v_session_id := 'session_' || floor(extract(epoch FROM clock_timestamp()) * 1000)::bigint
                    || '_' || encode(chatmem_internal.random_bytes(7), 'hex');

    -- One statement: the settings' session_defaults merged with p_context
    -- (its anonymousUserId key dropped), the guest id recorded for a guest,
    -- and, for a guest at the cap, no row.
    INSERT INTO public.conversation_sessions AS s (session_id, user_id, metadata)
    SELECT v_session_id, v_owner,
           CASE WHEN v_guest IS NULL
                THEN st.session_defaults || (coalesce(p_context, '{}') - 'anonymousUserId')
                ELSE st.session_defaults || (coalesce(p_context, '{}') - 'anonymousUserId')
                     || jsonb_build_object('anonymousUserId', v_guest) END
      FROM public.chatmem_settings AS st
     WHERE v_guest IS NULL
        OR NOT EXISTS (SELECT FROM chatmem_internal.guest_cap_reached(v_guest))
    RETURNING s.session_id::text, s.user_id, s.created_at INTO session_id, user_id, created_at;
    IF NOT FOUND THEN
        PERFORM chatmem_internal.refuse_guest_session(v_guest);
    END IF;
    RETURN NEXT;
END
$$;

COMMENT ON FUNCTION api.create_session(text, jsonb, text) IS
$$Start a new conversation session, as a web endpoint does. Returns its id (session_<epoch ms>_<14 random hex digits>), its user_id and created_at.

With a valid p_token the session is the token's user's (a p_user_id naming another registered user: 42501; a guest id beside the token is ignored). Without one (NULL, expired or invalid tokens count as none), p_user_id is a guest id or 'anonymous'; the id of a registered user is refused with 28000, so nobody opens sessions in another's account by knowing its id.
Metadata is the settings' session_defaults merged with p_context (a JSON object, NULL as {}; an anonymousUserId key in it is ignored).
Errors: 22023 invalid p_user_id or p_context; 28000; 42501; CM002 a guest past chatmem_settings.guest_sessions_per_hour new sessions in the last hour.$$;

REVOKE ALL ON FUNCTION api.create_session(text, jsonb, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION api.create_session(text, jsonb, text) TO chatmem_app;
