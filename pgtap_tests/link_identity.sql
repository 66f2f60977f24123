-- api.link_identity: find or create the account of (provider, subject), claim the guest's sessions
-- exactly as registration does (audit method identity), issue tokens; an email that has an account is
-- linked only when the settings allow it; callable by chatmem_identity_broker only.
BEGIN;
SELECT plan(46);
SELECT tests.fast_hashing();
-- A failed login is counted in a transaction of its own and survives this
-- file's rollback: forget earlier runs' (for this transaction only).
DELETE FROM public.login_failures WHERE email IN ('ida@example.test', 'li-nobody@example.test');

CREATE TEMP TABLE li ON COMMIT DROP AS
SELECT 'x'::text AS label, l.* FROM api.link_identity('x', 'x', 'x@x.x', 'x') AS l WITH NO DATA;
CREATE FUNCTION pg_temp.li(p_label text) RETURNS li LANGUAGE sql AS $$ SELECT * FROM li WHERE label = p_label $$;
CREATE FUNCTION pg_temp.user_of(p_email text) RETURNS public.users LANGUAGE sql AS
$$ SELECT u.* FROM public.users AS u WHERE lower(u.email) = lower(p_email) $$;
CREATE FUNCTION pg_temp.counts() RETURNS text LANGUAGE sql AS $$
    SELECT row((SELECT count(*) FROM public.users), (SELECT count(*) FROM public.user_identities),
               (SELECT count(*) FROM public.auth_tokens), (SELECT count(*) FROM public.session_claims))::text
$$;

SELECT FROM tests.guest_session('li-g1', 'li-s1');
SELECT FROM tests.guest_session('li-g1', 'li-s2');
SELECT FROM api.add_message('li-s1', 'li-g1', 'user', 'remember me');
SELECT FROM tests.guest_session('li-other', 'li-o1');
SELECT FROM unnest(ARRAY['li-s1', 'li-s2', 'li-o1']) AS s, tests.backdate(s);

-- ---------------------------------------------------------------- first sign-in: a new account without a password
SELECT lives_ok(
    $$INSERT INTO li SELECT 'first', l.* FROM api.link_identity('https://idp.example', 'sub-ida', '  Ida@Example.test ', '  Ida  ', 'li-g1') AS l$$,
    'a first sign-in through a provider');
SELECT is((SELECT row(created, migrated_sessions)::text FROM li WHERE label = 'first'), row(true, 2)::text,
    'creates an account and reports the guest''s 2 sessions claimed');
SELECT is(
    (SELECT row(u.id, u.name, u.email, u.password_hash, u.created_at)::text FROM pg_temp.user_of('ida@example.test') AS u),
    row((pg_temp.li('first')).user_id, 'Ida', 'Ida@Example.test', NULL::text, now())::text,
    'the account has the trimmed name and email and no password');
SELECT is(
    (SELECT row(i.user_id, i.created_at, i.last_used_at)::text FROM public.user_identities AS i
      WHERE i.provider = 'https://idp.example' AND i.subject = 'sub-ida'),
    row((pg_temp.li('first')).user_id, now(), now())::text, 'the identity is linked to it');
SELECT is(api.authenticate((pg_temp.li('first')).token), (pg_temp.li('first')).user_id, 'the access token authenticates it');
SELECT is(
    row((tests.token_row((pg_temp.li('first')).refresh_token)).kind, (pg_temp.li('first')).expires_at)::text,
    row('refresh', now() + interval '1 hour')::text, 'with a refresh token, stored by its SHA-256, and expires_at');
SELECT matches((pg_temp.li('first')).token, '^[0-9a-f]{64}$', 'the token is 32 random bytes in hex');

-- The claim, exactly as registration's.
SELECT is(
    (SELECT array_agg(session_id::text ORDER BY session_id) FROM public.conversation_sessions
      WHERE user_id = (pg_temp.li('first')).user_id), ARRAY['li-s1', 'li-s2'], 'the guest''s sessions are the account''s');
SELECT is(
    (SELECT count(*)::integer FROM public.conversation_sessions
      WHERE session_id IN ('li-s1', 'li-s2') AND (metadata ? 'anonymousUserId' OR updated_at <> now())), 0,
    'they lost their anonymousUserId key and had updated_at bumped');
SELECT results_eq(
    $$SELECT session_id::text, anonymous_user_id, user_id, method, claimed_at FROM public.session_claims
       WHERE user_id = (pg_temp.li('first')).user_id ORDER BY session_id$$,
    $$SELECT s, 'li-g1', (pg_temp.li('first')).user_id, 'identity', now() FROM unnest(ARRAY['li-s1', 'li-s2']) AS s$$,
    'one audit row per claimed session, with method identity');
