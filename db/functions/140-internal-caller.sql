-- Who is calling.  At most one of the two fields is set: a registered user,
-- or a guest id; neither means no identity.
CREATE TYPE chatmem_internal.caller AS (user_id uuid, guest_id text);
COMMENT ON TYPE chatmem_internal.caller IS 'A caller: a registered user, a guest id, or (both NULL) nobody.';

-- A UUID in its canonical text form, either case: what resolve_caller looks
-- up among users.  The same strings as
-- ~* '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$'
-- (36 characters, hyphens at 9, 14, 19 and 24 and nowhere else, hex digits
-- elsewhere), at a fraction of its cost: that pattern's counted repetitions
-- made a regular-expression automaton of some forty states for every call.
CREATE FUNCTION chatmem_internal.is_uuid(p_value text)
RETURNS boolean
LANGUAGE sql IMMUTABLE SECURITY INVOKER
AS $$
    SELECT p_value LIKE '________-____-____-____-____________'
           AND p_value NOT LIKE '%-%-%-%-%-%'
           AND p_value !~ '[^-0-9a-fA-F]'
$$;
COMMENT ON FUNCTION chatmem_internal.is_uuid(text) IS
    'True for a UUID written as 8-4-4-4-12 hex digits (either case), the form resolve_caller looks up.';

-- p_user_id as the API receives it: NULL or 'anonymous' is no identity; the
-- id of a registered user is that user; any other string is a guest id
-- (browsers make UUIDs, but 'test-anonymous-uuid-123' is a guest id too).
CREATE FUNCTION chatmem_internal.resolve_caller(p_user_id text, p_field text DEFAULT 'p_user_id')
RETURNS chatmem_internal.caller
LANGUAGE plpgsql STABLE SECURITY INVOKER
AS $$
DECLARE
    v_user_id uuid;
BEGIN
    IF p_user_id IS NULL OR p_user_id = 'anonymous' THEN
        RETURN ROW(NULL, NULL)::chatmem_internal.caller;
    END IF;
    p_user_id := chatmem_internal.check_id(p_user_id, p_field);
    IF chatmem_internal.is_uuid(p_user_id) THEN
        -- Cast before the query: a uuid parameter keeps one cached plan, while
        -- a cast inside the query was re-planned on every call (5x slower).
        v_user_id := p_user_id::uuid;
        SELECT u.id INTO v_user_id FROM public.users AS u WHERE u.id = v_user_id;
        IF FOUND THEN
            RETURN ROW(v_user_id, NULL)::chatmem_internal.caller;
        END IF;
    END IF;
    RETURN ROW(NULL, p_user_id)::chatmem_internal.caller;
END
$$;
COMMENT ON FUNCTION chatmem_internal.resolve_caller(text, text) IS
    'Resolve p_user_id to a registered user, a guest id, or no identity; 22023 for an empty or malformed id.';

-- The one ownership rule, used by every function that touches a session:
-- a user's session is that user's; an unclaimed guest session is its guest's;
-- a session whose user was deleted is nobody's; a session with none of these
-- is open to whoever has its id.
CREATE FUNCTION chatmem_internal.may_use(p_session public.conversation_sessions, p_caller chatmem_internal.caller)
RETURNS boolean
LANGUAGE sql IMMUTABLE SECURITY INVOKER
AS $$
    SELECT CASE
        WHEN p_session.user_id IS NOT NULL THEN p_session.user_id = p_caller.user_id
        WHEN p_session.owner_deleted_at IS NOT NULL THEN false
        WHEN p_session.metadata ? 'anonymousUserId'
            THEN p_session.metadata ->> 'anonymousUserId' = p_caller.guest_id
        ELSE true
    END IS TRUE
$$;
COMMENT ON FUNCTION chatmem_internal.may_use(public.conversation_sessions, chatmem_internal.caller) IS
    'True when the caller owns the session (or the session has no owner at all).';

CREATE FUNCTION chatmem_internal.forbidden(p_session_id text)
RETURNS void
LANGUAGE plpgsql STABLE SECURITY INVOKER
AS $$
BEGIN
    RAISE EXCEPTION USING
        ERRCODE = '42501',
        MESSAGE = format('session %s belongs to someone else', p_session_id),
        HINT = 'Use a session you created, or start a new one.';
END
$$;
COMMENT ON FUNCTION chatmem_internal.forbidden(text) IS 'Raise 42501 for a session the caller does not own.';

-- For functions that work inside an existing session: P0002 when there is no
-- such session, 42501 when it is someone else's.
CREATE FUNCTION chatmem_internal.session_for(p_session_id text, p_caller chatmem_internal.caller)
RETURNS public.conversation_sessions
LANGUAGE plpgsql STABLE SECURITY INVOKER
AS $$
DECLARE
    v_session public.conversation_sessions;
BEGIN
    SELECT s.* INTO v_session FROM public.conversation_sessions AS s WHERE s.session_id = p_session_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION USING
            ERRCODE = 'P0002',
            MESSAGE = format('session %s does not exist', p_session_id),
            HINT = 'Create it first with api.create_or_get_session or api.create_session.';
    END IF;
    IF NOT chatmem_internal.may_use(v_session, p_caller) THEN
        PERFORM chatmem_internal.forbidden(p_session_id);
    END IF;
    RETURN v_session;
END
$$;
COMMENT ON FUNCTION chatmem_internal.session_for(text, chatmem_internal.caller) IS
    'The session if the caller may use it; P0002 if it does not exist, 42501 if it is someone else''s.';
