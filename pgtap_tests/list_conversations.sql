-- api.list_conversations: a user's or a guest's sessions by last activity, keyset-paged on
-- (updated_at DESC, session_id DESC), with title, counts and a preview; 22023 for bad paging input.
BEGIN;
SELECT plan(41);
SELECT tests.fast_hashing();
SELECT FROM tests.register('alice');
SELECT FROM tests.register('bob');
SELECT set_config('lc.alice', tests.id_of('alice')::text, true), set_config('lc.bob', tests.id_of('bob')::text, true);
SELECT FROM unnest(ARRAY['lc-a1', 'lc-a2', 'lc-a3', 'lc-a4', 'lc-a5']) AS s,
            api.create_or_get_session(s, current_setting('lc.alice'));
SELECT FROM api.create_or_get_session('lc-b1', current_setting('lc.bob'));
SELECT FROM unnest(ARRAY['lc-g-1', 'lc-g-2', 'lc-g-3']) AS s, tests.guest_session('lc-g1', s);
SELECT FROM tests.guest_session('lc-g2', 'lc-g2-1');
SELECT FROM api.create_or_get_session('lc-open', NULL);
SELECT FROM generate_series(1, 2) AS i, api.add_message('lc-a1', current_setting('lc.alice'), 'user', 'turn ' || i);
SELECT FROM api.add_message('lc-a1', current_setting('lc.alice'), 'user', repeat('é', 250));
SELECT FROM api.add_qa_pair('lc-a1', current_setting('lc.alice'), 'q', 'a');
SELECT FROM api.add_message('lc-a3', current_setting('lc.alice'), 'user', 'short one');
SELECT FROM api.add_message('lc-g-1', 'lc-g1', 'user', 'guest hello');
SELECT FROM api.rename_session('lc-a1', current_setting('lc.alice'), 'First');
-- Last activity, set by hand (time is moved, never waited for): three of
-- alice's sessions tie at 2 hours, so session_id decides between them.
SELECT FROM (VALUES ('lc-a1', interval '1 hour'), ('lc-a2', '3 hours'), ('lc-a3', '2 hours'), ('lc-a4', '2 hours'),
                     ('lc-a5', '2 hours'), ('lc-g-1', '1 hour'), ('lc-g-2', '2 hours'), ('lc-g-3', '30 minutes'),
                     ('lc-b1', '1 hour'), ('lc-g2-1', '1 hour'), ('lc-open', '1 minute')) AS v(s, age),
            tests.backdate(v.s, v.age);

-- The ids of one page, in order.
CREATE FUNCTION pg_temp.page(p_user_id text, p_limit integer, p_before timestamptz, p_before_id text)
RETURNS text[] LANGUAGE sql AS
$$ SELECT ARRAY(SELECT session_id FROM api.list_conversations(p_user_id, p_limit, p_before, p_before_id)) $$;
CREATE FUNCTION pg_temp.updated(p_session_id text) RETURNS timestamptz LANGUAGE sql AS
$$ SELECT updated_at FROM public.conversation_sessions WHERE session_id = p_session_id $$;

-- ---------------------------------------------------------------- a user's list
SELECT is(pg_temp.page(current_setting('lc.alice'), 50, NULL, NULL),
    ARRAY['lc-a1', 'lc-a5', 'lc-a4', 'lc-a3', 'lc-a2'],
    'a user''s sessions, most recently active first; equal times by session_id, descending');
SELECT is(pg_temp.page(current_setting('lc.alice'), 50, NULL, NULL), ARRAY(SELECT session_id FROM api.list_conversations(current_setting('lc.alice'))),
    'p_limit defaults to 50 and the cursor to none');
SELECT is(
    (SELECT row(l.title, l.created_at, l.updated_at, l.message_count, l.last_message)::text
       FROM api.list_conversations(current_setting('lc.alice')) AS l WHERE l.session_id = 'lc-a1'),
    row('First', now() - interval '1 hour', now() - interval '1 hour', 3::bigint, repeat('é', 200))::text,
    'each row: title, created_at, updated_at, message_count (Q&A pairs are not messages), the newest message');
