-- api.rename_session: the owner titles a session (trimmed; NULL, empty or spaces clear it); at most
-- 200 characters, no control characters (22023); 42501 for someone else's, P0002 for an unknown id.
BEGIN;
SELECT plan(48);
SELECT tests.fast_hashing();
SELECT FROM tests.register('alice');
SELECT FROM tests.register('bob');
SELECT FROM api.create_or_get_session('rn-alice', tests.id_of('alice')::text);
SELECT FROM tests.guest_session('rn-g1', 'rn-guest');
SELECT FROM api.create_or_get_session('rn-open', NULL);
SELECT FROM unnest(ARRAY['rn-alice', 'rn-guest', 'rn-open']) AS s, tests.backdate(s);
SELECT set_config('rn.alice', tests.id_of('alice')::text, true), set_config('rn.bob', tests.id_of('bob')::text, true);

CREATE FUNCTION pg_temp.title(p_session_id text) RETURNS text LANGUAGE sql AS
$$ SELECT title FROM public.conversation_sessions WHERE session_id = p_session_id $$;
-- Everything of a session but its title, to show a rename touches nothing else.
CREATE FUNCTION pg_temp.rest(p_session_id text) RETURNS text LANGUAGE sql AS
$$ SELECT row(user_id, metadata, created_at, updated_at, owner_deleted_at)::text
     FROM public.conversation_sessions WHERE session_id = p_session_id $$;
CREATE TEMP TABLE before_rename ON COMMIT DROP AS
SELECT session_id, pg_temp.rest(session_id) AS rest FROM public.conversation_sessions WHERE session_id LIKE 'rn-%';

-- ---------------------------------------------------------------- the owner renames
SELECT is((api.rename_session('rn-alice', current_setting('rn.alice'), 'Refund question')).title, 'Refund question',
    'the owner gives the session a title, and gets the session row back');
SELECT is(pg_temp.title('rn-alice'), 'Refund question', 'the title is stored');
SELECT is(
    (SELECT s::text FROM api.rename_session('rn-alice', current_setting('rn.alice'), 'Refund question') AS s),
    (SELECT s::text FROM public.conversation_sessions AS s WHERE session_id = 'rn-alice'),
    'the returned row is the stored row');
SELECT is(pg_temp.rest('rn-alice'), (SELECT rest FROM before_rename WHERE session_id = 'rn-alice'),
    'nothing else changes: not the owner, not the metadata, not updated_at (renaming is not activity)');
SELECT is((api.rename_session('rn-alice', current_setting('rn.alice'), '  Billing, again  ')).title, 'Billing, again',
    'surrounding spaces are dropped');
SELECT is((api.rename_session('rn-alice', current_setting('rn.alice'), 'Ünïcödé ✓ 日本語')).title, 'Ünïcödé ✓ 日本語',
    'non-ASCII titles are stored exactly');
SELECT is((api.rename_session('rn-alice', current_setting('rn.alice'), repeat('é', 200))).title, repeat('é', 200),
    'a title of exactly 200 characters (not bytes) is accepted');
SELECT is((api.rename_session('rn-alice', current_setting('rn.alice'), '  ' || repeat('t', 200) || ' ')).title,
    repeat('t', 200), 'the limit applies to the title without its surrounding spaces');
SELECT is((api.rename_session('rn-alice', current_setting('rn.alice'), NULL)).title, NULL, 'NULL clears the title');
SELECT is(pg_temp.title('rn-alice'), NULL, 'the cleared title is stored as NULL');
SELECT FROM api.rename_session('rn-alice', current_setting('rn.alice'), 'Again');
SELECT is((api.rename_session('rn-alice', current_setting('rn.alice'), '')).title, NULL, 'an empty title clears it');
SELECT FROM api.rename_session('rn-alice', current_setting('rn.alice'), 'Again');
SELECT is((api.rename_session('rn-alice', current_setting('rn.alice'), '     ')).title, NULL, 'a spaces-only title clears it');
SELECT FROM api.rename_session('rn-alice', current_setting('rn.alice'), 'Refund question');

