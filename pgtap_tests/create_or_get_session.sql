-- api.create_or_get_session: identity on creation, ownership on reuse, input checks.
BEGIN;
SELECT plan(63);
SELECT tests.fast_hashing();
SELECT FROM tests.register('alice');
SELECT FROM tests.register('bob');

-- ---------------------------------------------------------------- new sessions
SELECT is(
    (SELECT s.user_id FROM api.create_or_get_session('cgs-alice', tests.id_of('alice')::text,
                                                     '{"topic": "billing"}') AS s),
    tests.id_of('alice'),
    'a registered user''s id makes the new session that user''s (returned row)');
SELECT is(
    (SELECT metadata FROM public.conversation_sessions WHERE session_id = 'cgs-alice'),
    '{"topic": "billing"}'::jsonb,
    'a user''s new session keeps p_metadata and gets no anonymousUserId key');
SELECT is(
    (SELECT user_id FROM public.conversation_sessions WHERE session_id = 'cgs-alice'),
    tests.id_of('alice'),
    'a user''s new session is stored with the user''s id');

SELECT is(
    (SELECT s.user_id FROM api.create_or_get_session('cgs-guest-uuid', 'b6b8561f-8fcb-4000-892a-457e1fd12f76') AS s),
    NULL::uuid,
    'a UUID that is no registered user is a guest id: user_id is NULL');
SELECT is(
    (SELECT metadata ->> 'anonymousUserId' FROM public.conversation_sessions WHERE session_id = 'cgs-guest-uuid'),
    'b6b8561f-8fcb-4000-892a-457e1fd12f76',
    'a guest''s new session records the guest id in metadata.anonymousUserId');

SELECT is(
    (SELECT row(s.user_id, s.metadata)::text
       FROM api.create_or_get_session('cgs-guest-text', 'test-anonymous-uuid-123') AS s),
    row(NULL::uuid, '{"anonymousUserId": "test-anonymous-uuid-123"}'::jsonb)::text,
    'a guest id need not be a UUID (test-anonymous-uuid-123)');
