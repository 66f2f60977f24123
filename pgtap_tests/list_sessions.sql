-- api.list_sessions: a user's sessions or a guest's unclaimed ones, newest first; NULL lists nothing.
BEGIN;
SELECT plan(16);
SELECT tests.fast_hashing();
SELECT FROM tests.register('alice');
SELECT FROM tests.register('bob');
SELECT FROM unnest(ARRAY['ls-a1', 'ls-a2', 'ls-a3']) AS s, api.create_or_get_session(s, tests.id_of('alice')::text);
SELECT FROM api.create_or_get_session('ls-b1', tests.id_of('bob')::text);
SELECT FROM unnest(ARRAY['ls-g1-1', 'ls-g1-2', 'ls-g1-3']) AS s, tests.guest_session('ls-g1', s);
SELECT FROM tests.guest_session('ls-g2', 'ls-g2-1');
SELECT FROM tests.guest_session('5f0e3c1a-7d2b-4c9e-9a41-2b7c8d9e0f13', 'ls-uuid-1');
SELECT FROM api.create_or_get_session('ls-open', NULL);
-- created_at decides the order, not the order of creation nor updated_at.
SELECT FROM (VALUES ('ls-a1', interval '3 hours'), ('ls-a2', '1 hour'), ('ls-a3', '2 hours'),
                     ('ls-g1-1', '2 hours'), ('ls-g1-2', '3 hours'), ('ls-g1-3', '1 hour')) AS v(s, age),
            tests.backdate(v.s, v.age);
UPDATE public.conversation_sessions SET updated_at = now() WHERE session_id IN ('ls-a1', 'ls-g1-2');

SELECT results_eq(
    $$SELECT session_id::text FROM api.list_sessions(tests.id_of('alice')::text)$$,
    ARRAY['ls-a2', 'ls-a3', 'ls-a1'],
    'a user''s sessions, newest created first');
SELECT results_eq(
    $$SELECT session_id::text FROM api.list_sessions(tests.id_of('bob')::text)$$,
    ARRAY['ls-b1'], 'each user sees only their own sessions');
SELECT results_eq(
    $$SELECT s.* FROM api.list_sessions(tests.id_of('bob')::text) AS s$$,
    $$SELECT * FROM public.conversation_sessions WHERE session_id = 'ls-b1'$$,
    'whole session rows are returned');
SELECT results_eq(
    $$SELECT session_id::text FROM api.list_sessions('ls-g1')$$,
    ARRAY['ls-g1-3', 'ls-g1-1', 'ls-g1-2'],
    'a guest''s sessions, newest created first');
SELECT results_eq(
    $$SELECT session_id::text FROM api.list_sessions('ls-g2')$$,
    ARRAY['ls-g2-1'], 'each guest sees only its own sessions');
SELECT results_eq(
    $$SELECT session_id::text FROM api.list_sessions('5f0e3c1a-7d2b-4c9e-9a41-2b7c8d9e0f13')$$,
    ARRAY['ls-uuid-1'], 'a UUID that is no registered user lists as a guest');
SELECT is_empty($$SELECT * FROM api.list_sessions('ls-unknown-guest')$$, 'a guest without sessions gets no rows');
SELECT is_empty($$SELECT * FROM api.list_sessions(NULL)$$, 'NULL lists nothing, not even sessions with no owner');
SELECT is_empty($$SELECT * FROM api.list_sessions('anonymous')$$, '''anonymous'' lists nothing');
SELECT is_empty($$SELECT * FROM api.list_sessions(gen_random_uuid()::text)$$, 'a fresh UUID (a new guest) lists nothing');

-- After a claim the sessions move from the guest's list to the user's.
SELECT FROM tests.register('carol', 'ls-g1');
SELECT is_empty($$SELECT * FROM api.list_sessions('ls-g1')$$, 'a guest''s claimed sessions are no longer listed for the guest');
SELECT results_eq(
    $$SELECT session_id::text FROM api.list_sessions(tests.id_of('carol')::text)$$,
    ARRAY['ls-g1-3', 'ls-g1-1', 'ls-g1-2'],
    'the claimed sessions are listed for the user, newest first');
SELECT FROM tests.guest_session('ls-g1', 'ls-g1-4');
SELECT results_eq(
    $$SELECT session_id::text FROM api.list_sessions('ls-g1')$$,
    ARRAY['ls-g1-4'], 'a new session of the guest after the claim is listed for the guest again');

SELECT throws_ok($$SELECT * FROM api.list_sessions('')$$,
    '22023', 'p_user_id: is empty', 'empty p_user_id is 22023 naming the field');
SELECT throws_ok($$SELECT * FROM api.list_sessions(repeat('u', 256))$$,
    '22023', 'p_user_id: is 256 characters long; the limit is 255', 'a 256-character p_user_id is 22023');
SELECT isnt(tests.hint_of($$SELECT * FROM api.list_sessions('')$$), NULL, 'the 22023 carries a HINT');

SELECT * FROM finish();
ROLLBACK;
