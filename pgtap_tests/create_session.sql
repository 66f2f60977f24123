-- api.create_session: generated ids, default metadata, token or guest ownership.
BEGIN;
SELECT plan(60);
SELECT tests.fast_hashing();

CREATE TEMP TABLE made (label text PRIMARY KEY, session_id text, user_id uuid, created_at timestamptz) ON COMMIT DROP;
CREATE TEMP TABLE token (persona text PRIMARY KEY, user_id uuid, token text, refresh_token text) ON COMMIT DROP;
INSERT INTO token SELECT 'alice', r.user_id, r.token, r.refresh_token FROM tests.register('alice') AS r;
INSERT INTO token SELECT 'bob', r.user_id, r.token, r.refresh_token FROM tests.register('bob') AS r;

CREATE FUNCTION pg_temp.meta(p_label text) RETURNS jsonb LANGUAGE sql AS
$$ SELECT s.metadata FROM public.conversation_sessions AS s JOIN made USING (session_id) WHERE made.label = p_label $$;
CREATE FUNCTION pg_temp.owner(p_label text) RETURNS uuid LANGUAGE sql AS
$$ SELECT s.user_id FROM public.conversation_sessions AS s JOIN made USING (session_id) WHERE made.label = p_label $$;

-- ---------------------------------------------------------------- ids and defaults
SELECT is((SELECT session_defaults FROM public.chatmem_settings), '{}'::jsonb,
    'by default sessions start with no metadata of their own (migration 0014)');
SELECT lives_ok($$INSERT INTO made SELECT 'default', s.* FROM api.create_session() AS s$$,
    'create_session() with every default works');
SELECT matches((SELECT session_id FROM made WHERE label = 'default'), '^session_[0-9]{13}_[0-9a-f]{14}$',
    'the id has the form session_<epoch ms>_<14 hex digits>');
SELECT ok(
    (SELECT split_part(session_id, '_', 2)::bigint
            BETWEEN floor(extract(epoch FROM now()) * 1000) AND floor(extract(epoch FROM clock_timestamp()) * 1000)
       FROM made WHERE label = 'default'),
    'the epoch part of the id is the current time in milliseconds');
SELECT is((SELECT row(user_id, created_at)::text FROM made WHERE label = 'default'),
    row(NULL::uuid, now())::text,
    'returned: no user_id for ''anonymous'', created_at now');
SELECT is(pg_temp.meta('default'), '{}'::jsonb,
    'metadata is the settings'' defaults (none), with no anonymousUserId');
SELECT is(pg_temp.owner('default'), NULL::uuid, 'the stored session has no user');
SELECT lives_ok(
    $$INSERT INTO made SELECT 'many-' || i, s.* FROM generate_series(1, 20) AS i
        CROSS JOIN LATERAL api.create_session('anonymous', jsonb_build_object('n', i)) AS s$$,
    'twenty more sessions are created');
SELECT is(
    (SELECT count(DISTINCT split_part(session_id, '_', 3))::integer FROM made WHERE label LIKE 'many-%'), 20,
    'each id gets a different random part');

SELECT lives_ok($$INSERT INTO made SELECT 'context', s.* FROM api.create_session('anonymous', '{"topic": "billing", "context": "sales"}') AS s$$,
    'create a session with a p_context');
SELECT is(pg_temp.meta('context'), '{"context": "sales", "topic": "billing"}'::jsonb,
    'p_context is stored as the metadata (merged over the defaults, which are none)');
SELECT lives_ok($$INSERT INTO made SELECT 'null-context', s.* FROM api.create_session('anonymous', NULL) AS s$$,
    'NULL p_context is accepted');
SELECT is(pg_temp.meta('null-context'), '{}'::jsonb,
    'NULL p_context counts as {}');

-- ---------------------------------------------------------------- guests and no identity
SELECT lives_ok($$INSERT INTO made SELECT 'guest', s.* FROM api.create_session('b6b8561f-8fcb-4000-892a-457e1fd12f76') AS s$$,
    'a guest id creates a session');
SELECT is((SELECT user_id FROM made WHERE label = 'guest'), NULL::uuid, 'a guest''s session is returned without user_id');
SELECT is(pg_temp.meta('guest'),
    '{"anonymousUserId": "b6b8561f-8fcb-4000-892a-457e1fd12f76"}'::jsonb,
    'a guest''s session records the guest id beside the defaults');
SELECT lives_ok($$INSERT INTO made SELECT 'guest-text', s.* FROM api.create_session('invalid-uuid-format') AS s$$,
    'a guest id that is not a UUID creates a session');