SELECT results_eq($$SELECT content FROM api.get_messages('li-s1', (pg_temp.li('first')).user_id::text)$$,
    ARRAY['remember me'], 'the messages went with their session');
SELECT is((SELECT row(user_id, metadata ->> 'anonymousUserId')::text FROM public.conversation_sessions WHERE session_id = 'li-o1'),
    row(NULL::uuid, 'li-other')::text, 'another guest''s session is not claimed');

-- ---------------------------------------------------------------- a later sign-in: the same account
SELECT FROM tests.guest_session('li-g2', 'li-s3');
SELECT lives_ok(
    $$INSERT INTO li SELECT 'again', l.* FROM api.link_identity('https://idp.example', 'sub-ida', 'ida-new@example.test', 'New name', 'li-g2') AS l$$,
    'signing in again, even with another email and name from the provider');
SELECT is((SELECT row(user_id, created, migrated_sessions)::text FROM li WHERE label = 'again'),
    row((pg_temp.li('first')).user_id, false, 1)::text, 'finds the same account, and claims the new guest''s session');
SELECT is((SELECT row(name, email)::text FROM public.users WHERE id = (pg_temp.li('first')).user_id),
    row('Ida', 'Ida@Example.test')::text, 'the profile is kept as it was');
SELECT isnt((tests.token_row((pg_temp.li('again')).token)).family_id, (tests.token_row((pg_temp.li('first')).token)).family_id,
    'each sign-in starts a token family of its own');
SELECT is(api.authenticate((pg_temp.li('first')).token), (pg_temp.li('first')).user_id, 'earlier sign-ins stay valid');
SELECT is((SELECT l.migrated_sessions FROM api.link_identity('https://idp.example', 'sub-ida', 'ida@example.test', NULL, 'li-g1') AS l),
    0, 'sessions already claimed are not claimed again');

-- ---------------------------------------------------------------- no password: login refuses it like a wrong one
SELECT throws_ok($$SELECT * FROM api.login('ida@example.test', 'any password at all')$$,
    '28P01', 'invalid email or password', 'api.login refuses an account without a password with 28P01');
SELECT is(tests.hint_of($$SELECT * FROM api.login('ida@example.test', 'any password at all')$$),
    tests.hint_of($$SELECT * FROM api.login('li-nobody@example.test', 'any password at all')$$),
    'with the same HINT as an unknown email');
SELECT throws_ok($$SELECT * FROM api.register_user('Ida', 'IDA@example.test', 'correct horse')$$,
    '23505', NULL, 'registering its email is refused: the email is taken');

-- ---------------------------------------------------------------- an email that has an account
SELECT FROM tests.register('li-ada');
CREATE TEMP TABLE before ON COMMIT DROP AS SELECT pg_temp.counts() AS counts;
SELECT throws_ok($$SELECT * FROM api.link_identity('https://idp.example', 'sub-ada', 'LI-ADA@example.test', 'Ada')$$,
    '23505', 'p_email: an account with this email already exists',
    'a new identity with the email of a password account is 23505 by default');
SELECT throws_ok($$SELECT * FROM api.link_identity('https://other.example', 'sub-ida-2', 'ida@example.test', 'Ida')$$,
    '23505', 'p_email: an account with this email already exists',
    'so is one with the email of an account of another identity');
SELECT isnt(tests.hint_of($$SELECT * FROM api.link_identity('https://idp.example', 'sub-ada', 'li-ada@example.test', 'Ada')$$),
    NULL, 'the 23505 carries a HINT');
SELECT is(pg_temp.counts(), (SELECT counts FROM before), 'the refusals made no account, identity, token or claim');
UPDATE public.chatmem_settings SET link_identity_by_email = true;
SELECT lives_ok(
    $$INSERT INTO li SELECT 'linked', l.* FROM api.link_identity('https://idp.example', 'sub-ada', 'LI-ADA@example.test', 'Ada') AS l$$,
    'with link_identity_by_email, the identity is linked to the account of that email');
SELECT is((SELECT row(user_id, created)::text FROM li WHERE label = 'linked'), row(tests.id_of('li-ada'), false)::text,
    'the existing account, not a new one');
SELECT lives_ok($$SELECT * FROM tests.login('li-ada')$$, 'it keeps its password');
SELECT is((SELECT count(*)::integer FROM public.user_identities WHERE user_id = tests.id_of('li-ada')), 1,
    'and has the identity');
UPDATE public.chatmem_settings SET link_identity_by_email = false;

