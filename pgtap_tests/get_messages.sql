-- api.get_messages: the latest p_limit messages before p_before_id, oldest first; ownership and bounds.
BEGIN;
SELECT plan(36);
SELECT tests.fast_hashing();
SELECT FROM tests.register('alice');
SELECT FROM tests.register('bob');
SELECT FROM api.create_or_get_session('gm-alice', tests.id_of('alice')::text);
SELECT FROM api.create_or_get_session('gm-alice-other', tests.id_of('alice')::text);
SELECT FROM api.create_or_get_session('gm-empty', tests.id_of('alice')::text);
SELECT FROM tests.guest_session('gm-g1', 'gm-guest');
SELECT FROM api.create_or_get_session('gm-open', NULL);
SELECT FROM api.create_or_get_session('gm-big', NULL);

CREATE TEMP TABLE m (n integer PRIMARY KEY, id bigint) ON COMMIT DROP;
INSERT INTO m SELECT n, api.add_message('gm-alice', tests.id_of('alice')::text,
                                        CASE WHEN n % 2 = 1 THEN 'user' ELSE 'assistant' END, 'message ' || n)
  FROM generate_series(1, 5) AS n ORDER BY n;
SELECT FROM api.add_message('gm-alice-other', tests.id_of('alice')::text, 'user', 'elsewhere');
SELECT FROM api.add_message('gm-guest', 'gm-g1', 'user', 'guest says hi');
SELECT FROM api.add_message('gm-open', NULL, 'user', 'open says hi');
INSERT INTO public.conversation_messages (session_id, role, content)
SELECT 'gm-big', 'user', 'big ' || n FROM generate_series(1, 1200) AS n ORDER BY n;
CREATE FUNCTION pg_temp.mid(p_n integer) RETURNS bigint LANGUAGE sql AS $$ SELECT id FROM m WHERE n = p_n $$;

-- ---------------------------------------------------------------- reading and paging
SELECT results_eq(
    $$SELECT id, role, content, created_at FROM api.get_messages('gm-alice', tests.id_of('alice')::text)$$,
    $$SELECT m.id, CASE WHEN n % 2 = 1 THEN 'user' ELSE 'assistant' END, 'message ' || n, now() FROM m ORDER BY n$$,
    'the owner reads every message of the session, oldest first, with id, role, content and time');
SELECT results_eq(
    $$SELECT content FROM api.get_messages('gm-alice', tests.id_of('alice')::text, 2)$$,
    $$VALUES ('message 4'), ('message 5')$$,
    'p_limit 2 gives the latest two, in chronological order');
SELECT results_eq(
    $$SELECT content FROM api.get_messages('gm-alice', tests.id_of('alice')::text, 2, pg_temp.mid(4))$$,
    $$VALUES ('message 2'), ('message 3')$$,
    'p_before_id pages back: the latest two before message 4');
SELECT results_eq(
    $$SELECT content FROM api.get_messages('gm-alice', tests.id_of('alice')::text, 2, pg_temp.mid(2))$$,
    $$VALUES ('message 1')$$,
    'the last page back holds what is left');
SELECT is_empty(
    $$SELECT * FROM api.get_messages('gm-alice', tests.id_of('alice')::text, 2, pg_temp.mid(1))$$,
    'nothing is before the first message');
SELECT results_eq(
    $$SELECT content FROM api.get_messages('gm-alice', tests.id_of('alice')::text, 100, pg_temp.mid(3))$$,
    $$VALUES ('message 1'), ('message 2')$$,
    'p_before_id excludes the message with that id');
SELECT results_eq(
    $$SELECT content FROM api.get_messages('gm-alice', tests.id_of('alice')::text, 3, pg_temp.mid(5) + 1000000)$$,
    $$VALUES ('message 3'), ('message 4'), ('message 5')$$,
    'a p_before_id above every id gives the latest messages');
SELECT results_eq(
    $$SELECT content FROM api.get_messages('gm-alice', tests.id_of('alice')::text, 100, NULL)$$,
    $$SELECT 'message ' || n FROM m ORDER BY n$$,
    'NULL p_before_id starts from the newest');
SELECT is_empty($$SELECT * FROM api.get_messages('gm-empty', tests.id_of('alice')::text)$$,
    'a session without messages gives no rows');
SELECT results_eq(
    $$SELECT content FROM api.get_messages('gm-alice-other', tests.id_of('alice')::text)$$,
    $$VALUES ('elsewhere')$$,
    'only the asked session''s messages are returned');

SELECT is((SELECT count(*)::integer FROM api.get_messages('gm-big', NULL)), 100, 'the default limit is 100');
SELECT is((SELECT min(content) || ' .. ' || max(content) FROM api.get_messages('gm-big', NULL)),
    'big 1101 .. big 1200', 'the default page is the latest 100');
