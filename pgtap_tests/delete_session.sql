-- api.delete_session: the owner (a user, or a guest before signing up) deletes a session with its
-- messages and Q&A pairs; 42501 for someone else's, P0002 for an unknown id; refusals change nothing.
BEGIN;
SELECT plan(40);
SELECT tests.fast_hashing();
SELECT FROM tests.register('alice');
SELECT FROM tests.register('bob');
SELECT set_config('ds.alice', tests.id_of('alice')::text, true), set_config('ds.bob', tests.id_of('bob')::text, true);
SELECT FROM unnest(ARRAY['ds-alice', 'ds-alice-2']) AS s, api.create_or_get_session(s, current_setting('ds.alice'));
SELECT FROM api.create_or_get_session('ds-bob', current_setting('ds.bob'));
SELECT FROM unnest(ARRAY['ds-guest', 'ds-guest-2']) AS s, tests.guest_session('ds-g1', s);
SELECT FROM api.create_or_get_session('ds-open', NULL);
SELECT FROM (VALUES ('ds-alice', current_setting('ds.alice')), ('ds-alice-2', current_setting('ds.alice')),
                   ('ds-bob', current_setting('ds.bob')), ('ds-guest', 'ds-g1'), ('ds-guest-2', 'ds-g1'),
                   ('ds-open', NULL)) AS v(s, o),
            api.add_message(v.s, v.o, 'user', 'hello ' || v.s) AS m1,
            api.add_message(v.s, v.o, 'user', 'again ' || v.s) AS m2,
            api.add_qa_pair(v.s, v.o, 'q', 'a') AS qa;

-- A session's row, messages and Q&A pairs, as one value to compare before and after.
CREATE FUNCTION pg_temp.state(p_session_id text) RETURNS text LANGUAGE sql AS $$
    SELECT row((SELECT s::text FROM public.conversation_sessions AS s WHERE s.session_id = p_session_id),
               (SELECT array_agg(m::text ORDER BY m.id) FROM public.conversation_messages AS m WHERE m.session_id = p_session_id),
               (SELECT array_agg(q::text ORDER BY q.id) FROM public.qa_pairs AS q WHERE q.session_id = p_session_id))::text
$$;
CREATE FUNCTION pg_temp.gone(p_session_id text) RETURNS boolean LANGUAGE sql AS $$
    SELECT NOT EXISTS (SELECT FROM public.conversation_sessions WHERE session_id = p_session_id)
       AND NOT EXISTS (SELECT FROM public.conversation_messages WHERE session_id = p_session_id)
       AND NOT EXISTS (SELECT FROM public.qa_pairs WHERE session_id = p_session_id)
$$;
CREATE TEMP TABLE before_delete ON COMMIT DROP AS
SELECT session_id::text, pg_temp.state(session_id) AS state FROM public.conversation_sessions WHERE session_id LIKE 'ds-%';

-- ---------------------------------------------------------------- others are refused, nothing changes
SELECT throws_ok($$SELECT api.delete_session('ds-alice', current_setting('ds.bob'))$$,
    '42501', 'session ds-alice belongs to someone else', 'another user gets 42501');
SELECT throws_ok($$SELECT api.delete_session('ds-alice', 'ds-g1')$$,
    '42501', 'session ds-alice belongs to someone else', 'a guest gets 42501 on a user''s session');
SELECT throws_ok($$SELECT api.delete_session('ds-alice', NULL)$$,
    '42501', 'session ds-alice belongs to someone else', 'no identity gets 42501 on a user''s session');
SELECT throws_ok($$SELECT api.delete_session('ds-guest', 'ds-g2')$$,
    '42501', 'session ds-guest belongs to someone else', 'another guest gets 42501');
SELECT throws_ok($$SELECT api.delete_session('ds-guest', current_setting('ds.alice'))$$,
    '42501', 'session ds-guest belongs to someone else', 'a user gets 42501 on a guest''s session');