SELECT is((api.rename_session('rn-guest', 'rn-g1', 'Guest title')).title, 'Guest title', 'a guest renames its own session');
SELECT is((api.rename_session('rn-open', current_setting('rn.bob'), 'Open title')).title, 'Open title',
    'a session with no owner is open to whoever has its id: a user renames it');
SELECT is((api.rename_session('rn-open', NULL, 'Open title 2')).title, 'Open title 2', 'and so does no identity');
SELECT is((SELECT row(user_id, metadata)::text FROM public.conversation_sessions WHERE session_id = 'rn-open'),
    row(NULL::uuid, '{}'::jsonb)::text, 'renaming an open session does not make it anyone''s');

-- ---------------------------------------------------------------- others are refused, nothing changes
SELECT throws_ok($$SELECT api.rename_session('rn-alice', current_setting('rn.bob'), 'mine now')$$,
    '42501', 'session rn-alice belongs to someone else', 'another user gets 42501');
SELECT throws_ok($$SELECT api.rename_session('rn-alice', 'rn-g1', 'mine now')$$,
    '42501', 'session rn-alice belongs to someone else', 'a guest gets 42501 on a user''s session');
SELECT throws_ok($$SELECT api.rename_session('rn-alice', NULL, 'mine now')$$,
    '42501', 'session rn-alice belongs to someone else', 'no identity gets 42501 on a user''s session');
SELECT throws_ok($$SELECT api.rename_session('rn-guest', 'rn-g2', 'mine now')$$,
    '42501', 'session rn-guest belongs to someone else', 'another guest gets 42501');
SELECT throws_ok($$SELECT api.rename_session('rn-guest', current_setting('rn.alice'), 'mine now')$$,
    '42501', 'session rn-guest belongs to someone else', 'a user gets 42501 on a guest''s session');