SELECT is((SELECT count(*)::integer FROM api.get_messages('gm-big', NULL, 1000)), 1000, 'p_limit 1000 is allowed');
SELECT is((SELECT content FROM api.get_messages('gm-big', NULL, 1000) LIMIT 1), 'big 201',
    'p_limit 1000 returns the latest 1000, oldest first');
SELECT is((SELECT array_agg(content) FROM api.get_messages('gm-big', NULL, 1)), ARRAY['big 1200'],
    'p_limit 1 returns the newest message');

SELECT results_eq($$SELECT content FROM api.get_messages('gm-guest', 'gm-g1')$$, $$VALUES ('guest says hi')$$,
    'a guest reads its own session');
SELECT results_eq($$SELECT content FROM api.get_messages('gm-open', NULL)$$, $$VALUES ('open says hi')$$,
    'no identity reads a session with no owner');
SELECT results_eq($$SELECT content FROM api.get_messages('gm-open', tests.id_of('bob')::text)$$, $$VALUES ('open says hi')$$,
    'a user reads a session with no owner');

-- ---------------------------------------------------------------- ownership
SELECT throws_ok($$SELECT * FROM api.get_messages('gm-alice', tests.id_of('bob')::text)$$,
    '42501', 'session gm-alice belongs to someone else', 'another user gets 42501');
SELECT throws_ok($$SELECT * FROM api.get_messages('gm-alice', 'gm-g1')$$,
    '42501', 'session gm-alice belongs to someone else', 'a guest gets 42501 on a user''s session');
SELECT throws_ok($$SELECT * FROM api.get_messages('gm-alice', NULL)$$,
    '42501', 'session gm-alice belongs to someone else', 'no identity gets 42501 on a user''s session');
SELECT throws_ok($$SELECT * FROM api.get_messages('gm-guest', 'gm-g2')$$,
    '42501', 'session gm-guest belongs to someone else', 'another guest gets 42501');
SELECT throws_ok($$SELECT * FROM api.get_messages('gm-guest', tests.id_of('alice')::text)$$,
    '42501', 'session gm-guest belongs to someone else', 'a user gets 42501 on a guest''s session');
SELECT throws_ok($$SELECT * FROM api.get_messages('gm-guest', 'anonymous')$$,
    '42501', 'session gm-guest belongs to someone else', '''anonymous'' gets 42501 on a guest''s session');
SELECT throws_ok($$SELECT * FROM api.get_messages('gm-nosuch', 'gm-g1')$$,
    'P0002', 'session gm-nosuch does not exist', 'an unknown session is P0002');

-- ---------------------------------------------------------------- invalid input
SELECT throws_ok($$SELECT * FROM api.get_messages(NULL, 'gm-g1')$$,
    '22023', 'p_session_id: is required', 'NULL p_session_id is 22023 naming the field');
SELECT throws_ok($$SELECT * FROM api.get_messages('', 'gm-g1')$$,
    '22023', 'p_session_id: is empty', 'empty p_session_id is 22023 naming the field');
SELECT throws_ok($$SELECT * FROM api.get_messages(repeat('s', 256), 'gm-g1')$$,
    '22023', 'p_session_id: is 256 characters long; the limit is 255', 'a 256-character p_session_id is 22023');
SELECT throws_ok($$SELECT * FROM api.get_messages('gm-guest', '')$$,
    '22023', 'p_user_id: is empty', 'empty p_user_id is 22023 naming the field');
SELECT throws_ok($$SELECT * FROM api.get_messages('gm-guest', 'gm-g1', 0)$$,
    '22023', 'p_limit: 0 is out of range', 'p_limit 0 is 22023 naming the field');
SELECT throws_ok($$SELECT * FROM api.get_messages('gm-guest', 'gm-g1', -5)$$,
    '22023', 'p_limit: -5 is out of range', 'a negative p_limit is 22023');
SELECT throws_ok($$SELECT * FROM api.get_messages('gm-guest', 'gm-g1', 1001)$$,
    '22023', 'p_limit: 1001 is out of range', 'p_limit 1001 is 22023');
SELECT throws_ok($$SELECT * FROM api.get_messages('gm-guest', 'gm-g1', NULL)$$,
    '22023', NULL, 'NULL p_limit is 22023');
SELECT throws_like($$SELECT * FROM api.get_messages('gm-guest', 'gm-g1', NULL)$$,
    'p_limit: %', 'the error for a NULL p_limit names the field');
SELECT throws_ok($$SELECT * FROM api.get_messages('gm-guest', 'gm-g1', NULL)$$,
    '22023', 'p_limit: is required', 'a NULL p_limit is reported as missing');
SELECT isnt(tests.hint_of($$SELECT * FROM api.get_messages('gm-guest', 'gm-g1', 1001)$$), NULL,
    'the p_limit error carries a HINT');

SELECT * FROM finish();
ROLLBACK;