SELECT throws_ok($$SELECT api.delete_session('ds-guest', 'anonymous')$$,
    '42501', 'session ds-guest belongs to someone else', '''anonymous'' gets 42501 on a guest''s session');
SELECT isnt(tests.hint_of($$SELECT api.delete_session('ds-guest', 'ds-g2')$$), NULL, 'the 42501 carries a HINT');
SELECT throws_ok($$SELECT api.delete_session('ds-nosuch', 'ds-g1')$$,
    'P0002', 'session ds-nosuch does not exist', 'an unknown session is P0002');
SELECT isnt(tests.hint_of($$SELECT api.delete_session('ds-nosuch', 'ds-g1')$$), NULL, 'the P0002 carries a HINT');
SELECT throws_ok($$SELECT api.delete_session(NULL, 'ds-g1')$$,
    '22023', 'p_session_id: is required', 'a NULL p_session_id is 22023 naming the field');
SELECT throws_ok($$SELECT api.delete_session('', 'ds-g1')$$,
    '22023', 'p_session_id: is empty', 'an empty p_session_id is 22023');
SELECT throws_ok($$SELECT api.delete_session(repeat('s', 256), 'ds-g1')$$,
    '22023', 'p_session_id: is 256 characters long; the limit is 255', 'a 256-character p_session_id is 22023');
SELECT throws_ok($$SELECT api.delete_session(E'ds-guest\n', 'ds-g1')$$,
    '22023', 'p_session_id: contains control characters', 'a p_session_id with a control character is 22023');
SELECT throws_ok($$SELECT api.delete_session('ds-guest', '')$$,
    '22023', 'p_user_id: is empty', 'an empty p_user_id is 22023');
SELECT isnt(tests.hint_of($$SELECT api.delete_session('', 'ds-g1')$$), NULL, 'the 22023 carries a HINT');
SELECT is(
    (SELECT array_agg(b.session_id ORDER BY b.session_id) FROM before_delete AS b WHERE b.state = pg_temp.state(b.session_id)),
    (SELECT array_agg(b.session_id ORDER BY b.session_id) FROM before_delete AS b),
    'refused calls changed no session, message or Q&A pair');

-- ---------------------------------------------------------------- the owner deletes
SELECT is(api.delete_session('ds-alice', current_setting('ds.alice')), true, 'the owner deletes a session: true');
SELECT ok(pg_temp.gone('ds-alice'), 'the session is gone with its messages and Q&A pairs');
SELECT is(pg_temp.state('ds-alice-2'), (SELECT state FROM before_delete WHERE session_id = 'ds-alice-2'),
    'the owner''s other session is untouched');
SELECT is(pg_temp.state('ds-bob'), (SELECT state FROM before_delete WHERE session_id = 'ds-bob'),
    'another user''s session is untouched');
SELECT throws_ok($$SELECT api.delete_session('ds-alice', current_setting('ds.alice'))$$,
    'P0002', 'session ds-alice does not exist', 'deleting it again is P0002');

SELECT is(api.delete_session('ds-guest', 'ds-g1'), true, 'a guest deletes its own session before signing up');
SELECT ok(pg_temp.gone('ds-guest'), 'the guest''s session is gone with its messages and Q&A pairs');
SELECT is(pg_temp.state('ds-guest-2'), (SELECT state FROM before_delete WHERE session_id = 'ds-guest-2'),
    'the guest''s other session is untouched');
SELECT is(api.delete_session('ds-open', current_setting('ds.bob')), true,
    'a session with no owner is open to whoever has its id: a user deletes it');
SELECT ok(pg_temp.gone('ds-open'), 'the open session is gone with its messages and Q&A pairs');
SELECT FROM api.create_or_get_session('ds-open-2', NULL);
SELECT is(api.delete_session('ds-open-2', NULL), true, 'no identity deletes an open session too');

-- ---------------------------------------------------------------- a claimed session is the user's; the audit stays
SELECT FROM tests.register('carol', 'ds-g1');
SELECT throws_ok($$SELECT api.delete_session('ds-guest-2', 'ds-g1')$$,
    '42501', 'session ds-guest-2 belongs to someone else', 'after the claim the guest may no longer delete it');
SELECT is(pg_temp.state('ds-guest-2') IS NOT NULL AND NOT pg_temp.gone('ds-guest-2'), true, 'and it is still there');
SELECT is((SELECT count(*)::integer FROM public.conversation_messages WHERE session_id = 'ds-guest-2'), 2,
    'with its messages');
SELECT is(api.delete_session('ds-guest-2', tests.id_of('carol')::text), true, 'the user who claimed it may delete it');
SELECT ok(pg_temp.gone('ds-guest-2'), 'it is gone with its messages and Q&A pairs');
SELECT is((SELECT count(*)::integer FROM public.session_claims WHERE session_id = 'ds-guest-2'), 1,
    'the audit of its claim is kept');

-- ---------------------------------------------------------------- a deleted user's session is nobody's
DELETE FROM public.users WHERE id = tests.id_of('bob');
SELECT throws_ok($$SELECT api.delete_session('ds-bob', current_setting('ds.bob'))$$,
    '42501', 'session ds-bob belongs to someone else', 'the deleted user''s id deletes nothing (it is a guest id now)');
SELECT throws_ok($$SELECT api.delete_session('ds-bob', NULL)$$,
    '42501', 'session ds-bob belongs to someone else', 'no identity deletes a deleted user''s session');
SELECT ok(NOT pg_temp.gone('ds-bob'), 'the deleted user''s session is kept');

-- ---------------------------------------------------------------- no other writes in the way
SELECT FROM api.create_or_get_session('ds-busy', current_setting('ds.alice'));
SELECT FROM generate_series(1, 50) AS i, api.add_message('ds-busy', current_setting('ds.alice'), 'user', 'm' || i);
SELECT is(api.delete_session('ds-busy', current_setting('ds.alice')), true, 'a session with 50 messages is deleted');
SELECT ok(pg_temp.gone('ds-busy'), 'with all 50');
SELECT is(ARRAY(SELECT session_id::text FROM public.conversation_sessions WHERE session_id LIKE 'ds-%' ORDER BY 1),
    ARRAY['ds-alice-2', 'ds-bob'], 'of this file''s sessions, exactly those never deleted are left');
SELECT is(
    (SELECT p.provolatile::text FROM pg_proc AS p WHERE p.oid = 'api.delete_session(text,text)'::regprocedure), 'v',
    'delete_session is VOLATILE (it writes)');

SELECT * FROM finish();
ROLLBACK;
