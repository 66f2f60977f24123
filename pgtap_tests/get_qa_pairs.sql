-- api.get_qa_pairs: a session's Q&A pairs in order, for its owner.
BEGIN;
SELECT plan(17);
SELECT tests.fast_hashing();
SELECT FROM tests.register('alice');
SELECT FROM tests.register('bob');
SELECT FROM api.create_or_get_session('gq-alice', tests.id_of('alice')::text);
SELECT FROM api.create_or_get_session('gq-alice-other', tests.id_of('alice')::text);
SELECT FROM api.create_or_get_session('gq-empty', tests.id_of('alice')::text);
SELECT FROM tests.guest_session('gq-g1', 'gq-guest');
SELECT FROM api.create_or_get_session('gq-open', NULL);

CREATE TEMP TABLE p (n integer PRIMARY KEY, id bigint) ON COMMIT DROP;
INSERT INTO p SELECT n, api.add_qa_pair('gq-alice', tests.id_of('alice')::text, 'question ' || n, 'answer ' || n)
  FROM generate_series(1, 3) AS n ORDER BY n;
SELECT FROM api.add_qa_pair('gq-alice-other', tests.id_of('alice')::text, 'other q', 'other a');
SELECT FROM api.add_qa_pair('gq-guest', 'gq-g1', 'guest q', 'guest a');
SELECT FROM api.add_qa_pair('gq-open', NULL, 'open q', 'open a');

SELECT results_eq(
    $$SELECT id, question, answer, created_at FROM api.get_qa_pairs('gq-alice', tests.id_of('alice')::text)$$,
    $$SELECT id, 'question ' || n, 'answer ' || n, now() FROM p ORDER BY n$$,
    'the owner reads the session''s pairs in the order they were added, with id, question, answer and time');
SELECT is_empty($$SELECT * FROM api.get_qa_pairs('gq-empty', tests.id_of('alice')::text)$$,
    'a session without pairs gives no rows');
SELECT results_eq($$SELECT question FROM api.get_qa_pairs('gq-alice-other', tests.id_of('alice')::text)$$,
    $$VALUES ('other q')$$, 'only the asked session''s pairs are returned');
SELECT results_eq($$SELECT question FROM api.get_qa_pairs('gq-guest', 'gq-g1')$$,
    $$VALUES ('guest q')$$, 'a guest reads its own session');
SELECT results_eq($$SELECT question FROM api.get_qa_pairs('gq-open', NULL)$$,
    $$VALUES ('open q')$$, 'no identity reads a session with no owner');

SELECT throws_ok($$SELECT * FROM api.get_qa_pairs('gq-alice', tests.id_of('bob')::text)$$,
    '42501', 'session gq-alice belongs to someone else', 'another user gets 42501');
SELECT throws_ok($$SELECT * FROM api.get_qa_pairs('gq-alice', 'gq-g1')$$,
    '42501', 'session gq-alice belongs to someone else', 'a guest gets 42501 on a user''s session');
SELECT throws_ok($$SELECT * FROM api.get_qa_pairs('gq-alice', NULL)$$,
    '42501', 'session gq-alice belongs to someone else', 'no identity gets 42501 on a user''s session');
SELECT throws_ok($$SELECT * FROM api.get_qa_pairs('gq-guest', 'gq-g2')$$,
    '42501', 'session gq-guest belongs to someone else', 'another guest gets 42501');
SELECT throws_ok($$SELECT * FROM api.get_qa_pairs('gq-guest', tests.id_of('alice')::text)$$,
    '42501', 'session gq-guest belongs to someone else', 'a user gets 42501 on a guest''s session');
SELECT throws_ok($$SELECT * FROM api.get_qa_pairs('gq-nosuch', 'gq-g1')$$,
    'P0002', 'session gq-nosuch does not exist', 'an unknown session is P0002');
SELECT isnt(tests.hint_of($$SELECT * FROM api.get_qa_pairs('gq-nosuch', 'gq-g1')$$), NULL, 'the P0002 carries a HINT');

SELECT throws_ok($$SELECT * FROM api.get_qa_pairs(NULL, 'gq-g1')$$,
    '22023', 'p_session_id: is required', 'NULL p_session_id is 22023 naming the field');
SELECT throws_ok($$SELECT * FROM api.get_qa_pairs('', 'gq-g1')$$,
    '22023', 'p_session_id: is empty', 'empty p_session_id is 22023 naming the field');
SELECT throws_ok($$SELECT * FROM api.get_qa_pairs(repeat('s', 256), 'gq-g1')$$,
    '22023', 'p_session_id: is 256 characters long; the limit is 255', 'a 256-character p_session_id is 22023');
SELECT throws_ok($$SELECT * FROM api.get_qa_pairs('gq-guest', '')$$,
    '22023', 'p_user_id: is empty', 'empty p_user_id is 22023 naming the field');
SELECT throws_ok($$SELECT * FROM api.get_qa_pairs('gq-guest', repeat('u', 256))$$,
    '22023', 'p_user_id: is 256 characters long; the limit is 255', 'a 256-character p_user_id is 22023');

SELECT * FROM finish();
ROLLBACK;
