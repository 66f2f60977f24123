-- api.require_user: the user of a live access token, 28000 for anything else.
BEGIN;
SELECT plan(12);
SELECT tests.fast_hashing();

CREATE TEMP TABLE tok ON COMMIT DROP AS SELECT 'alice'::text AS persona, r.* FROM tests.register('alice') AS r;
CREATE FUNCTION pg_temp.access(p_persona text) RETURNS text LANGUAGE sql AS $$ SELECT token FROM tok WHERE persona = p_persona $$;
CREATE FUNCTION pg_temp.refresh(p_persona text) RETURNS text LANGUAGE sql AS $$ SELECT refresh_token FROM tok WHERE persona = p_persona $$;

SELECT function_returns('api', 'require_user', ARRAY['text'], 'uuid', 'api.require_user(text) returns uuid');
SELECT is(api.require_user(pg_temp.access('alice')), tests.id_of('alice'), 'a live access token gives its user''s id');
SELECT throws_ok($$SELECT api.require_user(NULL)$$, '28000',
    'access token is missing, invalid, expired or revoked', 'NULL is refused with 28000');
SELECT throws_ok($$SELECT api.require_user('')$$, '28000', NULL, 'an empty token is refused');
SELECT throws_ok($$SELECT api.require_user('not-a-token')$$, '28000', NULL, 'garbage is refused');
SELECT throws_ok(format('SELECT api.require_user(%L)', pg_temp.refresh('alice')), '28000', NULL,
    'a refresh token is not an access token');
SELECT is(tests.hint_of('SELECT api.require_user(NULL)'),
    'Log in again, or exchange your refresh token with api.refresh.', 'the refusal says what to do');

-- Acting as the token's user in one statement, as a front end does.
SELECT FROM api.create_or_get_session('ru-a1', tests.id_of('alice')::text);
SELECT results_eq(
    format('SELECT session_id::text FROM api.list_sessions(api.require_user(%L)::text)', pg_temp.access('alice')),
    ARRAY['ru-a1'], 'api.list_sessions(api.require_user(token)::text) lists the token user''s sessions');

SELECT tests.expire_token(pg_temp.access('alice'));
SELECT throws_ok(format('SELECT api.require_user(%L)', pg_temp.access('alice')), '28000', NULL,
    'an expired token is refused');
SELECT throws_ok(
    format('SELECT * FROM api.list_sessions(api.require_user(%L)::text)', pg_temp.access('alice')),
    '28000', NULL, 'and the one-statement call is refused with it, listing nothing');

INSERT INTO tok SELECT 'alice2', l.user_id, l.token, l.refresh_token, l.migrated_sessions FROM tests.login('alice') AS l;
SELECT ok(api.logout(pg_temp.access('alice2')), 'a second login logs out');
SELECT throws_ok(format('SELECT api.require_user(%L)', pg_temp.access('alice2')), '28000', NULL,
    'a revoked token is refused');

SELECT * FROM finish();
ROLLBACK;
