-- api.add_qa_pair: record a question and its answer in a session the caller owns.
BEGIN;
SELECT plan(32);
SELECT tests.fast_hashing();
SELECT FROM tests.register('alice');
SELECT FROM tests.register('bob');
SELECT FROM api.create_or_get_session('qa-alice', tests.id_of('alice')::text);
SELECT FROM tests.guest_session('qa-g1', 'qa-guest');
SELECT FROM api.create_or_get_session('qa-open', NULL);
SELECT FROM unnest(ARRAY['qa-alice', 'qa-guest', 'qa-open']) AS s, tests.backdate(s);

CREATE FUNCTION pg_temp.pairs(p_session_id text) RETURNS integer LANGUAGE sql AS
$$ SELECT count(*)::integer FROM public.qa_pairs WHERE session_id = p_session_id $$;
CREATE FUNCTION pg_temp.updated(p_session_id text) RETURNS timestamptz LANGUAGE sql AS
$$ SELECT updated_at FROM public.conversation_sessions WHERE session_id = p_session_id $$;
CREATE TEMP TABLE ids (label text PRIMARY KEY, id bigint) ON COMMIT DROP;

SELECT lives_ok($$INSERT INTO ids VALUES ('first', api.add_qa_pair('qa-alice', tests.id_of('alice')::text, 'How do refunds work?', 'Within 5 days.'))$$,
    'the owner records a Q&A pair');
SELECT isnt((SELECT id FROM ids WHERE label = 'first'), NULL::bigint, 'add_qa_pair returns the new pair''s id');
SELECT is(
    (SELECT row(session_id, question, answer, created_at)::text FROM public.qa_pairs WHERE id = (SELECT id FROM ids WHERE label = 'first')),
    row('qa-alice', 'How do refunds work?', 'Within 5 days.', now())::text,
    'the pair is stored in its session with question, answer and time');
SELECT is(pg_temp.updated('qa-alice'), now(), 'adding a pair bumps the session''s updated_at');
SELECT lives_ok($$INSERT INTO ids VALUES ('second', api.add_qa_pair('qa-alice', tests.id_of('alice')::text, E'Line 1\nLine 2', 'Ünïcödé ✓'))$$,
    'a second pair is recorded');
SELECT ok((SELECT id FROM ids WHERE label = 'first') < (SELECT id FROM ids WHERE label = 'second'),
    'ids grow in the order pairs are added');
SELECT is((SELECT row(question, answer)::text FROM public.qa_pairs WHERE id = (SELECT id FROM ids WHERE label = 'second')),
    row(E'Line 1\nLine 2', 'Ünïcödé ✓')::text, 'question and answer are stored exactly');
SELECT isnt(api.add_qa_pair('qa-guest', 'qa-g1', 'q', 'a'), NULL::bigint, 'a guest records a pair in its own session');
SELECT isnt(api.add_qa_pair('qa-open', NULL, 'q', 'a'), NULL::bigint, 'no identity records a pair in a session with no owner');
SELECT isnt(api.add_qa_pair('qa-open', tests.id_of('bob')::text, 'q', 'a'), NULL::bigint, 'a user records a pair in a session with no owner');
SELECT is((SELECT user_id FROM public.conversation_sessions WHERE session_id = 'qa-open'), NULL::uuid,
    'the session with no owner stays without one');

SELECT FROM unnest(ARRAY['qa-alice', 'qa-guest']) AS s, tests.backdate(s);
SELECT throws_ok($$SELECT api.add_qa_pair('qa-alice', tests.id_of('bob')::text, 'q', 'a')$$,
    '42501', 'session qa-alice belongs to someone else', 'another user gets 42501');
SELECT throws_ok($$SELECT api.add_qa_pair('qa-alice', 'qa-g1', 'q', 'a')$$,
    '42501', 'session qa-alice belongs to someone else', 'a guest gets 42501 on a user''s session');
SELECT throws_ok($$SELECT api.add_qa_pair('qa-alice', NULL, 'q', 'a')$$,
    '42501', 'session qa-alice belongs to someone else', 'no identity gets 42501 on a user''s session');