SELECT is(
    (SELECT char_length(l.last_message) FROM api.list_conversations(current_setting('lc.alice')) AS l
      WHERE l.session_id = 'lc-a1'), 200, 'last_message is cut to 200 characters');
SELECT is(
    (SELECT row(l.title, l.message_count, l.last_message)::text
       FROM api.list_conversations(current_setting('lc.alice')) AS l WHERE l.session_id = 'lc-a3'),
    row(NULL::text, 1::bigint, 'short one')::text, 'a short newest message is given whole; no title is NULL');
SELECT is(
    (SELECT row(l.message_count, l.last_message)::text
       FROM api.list_conversations(current_setting('lc.alice')) AS l WHERE l.session_id = 'lc-a2'),
    row(0::bigint, NULL::text)::text, 'a session without messages: 0 and NULL');
SELECT is(pg_temp.page(current_setting('lc.bob'), 50, NULL, NULL), ARRAY['lc-b1'], 'each user sees only their own sessions');

-- ---------------------------------------------------------------- keyset paging
SELECT is(pg_temp.page(current_setting('lc.alice'), 2, NULL, NULL), ARRAY['lc-a1', 'lc-a5'], 'page 1 of 2 rows');
SELECT is(pg_temp.page(current_setting('lc.alice'), 2, pg_temp.updated('lc-a5'), 'lc-a5'), ARRAY['lc-a4', 'lc-a3'],
    'page 2 starts after the last row of page 1, inside a run of equal times');
SELECT is(pg_temp.page(current_setting('lc.alice'), 2, pg_temp.updated('lc-a3'), 'lc-a3'), ARRAY['lc-a2'],
    'page 3 holds the rest');
SELECT is(pg_temp.page(current_setting('lc.alice'), 2, pg_temp.updated('lc-a2'), 'lc-a2'), ARRAY[]::text[],
    'after the last row: an empty page');
SELECT is(pg_temp.page(current_setting('lc.alice'), 1, pg_temp.updated('lc-a4'), 'lc-a4'), ARRAY['lc-a3'],
    'the cursor may be any row: the next one follows it');
SELECT is(pg_temp.page(current_setting('lc.alice'), 50, now() - interval '2 hours', NULL), ARRAY['lc-a2'],
    'p_before alone: the sessions last active before that time (not at it)');
SELECT is(pg_temp.page(current_setting('lc.alice'), 50, now() - interval '90 minutes', NULL),
    ARRAY['lc-a5', 'lc-a4', 'lc-a3', 'lc-a2'], 'p_before alone between two times');
SELECT is(pg_temp.page(current_setting('lc.alice'), 200, NULL, NULL), pg_temp.page(current_setting('lc.alice'), 5, NULL, NULL),
    'p_limit 200 is accepted');
SELECT is(pg_temp.page(current_setting('lc.alice'), 1, NULL, NULL), ARRAY['lc-a1'], 'p_limit 1 is accepted');

-- Activity moves a session to the top; a rename does not.
SELECT FROM api.rename_session('lc-a2', current_setting('lc.alice'), 'Renamed');
SELECT is(pg_temp.page(current_setting('lc.alice'), 1, NULL, NULL), ARRAY['lc-a1'], 'renaming does not move a session');
SELECT FROM api.add_message('lc-a2', current_setting('lc.alice'), 'user', 'back again');
SELECT is(pg_temp.page(current_setting('lc.alice'), 2, NULL, NULL), ARRAY['lc-a2', 'lc-a1'],
    'a new message moves its session to the top');

-- ---------------------------------------------------------------- a guest's list
SELECT is(pg_temp.page('lc-g1', 50, NULL, NULL), ARRAY['lc-g-3', 'lc-g-1', 'lc-g-2'],
    'a guest''s sessions, most recently active first');
SELECT is(
    (SELECT row(l.message_count, l.last_message)::text FROM api.list_conversations('lc-g1') AS l WHERE l.session_id = 'lc-g-1'),
    row(1::bigint, 'guest hello')::text, 'with counts and the newest message');