-- ---------------------------------------------------------------- names
INSERT INTO li SELECT 'noname', l.* FROM api.link_identity('p', 'sub-noname', 'no.name@example.test', NULL) AS l;
INSERT INTO li SELECT 'blank', l.* FROM api.link_identity('p', 'sub-blank', 'blank@example.test', '   ') AS l;
SELECT is((SELECT name FROM public.users WHERE id = (pg_temp.li('noname')).user_id),
    'no.name', 'no name from the provider: the email''s local part');
SELECT is((SELECT name FROM public.users WHERE id = (pg_temp.li('blank')).user_id),
    'blank', 'a blank name likewise');

-- ---------------------------------------------------------------- invalid input
SELECT throws_ok($$SELECT * FROM api.link_identity(NULL, 's', 'v1@example.test', 'V')$$,
    '22023', 'p_provider: is required', 'a NULL provider is 22023 naming the field');
SELECT throws_ok($$SELECT * FROM api.link_identity('p', '', 'v2@example.test', 'V')$$,
    '22023', 'p_subject: is empty', 'an empty subject is 22023');
SELECT throws_ok(format('SELECT * FROM api.link_identity(%L, %L, %L, %L)', 'p', repeat('s', 256), 'v3@example.test', 'V'),
    '22023', 'p_subject: is 256 characters long; the limit is 255', 'a subject over 255 characters is 22023');
SELECT throws_ok($$SELECT * FROM api.link_identity('p', 's4', NULL, 'V')$$,
    '22023', 'p_email: is required', 'a NULL email is 22023');
SELECT throws_ok($$SELECT * FROM api.link_identity('p', 's5', 'not an email', 'V')$$,
    '22023', 'p_email: is not an email address of the form local@domain.tld', 'a malformed email is 22023');
SELECT throws_ok(format('SELECT * FROM api.link_identity(%L, %L, %L, %L)', 'p', 's6', 'v6@example.test', repeat('n', 201)),
    '22023', 'p_name: is 201 characters long; the limit is 200', 'a name over 200 characters is 22023');
SELECT throws_ok(format('SELECT * FROM api.link_identity(%L, %L, %L, %L)', 'p', 's7', 'v7@example.test', E'a\tb'),
    '22023', 'p_name: contains control characters', 'a name with control characters is 22023');
SELECT throws_ok(format('SELECT * FROM api.link_identity(%L, %L, %L, %L, %L)', 'p', 's8', 'v8@example.test', 'V', repeat('g', 256)),
    '22023', 'p_anonymous_user_id: is 256 characters long; the limit is 255', 'a guest id over 255 characters is 22023');
SELECT is((SELECT count(*)::integer FROM public.users WHERE email LIKE 'v_@example.test'), 0, 'invalid input made no account');

-- ---------------------------------------------------------------- a failing claim does not fail the sign-in
SELECT FROM tests.guest_session('li-broken', 'li-b1');
SELECT FROM tests.break_claims();
SET LOCAL client_min_messages = error;  -- the claim's WARNING is expected
SELECT is((SELECT row(created, migrated_sessions)::text FROM api.link_identity('p', 'sub-broken', 'broken@example.test', 'B', 'li-broken')),
    row(true, 0)::text, 'the sign-in succeeds with 0 migrated sessions although the claim fails');
RESET client_min_messages;

-- ---------------------------------------------------------------- who may call it
SELECT function_privs_are('api', 'link_identity', ARRAY['text', 'text', 'text', 'text', 'text'], 'chatmem_identity_broker',
    ARRAY['EXECUTE'], 'chatmem_identity_broker may execute api.link_identity');
SELECT function_privs_are('api', 'link_identity', ARRAY['text', 'text', 'text', 'text', 'text'], 'chatmem_app',
    ARRAY[]::text[], 'chatmem_app may not');
SELECT tests.let_pgtap_run_as('chatmem_app', 'chatmem_identity_broker');
SET LOCAL ROLE chatmem_app;
SELECT throws_ok($$SELECT * FROM api.link_identity('p', 'sub-app', 'app@example.test', 'A')$$,
    '42501', 'permission denied for function link_identity', 'as chatmem_app: 42501');
RESET ROLE;
SET LOCAL ROLE chatmem_identity_broker;
SELECT is((SELECT created FROM api.link_identity('p', 'sub-broker', 'broker@example.test', 'B')), true,
    'as chatmem_identity_broker: works');
SELECT throws_ok($$SELECT * FROM api.login('broker@example.test', 'x')$$, '42501', NULL,
    'as chatmem_identity_broker: nothing else of the API');
RESET ROLE;

SELECT * FROM finish();
ROLLBACK;