SELECT throws_ok($$SELECT api.add_qa_pair('qa-guest', 'qa-g2', 'q', 'a')$$,
    '42501', 'session qa-guest belongs to someone else', 'another guest gets 42501');
SELECT throws_ok($$SELECT api.add_qa_pair('qa-guest', tests.id_of('alice')::text, 'q', 'a')$$,
    '42501', 'session qa-guest belongs to someone else', 'a user gets 42501 on a guest''s session');
SELECT throws_ok($$SELECT api.add_qa_pair('qa-guest', 'anonymous', 'q', 'a')$$,
    '42501', 'session qa-guest belongs to someone else', '''anonymous'' gets 42501 on a guest''s session');
SELECT is(row(pg_temp.pairs('qa-alice'), pg_temp.pairs('qa-guest'))::text, row(2, 1)::text, 'refused calls added no pair');
SELECT is(row(pg_temp.updated('qa-alice'), pg_temp.updated('qa-guest'))::text,
    row(now() - interval '1 hour', now() - interval '1 hour')::text, 'refused calls did not bump updated_at');
SELECT throws_ok($$SELECT api.add_qa_pair('qa-nosuch', 'qa-g1', 'q', 'a')$$,
    'P0002', 'session qa-nosuch does not exist', 'an unknown session is P0002');

SELECT throws_ok($$SELECT api.add_qa_pair(NULL, 'qa-g1', 'q', 'a')$$,
    '22023', 'p_session_id: is required', 'NULL p_session_id is 22023 naming the field');
SELECT throws_ok($$SELECT api.add_qa_pair('', 'qa-g1', 'q', 'a')$$,
    '22023', 'p_session_id: is empty', 'empty p_session_id is 22023 naming the field');
SELECT throws_ok($$SELECT api.add_qa_pair(repeat('s', 256), 'qa-g1', 'q', 'a')$$,
    '22023', 'p_session_id: is 256 characters long; the limit is 255', 'a 256-character p_session_id is 22023');
SELECT throws_ok($$SELECT api.add_qa_pair('qa-guest', '', 'q', 'a')$$,
    '22023', 'p_user_id: is empty', 'empty p_user_id is 22023 naming the field');
SELECT throws_ok($$SELECT api.add_qa_pair('qa-guest', 'qa-g1', NULL, 'a')$$,
    '22023', 'p_question: is required', 'NULL p_question is 22023 naming the field');
SELECT throws_ok($$SELECT api.add_qa_pair('qa-guest', 'qa-g1', '  ', 'a')$$,
    '22023', 'p_question: is empty', 'blank p_question is 22023 naming the field');
SELECT throws_ok($$SELECT api.add_qa_pair('qa-guest', 'qa-g1', 'q', NULL)$$,
    '22023', 'p_answer: is required', 'NULL p_answer is 22023 naming the field');
SELECT throws_ok($$SELECT api.add_qa_pair('qa-guest', 'qa-g1', 'q', '')$$,
    '22023', 'p_answer: is empty', 'empty p_answer is 22023 naming the field');
UPDATE public.chatmem_settings SET message_max_chars = 10;
SELECT throws_ok($$SELECT api.add_qa_pair('qa-guest', 'qa-g1', repeat('q', 11), 'a')$$,
    '22023', 'p_question: is 11 characters long; the limit is 10', 'a question over message_max_chars is 22023');
SELECT throws_ok($$SELECT api.add_qa_pair('qa-guest', 'qa-g1', 'q', repeat('a', 11))$$,
    '22023', 'p_answer: is 11 characters long; the limit is 10', 'an answer over message_max_chars is 22023');
UPDATE public.chatmem_settings SET message_max_chars = 100000;
SELECT isnt(tests.hint_of($$SELECT api.add_qa_pair('qa-guest', 'qa-g1', 'q', '')$$), NULL, 'the 22023 carries a HINT');
SELECT is(pg_temp.pairs('qa-guest'), 1, 'invalid calls added no pair');

SELECT * FROM finish();
ROLLBACK;