SELECT is(
    (SELECT row(s.user_id, s.metadata)::text
       FROM api.create_or_get_session('cgs-guest-invalid', 'invalid-uuid-format') AS s),
    row(NULL::uuid, '{"anonymousUserId": "invalid-uuid-format"}'::jsonb)::text,
    '''invalid-uuid-format'' is a guest id');
SELECT lives_ok(
    $$SELECT api.create_or_get_session('cgs-guest-255', repeat('g', 255))$$,
    'a guest id of 255 characters is accepted');
SELECT is(
    (SELECT metadata ->> 'anonymousUserId' FROM public.conversation_sessions WHERE session_id = 'cgs-guest-255'),
    repeat('g', 255),
    'the 255-character guest id is stored whole');

SELECT is(
    (SELECT row(s.user_id, s.metadata)::text FROM api.create_or_get_session('cgs-null', NULL) AS s),
    row(NULL::uuid, '{}'::jsonb)::text,
    'NULL p_user_id is no identity: no user, no guest id');
SELECT is(
    (SELECT row(s.user_id, s.metadata)::text FROM api.create_or_get_session('cgs-anon', 'anonymous') AS s),
    row(NULL::uuid, '{}'::jsonb)::text,
    '''anonymous'' is no identity: no user, no guest id');
SELECT is(
    (SELECT row(s.user_id, s.metadata)::text FROM api.create_or_get_session('cgs-default') AS s),
    row(NULL::uuid, '{}'::jsonb)::text,
    'p_user_id and p_metadata default to no identity and {}');
SELECT is(
    (SELECT s.metadata FROM api.create_or_get_session('cgs-null-meta', 'g1', NULL) AS s),
    '{"anonymousUserId": "g1"}'::jsonb,
    'NULL p_metadata counts as {}');

-- A caller-supplied anonymousUserId never decides ownership.
SELECT is(
    (SELECT s.metadata FROM api.create_or_get_session('cgs-smuggle-guest', 'g1',
                                                      '{"anonymousUserId": "mallory", "x": 1}') AS s),
    '{"anonymousUserId": "g1", "x": 1}'::jsonb,
    'a guest''s smuggled anonymousUserId is replaced by the guest''s own id');
SELECT is(
    (SELECT s.metadata FROM api.create_or_get_session('cgs-smuggle-none', NULL,
                                                      '{"anonymousUserId": "mallory", "x": 1}') AS s),
    '{"x": 1}'::jsonb,
    'with no identity a smuggled anonymousUserId is dropped');
SELECT is(
    (SELECT row(s.user_id, s.metadata)::text
       FROM api.create_or_get_session('cgs-smuggle-user', tests.id_of('alice')::text,
                                      '{"anonymousUserId": "mallory"}') AS s),
    row(tests.id_of('alice'), '{}'::jsonb)::text,
    'a user''s smuggled anonymousUserId is dropped');
SELECT throws_ok(
    $$SELECT api.create_or_get_session('cgs-smuggle-guest', 'mallory')$$,
    '42501', 'session cgs-smuggle-guest belongs to someone else',
    'the guest named by the smuggled key does not own the session');

-- ---------------------------------------------------------------- invalid input
SELECT throws_ok($$SELECT api.create_or_get_session(NULL, 'g1')$$,
    '22023', 'p_session_id: is required', 'NULL p_session_id is 22023 naming the field');
SELECT throws_ok($$SELECT api.create_or_get_session('', 'g1')$$,
    '22023', 'p_session_id: is empty', 'empty p_session_id is 22023 naming the field');
SELECT throws_ok($$SELECT api.create_or_get_session(repeat('s', 256), 'g1')$$,
    '22023', 'p_session_id: is 256 characters long; the limit is 255',
    'a 256-character p_session_id is 22023 naming the field');
SELECT lives_ok($$SELECT api.create_or_get_session(repeat('s', 255), 'g1')$$,
    'a 255-character p_session_id is accepted');
SELECT throws_ok($$SELECT api.create_or_get_session('cgs-bad', '')$$,
    '22023', 'p_user_id: is empty', 'empty p_user_id is 22023 naming the field');
SELECT throws_ok($$SELECT api.create_or_get_session('cgs-bad', repeat('u', 256))$$,
    '22023', 'p_user_id: is 256 characters long; the limit is 255',
    'a 256-character p_user_id is 22023 naming the field');
SELECT throws_ok($$SELECT api.create_or_get_session('cgs-bad', 'g1', '[1, 2]')$$,
    '22023', 'p_metadata: must be a JSON object, not array', 'array p_metadata is 22023 naming the field');
SELECT throws_ok($$SELECT api.create_or_get_session('cgs-bad', 'g1', '"text"')$$,
    '22023', 'p_metadata: must be a JSON object, not string', 'string p_metadata is 22023 naming the field');
-- {"k": "<n x>"} is n + 9 bytes as text.
SELECT throws_ok($$SELECT api.create_or_get_session('cgs-bad', 'g1', jsonb_build_object('k', repeat('x', 65528)))$$,
    '22023', 'p_metadata: is 65537 bytes; the limit is 65536', 'p_metadata over 64 KiB is 22023 naming the field');
SELECT lives_ok($$SELECT api.create_or_get_session('cgs-64k', 'g1', jsonb_build_object('k', repeat('x', 65527)))$$,
    'p_metadata of exactly 64 KiB is accepted');
SELECT isnt(tests.hint_of($$SELECT api.create_or_get_session('', 'g1')$$), NULL,
    'an invalid-input error carries a HINT');
SELECT is((SELECT count(*)::integer FROM public.conversation_sessions WHERE session_id IN ('cgs-bad', '')), 0,
    'refused calls created no session');

-- ---------------------------------------------------------------- existing session: owner
SELECT FROM tests.backdate('cgs-alice');
SELECT is(
    (SELECT s.updated_at FROM api.create_or_get_session('cgs-alice', tests.id_of('alice')::text,
                                                        '{"topic": "other"}') AS s),
    now(),
    'the owner reopening an existing session gets it back with updated_at bumped');
SELECT is(
    (SELECT row(created_at, updated_at, metadata)::text FROM public.conversation_sessions WHERE session_id = 'cgs-alice'),
    row(now() - interval '1 hour', now(), '{"topic": "billing"}'::jsonb)::text,
    'reopening bumps the stored updated_at only: created_at and metadata are kept');

SELECT FROM tests.backdate('cgs-guest-uuid');
SELECT is(
    (SELECT s.updated_at FROM api.create_or_get_session('cgs-guest-uuid', 'b6b8561f-8fcb-4000-892a-457e1fd12f76') AS s),
    now(),
    'the same guest id reopens its session, updated_at bumped');

-- ---------------------------------------------------------------- existing session: others get 42501
SELECT FROM tests.backdate('cgs-alice');
SELECT throws_ok($$SELECT api.create_or_get_session('cgs-alice', tests.id_of('bob')::text)$$,
    '42501', 'session cgs-alice belongs to someone else', 'another user gets 42501 on a user''s session');
SELECT throws_ok($$SELECT api.create_or_get_session('cgs-alice', 'g1')$$,
    '42501', 'session cgs-alice belongs to someone else', 'a guest gets 42501 on a user''s session');
SELECT throws_ok($$SELECT api.create_or_get_session('cgs-alice', NULL)$$,
    '42501', 'session cgs-alice belongs to someone else', 'no identity (NULL) gets 42501 on a user''s session');
SELECT throws_ok($$SELECT api.create_or_get_session('cgs-alice', 'anonymous')$$,
    '42501', 'session cgs-alice belongs to someone else', 'no identity (''anonymous'') gets 42501 on a user''s session');
SELECT throws_ok($$SELECT api.create_or_get_session('cgs-alice', tests.id_of('alice')::text || '-x')$$,
    '42501', 'session cgs-alice belongs to someone else', 'a guest id resembling the user''s id gets 42501');
SELECT is(
    (SELECT row(user_id, updated_at, metadata)::text FROM public.conversation_sessions WHERE session_id = 'cgs-alice'),
    row(tests.id_of('alice'), now() - interval '1 hour', '{"topic": "billing"}'::jsonb)::text,
    'refused callers left the user''s session untouched');

SELECT FROM tests.backdate('cgs-guest-uuid');
SELECT throws_ok($$SELECT api.create_or_get_session('cgs-guest-uuid', 'another-guest')$$,
    '42501', 'session cgs-guest-uuid belongs to someone else', 'another guest gets 42501 on a guest''s session');
SELECT throws_ok($$SELECT api.create_or_get_session('cgs-guest-uuid', tests.id_of('alice')::text)$$,
    '42501', 'session cgs-guest-uuid belongs to someone else', 'a registered user gets 42501 on a guest''s session');
SELECT throws_ok($$SELECT api.create_or_get_session('cgs-guest-uuid', NULL)$$,
    '42501', 'session cgs-guest-uuid belongs to someone else', 'no identity gets 42501 on a guest''s session');
SELECT throws_ok($$SELECT api.create_or_get_session('cgs-guest-uuid', upper('b6b8561f-8fcb-4000-892a-457e1fd12f76'))$$,
    '42501', 'session cgs-guest-uuid belongs to someone else', 'guest ids are compared exactly (another case is another guest)');
SELECT is(
    (SELECT row(user_id, updated_at, metadata)::text FROM public.conversation_sessions WHERE session_id = 'cgs-guest-uuid'),
    row(NULL::uuid, now() - interval '1 hour',
        '{"anonymousUserId": "b6b8561f-8fcb-4000-892a-457e1fd12f76"}'::jsonb)::text,
    'refused callers left the guest''s session untouched');
SELECT isnt(tests.hint_of($$SELECT api.create_or_get_session('cgs-guest-uuid', 'another-guest')$$), NULL,
    'the 42501 carries a HINT');

-- ---------------------------------------------------------------- a session with no owner
SELECT FROM tests.backdate('cgs-null');
SELECT is(
    (SELECT row(s.user_id, s.metadata, s.updated_at)::text FROM api.create_or_get_session('cgs-null', 'g1') AS s),
    row(NULL::uuid, '{}'::jsonb, now())::text,
    'a guest may open a session with no owner, which stays without one (bumped)');
SELECT is(
    (SELECT row(s.user_id, s.metadata)::text
       FROM api.create_or_get_session('cgs-null', tests.id_of('alice')::text, '{"anonymousUserId": "g1"}') AS s),
    row(NULL::uuid, '{}'::jsonb)::text,
    'a user may open a session with no owner, which stays without one');
SELECT lives_ok($$SELECT api.create_or_get_session('cgs-null', NULL)$$,
    'no identity may open a session with no owner');
SELECT lives_ok($$SELECT api.create_or_get_session('cgs-null', 'anonymous')$$,
    '''anonymous'' may open a session with no owner');
SELECT is(
    (SELECT row(user_id, metadata)::text FROM public.conversation_sessions WHERE session_id = 'cgs-null'),
    row(NULL::uuid, '{}'::jsonb)::text,
    'the ownerless session is still ownerless after everyone opened it');

-- ---------------------------------------------------------------- a deleted user's session is nobody's
SELECT lives_ok($$SELECT api.create_or_get_session('cgs-bob', tests.id_of('bob')::text)$$,
    'bob opens a session');
DELETE FROM public.users WHERE email = 'bob@example.test';
SELECT throws_ok($$SELECT api.create_or_get_session('cgs-bob', NULL)$$,
    '42501', 'session cgs-bob belongs to someone else', 'a deleted user''s session does not become open to no identity');
SELECT throws_ok($$SELECT api.create_or_get_session('cgs-bob', 'g1')$$,
    '42501', 'session cgs-bob belongs to someone else', 'a deleted user''s session does not become open to a guest');

-- ---------------------------------------------------------------- the guest cap counts the last hour only
-- A cap that counted every session the guest ever opened would lock a
-- returning guest out for good: age sessions past the hour and count again.
UPDATE public.chatmem_settings SET guest_sessions_per_hour = 3;
SELECT FROM unnest(ARRAY['cgs-cap1', 'cgs-cap2', 'cgs-cap3']) AS s, tests.guest_session('cgs-capped', s);
SELECT throws_ok($$SELECT api.create_or_get_session('cgs-cap4', 'cgs-capped')$$,
    'CM002', NULL, 'the 4th new session within the hour is refused (cap 3)');
SELECT lives_ok($$SELECT api.create_or_get_session('cgs-cap1', 'cgs-capped')$$,
    'reopening an existing session is not a new one: not counted');
UPDATE public.conversation_sessions SET created_at = now() - interval '61 minutes'
 WHERE session_id IN ('cgs-cap1', 'cgs-cap2');
UPDATE public.conversation_sessions SET created_at = now() - interval '59 minutes'
 WHERE session_id = 'cgs-cap3';
SELECT lives_ok($$SELECT api.create_or_get_session('cgs-cap4', 'cgs-capped')$$,
    'sessions opened more than an hour ago no longer count');
SELECT lives_ok($$SELECT api.create_or_get_session('cgs-cap5', 'cgs-capped')$$,
    'a second slot freed by the hour');
SELECT throws_ok($$SELECT api.create_or_get_session('cgs-cap6', 'cgs-capped')$$,
    'CM002', NULL, 'one opened 59 minutes ago still counts: the 4th within the hour is refused');
SELECT is((SELECT count(*)::integer FROM public.conversation_sessions WHERE metadata ->> 'anonymousUserId' = 'cgs-capped'),
    5, 'refused creates wrote nothing');
SELECT throws_ok($$SELECT api.create_or_get_session('cgs-cap6', 'cgs-capped')$$,
    'CM002', 'guest cgs-capped has opened 3 sessions in the last hour; the limit is 3',
    'the refusal names the guest''s sessions of the last hour and the limit');
SELECT throws_ok($$SELECT api.create_or_get_session('cgs-alice', 'cgs-capped')$$,
    '42501', 'session cgs-alice belongs to someone else',
    'a guest at the cap opening someone else''s session is refused as anyone else is (42501, not CM002)');
SELECT is((SELECT (api.create_or_get_session('cgs-cap5', 'cgs-capped')).updated_at), now(),
    'a guest at the cap reopening its own session gets it, updated_at bumped');
SELECT lives_ok($$SELECT api.create_or_get_session('cgs-cap-user', tests.id_of('alice')::text)$$,
    'the cap is a guest''s: a registered user is not counted by it');
UPDATE public.chatmem_settings SET guest_sessions_per_hour = 100;

-- ---------------------------------------------------------------- one row per id
SELECT is((SELECT count(*)::integer FROM public.conversation_sessions WHERE session_id = 'cgs-alice'), 1,
    'reopening never duplicates a session');

SELECT * FROM finish();
ROLLBACK;
