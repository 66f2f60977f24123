-- api.login: credentials, tokens, one error for both failures, oversized input, rehashing at the
-- current cost, and the claim of guest sessions.
BEGIN;
SELECT plan(57);
SELECT tests.fast_hashing();

-- Failed logins are counted per email in a transaction of their own (they
-- survive this file's rollback), so every run uses emails of its own.  Keep
-- fewer than login_failure_limit (5) failures for one email before a success.
SELECT FROM set_config('tests.run', substr(md5(random()::text || clock_timestamp()::text), 1, 10), true);
CREATE FUNCTION pg_temp.persona(p_name text) RETURNS text LANGUAGE sql AS
$$ SELECT 'lg-' || p_name || '-' || current_setting('tests.run') $$;
CREATE FUNCTION pg_temp.email(p_name text) RETURNS text LANGUAGE sql AS
$$ SELECT pg_temp.persona(p_name) || '@example.test' $$;

CREATE TEMP TABLE reg ON COMMIT DROP AS
SELECT 'ada'::text AS label, r.* FROM tests.register(pg_temp.persona('ada')) AS r;
CREATE TEMP TABLE li ON COMMIT DROP AS
SELECT 'x'::text AS label, l.* FROM api.login('x@x.x', 'x') AS l WITH NO DATA;
CREATE FUNCTION pg_temp.li(p_label text) RETURNS li LANGUAGE sql AS $$ SELECT * FROM li WHERE label = p_label $$;

-- ---------------------------------------------------------------- happy path
SELECT lives_ok(
    $$INSERT INTO li SELECT 'first', l.* FROM api.login('  ' || upper(pg_temp.email('ada')) || ' ', 'correct horse') AS l$$,
    'login with the email in another case and surrounded by spaces works');
SELECT is(
    (SELECT row(user_id, name, email, migrated_sessions)::text FROM li WHERE label = 'first'),
    row(tests.id_of(pg_temp.persona('ada')), initcap(pg_temp.persona('ada')), pg_temp.email('ada'), 0)::text,
    'login returns the user''s id, name and email, and 0 migrated sessions without a guest id');
SELECT matches((pg_temp.li('first')).token, '^[0-9a-f]{64}$', 'the access token is 32 random bytes in hex');
SELECT matches((pg_temp.li('first')).refresh_token, '^[0-9a-f]{64}$', 'the refresh token is 32 random bytes in hex');
SELECT is(api.authenticate((pg_temp.li('first')).token), tests.id_of(pg_temp.persona('ada')),
    'the new access token authenticates the user');
SELECT is((pg_temp.li('first')).expires_at, now() + interval '1 hour', 'expires_at is 1 hour from now by default');
SELECT is(
    row((tests.token_row((pg_temp.li('first')).token)).expires_at,
        (tests.token_row((pg_temp.li('first')).refresh_token)).expires_at)::text,
    row(now() + interval '1 hour', now() + interval '30 days')::text,
    'the stored tokens (by SHA-256) expire after 1 hour and 30 days');
SELECT is(
    (tests.token_row((pg_temp.li('first')).token)).pair_id,
    (tests.token_row((pg_temp.li('first')).refresh_token)).pair_id,
    'the access and refresh token of a login are one pair');
SELECT isnt(
    (tests.token_row((pg_temp.li('first')).token)).family_id,
    (SELECT (tests.token_row(token)).family_id FROM reg WHERE label = 'ada'),
    'a login starts a token family of its own');
SELECT lives_ok(
    $$INSERT INTO li SELECT 'second', l.* FROM api.login(pg_temp.email('ada'), 'correct horse') AS l$$,
    'a second login works');
SELECT isnt((pg_temp.li('second')).token, (pg_temp.li('first')).token, 'each login issues a new token');
SELECT is(api.authenticate((pg_temp.li('first')).token), tests.id_of(pg_temp.persona('ada')),
    'a new login leaves earlier logins valid');

UPDATE public.chatmem_settings SET access_token_ttl = '10 minutes', refresh_token_ttl = '3 days';
SELECT lives_ok(
    $$INSERT INTO li SELECT 'ttl', l.* FROM api.login(pg_temp.email('ada'), 'correct horse') AS l$$,
    'login after the lifetimes changed');
SELECT is(
    row((pg_temp.li('ttl')).expires_at, (tests.token_row((pg_temp.li('ttl')).refresh_token)).expires_at)::text,
    row(now() + interval '10 minutes', now() + interval '3 days')::text,
    'token lifetimes come from the settings');
UPDATE public.chatmem_settings SET access_token_ttl = '1 hour', refresh_token_ttl = '30 days';

-- ---------------------------------------------------------------- wrong credentials: one answer
SELECT throws_ok($$SELECT * FROM api.login(pg_temp.email('ada'), 'wrong horse')$$,
    '28P01', 'invalid email or password', 'a wrong password is 28P01');
SELECT throws_ok($$SELECT * FROM api.login(pg_temp.email('nobody'), 'correct horse')$$,
    '28P01', 'invalid email or password', 'an unknown email is 28P01 with the same message');
SELECT is(
    tests.hint_of(format('SELECT * FROM api.login(%L, %L)', pg_temp.email('nobody'), 'correct horse')),
    tests.hint_of(format('SELECT * FROM api.login(%L, %L)', pg_temp.email('ada'), 'wrong horse')),
    'an unknown email and a wrong password give the same HINT too');
SELECT throws_ok($$SELECT * FROM api.login(pg_temp.email('ada'), 'correct horse ')$$,
    '28P01', 'invalid email or password', 'the password is compared exactly (no trimming)');

-- ---------------------------------------------------------------- invalid input
SELECT throws_ok($$SELECT * FROM api.login(NULL, 'correct horse')$$,
    '22023', 'p_email: is required', 'NULL p_email is 22023 naming the field');
SELECT throws_ok($$SELECT * FROM api.login('', 'correct horse')$$,
    '22023', 'p_email: is required', 'empty p_email is 22023 naming the field');
SELECT throws_ok($$SELECT * FROM api.login('   ', 'correct horse')$$,
    '22023', 'p_email: is required', 'a blank p_email is 22023 naming the field');
SELECT throws_ok($$SELECT * FROM api.login(pg_temp.email('ada'), NULL)$$,
    '22023', 'p_password: is required', 'NULL p_password is 22023 naming the field');
SELECT throws_ok($$SELECT * FROM api.login(pg_temp.email('ada'), '')$$,
    '22023', 'p_password: is required', 'empty p_password is 22023 naming the field');
SELECT throws_ok($$SELECT * FROM api.login(pg_temp.email('ada'), 'correct horse', repeat('g', 256))$$,
    '22023', 'p_anonymous_user_id: is 256 characters long; the limit is 255',
    'a 256-character p_anonymous_user_id is 22023 naming the field');
SELECT isnt(tests.hint_of($$SELECT * FROM api.login(NULL, 'correct horse')$$), NULL,
    'an invalid-input error carries a HINT');

-- ---------------------------------------------------------------- the claim
SELECT FROM tests.guest_session('lg-guest', 'lg-s1');
SELECT FROM tests.guest_session('lg-guest', 'lg-s2');
SELECT FROM tests.guest_session('lg-guest', 'lg-s3');
SELECT FROM tests.guest_session('lg-other-guest', 'lg-o1');
SELECT FROM api.create_or_get_session('lg-open', NULL);
SELECT FROM api.add_message('lg-s1', 'lg-guest', 'user', 'remember me');
SELECT FROM unnest(ARRAY['lg-s1', 'lg-s2', 'lg-s3', 'lg-o1', 'lg-open']) AS s, tests.backdate(s);

SELECT throws_ok($$SELECT * FROM api.login(pg_temp.email('ada'), 'wrong horse', 'lg-guest')$$,
    '28P01', 'invalid email or password', 'a wrong password with a guest id is 28P01');
SELECT throws_ok($$SELECT * FROM api.login(pg_temp.email('nobody'), 'correct horse', 'lg-guest')$$,
    '28P01', 'invalid email or password', 'an unknown email with a guest id is 28P01');
SELECT is(
    (SELECT count(*)::integer FROM public.conversation_sessions
      WHERE session_id IN ('lg-s1', 'lg-s2', 'lg-s3') AND user_id IS NULL AND metadata ->> 'anonymousUserId' = 'lg-guest'
        AND updated_at = now() - interval '1 hour'),
    3, 'failed logins claim nothing');

SELECT lives_ok(
    $$INSERT INTO li SELECT 'claim', l.* FROM api.login(pg_temp.email('ada'), 'correct horse', 'lg-guest') AS l$$,
    'a guest who has an account logs in with its guest id');
SELECT is((pg_temp.li('claim')).migrated_sessions, 3, 'migrated_sessions counts the guest''s 3 sessions');
SELECT is(
    (SELECT array_agg(session_id::text ORDER BY session_id) FROM public.conversation_sessions
      WHERE user_id = tests.id_of(pg_temp.persona('ada'))),
    ARRAY['lg-s1', 'lg-s2', 'lg-s3'], 'the guest''s sessions now belong to the user');
SELECT is(
    (SELECT count(*)::integer FROM public.conversation_sessions
      WHERE session_id IN ('lg-s1', 'lg-s2', 'lg-s3') AND (metadata ? 'anonymousUserId' OR updated_at <> now())),
    0, 'the claimed sessions lost their anonymousUserId key and had updated_at bumped');
SELECT results_eq(
    $$SELECT session_id::text, anonymous_user_id, user_id, method, claimed_at FROM public.session_claims
       WHERE user_id = tests.id_of(pg_temp.persona('ada')) ORDER BY session_id$$,
    $$SELECT s, 'lg-guest', tests.id_of(pg_temp.persona('ada')), 'login', now()
        FROM unnest(ARRAY['lg-s1', 'lg-s2', 'lg-s3']) AS s$$,
    'one audit row per claimed session, with method login');
SELECT results_eq(
    $$SELECT role, content FROM api.get_messages('lg-s1', tests.id_of(pg_temp.persona('ada'))::text)$$,
    $$VALUES ('user', 'remember me')$$,
    'the messages went with their session');
SELECT is(
    (SELECT row(user_id, metadata ->> 'anonymousUserId', updated_at)::text FROM public.conversation_sessions
      WHERE session_id = 'lg-o1'),
    row(NULL::uuid, 'lg-other-guest', now() - interval '1 hour')::text,
    'another guest''s session is not claimed');
SELECT is(
    (SELECT row(user_id, metadata)::text FROM public.conversation_sessions WHERE session_id = 'lg-open'),
    row(NULL::uuid, '{}'::jsonb)::text,
    'a session with no owner is not claimed');

SELECT FROM tests.guest_session('lg-guest', 'lg-s4');
SELECT is(
    (SELECT l.migrated_sessions FROM api.login(pg_temp.email('ada'), 'correct horse', NULL) AS l), 0,
    'NULL p_anonymous_user_id claims nothing');
SELECT is(
    (SELECT l.migrated_sessions FROM api.login(pg_temp.email('ada'), 'correct horse', '') AS l), 0,
    'empty p_anonymous_user_id claims nothing');
SELECT is(
    (SELECT l.migrated_sessions FROM api.login(pg_temp.email('ada'), 'correct horse', 'anonymous') AS l), 0,
    '''anonymous'' claims nothing');
SELECT is(
    (SELECT row(user_id, metadata ->> 'anonymousUserId')::text FROM public.conversation_sessions WHERE session_id = 'lg-s4'),
    row(NULL::uuid, 'lg-guest')::text,
    'the guest''s new session is still the guest''s after logins without its id');
SELECT is(
    (SELECT user_id FROM public.conversation_sessions WHERE session_id = 'lg-open'), NULL::uuid,
    'the ownerless session is still ownerless');
SELECT is(
    (SELECT l.migrated_sessions FROM api.login(pg_temp.email('ada'), 'correct horse', 'lg-guest') AS l), 1,
    'a later login with the guest id claims the guest''s new session too');

-- Another account cannot claim what is already claimed.
SELECT FROM tests.register(pg_temp.persona('bea'));
SELECT is(
    (SELECT l.migrated_sessions FROM api.login(pg_temp.email('bea'), 'correct horse', 'lg-guest') AS l), 0,
    'another user logging in with the same guest id claims nothing already claimed');
SELECT is(
    (SELECT count(*)::integer FROM public.conversation_sessions WHERE user_id = tests.id_of(pg_temp.persona('ada'))), 4,
    'the first user keeps the claimed sessions');

-- ---------------------------------------------------------------- an account without a password
SELECT FROM api.link_identity('https://idp.example', pg_temp.persona('ida-sub'), pg_temp.email('ida'), 'Ida');
SELECT throws_ok(format('SELECT * FROM api.login(%L, %L)', pg_temp.email('ida'), 'correct horse'),
    '28P01', 'invalid email or password',
    'an account without a password (made through an identity provider) is refused like a wrong password');
SELECT is(
    tests.hint_of(format('SELECT * FROM api.login(%L, %L)', pg_temp.email('ida'), 'correct horse')),
    tests.hint_of(format('SELECT * FROM api.login(%L, %L)', pg_temp.email('nobody'), 'correct horse')),
    'with the HINT of an unknown email');
SELECT is((SELECT count(*)::integer FROM public.login_failures WHERE email = pg_temp.email('ida')), 2,
    'and counted by the throttle like any failure');

-- ---------------------------------------------------------------- oversized email: refused before any work
SELECT throws_ok(format('SELECT * FROM api.login(%L, %L)', repeat('a', 242) || '@example.test', 'x'),
    '22023', 'p_email: is 255 characters long; the limit is 254', 'a 255-character email is 22023 naming the field');
SELECT throws_ok(format('SELECT * FROM api.login(%L, NULL)', repeat('a', 100000) || '@example.test'),
    '22023', 'p_email: is 100013 characters long; the limit is 254',
    'an oversized email is refused before the other arguments are looked at');

-- ---------------------------------------------------------------- a password stored at another cost is rehashed
UPDATE public.users SET password_hash = crypt('correct horse', gen_salt('bf', 5))
 WHERE id = tests.id_of(pg_temp.persona('ada'));
SELECT throws_ok(format('SELECT * FROM api.login(%L, %L)', pg_temp.email('ada'), 'wrong horse'),
    '28P01', 'invalid email or password', 'a wrong password for a hash at cost 5 is 28P01');
SELECT matches((SELECT password_hash FROM public.users WHERE id = tests.id_of(pg_temp.persona('ada'))),
    '^\$2a\$05\$', 'a failed login leaves the hash as it was');
SELECT lives_ok(format('SELECT * FROM api.login(%L, %L)', pg_temp.email('ada'), 'correct horse'),
    'the right password at cost 5 logs in');
SELECT matches((SELECT password_hash FROM public.users WHERE id = tests.id_of(pg_temp.persona('ada'))),
    '^\$2a\$04\$', 'a successful login rehashed the password at the current cost (4)');

-- ---------------------------------------------------------------- a failing claim does not fail login
SELECT FROM tests.guest_session('lg-broken-guest', 'lg-b1');
SELECT FROM tests.break_claims();
SET LOCAL client_min_messages = error;  -- the claim's WARNING is expected
SELECT lives_ok(
    $$INSERT INTO li SELECT 'broken', l.* FROM api.login(pg_temp.email('ada'), 'correct horse', 'lg-broken-guest') AS l$$,
    'login succeeds although the claim fails');
RESET client_min_messages;
SELECT is((pg_temp.li('broken')).migrated_sessions, 0, 'a failed claim reports 0 migrated sessions');
SELECT is(api.authenticate((pg_temp.li('broken')).token), tests.id_of(pg_temp.persona('ada')),
    'the token of a login whose claim failed is valid');
SELECT is(
    (SELECT row(user_id, metadata ->> 'anonymousUserId')::text FROM public.conversation_sessions WHERE session_id = 'lg-b1'),
    row(NULL::uuid, 'lg-broken-guest')::text,
    'nothing of the failed claim is half done');

SELECT * FROM finish();
ROLLBACK;
