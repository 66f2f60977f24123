-- api.delete_guest_data: a guest erases its unclaimed sessions, with their
-- messages and Q&A pairs, and nothing else.
BEGIN;
SELECT plan(22);
SELECT tests.fast_hashing();

CREATE FUNCTION pg_temp.sessions_like(p_pattern text) RETURNS integer
LANGUAGE sql AS $$ SELECT count(*)::integer FROM public.conversation_sessions WHERE session_id LIKE p_pattern $$;

-- guest dgd-g1: three sessions with messages and Q&A pairs
SELECT FROM generate_series(1, 3) AS i, tests.guest_session('dgd-g1', 'dgd-g1-' || i);
SELECT FROM generate_series(1, 3) AS i, api.add_message('dgd-g1-' || i, 'dgd-g1', 'user', 'message ' || i);
SELECT FROM generate_series(1, 3) AS i, api.add_qa_pair('dgd-g1-' || i, 'dgd-g1', 'q' || i, 'a' || i);
-- another guest, an open session, and a user's session
SELECT FROM tests.guest_session('dgd-g2', 'dgd-g2-1');
SELECT FROM api.add_message('dgd-g2-1', 'dgd-g2', 'user', 'keep me');
SELECT FROM api.create_or_get_session('dgd-open', NULL);
SELECT FROM tests.register('dgdalice');
SELECT FROM api.create_or_get_session('dgd-alice', tests.id_of('dgdalice')::text);
SELECT FROM api.add_message('dgd-alice', tests.id_of('dgdalice')::text, 'user', 'mine');
-- guest dgd-g3 registered (its first session is claimed), then chatted as a guest again
SELECT FROM tests.guest_session('dgd-g3', 'dgd-g3-claimed');
SELECT FROM tests.register('dgdbob', 'dgd-g3');
SELECT FROM tests.guest_session('dgd-g3', 'dgd-g3-later');
SELECT FROM api.add_message('dgd-g3-claimed', tests.id_of('dgdbob')::text, 'user', 'claimed');

-- ---------------------------------------------------------------- happy path
SELECT is(api.delete_guest_data('dgd-g1'), 3, 'returns how many sessions of the guest were deleted');
SELECT is(pg_temp.sessions_like('dgd-g1-%'), 0, 'the guest''s sessions are gone');
SELECT is((SELECT count(*)::integer FROM public.conversation_messages WHERE session_id LIKE 'dgd-g1-%'), 0,
    'with their messages');
SELECT is((SELECT count(*)::integer FROM public.qa_pairs WHERE session_id LIKE 'dgd-g1-%'), 0,
    'and their Q&A pairs');
SELECT is_empty($$SELECT * FROM api.list_sessions('dgd-g1')$$, 'the guest lists no session any more');
SELECT is(api.delete_guest_data('dgd-g1'), 0, 'a second call deletes nothing and succeeds');

SELECT is(ARRAY(SELECT content FROM api.get_messages('dgd-g2-1', 'dgd-g2')), ARRAY['keep me'],
    'another guest''s session and messages are untouched');
SELECT is(pg_temp.sessions_like('dgd-open'), 1, 'an open session is untouched');
SELECT is(ARRAY(SELECT content FROM api.get_messages('dgd-alice', tests.id_of('dgdalice')::text)), ARRAY['mine'],
    'a registered user''s session is untouched');

SELECT is(api.delete_guest_data('dgd-g3'), 1, 'a guest that registered: only its later, unclaimed session goes');
SELECT is(pg_temp.sessions_like('dgd-g3-later'), 0, 'the unclaimed session is gone');
SELECT is(ARRAY(SELECT content FROM api.get_messages('dgd-g3-claimed', tests.id_of('dgdbob')::text)),
    ARRAY['claimed'], 'the claimed session stays its user''s, with its messages');

SELECT is(api.delete_guest_data(tests.id_of('dgdalice')::text), 0,
    'a user''s id passed as a guest id deletes none of the user''s sessions');
SELECT is(pg_temp.sessions_like('dgd-alice'), 1, 'the user''s session is still there');
SELECT is(api.delete_guest_data('dgd-nobody'), 0, 'an unknown guest id deletes nothing');

-- ---------------------------------------------------------------- invalid input
SELECT throws_ok($$SELECT api.delete_guest_data(NULL)$$, '22023', 'p_anonymous_user_id: is required',
    'NULL is refused');
SELECT throws_ok($$SELECT api.delete_guest_data('')$$, '22023', 'p_anonymous_user_id: is empty',
    'an empty guest id is refused');
SELECT throws_ok($$SELECT api.delete_guest_data('   ')$$, '22023', 'p_anonymous_user_id: is empty',
    'a blank guest id is refused');
SELECT throws_ok($$SELECT api.delete_guest_data('anonymous')$$, '22023',
    'p_anonymous_user_id: ''anonymous'' is no guest id', '''anonymous'' is refused: it is nobody');
SELECT throws_ok($$SELECT api.delete_guest_data(repeat('g', 256))$$, '22023',
    'p_anonymous_user_id: is 256 characters long; the limit is 255', 'an over-long guest id is refused');
SELECT throws_ok($$SELECT api.delete_guest_data(E'dgd-g2\n')$$, '22023',
    'p_anonymous_user_id: contains control characters', 'a guest id with a control character is refused');
SELECT is(tests.hint_of($$SELECT api.delete_guest_data('')$$),
    'Pass a non-empty id of at most 255 characters.', 'a refusal carries a hint');

SELECT * FROM finish();
ROLLBACK;
