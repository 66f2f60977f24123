-- The five scenarios of issue 3, each as named assertions, end to end through the api.
BEGIN;
SELECT plan(25);
SELECT tests.fast_hashing();

-- The scenarios use fixed guest ids; sessions other suites committed under
-- them would be claimed or listed too.  Hide them for this transaction.
DELETE FROM public.conversation_sessions
 WHERE user_id IS NULL
   AND metadata ->> 'anonymousUserId' IN ('b6b8561f-8fcb-4000-892a-457e1fd12f76', 'test-anonymous-uuid-123',
                                          'invalid-uuid-format', 'scenario-5-guest');

CREATE TEMP TABLE made (label text PRIMARY KEY, session_id text) ON COMMIT DROP;
CREATE FUNCTION pg_temp.sid(p_label text) RETURNS text LANGUAGE sql AS $$ SELECT session_id FROM made WHERE label = p_label $$;

-- ---------------------------------------------------------------- 1
SELECT lives_ok(
    $$INSERT INTO made SELECT 's1-web', s.session_id FROM api.create_session('b6b8561f-8fcb-4000-892a-457e1fd12f76') AS s$$,
    'Scenario 1: guest b6b8561f-8fcb-4000-892a-457e1fd12f76 creates a session through create_session');
SELECT is(
    (SELECT row(user_id, metadata ->> 'anonymousUserId')::text FROM public.conversation_sessions WHERE session_id = pg_temp.sid('s1-web')),
    row(NULL::uuid, 'b6b8561f-8fcb-4000-892a-457e1fd12f76')::text,
    'Scenario 1: user_id is NULL and metadata.anonymousUserId is the guest id (create_session)');
SELECT is(
    (SELECT row(s.user_id, s.metadata ->> 'anonymousUserId')::text
       FROM api.create_or_get_session('scenario-1-direct', 'b6b8561f-8fcb-4000-892a-457e1fd12f76') AS s),
    row(NULL::uuid, 'b6b8561f-8fcb-4000-892a-457e1fd12f76')::text,
    'Scenario 1: user_id is NULL and metadata.anonymousUserId is the guest id (create_or_get_session)');

-- ---------------------------------------------------------------- 2
CREATE TEMP TABLE acct ON COMMIT DROP AS SELECT 'two'::text AS label, r.* FROM tests.register('scenario-two') AS r;
SELECT lives_ok(
    $$INSERT INTO made SELECT 's2', s.session_id
        FROM api.create_session('anonymous', '{}', (SELECT token FROM acct WHERE label = 'two')) AS s$$,
    'Scenario 2: a registered user creates a session through create_session with its token');
SELECT is(
    (SELECT user_id FROM public.conversation_sessions WHERE session_id = pg_temp.sid('s2')),
    tests.id_of('scenario-two'),
    'Scenario 2: the session has the user''s user_id');
SELECT is((SELECT count(*)::integer FROM public.conversation_sessions
            WHERE session_id = pg_temp.sid('s2') AND metadata ? 'anonymousUserId'), 0,
    'Scenario 2: the user''s session carries no guest id');

-- ---------------------------------------------------------------- 3
SELECT lives_ok(
    $$INSERT INTO made SELECT 's3-' || i, s.session_id FROM generate_series(1, 3) AS i
        CROSS JOIN LATERAL api.create_session('test-anonymous-uuid-123', jsonb_build_object('n', i)) AS s$$,
    'Scenario 3: guest test-anonymous-uuid-123 creates 3 sessions');
CREATE TEMP TABLE msgs ON COMMIT DROP AS
SELECT m.label, r.role, r.content, api.add_message(pg_temp.sid(m.label), 'test-anonymous-uuid-123', r.role, r.content || ' in ' || m.label) AS id
  FROM made AS m, (VALUES ('user', 'question'), ('assistant', 'answer')) AS r(role, content)
 WHERE m.label LIKE 's3-%' ORDER BY m.label, r.role DESC;
SELECT is((SELECT count(*)::integer FROM msgs), 6, 'Scenario 3: the guest chats: 2 messages in each session');
INSERT INTO acct SELECT 'three', r.* FROM tests.register('scenario-three', 'test-anonymous-uuid-123') AS r;
SELECT is((SELECT migrated_sessions FROM acct WHERE label = 'three'), 3,
    'Scenario 3: registering with the guest id reports migrated_sessions = 3');
