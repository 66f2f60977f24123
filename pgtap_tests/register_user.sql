-- api.register_user: validation, hashing, tokens, unique email, and the claim of guest sessions.
BEGIN;
SELECT plan(72);
SELECT tests.fast_hashing();

CREATE TEMP TABLE reg ON COMMIT DROP AS
SELECT 'x'::text AS label, r.* FROM api.register_user('x', 'x@x.x', 'xxxxxxxx') AS r WITH NO DATA;
ALTER TABLE reg ADD PRIMARY KEY (label);
CREATE FUNCTION pg_temp.r(p_label text) RETURNS reg LANGUAGE sql AS $$ SELECT * FROM reg WHERE label = p_label $$;

-- ---------------------------------------------------------------- happy path
SELECT lives_ok(
    $$INSERT INTO reg SELECT 'ada', r.* FROM api.register_user('  Ada Lovelace  ', '  Ada@Example.test ', 'correct horse') AS r$$,
    'register_user creates an account');
SELECT is((SELECT expires_at FROM reg WHERE label = 'ada'), now() + interval '1 hour',
    'register_user returns when the access token expires, as login does');
SELECT is((SELECT row(name, email, created_at, migrated, migrated_sessions)::text FROM reg WHERE label = 'ada'),
    row('Ada Lovelace', 'Ada@Example.test', now(), false, 0)::text,
    'returns the trimmed name and email, created_at, and no migration without a guest id');
SELECT is((SELECT row(u.name, u.email, u.created_at)::text FROM public.users AS u WHERE u.id = (pg_temp.r('ada')).user_id),
    row('Ada Lovelace', 'Ada@Example.test', now())::text,
    'the user row is stored with the trimmed name and email');
SELECT matches((pg_temp.r('ada')).token, '^[0-9a-f]{64}$', 'the access token is 32 random bytes in hex');
SELECT matches((pg_temp.r('ada')).refresh_token, '^[0-9a-f]{64}$', 'the refresh token is 32 random bytes in hex');
SELECT isnt((pg_temp.r('ada')).token, (pg_temp.r('ada')).refresh_token, 'the two tokens differ');
SELECT is(api.authenticate((pg_temp.r('ada')).token), (pg_temp.r('ada')).user_id, 'the access token authenticates the new user');
SELECT is(
    (SELECT row((tests.token_row(token)).kind, (tests.token_row(token)).user_id, (tests.token_row(token)).expires_at)::text
       FROM reg WHERE label = 'ada'),
    row('access', (pg_temp.r('ada')).user_id, now() + interval '1 hour')::text,
    'the access token is stored by its SHA-256 and lives 1 hour by default');
SELECT is(
    (SELECT row((tests.token_row(refresh_token)).kind, (tests.token_row(refresh_token)).expires_at)::text
       FROM reg WHERE label = 'ada'),
    row('refresh', now() + interval '30 days')::text,
    'the refresh token is stored by its SHA-256 and lives 30 days by default');
SELECT is(
    (SELECT count(*)::integer FROM public.auth_tokens AS t, reg
      WHERE reg.label = 'ada' AND (strpos(t::text, reg.token) > 0 OR strpos(t::text, reg.refresh_token) > 0
                                   OR t.token_hash IN (decode(reg.token, 'hex'), decode(reg.refresh_token, 'hex')))),
    0, 'no plain token is stored');
SELECT matches((SELECT password_hash FROM public.users WHERE id = (pg_temp.r('ada')).user_id), '^\$2a\$04\$.{53}$',
    'the password is stored as a bcrypt hash of the settings'' cost');
SELECT is(
    (SELECT chatmem_internal.crypt('correct horse', password_hash) = password_hash FROM public.users
      WHERE id = (pg_temp.r('ada')).user_id),
    true, 'the bcrypt hash verifies the password');

-- ---------------------------------------------------------------- boundaries that pass
SELECT lives_ok($$SELECT * FROM api.register_user('  ' || repeat('n', 200) || '  ', 'long-name@example.test', 'correct horse')$$,
    'a name of 200 characters after trimming is accepted');
