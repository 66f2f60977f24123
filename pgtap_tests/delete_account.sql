-- api.delete_account: the password checked (counted by the login throttle), or for an account without
-- one a sign-in of the last 5 minutes; then nothing of the account is left in any table, and nothing
-- of anyone else is touched.  Every refusal changes nothing.
BEGIN;
SELECT plan(28);
SELECT tests.fast_hashing();
-- A failed check is counted in a transaction of its own and survives this
-- file's rollback: forget earlier runs' (for this transaction only).
DELETE FROM public.login_failures WHERE email LIKE 'dl-%@example.test';

-- Every row of every table in public whose text holds one of the needles
-- (in any case): the catalog decides what is checked, so a table added later
-- is checked too.  A bytea shows as its hex, so hashes are needles too.
CREATE FUNCTION pg_temp.rows_naming(p_needles text[]) RETURNS TABLE (table_name text, hits bigint)
LANGUAGE plpgsql AS $$
DECLARE
    v_table text;
BEGIN
    FOR v_table IN SELECT format('%I.%I', t.schemaname, t.tablename) FROM pg_tables AS t WHERE t.schemaname = 'public' LOOP
        RETURN QUERY EXECUTE format(
            'SELECT %L, count(*) FROM %s AS r WHERE EXISTS (SELECT FROM unnest($1) AS n WHERE strpos(lower(r::text), lower(n)) > 0)',
            v_table, v_table) USING p_needles;
    END LOOP;
END
$$;
-- Everything in public that is not ada's: must be the same before and after.
CREATE FUNCTION pg_temp.everyone_else(p_needles text[]) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    v_table text;
    v_rows  text;
    v_all   text := '';