SELECT is(
    (SELECT count(*)::integer FROM public.conversation_sessions AS s JOIN made USING (session_id)
      WHERE made.label LIKE 's3-%' AND s.user_id = tests.id_of('scenario-three')),
    3, 'Scenario 3: the 3 sessions are the user''s');
SELECT is(
    (SELECT count(*)::integer FROM public.conversation_sessions AS s JOIN made USING (session_id)
      WHERE made.label LIKE 's3-%' AND s.metadata ? 'anonymousUserId'),
    0, 'Scenario 3: no anonymousUserId key is left');
SELECT results_eq(
    $$SELECT g.id, g.role, g.content FROM made AS m
        CROSS JOIN LATERAL api.get_messages(m.session_id, tests.id_of('scenario-three')::text) AS g
       WHERE m.label LIKE 's3-%' ORDER BY g.id$$,
    $$SELECT id, role, content || ' in ' || label FROM msgs ORDER BY id$$,
    'Scenario 3: the messages are intact and the user reads them');
SELECT is((SELECT count(*)::integer FROM api.list_sessions('test-anonymous-uuid-123')), 0,
    'Scenario 3: the guest id has no sessions left');

-- ---------------------------------------------------------------- 4
SELECT is(
    (SELECT row(s.user_id, s.metadata ->> 'anonymousUserId')::text
       FROM api.create_or_get_session('scenario-4', 'invalid-uuid-format') AS s),
    row(NULL::uuid, 'invalid-uuid-format')::text,
    'Scenario 4: invalid-uuid-format as the user id creates a guest session');
SELECT isnt(api.add_message('scenario-4', 'invalid-uuid-format', 'user', 'hello'), NULL::bigint,
    'Scenario 4: the guest adds a message');
SELECT results_eq($$SELECT content FROM api.get_messages('scenario-4', 'invalid-uuid-format')$$,
    $$VALUES ('hello')$$, 'Scenario 4: the guest reads its messages');
SELECT results_eq($$SELECT session_id::text FROM api.list_sessions('invalid-uuid-format')$$,
    ARRAY['scenario-4'], 'Scenario 4: the guest lists its session');
SELECT throws_ok($$SELECT * FROM api.get_messages('scenario-4', 'another-guest')$$,
    '42501', 'session scenario-4 belongs to someone else', 'Scenario 4: the session is the guest''s own');

-- ---------------------------------------------------------------- 5
SELECT FROM tests.guest_session('scenario-5-guest', 'scenario-5-a');
INSERT INTO acct SELECT 'five', r.* FROM tests.register('scenario-five', 'scenario-5-guest') AS r;
SELECT is((SELECT migrated_sessions FROM acct WHERE label = 'five'), 1,
    'Scenario 5: a guest registers and its session is claimed');
SELECT ok(api.logout((SELECT token FROM acct WHERE label = 'five')), 'Scenario 5: the user logs out');
SELECT lives_ok(
    $$SELECT api.create_or_get_session('scenario-5-b', 'scenario-5-guest'),
             api.add_message('scenario-5-b', 'scenario-5-guest', 'user', 'back as a guest'),
             api.create_or_get_session('scenario-5-c', 'scenario-5-guest')$$,
    'Scenario 5: the visitor chats as a guest again under the same guest id');
SELECT results_eq($$SELECT session_id::text FROM api.list_sessions('scenario-5-guest') ORDER BY 1$$,
    ARRAY['scenario-5-b', 'scenario-5-c'], 'Scenario 5: the new guest sessions are the guest''s');
SELECT is((SELECT l.migrated_sessions FROM tests.login('scenario-five', 'scenario-5-guest') AS l), 2,
    'Scenario 5: logging in with the guest id claims the new sessions too');
SELECT results_eq(
    $$SELECT session_id::text, method FROM public.session_claims
       WHERE user_id = tests.id_of('scenario-five') ORDER BY session_id$$,
    $$VALUES ('scenario-5-a', 'register'), ('scenario-5-b', 'login'), ('scenario-5-c', 'login')$$,
    'Scenario 5: the audit records the first claim by register and the later ones by login');
SELECT results_eq($$SELECT content FROM api.get_messages('scenario-5-b', tests.id_of('scenario-five')::text)$$,
    $$VALUES ('back as a guest')$$, 'Scenario 5: the user reads what it wrote as a guest after logging out');

SELECT * FROM finish();
ROLLBACK;