SELECT is(pg_temp.page('lc-g1', 1, pg_temp.updated('lc-g-3'), 'lc-g-3'), ARRAY['lc-g-1'], 'a guest pages the same way');
SELECT is(pg_temp.page('lc-g1', 1, pg_temp.updated('lc-g-1'), 'lc-g-1'), ARRAY['lc-g-2'], 'to the last session');
SELECT is(pg_temp.page('lc-g2', 50, NULL, NULL), ARRAY['lc-g2-1'], 'each guest sees only its own sessions');
SELECT is(pg_temp.page(NULL, 50, NULL, NULL), ARRAY[]::text[], 'NULL lists nothing, not even sessions with no owner');
SELECT is(pg_temp.page('anonymous', 50, NULL, NULL), ARRAY[]::text[], '''anonymous'' lists nothing');
SELECT is(pg_temp.page(gen_random_uuid()::text, 50, NULL, NULL), ARRAY[]::text[], 'a fresh UUID (a new guest) lists nothing');

-- ---------------------------------------------------------------- claims and deleted users
SELECT FROM tests.register('carol', 'lc-g1');
SELECT is(pg_temp.page('lc-g1', 50, NULL, NULL), ARRAY[]::text[], 'after the claim the guest lists nothing');
SELECT is(pg_temp.page(tests.id_of('carol')::text, 50, NULL, NULL), ARRAY['lc-g-3', 'lc-g-2', 'lc-g-1'],
    'the user lists the claimed sessions (claimed at one time: by session_id)');
DELETE FROM public.users WHERE id = tests.id_of('bob');
SELECT is(pg_temp.page(current_setting('lc.bob'), 50, NULL, NULL), ARRAY[]::text[],
    'a deleted user''s sessions are listed for nobody, not for its old id');

-- ---------------------------------------------------------------- invalid input
SELECT throws_ok($$SELECT * FROM api.list_conversations('lc-g2', 0)$$,
    '22023', 'p_limit: 0 is out of range', 'p_limit 0 is 22023 naming the field');
SELECT throws_ok($$SELECT * FROM api.list_conversations('lc-g2', 201)$$,
    '22023', 'p_limit: 201 is out of range', 'p_limit 201 is 22023');
SELECT throws_ok($$SELECT * FROM api.list_conversations('lc-g2', -1)$$,
    '22023', 'p_limit: -1 is out of range', 'a negative p_limit is 22023');
SELECT throws_ok($$SELECT * FROM api.list_conversations('lc-g2', NULL)$$,
    '22023', 'p_limit: is required', 'a NULL p_limit is 22023');
SELECT is(tests.hint_of($$SELECT * FROM api.list_conversations('lc-g2', 0)$$),
    'Ask for 1 to 200 conversations; page on with p_before and p_before_id.', 'the p_limit refusal carries a HINT');
SELECT throws_ok($$SELECT * FROM api.list_conversations('lc-g2', 10, NULL, 'lc-g2-1')$$,
    '22023', 'p_before_id: is given without p_before', 'p_before_id without p_before is 22023');
SELECT isnt(tests.hint_of($$SELECT * FROM api.list_conversations('lc-g2', 10, NULL, 'lc-g2-1')$$), NULL,
    'that refusal carries a HINT');
SELECT throws_ok($$SELECT * FROM api.list_conversations('lc-g2', 10, now(), '')$$,
    '22023', 'p_before_id: is empty', 'an empty p_before_id is 22023');
SELECT throws_ok($$SELECT * FROM api.list_conversations('lc-g2', 10, now(), repeat('s', 256))$$,
    '22023', 'p_before_id: is 256 characters long; the limit is 255', 'an over-long p_before_id is 22023');
SELECT throws_ok($$SELECT * FROM api.list_conversations('')$$,
    '22023', 'p_user_id: is empty', 'an empty p_user_id is 22023');
SELECT throws_ok($$SELECT * FROM api.list_conversations(repeat('u', 256))$$,
    '22023', 'p_user_id: is 256 characters long; the limit is 255', 'a 256-character p_user_id is 22023');
SELECT is(
    (SELECT p.provolatile::text FROM pg_proc AS p
      WHERE p.oid = 'api.list_conversations(text,integer,timestamptz,text)'::regprocedure), 's',
    'list_conversations is STABLE: it only reads');

SELECT * FROM finish();
ROLLBACK;