SELECT lives_ok($$SELECT * FROM api.register_user('E', repeat('e', 241) || '@example.test', 'correct horse')$$,
    'an email of 254 characters is accepted');
SELECT lives_ok($$SELECT * FROM api.register_user('P', 'pw8@example.test', '12345678')$$,
    'a password of 8 characters is accepted');
SELECT lives_ok($$SELECT * FROM api.register_user('P', 'pw72@example.test', repeat('p', 72))$$,
    'a password of 72 bytes is accepted');
SELECT lives_ok($$SELECT * FROM api.register_user('P', 'pw36@example.test', repeat('é', 36))$$,
    'a password of 36 two-byte characters (72 bytes) is accepted');

-- ---------------------------------------------------------------- invalid input
SELECT throws_ok($$SELECT * FROM api.register_user(NULL, 'bad1@example.test', 'correct horse')$$,
    '22023', 'p_name: is required', 'NULL p_name is 22023 naming the field');
SELECT throws_ok($$SELECT * FROM api.register_user('   ', 'bad1@example.test', 'correct horse')$$,
    '22023', 'p_name: is empty', 'a blank p_name is 22023 naming the field');
SELECT throws_ok($$SELECT * FROM api.register_user(repeat('n', 201), 'bad1@example.test', 'correct horse')$$,
    '22023', 'p_name: is 201 characters long; the limit is 200', 'a 201-character p_name is 22023 naming the field');
SELECT throws_ok($$SELECT * FROM api.register_user('B', NULL, 'correct horse')$$,
    '22023', 'p_email: is required', 'NULL p_email is 22023 naming the field');
SELECT throws_ok($$SELECT * FROM api.register_user('B', '', 'correct horse')$$,
    '22023', 'p_email: is not an email address of the form local@domain.tld', 'empty p_email is 22023 naming the field');
SELECT throws_ok($$SELECT * FROM api.register_user('B', 'bad1.example.test', 'correct horse')$$,
    '22023', 'p_email: is not an email address of the form local@domain.tld', 'an email without @ is 22023');
SELECT throws_ok($$SELECT * FROM api.register_user('B', 'bad1@localhost', 'correct horse')$$,
    '22023', 'p_email: is not an email address of the form local@domain.tld', 'an email without a dotted domain is 22023');
SELECT throws_ok($$SELECT * FROM api.register_user('B', 'bad 1@example.test', 'correct horse')$$,
    '22023', 'p_email: is not an email address of the form local@domain.tld', 'an email with a space inside is 22023');
SELECT throws_ok($$SELECT * FROM api.register_user('B', repeat('e', 242) || '@example.test', 'correct horse')$$,
    '22023', 'p_email: is 255 characters long; the limit is 254', 'a 255-character email is 22023 naming the field');
SELECT throws_ok($$SELECT * FROM api.register_user('B', 'bad1@example.test', NULL)$$,
    '22023', 'p_password: is required', 'NULL p_password is 22023 naming the field');
SELECT throws_ok($$SELECT * FROM api.register_user('B', 'bad1@example.test', '1234567')$$,
    '22023', 'p_password: is shorter than 8 characters', 'a 7-character password is 22023 naming the field');
SELECT throws_ok($$SELECT * FROM api.register_user('B', 'bad1@example.test', repeat('p', 73))$$,
    '22023', 'p_password: is 73 bytes long; the limit is 72 bytes', 'a 73-byte password is 22023 naming the field');
SELECT throws_ok($$SELECT * FROM api.register_user('B', 'bad1@example.test', repeat('é', 37))$$,
    '22023', 'p_password: is 74 bytes long; the limit is 72 bytes', 'the password limit counts bytes, not characters');