SELECT is(pg_temp.meta('guest-text') ->> 'anonymousUserId', 'invalid-uuid-format', '''invalid-uuid-format'' is a guest id');
SELECT lives_ok($$INSERT INTO made SELECT 'null-user', s.* FROM api.create_session(NULL) AS s$$,
    'NULL p_user_id creates a session');
SELECT is(row(pg_temp.owner('null-user'), pg_temp.meta('null-user') ? 'anonymousUserId')::text, row(NULL::uuid, false)::text,
    'NULL p_user_id is no identity: no user, no guest id');
SELECT lives_ok($$INSERT INTO made SELECT 'smuggle-guest', s.* FROM api.create_session('g1', '{"anonymousUserId": "mallory"}') AS s$$,
    'a guest passes a context with anonymousUserId');
SELECT is(pg_temp.meta('smuggle-guest') ->> 'anonymousUserId', 'g1', 'the smuggled anonymousUserId is replaced by the guest''s id');
SELECT lives_ok($$INSERT INTO made SELECT 'smuggle-anon', s.* FROM api.create_session('anonymous', '{"anonymousUserId": "mallory"}') AS s$$,
    'no identity passes a context with anonymousUserId');
SELECT is(pg_temp.meta('smuggle-anon') ? 'anonymousUserId', false, 'with no identity the smuggled key is dropped');

-- ---------------------------------------------------------------- tokens
SELECT lives_ok($$INSERT INTO made SELECT 'token', s.* FROM api.create_session('anonymous', '{}', (SELECT token FROM token WHERE persona = 'alice')) AS s$$,
    'a valid token creates a session');
SELECT is((SELECT user_id FROM made WHERE label = 'token'), tests.id_of('alice'), 'a valid token makes the session its user''s');
SELECT is(pg_temp.owner('token'), tests.id_of('alice'), 'the stored session has the token''s user');
SELECT lives_ok($$INSERT INTO made SELECT 'token-guest', s.* FROM api.create_session('g1', '{"anonymousUserId": "g1"}', (SELECT token FROM token WHERE persona = 'alice')) AS s$$,
    'a valid token with a guest id beside it creates a session');
SELECT is(row(pg_temp.owner('token-guest'), pg_temp.meta('token-guest') ? 'anonymousUserId')::text,
    row(tests.id_of('alice'), false)::text,
    'a guest id beside a valid token is ignored: the user''s session, no guest key');
SELECT lives_ok($$INSERT INTO made SELECT 'token-self', s.* FROM api.create_session(tests.id_of('alice')::text, '{}', (SELECT token FROM token WHERE persona = 'alice')) AS s$$,
    'a valid token with its own user''s id works');
SELECT is(pg_temp.owner('token-self'), tests.id_of('alice'), 'the token''s own user''s id gives that user''s session');
SELECT lives_ok($$INSERT INTO made SELECT 'token-null', s.* FROM api.create_session(NULL, NULL, (SELECT token FROM token WHERE persona = 'alice')) AS s$$,
    'a valid token with NULL p_user_id works');
SELECT is(pg_temp.owner('token-null'), tests.id_of('alice'), 'a valid token with NULL p_user_id gives the token''s user''s session');

SELECT throws_ok($$SELECT * FROM api.create_session(tests.id_of('bob')::text, '{}', (SELECT token FROM token WHERE persona = 'alice'))$$,
    '42501', 'p_user_id names another account than the token''s',
    'a valid token with another registered user''s id is 42501');
SELECT throws_ok($$SELECT * FROM api.create_session(tests.id_of('alice')::text)$$,
    '28000', 'p_user_id names a registered account, but no valid token was given',
    'a registered user''s id without a token is 28000');
SELECT throws_ok($$SELECT * FROM api.create_session(tests.id_of('alice')::text, '{}', 'not-a-token')$$,
    '28000', 'p_user_id names a registered account, but no valid token was given',
    'a registered user''s id with a garbage token is 28000');
SELECT throws_ok($$SELECT * FROM api.create_session(tests.id_of('alice')::text, '{}', (SELECT refresh_token FROM token WHERE persona = 'alice'))$$,
    '28000', 'p_user_id names a registered account, but no valid token was given',
    'a refresh token is not an access token: 28000');
SELECT isnt(tests.hint_of($$SELECT * FROM api.create_session(tests.id_of('alice')::text)$$), NULL, 'the 28000 carries a HINT');

SELECT lives_ok($$INSERT INTO made SELECT 'garbage-guest', s.* FROM api.create_session('g2', '{}', 'not-a-token') AS s$$,
    'a garbage token with a guest id works');
SELECT is(row(pg_temp.owner('garbage-guest'), pg_temp.meta('garbage-guest') ->> 'anonymousUserId')::text,
    row(NULL::uuid, 'g2')::text, 'a garbage token counts as no token: a guest session');

SELECT FROM tests.expire_token((SELECT token FROM token WHERE persona = 'bob'));
SELECT throws_ok($$SELECT * FROM api.create_session(tests.id_of('bob')::text, '{}', (SELECT token FROM token WHERE persona = 'bob'))$$,
    '28000', 'p_user_id names a registered account, but no valid token was given',
    'a registered user''s id with an expired token is 28000');
SELECT lives_ok($$INSERT INTO made SELECT 'expired-guest', s.* FROM api.create_session('g3', '{}', (SELECT token FROM token WHERE persona = 'bob')) AS s$$,
    'an expired token with a guest id works');
SELECT is(row(pg_temp.owner('expired-guest'), pg_temp.meta('expired-guest') ->> 'anonymousUserId')::text,
    row(NULL::uuid, 'g3')::text, 'an expired token counts as no token: a guest session');

SELECT ok(api.logout((SELECT token FROM token WHERE persona = 'alice')), 'alice logs out');
SELECT lives_ok($$INSERT INTO made SELECT 'revoked', s.* FROM api.create_session('anonymous', '{}', (SELECT token FROM token WHERE persona = 'alice')) AS s$$,
    'a revoked token with ''anonymous'' works');
SELECT is(pg_temp.owner('revoked'), NULL::uuid, 'a revoked token counts as no token: no user');

-- ---------------------------------------------------------------- invalid input
SELECT throws_ok($$SELECT * FROM api.create_session('')$$,
    '22023', 'p_user_id: is empty', 'empty p_user_id is 22023 naming the field');
SELECT throws_ok($$SELECT * FROM api.create_session(repeat('u', 256))$$,
    '22023', 'p_user_id: is 256 characters long; the limit is 255', 'a 256-character p_user_id is 22023 naming the field');
SELECT throws_ok($$SELECT * FROM api.create_session('g1', '[]')$$,
    '22023', 'p_context: must be a JSON object, not array', 'array p_context is 22023 naming the field');
SELECT throws_ok($$SELECT * FROM api.create_session('g1', jsonb_build_object('k', repeat('x', 65528)))$$,
    '22023', 'p_context: is 65537 bytes; the limit is 65536', 'p_context over 64 KiB is 22023 naming the field');
SELECT is(
    (SELECT count(*)::integer FROM public.conversation_sessions WHERE created_at = now())
        - (SELECT count(*)::integer FROM made),
    0,
    'refused calls created no session: every session of this transaction is one that was returned');

-- ---------------------------------------------------------------- defaults live in settings
UPDATE public.chatmem_settings SET session_defaults = '{"project": "other_project", "context": "support"}';
SELECT lives_ok($$INSERT INTO made SELECT 'settings', s.* FROM api.create_session('g1', '{"topic": "x", "context": "sales"}') AS s$$,
    'a session is created after the defaults changed');
SELECT is(pg_temp.meta('settings'),
    '{"project": "other_project", "context": "sales", "topic": "x", "anonymousUserId": "g1"}'::jsonb,
    'the default metadata comes from chatmem_settings.session_defaults, and p_context''s keys win');

-- ---------------------------------------------------------------- the guest cap
-- The cap lives in the API since migration 0021: create_session counts a
-- guest's sessions of the last hour in the statement that inserts.
UPDATE public.chatmem_settings SET guest_sessions_per_hour = 2;
SELECT lives_ok($$INSERT INTO made SELECT 'cap1', s.* FROM api.create_session('cs-capped') AS s$$, 'a guest''s 1st session (cap 2)');
SELECT lives_ok($$INSERT INTO made SELECT 'cap2', s.* FROM api.create_session('cs-capped') AS s$$, 'its 2nd');
SELECT throws_ok($$SELECT * FROM api.create_session('cs-capped')$$,
    'CM002', 'guest cs-capped has opened 2 sessions in the last hour; the limit is 2',
    'the 3rd within the hour is CM002, with the count and the limit');
SELECT is((SELECT count(*)::integer FROM public.conversation_sessions WHERE metadata ->> 'anonymousUserId' = 'cs-capped'),
    2, 'the refused call wrote nothing');
SELECT lives_ok($$INSERT INTO made SELECT 'cap-other', s.* FROM api.create_session('cs-other-guest') AS s$$,
    'the cap is per guest id: another guest is not refused');
SELECT lives_ok($$INSERT INTO made SELECT 'cap-anon', s.* FROM api.create_session('anonymous') AS s$$,
    'nor is a session with no identity');
UPDATE public.conversation_sessions SET created_at = now() - interval '61 minutes'
 WHERE metadata ->> 'anonymousUserId' = 'cs-capped';
SELECT lives_ok($$INSERT INTO made SELECT 'cap3', s.* FROM api.create_session('cs-capped') AS s$$,
    'sessions opened more than an hour ago no longer count');
UPDATE public.chatmem_settings SET guest_sessions_per_hour = 100;

SELECT * FROM finish();
ROLLBACK;
