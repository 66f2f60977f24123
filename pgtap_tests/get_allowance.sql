-- api.get_allowance: the caller's user turns of the last 24 hours through the sessions it owns, its
-- allowance (NULL: no limit) and when the oldest counted turn leaves the window; 22023 for a bad id.
BEGIN;
SELECT plan(15);
SELECT tests.fast_hashing();
UPDATE public.chatmem_settings SET guest_messages_per_day = 20, user_messages_per_day = NULL;
SELECT FROM unnest(ARRAY['ga-1', 'ga-2']) AS s, tests.guest_session('ga-g1', s);
SELECT FROM tests.guest_session('ga-g2', 'ga-other');
SELECT FROM api.create_or_get_session('ga-open', NULL);
SELECT FROM generate_series(1, 3) AS i, api.add_message('ga-1', 'ga-g1', 'user', 'm' || i);
SELECT FROM api.add_message('ga-2', 'ga-g1', 'user', 'another session');
SELECT FROM api.add_message('ga-other', 'ga-g2', 'user', 'someone else');
SELECT FROM api.add_message('ga-open', 'ga-g1', 'user', 'in a session with no owner');
SELECT FROM api.add_message('ga-open', NULL, 'user', 'nobody');
-- The oldest counted turn was sent 5 hours ago; one more, 25 hours ago, no longer counts.
UPDATE public.conversation_messages SET created_at = now() - interval '5 hours'
 WHERE session_id = 'ga-1' AND content = 'm1';
INSERT INTO public.conversation_messages (session_id, role, content, created_at)
VALUES ('ga-1', 'user', 'yesterday', now() - interval '25 hours');
-- Assistant and system turns are never counted.
INSERT INTO public.conversation_messages (session_id, role, content)
SELECT 'ga-1', r, 'not counted' FROM unnest(ARRAY['assistant', 'system']) AS r;
CREATE TEMP TABLE messages_before ON COMMIT DROP AS SELECT count(*) AS n FROM public.conversation_messages;

-- ---------------------------------------------------------------- a guest
SELECT results_eq($$SELECT used, allowed, resets_at FROM api.get_allowance('ga-g1')$$,
    $$VALUES (4, 20, now() + interval '19 hours')$$,
    'a guest: its user turns of the last 24 hours in its sessions, its allowance, when the oldest leaves');
SELECT results_eq($$SELECT used, allowed, resets_at FROM api.get_allowance('ga-g2')$$,
    $$VALUES (1, 20, now() + interval '24 hours')$$, 'another guest counts only its own');
SELECT results_eq($$SELECT used, allowed, resets_at FROM api.get_allowance('ga-new')$$,
    $$VALUES (0, 20, NULL::timestamptz)$$, 'a guest with no turn: 0 used, resets_at NULL');
UPDATE public.chatmem_settings SET guest_messages_per_day = NULL;
SELECT results_eq($$SELECT used, allowed FROM api.get_allowance('ga-g1')$$,
    $$VALUES (4, NULL::integer)$$, 'guest_messages_per_day NULL: allowed is NULL (no limit)');
UPDATE public.chatmem_settings SET guest_messages_per_day = 20;

-- ---------------------------------------------------------------- nobody
SELECT results_eq($$SELECT used, allowed, resets_at FROM api.get_allowance(NULL)$$,
    $$VALUES (0, NULL::integer, NULL::timestamptz)$$, 'no identity: nothing counted, no limit');
SELECT results_eq($$SELECT used, allowed, resets_at FROM api.get_allowance('anonymous')$$,
    $$VALUES (0, NULL::integer, NULL::timestamptz)$$, '''anonymous'': the same');

-- ---------------------------------------------------------------- a claim carries the count
SELECT FROM tests.register('alice', 'ga-g1');
SELECT results_eq($$SELECT used, allowed, resets_at FROM api.get_allowance(tests.id_of('alice')::text)$$,
    $$VALUES (4, NULL::integer, now() + interval '19 hours')$$,
    'after sign-up the guest''s turns count for the account (user_messages_per_day NULL: no limit)');
SELECT results_eq($$SELECT used, resets_at FROM api.get_allowance('ga-g1')$$,
    $$VALUES (0, NULL::timestamptz)$$, 'and no longer for the guest id');
UPDATE public.chatmem_settings SET user_messages_per_day = 50;
SELECT results_eq($$SELECT used, allowed FROM api.get_allowance(tests.id_of('alice')::text)$$,
    $$VALUES (4, 50)$$, 'a user''s allowance is user_messages_per_day');
-- A session older than the window (updated_at too) is not looked at.
SELECT FROM tests.backdate('ga-2', '2 days');
UPDATE public.conversation_messages SET created_at = now() - interval '2 days' WHERE session_id = 'ga-2';
SELECT results_eq($$SELECT used FROM api.get_allowance(tests.id_of('alice')::text)$$,
    $$VALUES (3)$$, 'turns older than 24 hours leave the count');

-- ---------------------------------------------------------------- bad input, nothing changed
SELECT throws_ok($$SELECT * FROM api.get_allowance('')$$, '22023', 'p_user_id: is empty', 'an empty id is 22023');
SELECT throws_ok($$SELECT * FROM api.get_allowance(repeat('x', 256))$$, '22023', NULL, 'a too long id is 22023');
SELECT throws_ok($$SELECT * FROM api.get_allowance(E'a\tb')$$, '22023', NULL, 'a control character is 22023');
SELECT isnt(tests.hint_of($$SELECT * FROM api.get_allowance('')$$), NULL, 'the refusal carries a HINT');
SELECT is((SELECT count(*) FROM public.conversation_messages), (SELECT n FROM messages_before),
    'get_allowance writes nothing');

SELECT * FROM finish();
ROLLBACK;