SELECT throws_ok($$SELECT * FROM api.register_user('B', 'bad1@example.test', 'correct horse', repeat('g', 256))$$,
    '22023', 'p_anonymous_user_id: is 256 characters long; the limit is 255',
    'a 256-character p_anonymous_user_id is 22023 naming the field');
SELECT isnt(tests.hint_of($$SELECT * FROM api.register_user('B', 'bad1@example.test', '1')$$), NULL,
    'an invalid-input error carries a HINT');
SELECT is((SELECT count(*)::integer FROM public.users WHERE lower(email) LIKE 'bad%'), 0,
    'refused registrations created no user');

UPDATE public.chatmem_settings SET password_min_length = 12, access_token_ttl = '5 minutes', refresh_token_ttl = '2 days';
SELECT throws_ok($$SELECT * FROM api.register_user('B', 'bad1@example.test', '12345678901')$$,
    '22023', 'p_password: is shorter than 12 characters', 'the minimum password length comes from the settings');
SELECT lives_ok(
    $$INSERT INTO reg SELECT 'ttl', r.* FROM api.register_user('T', 'ttl@example.test', '123456789012') AS r$$,
    'a password of the settings'' minimum length is accepted');
SELECT is(
    (SELECT row((tests.token_row(token)).expires_at, (tests.token_row(refresh_token)).expires_at)::text FROM reg WHERE label = 'ttl'),
    row(now() + interval '5 minutes', now() + interval '2 days')::text,
    'token lifetimes come from the settings');
UPDATE public.chatmem_settings SET password_min_length = 8, access_token_ttl = '1 hour', refresh_token_ttl = '30 days';

-- ---------------------------------------------------------------- email taken, in any case
SELECT throws_ok($$SELECT * FROM api.register_user('Ada', 'Ada@Example.test', 'correct horse')$$,
    '23505', 'p_email: an account with this email already exists', 'the same email again is 23505');
SELECT throws_ok($$SELECT * FROM api.register_user('Ada', 'ada@example.TEST', 'correct horse')$$,
    '23505', 'p_email: an account with this email already exists', 'the same email in another case is 23505');
SELECT isnt(tests.hint_of($$SELECT * FROM api.register_user('Ada', 'ADA@EXAMPLE.TEST', 'correct horse')$$), NULL,
    'the 23505 carries a HINT');

-- ---------------------------------------------------------------- the claim
SELECT FROM tests.guest_session('reg-guest', 'reg-s1');
SELECT FROM tests.guest_session('reg-guest', 'reg-s2');
SELECT FROM tests.guest_session('reg-other-guest', 'reg-o1');
SELECT FROM api.create_or_get_session('reg-open', NULL);
SELECT FROM api.add_message('reg-s1', 'reg-guest', 'user', 'hello');
SELECT FROM api.add_message('reg-s1', 'reg-guest', 'assistant', 'hi there');
SELECT FROM api.add_qa_pair('reg-s2', 'reg-guest', 'what?', 'that.');
SELECT FROM unnest(ARRAY['reg-s1', 'reg-s2', 'reg-o1', 'reg-open']) AS s, tests.backdate(s);

SELECT throws_ok($$SELECT * FROM api.register_user('Ada', 'ADA@example.test', 'correct horse', 'reg-guest')$$,
    '23505', 'p_email: an account with this email already exists', 'a taken email with a guest id is 23505');
SELECT is(
    (SELECT count(*)::integer FROM public.conversation_sessions
      WHERE session_id IN ('reg-s1', 'reg-s2') AND user_id IS NULL AND metadata ->> 'anonymousUserId' = 'reg-guest'),
    2, 'a refused registration claims nothing');
SELECT is((SELECT count(*)::integer FROM public.users WHERE lower(email) = 'ada@example.test'), 1,
    'a refused registration adds no user');

SELECT lives_ok(
    $$INSERT INTO reg SELECT 'carol', r.* FROM api.register_user('Carol', 'carol@example.test', 'correct horse', 'reg-guest') AS r$$,
    'a guest registers with its guest id');