SELECT throws_ok($$SELECT api.rename_session('rn-guest', 'anonymous', 'mine now')$$,
    '42501', 'session rn-guest belongs to someone else', '''anonymous'' gets 42501 on a guest''s session');
SELECT isnt(tests.hint_of($$SELECT api.rename_session('rn-guest', 'rn-g2', 'x')$$), NULL, 'the 42501 carries a HINT');
SELECT is(row(pg_temp.title('rn-alice'), pg_temp.title('rn-guest'))::text, row('Refund question', 'Guest title')::text,
    'refused calls changed no title');
SELECT is(
    (SELECT array_agg(b.rest = pg_temp.rest(b.session_id) ORDER BY b.session_id) FROM before_rename AS b),
    ARRAY[true, true, true], 'and nothing else of any session');

SELECT throws_ok($$SELECT api.rename_session('rn-nosuch', 'rn-g1', 'x')$$,
    'P0002', 'session rn-nosuch does not exist', 'an unknown session is P0002');
SELECT isnt(tests.hint_of($$SELECT api.rename_session('rn-nosuch', 'rn-g1', 'x')$$), NULL, 'the P0002 carries a HINT');
SELECT is((SELECT count(*)::integer FROM public.conversation_sessions WHERE session_id = 'rn-nosuch'), 0,
    'renaming an unknown session does not create it');

-- ---------------------------------------------------------------- invalid input
SELECT throws_ok($$SELECT api.rename_session('rn-guest', 'rn-g1', repeat('t', 201))$$,
    '22023', 'p_title: is 201 characters long; the limit is 200', 'a title of 201 characters is 22023 naming the field');
SELECT throws_ok($$SELECT api.rename_session('rn-guest', 'rn-g1', repeat('é', 201))$$,
    '22023', 'p_title: is 201 characters long; the limit is 200', 'characters are counted, not bytes');
SELECT throws_ok($$SELECT api.rename_session('rn-guest', 'rn-g1', E'Two\tcolumns')$$,
    '22023', 'p_title: contains control characters', 'a tab is refused');
SELECT throws_ok($$SELECT api.rename_session('rn-guest', 'rn-g1', E'Two\nlines')$$,
    '22023', 'p_title: contains control characters', 'a newline is refused');
SELECT throws_ok($$SELECT api.rename_session('rn-guest', 'rn-g1', E'Carriage\rreturn')$$,
    '22023', 'p_title: contains control characters', 'a carriage return is refused');
SELECT throws_ok($$SELECT api.rename_session('rn-guest', 'rn-g1', E'\n')$$,
    '22023', 'p_title: contains control characters', 'a newline alone is not blank: refused, not cleared');
SELECT throws_ok($$SELECT api.rename_session('rn-guest', 'rn-g1', E'bell\u0007 delete\u007f')$$,
    '22023', 'p_title: contains control characters', 'BEL and DEL are refused');
SELECT throws_ok($$SELECT api.rename_session('rn-guest', 'rn-g1', E'next\u0085line')$$,
    '22023', 'p_title: contains control characters', 'a C1 control (NEL) is refused');
SELECT throws_ok($$SELECT api.rename_session('rn-guest', 'rn-g1', E'line\u2028separator')$$,
    '22023', 'p_title: contains control characters', 'a Unicode line separator is refused');
SELECT is(tests.hint_of($$SELECT api.rename_session('rn-guest', 'rn-g1', E'a\tb')$$),
    'Use a title on one line, without tabs, newlines or other control characters.', 'the 22023 carries a HINT');
SELECT throws_ok($$SELECT api.rename_session(NULL, 'rn-g1', 'x')$$,
    '22023', 'p_session_id: is required', 'a NULL p_session_id is 22023 naming the field');
SELECT throws_ok($$SELECT api.rename_session('', 'rn-g1', 'x')$$,
    '22023', 'p_session_id: is empty', 'an empty p_session_id is 22023');
SELECT throws_ok($$SELECT api.rename_session(repeat('s', 256), 'rn-g1', 'x')$$,
    '22023', 'p_session_id: is 256 characters long; the limit is 255', 'a 256-character p_session_id is 22023');
SELECT throws_ok($$SELECT api.rename_session('rn-guest', '', 'x')$$,
    '22023', 'p_user_id: is empty', 'an empty p_user_id is 22023');
SELECT throws_ok($$SELECT api.rename_session('rn-alice', current_setting('rn.bob'), repeat('t', 201))$$,
    '22023', 'p_title: is 201 characters long; the limit is 200',
    'bad input is refused before ownership is looked at');
SELECT is(row(pg_temp.title('rn-alice'), pg_temp.title('rn-guest'))::text, row('Refund question', 'Guest title')::text,
    'invalid calls changed no title');

-- ---------------------------------------------------------------- the title goes with a claim; a deleted user's session is nobody's
SELECT FROM tests.register('carol', 'rn-g1');
SELECT is(pg_temp.title('rn-guest'), 'Guest title', 'a title the guest gave survives the claim');
SELECT throws_ok($$SELECT api.rename_session('rn-guest', 'rn-g1', 'still mine?')$$,
    '42501', 'session rn-guest belongs to someone else', 'after the claim the guest may no longer rename it');
SELECT is((api.rename_session('rn-guest', tests.id_of('carol')::text, 'Carol''s now')).title, 'Carol''s now',
    'the user who claimed it may');
SELECT FROM api.create_or_get_session('rn-bob', current_setting('rn.bob'));
DELETE FROM public.users WHERE id = tests.id_of('bob');
SELECT throws_ok($$SELECT api.rename_session('rn-bob', NULL, 'x')$$,
    '42501', 'session rn-bob belongs to someone else', 'no one may rename a deleted user''s session');

SELECT * FROM finish();
ROLLBACK;
