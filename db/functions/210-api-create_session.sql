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
AS $$
#variable_conflict use_column
DECLARE
    v_named      chatmem_internal.caller := chatmem_internal.resolve_caller(p_user_id);
    v_context    jsonb := chatmem_internal.json_object_arg(p_context, 'p_context');
    -- api.authenticate costs more than the rest of a guest's call (its own
    -- settings and lookups): a guest sends no token, so it is not asked.
    v_token_user uuid := CASE WHEN p_token IS NOT NULL THEN api.authenticate(p_token) END;
    v_owner      uuid;
    v_metadata   jsonb;
    v_session_id text;
BEGIN
    IF v_token_user IS NOT NULL THEN
        -- The token decides; a guest id beside it is ignored.
        IF v_named.user_id IS NOT NULL AND v_named.user_id <> v_token_user THEN
            RAISE EXCEPTION USING
                ERRCODE = '42501',
                MESSAGE = 'p_user_id names another account than the token''s',
                HINT = 'Omit p_user_id, or pass the id of the token''s own user.';
        END IF;
        v_owner := v_token_user;
    ELSIF v_named.user_id IS NOT NULL THEN
        -- Knowing an account's id must not open sessions in it.
        RAISE EXCEPTION USING
            ERRCODE = '28000',
            MESSAGE = 'p_user_id names a registered account, but no valid token was given',
            HINT = 'Pass the account''s access token in p_token (log in again if it expired).';
    END IF;

    -- The one setting needed, read directly: a call of settings() builds the
    -- whole row.
    SELECT st.session_defaults || v_context INTO v_metadata FROM public.chatmem_settings AS st;
    IF v_owner IS NULL AND v_named.guest_id IS NOT NULL THEN
        v_metadata := v_metadata || jsonb_build_object('anonymousUserId', v_named.guest_id);
    END IF;
    -- The older system's id format, with the random part from a CSPRNG.
    v_session_id := format('session_%s_%s',
                           floor(extract(epoch FROM clock_timestamp()) * 1000)::bigint,
                           chatmem_internal.random_base36());

    RETURN QUERY
    INSERT INTO public.conversation_sessions AS s (session_id, user_id, metadata)
    VALUES (v_session_id, v_owner, v_metadata)
    RETURNING s.session_id::text, s.user_id, s.created_at;
END
$$;

COMMENT ON FUNCTION api.create_session(text, jsonb, text) IS
$$Start a new conversation session, as a web endpoint does. Returns its id (session_<epoch ms>_<random base36>), its user_id and created_at.

With a valid p_token the session is the token's user's (a p_user_id naming another registered user: 42501; a guest id beside the token is ignored). Without one (NULL, expired or invalid tokens count as none), p_user_id is a guest id or 'anonymous'; the id of a registered user is refused with 28000, so nobody opens sessions in another's account by knowing its id.
Metadata is the settings' session_defaults merged with p_context (a JSON object, NULL as {}; an anonymousUserId key in it is ignored).
Errors: 22023 invalid p_user_id or p_context; 28000; 42501.$$;

REVOKE ALL ON FUNCTION api.create_session(text, jsonb, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION api.create_session(text, jsonb, text) TO chatmem_app;