SELECT is((SELECT row(migrated, migrated_sessions)::text FROM reg WHERE label = 'carol'), row(true, 2)::text,
    'migrated is true and migrated_sessions counts the guest''s 2 sessions');
SELECT is(
    (SELECT array_agg(session_id ORDER BY session_id) FROM public.conversation_sessions
      WHERE user_id = (pg_temp.r('carol')).user_id),
    ARRAY['reg-s1', 'reg-s2']::varchar[],
    'the guest''s sessions now belong to the new user');
SELECT is(
    (SELECT count(*)::integer FROM public.conversation_sessions
      WHERE session_id IN ('reg-s1', 'reg-s2') AND metadata ? 'anonymousUserId'),
    0, 'no anonymousUserId key is left on the claimed sessions');
SELECT is(
    (SELECT array_agg(DISTINCT updated_at) FROM public.conversation_sessions WHERE session_id IN ('reg-s1', 'reg-s2')),
    ARRAY[now()], 'the claim bumps updated_at');
SELECT results_eq(
    $$SELECT session_id::text, anonymous_user_id, user_id, method, claimed_at FROM public.session_claims
       WHERE user_id = (pg_temp.r('carol')).user_id ORDER BY session_id$$,
    $$VALUES ('reg-s1', 'reg-guest', (pg_temp.r('carol')).user_id, 'register', now()),
             ('reg-s2', 'reg-guest', (pg_temp.r('carol')).user_id, 'register', now())$$,
    'one audit row per claimed session: session, guest id, user, time, method register');
SELECT results_eq(
    $$SELECT role, content FROM api.get_messages('reg-s1', (pg_temp.r('carol')).user_id::text)$$,
    $$VALUES ('user', 'hello'), ('assistant', 'hi there')$$,
    'the messages went with their session and the user reads them');
SELECT results_eq(
    $$SELECT question, answer FROM api.get_qa_pairs('reg-s2', (pg_temp.r('carol')).user_id::text)$$,
    $$VALUES ('what?', 'that.')$$,
    'the Q&A pairs went with their session');
SELECT throws_ok($$SELECT * FROM api.get_messages('reg-s1', 'reg-guest')$$,
    '42501', 'session reg-s1 belongs to someone else', 'the guest id no longer opens a claimed session');
SELECT is(
    (SELECT row(user_id, metadata, updated_at)::text FROM public.conversation_sessions WHERE session_id = 'reg-o1'),
    row(NULL::uuid, '{"anonymousUserId": "reg-other-guest"}'::jsonb, now() - interval '1 hour')::text,
    'another guest''s session is not claimed');
SELECT is(
    (SELECT row(user_id, metadata, updated_at)::text FROM public.conversation_sessions WHERE session_id = 'reg-open'),
    row(NULL::uuid, '{}'::jsonb, now() - interval '1 hour')::text,
    'a session with no owner is not claimed');

SELECT lives_ok(
    $$INSERT INTO reg SELECT 'dave', r.* FROM api.register_user('Dave', 'dave@example.test', 'correct horse', 'reg-guest') AS r$$,
    'another registration with the same guest id succeeds');
SELECT is((SELECT row(migrated, migrated_sessions)::text FROM reg WHERE label = 'dave'), row(false, 0)::text,
    'claimed sessions cannot be claimed again');
SELECT lives_ok(
    $$INSERT INTO reg SELECT 'nobody-guest', r.* FROM api.register_user('N', 'nobody-guest@example.test', 'correct horse', 'reg-unknown-guest') AS r$$,
    'a guest id with no sessions registers');
SELECT is((SELECT migrated_sessions FROM reg WHERE label = 'nobody-guest'), 0, 'a guest id with no sessions claims 0');

SELECT lives_ok(
    $$INSERT INTO reg SELECT 'g-null', r.* FROM api.register_user('N', 'g-null@example.test', 'correct horse', NULL) AS r$$,
    'NULL p_anonymous_user_id registers');
