-- Personas by name for pgTAP files.  Every test file runs in a transaction it
-- rolls back, so whatever these helpers create disappears with it.
DROP SCHEMA IF EXISTS tests CASCADE;
CREATE SCHEMA tests;
COMMENT ON SCHEMA tests IS 'Helpers for pgTAP tests; installed in the test database only.';

-- A cheap bcrypt cost keeps tests fast; the cost itself is tested with the default.
CREATE FUNCTION tests.fast_hashing() RETURNS void
LANGUAGE sql VOLATILE
AS $$ UPDATE public.chatmem_settings SET bcrypt_cost = 4 $$;
COMMENT ON FUNCTION tests.fast_hashing() IS 'Lower bcrypt_cost to 4 for the rest of the test transaction.';

-- tests.register('alice') registers alice@example.test with password 'correct horse'.
CREATE FUNCTION tests.register(p_persona text, p_anonymous_user_id text DEFAULT NULL)
RETURNS TABLE (user_id uuid, token text, refresh_token text, migrated_sessions integer)
LANGUAGE sql VOLATILE
AS $$
    SELECT r.user_id, r.token, r.refresh_token, r.migrated_sessions
      FROM api.register_user(initcap(p_persona), p_persona || '@example.test', 'correct horse',
                             p_anonymous_user_id) AS r
$$;
COMMENT ON FUNCTION tests.register(text, text) IS
    'Register the persona as <name>@example.test with password ''correct horse'', optionally claiming a guest id.';

-- The id of a registered persona.
CREATE FUNCTION tests.id_of(p_persona text) RETURNS uuid
LANGUAGE sql STABLE
AS $$ SELECT id FROM public.users WHERE lower(email) = p_persona || '@example.test' $$;
COMMENT ON FUNCTION tests.id_of(text) IS 'The user id of a persona registered with tests.register.';

-- tests.guest_session('g1', 's1') opens session s1 as guest g1.
CREATE FUNCTION tests.guest_session(p_guest text, p_session_id text) RETURNS text
LANGUAGE sql VOLATILE
AS $$ SELECT (api.create_or_get_session(p_session_id, p_guest)).session_id::text $$;
COMMENT ON FUNCTION tests.guest_session(text, text) IS 'Open (create) a session as the given guest id; returns its id.';