BEGIN
    FOR v_table IN SELECT format('%I.%I', t.schemaname, t.tablename) FROM pg_tables AS t
                    WHERE t.schemaname = 'public' AND t.tablename NOT LIKE '%yoyo%' ORDER BY 1 LOOP
        EXECUTE format(
            'SELECT string_agg(r::text, E''\n'' ORDER BY r::text) FROM %s AS r
              WHERE NOT EXISTS (SELECT FROM unnest($1) AS n WHERE strpos(lower(r::text), lower(n)) > 0)', v_table)
          INTO v_rows USING p_needles;
        v_all := v_all || v_table || E':\n' || coalesce(v_rows, '') || E'\n';
    END LOOP;
    RETURN md5(v_all);
END
$$;

-- ada: a reset asked for her email before she had an account, a guest past
-- (two claimed sessions with messages and Q&A pairs), two logins, a reset
-- token, a failed login, and a linked identity.
SELECT FROM api.request_password_reset('dl-ada@example.test');
SELECT FROM tests.guest_session('dl-g1', 'dl-s1');
SELECT FROM api.add_message('dl-s1', 'dl-g1', 'user', 'my words');
SELECT FROM api.add_qa_pair('dl-s1', 'dl-g1', 'q?', 'a.');
SELECT FROM tests.guest_session('dl-g1', 'dl-s2');
CREATE TEMP TABLE tok ON COMMIT DROP AS
SELECT 'reg'::text AS label, r.token, r.refresh_token FROM tests.register('dl-ada', 'dl-g1') AS r;
INSERT INTO tok SELECT 'login', l.token, l.refresh_token FROM tests.login('dl-ada') AS l;
SELECT FROM api.request_password_reset('DL-Ada@example.test');
UPDATE public.chatmem_settings SET link_identity_by_email = true;
SELECT FROM api.link_identity('https://idp.example', 'dl-ada-sub', 'dl-ada@example.test', NULL);
UPDATE public.chatmem_settings SET link_identity_by_email = false;
-- Others: bea (an account with a session and a claim), and a guest.
SELECT FROM tests.guest_session('dl-gb', 'dl-bs');
SELECT FROM api.add_message('dl-bs', 'dl-gb', 'user', 'bea''s words');
INSERT INTO tok SELECT 'bea', r.token, r.refresh_token FROM tests.register('dl-bea', 'dl-gb') AS r;
SELECT FROM tests.guest_session('dl-gx', 'dl-xs');
SELECT FROM api.add_message('dl-xs', 'dl-gx', 'user', 'a guest''s words');
SELECT FROM api.request_password_reset('dl-bea@example.test');

CREATE FUNCTION pg_temp.token(p_label text) RETURNS text LANGUAGE sql AS $$ SELECT token FROM tok WHERE label = p_label $$;
-- What names ada: her id, name, email, sessions, guest id, and the hashes of
-- her tokens, reset tokens and email.
CREATE TEMP TABLE needles ON COMMIT DROP AS
SELECT ARRAY[tests.id_of('dl-ada')::text, 'Dl-Ada', 'dl-ada@example.test', 'dl-s1', 'dl-s2', 'dl-g1',
             'dl-ada-sub', encode(sha256(convert_to('dl-ada@example.test', 'UTF8')), 'hex')]
       || ARRAY(SELECT encode(t.token_hash, 'hex') FROM public.auth_tokens AS t WHERE t.user_id = tests.id_of('dl-ada'))
       || ARRAY(SELECT encode(r.token_hash, 'hex') FROM public.password_reset_tokens AS r
                 WHERE r.email_hash = sha256(convert_to('dl-ada@example.test', 'UTF8'))) AS n;
CREATE FUNCTION pg_temp.needles() RETURNS text[] LANGUAGE sql AS $$ SELECT n FROM needles $$;
CREATE TEMP TABLE before ON COMMIT DROP AS
SELECT pg_temp.everyone_else(pg_temp.needles()) AS others,
       (SELECT string_agg(format('%s=%s', r.table_name, r.hits), ',' ORDER BY r.table_name)
          FROM pg_temp.rows_naming(pg_temp.needles()) AS r) AS ada;

SELECT function_returns('api', 'delete_account', ARRAY['text', 'text'], 'integer', 'api.delete_account(text, text) returns integer');
SELECT isnt_empty($$SELECT * FROM pg_temp.rows_naming(pg_temp.needles()) WHERE hits > 0$$,
    'the generic check finds ada before (a control)');
SELECT cmp_ok(
    (SELECT count(*)::integer FROM pg_temp.rows_naming(pg_temp.needles()) WHERE hits > 0), '>=', 8,
    'in at least 8 tables: users, sessions, messages, Q&A pairs, tokens, claims, reset tokens, identities');

-- ---------------------------------------------------------------- refusals change nothing
SELECT throws_ok($$SELECT api.delete_account(NULL, 'correct horse')$$, '28000',
    'access token is missing, invalid, expired or revoked', 'a NULL token is 28000');
SELECT throws_ok($$SELECT api.delete_account('not-a-token', 'correct horse')$$, '28000', NULL, 'a garbage token is 28000');
SELECT throws_ok(format('SELECT api.delete_account(%L, NULL)', pg_temp.token('login')), '28P01',
    'p_password: wrong password', 'a NULL password on an account with a password is 28P01');
SELECT throws_ok(format('SELECT api.delete_account(%L, %L)', pg_temp.token('login'), ''), '28P01',
    'p_password: wrong password', 'an empty password is 28P01');
SELECT is((SELECT count(*)::integer FROM public.login_failures WHERE email = 'dl-ada@example.test'), 0,
    'a missing password is no guess: not counted');
SELECT throws_ok(format('SELECT api.delete_account(%L, %L)', pg_temp.token('login'), 'wrong horse'), '28P01',
    'p_password: wrong password', 'a wrong password is 28P01');
SELECT is((SELECT count(*)::integer FROM public.login_failures WHERE email = 'dl-ada@example.test'), 1,
    'a wrong password is counted by the login throttle (committed on its own)');
INSERT INTO public.login_failures (email) SELECT 'dl-ada@example.test' FROM generate_series(1, 4);
SELECT throws_ok(format('SELECT api.delete_account(%L, %L)', pg_temp.token('login'), 'correct horse'), 'CM001', NULL,
    'throttled: CM001 even with the right password');
DELETE FROM public.login_failures WHERE email = 'dl-ada@example.test';
SELECT is(pg_temp.everyone_else(pg_temp.needles()), (SELECT others FROM before), 'the refusals changed nothing of anyone else');
SELECT is((SELECT string_agg(format('%s=%s', r.table_name, r.hits), ',' ORDER BY r.table_name)
             FROM pg_temp.rows_naming(pg_temp.needles()) AS r), (SELECT ada FROM before),
    'nor anything of ada''s');

-- ---------------------------------------------------------------- erasure
SELECT is(api.delete_account(pg_temp.token('login'), 'correct horse'), 2, 'returns the number of sessions erased');
SELECT is_empty($$SELECT * FROM pg_temp.rows_naming(pg_temp.needles()) WHERE hits > 0$$,
    'no row of any table in public names ada (id, name, email, sessions, guest id, subject, or a hash of hers)');
SELECT is((SELECT count(*)::integer FROM public.conversation_sessions WHERE owner_deleted_at IS NOT NULL
             AND session_id IN ('dl-s1', 'dl-s2')), 0, 'her sessions are erased, not kept as orphans');
SELECT is(pg_temp.everyone_else(pg_temp.needles()), (SELECT others FROM before),
    'every row of every other account and guest is as it was');
SELECT is(api.authenticate(pg_temp.token('bea')), tests.id_of('dl-bea'), 'bea is still logged in');
SELECT results_eq($$SELECT content FROM api.get_messages('dl-xs', 'dl-gx')$$, ARRAY['a guest''s words'],
    'a guest''s session is untouched');
SELECT is(api.authenticate(pg_temp.token('reg')), NULL::uuid, 'ada''s tokens are gone');
SELECT throws_ok($$SELECT * FROM api.login('dl-ada@example.test', 'correct horse')$$, '28P01', NULL,
    'her email and password log in no more');
SELECT lives_ok($$SELECT * FROM api.register_user('Ada again', 'dl-ada@example.test', 'correct horse')$$,
    'the email is free for a new account');

-- ---------------------------------------------------------------- an account without a password
CREATE TEMP TABLE ident ON COMMIT DROP AS
SELECT 'fresh'::text AS label, l.* FROM api.link_identity('https://idp.example', 'dl-ida-sub', 'dl-ida@example.test', 'Ida') AS l;
INSERT INTO ident SELECT 'stale', l.* FROM api.link_identity('https://idp.example', 'dl-ivo-sub', 'dl-ivo@example.test', 'Ivo') AS l;
CREATE FUNCTION pg_temp.ident(p_label text) RETURNS ident LANGUAGE sql AS $$ SELECT * FROM ident WHERE label = p_label $$;
SELECT FROM tests.guest_session('dl-gi', 'dl-is');
SELECT FROM api.link_identity('https://idp.example', 'dl-ida-sub', 'dl-ida@example.test', 'Ida', 'dl-gi');
SELECT throws_ok(format('SELECT api.delete_account(%L, %L)', (pg_temp.ident('fresh')).token, 'some password'), '28P01',
    'p_password: this account has no password', 'a password for an account without one is 28P01');
-- Ivo signed in 6 minutes ago, and refreshed since: the refresh does not count as a sign-in.
UPDATE public.auth_tokens SET created_at = now() - interval '6 minutes'
 WHERE family_id = (tests.token_row((pg_temp.ident('stale')).token)).family_id;
INSERT INTO ident SELECT 'refreshed', (pg_temp.ident('stale')).user_id, false, 0, f.*
  FROM api.refresh((pg_temp.ident('stale')).refresh_token) AS f;
SELECT throws_ok(format('SELECT api.delete_account(%L, NULL)', (pg_temp.ident('refreshed')).token), '28000',
    'erasing an account without a password needs a sign-in of the last 5 minutes',
    'without a password, a token from a sign-in over 5 minutes ago is 28000, refreshed or not');
SELECT is((SELECT count(*)::integer FROM public.users WHERE id = (pg_temp.ident('stale')).user_id), 1, 'Ivo is still there');
SELECT is(api.delete_account((pg_temp.ident('fresh')).token, NULL), 1,
    'without a password, a token from a sign-in of the last 5 minutes erases the account (and its claimed session)');
SELECT is_empty(format('SELECT * FROM pg_temp.rows_naming(ARRAY[%L, %L, %L, %L]) WHERE hits > 0',
                       (pg_temp.ident('fresh')).user_id, 'dl-ida', 'dl-is', 'dl-gi'),
    'nothing of that account is left either (its identity included)');
SELECT is((SELECT row(created, migrated_sessions)::text
             FROM api.link_identity('https://idp.example', 'dl-ida-sub', 'dl-ida@example.test', 'Ida')),
    row(true, 0)::text, 'signing in again through the provider makes a new account');

SELECT * FROM finish();
ROLLBACK;
