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

-- tests.login('alice', 'g1') logs the persona in with 'correct horse', optionally claiming a guest id.
CREATE FUNCTION tests.login(p_persona text, p_anonymous_user_id text DEFAULT NULL)
RETURNS TABLE (user_id uuid, token text, refresh_token text, migrated_sessions integer)
LANGUAGE sql VOLATILE
AS $$
    SELECT l.user_id, l.token, l.refresh_token, l.migrated_sessions
      FROM api.login(p_persona || '@example.test', 'correct horse', p_anonymous_user_id) AS l
$$;
COMMENT ON FUNCTION tests.login(text, text) IS
    'Log a persona registered with tests.register in (password ''correct horse''), optionally claiming a guest id.';

-- Time is controlled by moving rows, never by sleeping: now() is fixed for
-- the whole test transaction, so a bump shows as updated_at moving back to now().
CREATE FUNCTION tests.backdate(p_session_id text, p_age interval DEFAULT '1 hour')
RETURNS timestamptz
LANGUAGE sql VOLATILE
AS $$
    UPDATE public.conversation_sessions
       SET created_at = now() - p_age, updated_at = now() - p_age
     WHERE session_id = p_session_id
    RETURNING updated_at
$$;
COMMENT ON FUNCTION tests.backdate(text, interval) IS
    'Set a session''s created_at and updated_at to now() - p_age (default 1 hour); returns the new updated_at.';

-- The stored row of a token (found by its SHA-256, the only form stored).
CREATE FUNCTION tests.token_row(p_token text) RETURNS public.auth_tokens
LANGUAGE sql STABLE
AS $$ SELECT t.* FROM public.auth_tokens AS t WHERE t.token_hash = sha256(convert_to(p_token, 'UTF8')) $$;
COMMENT ON FUNCTION tests.token_row(text) IS 'The auth_tokens row of a plain token (looked up by its SHA-256), or NULL.';

CREATE FUNCTION tests.expire_token(p_token text) RETURNS void
LANGUAGE sql VOLATILE
AS $$
    UPDATE public.auth_tokens SET expires_at = now() - interval '1 second'
     WHERE token_hash = sha256(convert_to(p_token, 'UTF8'))
$$;
COMMENT ON FUNCTION tests.expire_token(text) IS 'Make a token (access or refresh) expired one second ago.';

-- pgTAP checks SQLSTATE and message; the HINT every refusal carries is read here.
CREATE FUNCTION tests.hint_of(p_sql text) RETURNS text
LANGUAGE plpgsql VOLATILE
AS $$
DECLARE
    v_hint text;
BEGIN
    EXECUTE p_sql;
    RETURN NULL;
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS v_hint = PG_EXCEPTION_HINT;
    RETURN nullif(v_hint, '');
END
$$;
COMMENT ON FUNCTION tests.hint_of(text) IS
    'Run a statement expected to fail and return its error''s HINT (NULL when it succeeds or has no hint). The statement''s effects are rolled back.';

-- Make every claim fail for the rest of the test transaction (an insert into
-- the audit table raises), to test that registration and login survive it.
CREATE FUNCTION tests.refuse_claim_audit() RETURNS trigger
LANGUAGE plpgsql
AS $$
BEGIN
    RAISE EXCEPTION 'tests.break_claims: the claim audit refuses rows';
END
$$;
COMMENT ON FUNCTION tests.refuse_claim_audit() IS 'Trigger body for tests.break_claims(): always raises.';

CREATE FUNCTION tests.break_claims() RETURNS void
LANGUAGE sql VOLATILE
AS $$
    CREATE TRIGGER tests_break_claims BEFORE INSERT ON public.session_claims
        FOR EACH ROW EXECUTE FUNCTION tests.refuse_claim_audit();
$$;
COMMENT ON FUNCTION tests.break_claims() IS
    'Make chatmem_internal.claim_guest_sessions fail (its audit insert raises) until the test transaction rolls back.';

-- pgTAP itself must run as the role under test: these grants on pgTAP's own
-- schema and temp tables (made by plan()) and on tests.hint_of give nothing of
-- chatmem's, and are rolled back with the test file.
CREATE FUNCTION tests.let_pgtap_run_as(VARIADIC p_roles name[]) RETURNS void
LANGUAGE plpgsql VOLATILE
AS $$
BEGIN
    EXECUTE format('GRANT USAGE ON SCHEMA tap, tests TO %1$s;
                    GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA tap TO %1$s;
                    GRANT EXECUTE ON FUNCTION tests.hint_of(text) TO %1$s;
                    GRANT ALL ON TABLE pg_temp.__tcache__ TO %1$s;
                    GRANT ALL ON SEQUENCE pg_temp.__tcache___id_seq, pg_temp.__tresults___numb_seq TO %1$s',
                   array_to_string(ARRAY(SELECT quote_ident(r) FROM unnest(p_roles) AS r), ', '));
END
$$;
COMMENT ON FUNCTION tests.let_pgtap_run_as(name[]) IS
    'Let pgTAP (and tests.hint_of) run as these roles for the rest of the test transaction.';
