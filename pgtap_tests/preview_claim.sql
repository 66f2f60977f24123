-- api.preview_claim: exactly the sessions a sign-up or login with this guest id would claim, with
-- counts, changing nothing; 28000 for a registered user's id, 22023 for a malformed one.
BEGIN;
SELECT plan(22);
SELECT tests.fast_hashing();
SELECT FROM tests.register('alice');
SELECT FROM unnest(ARRAY['pc-1', 'pc-2', 'pc-3']) AS s, tests.guest_session('pc-g1', s);
SELECT FROM generate_series(1, 3) AS i, api.add_message('pc-1', 'pc-g1', 'user', 'm' || i);
SELECT FROM api.add_message('pc-2', 'pc-g1', 'user', 'only one');
SELECT FROM generate_series(1, 2) AS i, api.add_qa_pair('pc-2', 'pc-g1', 'q' || i, 'a' || i);
SELECT FROM api.rename_session('pc-3', 'pc-g1', 'Refunds');
SELECT FROM (VALUES ('pc-1', interval '3 hours'), ('pc-2', '1 hour'), ('pc-3', '2 hours')) AS v(s, age),
            tests.backdate(v.s, v.age);
SELECT FROM tests.guest_session('pc-g2', 'pc-other');
SELECT FROM api.create_or_get_session('pc-open', NULL);
SELECT FROM api.create_or_get_session('pc-alice', tests.id_of('alice')::text);
-- A session of a user who was deleted, still carrying a guest key (rows the
-- older system claimed kept it): nobody's, so neither claimed nor previewed.
SELECT FROM tests.register('olga');
INSERT INTO public.conversation_sessions (session_id, user_id, metadata)
VALUES ('pc-orphan', tests.id_of('olga'), '{"anonymousUserId": "pc-g1"}');
DELETE FROM public.users WHERE id = tests.id_of('olga');

CREATE TEMP TABLE previewed ON COMMIT DROP AS SELECT * FROM api.preview_claim('pc-g1');
CREATE TEMP TABLE sessions_before ON COMMIT DROP AS
SELECT s::text AS row FROM public.conversation_sessions AS s WHERE s.session_id LIKE 'pc-%';

-- ---------------------------------------------------------------- the preview
SELECT results_eq(
    $$SELECT session_id, title, created_at, message_count, qa_count FROM previewed$$,
    $$VALUES ('pc-2', NULL::text, now() - interval '1 hour', 1::bigint, 2::bigint),
             ('pc-3', 'Refunds', now() - interval '2 hours', 0::bigint, 0::bigint),
             ('pc-1', NULL::text, now() - interval '3 hours', 3::bigint, 0::bigint)$$,
    'the guest''s sessions, newest created first, with title, created_at, message and Q&A pair counts');
SELECT is_empty($$SELECT * FROM previewed WHERE session_id IN ('pc-other', 'pc-open', 'pc-alice', 'pc-orphan')$$,
    'not another guest''s, an open, a user''s, or a deleted user''s session (even with the guest key)');
SELECT is(
    ARRAY(SELECT s.row FROM sessions_before AS s ORDER BY 1),
    ARRAY(SELECT s::text FROM public.conversation_sessions AS s WHERE s.session_id LIKE 'pc-%' ORDER BY 1),
    'a preview changes nothing');
SELECT is(ARRAY(SELECT session_id FROM api.preview_claim('pc-g2')), ARRAY['pc-other'], 'each guest sees its own');
SELECT is_empty($$SELECT * FROM api.preview_claim('pc-nobody')$$, 'a guest without sessions: no rows');
SELECT is_empty($$SELECT * FROM api.preview_claim(gen_random_uuid()::text)$$,
    'a UUID that is no registered user is a guest id: no rows');

-- ---------------------------------------------------------------- what would not claim anything lists nothing
SELECT is_empty($$SELECT * FROM api.preview_claim(NULL)$$, 'NULL previews nothing (it claims nothing)');
SELECT is_empty($$SELECT * FROM api.preview_claim('')$$, 'empty previews nothing, as register_user claims nothing for it');
SELECT is_empty($$SELECT * FROM api.preview_claim('   ')$$, 'blank previews nothing');
SELECT is_empty($$SELECT * FROM api.preview_claim('anonymous')$$, '''anonymous'' previews nothing');

-- ---------------------------------------------------------------- refusals
SELECT throws_ok(format('SELECT * FROM api.preview_claim(%L)', tests.id_of('alice')),
    '28000', 'p_anonymous_user_id names a registered account, not a guest',
    'a registered user''s id is refused with 28000, as api.require_guest refuses it');
SELECT is(tests.hint_of(format('SELECT * FROM api.preview_claim(%L)', tests.id_of('alice'))),
    'Send the account''s access token instead of its id.', 'the 28000 carries a HINT');
SELECT throws_ok(format('SELECT * FROM api.preview_claim(%L)', upper(tests.id_of('alice')::text)),
    '28000', 'p_anonymous_user_id names a registered account, not a guest', 'in capitals too');
SELECT throws_ok($$SELECT * FROM api.preview_claim(repeat('g', 256))$$,
    '22023', 'p_anonymous_user_id: is 256 characters long; the limit is 255', 'an over-long guest id is 22023');
SELECT throws_ok($$SELECT * FROM api.preview_claim(E'pc-g1\t')$$,
    '22023', 'p_anonymous_user_id: contains control characters', 'a guest id with a control character is 22023');
SELECT isnt(tests.hint_of($$SELECT * FROM api.preview_claim(repeat('g', 256))$$), NULL, 'the 22023 carries a HINT');
SELECT is(
    ARRAY(SELECT s.row FROM sessions_before AS s ORDER BY 1),
    ARRAY(SELECT s::text FROM public.conversation_sessions AS s WHERE s.session_id LIKE 'pc-%' ORDER BY 1),
    'refused previews change nothing');

-- ---------------------------------------------------------------- the claim moves exactly what was previewed
SELECT FROM tests.register('bob', 'pc-g1');
SELECT is(ARRAY(SELECT session_id::text FROM public.session_claims WHERE user_id = tests.id_of('bob') ORDER BY 1),
    ARRAY(SELECT session_id FROM previewed ORDER BY 1), 'registering claimed exactly the previewed sessions');
SELECT is(ARRAY(SELECT session_id::text FROM public.conversation_sessions WHERE user_id = tests.id_of('bob') ORDER BY 1),
    ARRAY(SELECT session_id FROM previewed ORDER BY 1), 'and they are the user''s now');
SELECT is_empty($$SELECT * FROM api.preview_claim('pc-g1')$$, 'after the claim there is nothing left to preview');
SELECT FROM tests.guest_session('pc-g1', 'pc-later');
SELECT is(ARRAY(SELECT session_id FROM api.preview_claim('pc-g1')), ARRAY['pc-later'],
    'a session the guest opens afterwards is previewed again');
SELECT is((SELECT migrated_sessions FROM tests.login('bob', 'pc-g1')), 1, 'and a login claims exactly that one');

SELECT * FROM finish();
ROLLBACK;