SELECT lives_ok(
    $$INSERT INTO reg SELECT 'g-empty', r.* FROM api.register_user('N', 'g-empty@example.test', 'correct horse', '') AS r$$,
    'empty p_anonymous_user_id registers');
SELECT lives_ok(
    $$INSERT INTO reg SELECT 'g-anon', r.* FROM api.register_user('N', 'g-anon@example.test', 'correct horse', 'anonymous') AS r$$,
    '''anonymous'' p_anonymous_user_id registers');
SELECT is(
    (SELECT array_agg(migrated_sessions ORDER BY label) FROM reg WHERE label IN ('g-null', 'g-empty', 'g-anon')),
    ARRAY[0, 0, 0], 'NULL, empty and ''anonymous'' claim nothing');
SELECT is(
    (SELECT count(*)::integer FROM public.conversation_sessions AS s JOIN reg USING (user_id)
      WHERE reg.label IN ('g-null', 'g-empty', 'g-anon')),
    0, 'no session was given to them');
SELECT is(
    (SELECT user_id FROM public.conversation_sessions WHERE session_id = 'reg-open'), NULL::uuid,
    'the ownerless session is still ownerless');

-- ---------------------------------------------------------------- a claim never takes an owned session
-- The older design's claim set user_id but left anonymousUserId in the
-- metadata; such a legacy row belongs to its user, and a later registration
-- or login with that guest id must not take it.  Nor may a row that a user
-- owns and that carries the guest id by any other route.
SELECT FROM tests.register('reg-legacy-owner');
SELECT FROM tests.guest_session('reg-legacy-guest', 'reg-legacy-unowned');
INSERT INTO public.conversation_sessions (session_id, user_id, metadata)
VALUES ('reg-legacy-owned', tests.id_of('reg-legacy-owner'), '{"anonymousUserId": "reg-legacy-guest"}');
SELECT is((SELECT migrated_sessions FROM api.register_user('Newcomer', 'reg-newcomer@example.test', 'correct horse',
                                                           'reg-legacy-guest')),
    1, 'the claim counts only the guest''s unowned session');
SELECT is((SELECT user_id FROM public.conversation_sessions WHERE session_id = 'reg-legacy-owned'),
    tests.id_of('reg-legacy-owner'), 'a user-owned row that still carries the guest id stays its user''s');
SELECT is((SELECT metadata FROM public.conversation_sessions WHERE session_id = 'reg-legacy-owned'),
    '{"anonymousUserId": "reg-legacy-guest"}'::jsonb, 'and is not touched at all');
SELECT is((SELECT count(*)::integer FROM public.session_claims WHERE session_id = 'reg-legacy-owned'),
    0, 'no audit row claims it');

-- ---------------------------------------------------------------- a failing claim does not fail registration
SELECT FROM tests.guest_session('reg-broken-guest', 'reg-b1');
SELECT FROM tests.break_claims();
SET LOCAL client_min_messages = error;  -- the claim's WARNING is expected
SELECT lives_ok(
    $$INSERT INTO reg SELECT 'erin', r.* FROM api.register_user('Erin', 'erin@example.test', 'correct horse', 'reg-broken-guest') AS r$$,
    'registration succeeds although the claim fails');
RESET client_min_messages;
SELECT is((SELECT row(migrated, migrated_sessions)::text FROM reg WHERE label = 'erin'), row(false, 0)::text,
    'a failed claim reports migrated = false, migrated_sessions = 0');
SELECT is(api.authenticate((pg_temp.r('erin')).token), (pg_temp.r('erin')).user_id,
    'the account and its token exist after a failed claim');
SELECT is(
    (SELECT row(user_id, metadata)::text FROM public.conversation_sessions WHERE session_id = 'reg-b1'),
    row(NULL::uuid, '{"anonymousUserId": "reg-broken-guest"}'::jsonb)::text,
    'nothing of the failed claim is half done: the session is still the guest''s');

SELECT * FROM finish();
ROLLBACK;
