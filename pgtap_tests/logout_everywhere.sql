-- api.logout_everywhere: every token family of the token's user revoked, its own included; a count of
-- the families that were live; other users untouched; a bad token is 28000 and changes nothing.
BEGIN;
SELECT plan(16);
SELECT tests.fast_hashing();

CREATE TEMP TABLE tok ON COMMIT DROP AS
SELECT 'reg'::text AS label, r.token, r.refresh_token FROM tests.register('le-ada') AS r;
INSERT INTO tok SELECT 'a', l.token, l.refresh_token FROM tests.login('le-ada') AS l;
INSERT INTO tok SELECT 'b', l.token, l.refresh_token FROM tests.login('le-ada') AS l;
INSERT INTO tok SELECT 'exp', l.token, l.refresh_token FROM tests.login('le-ada') AS l;
INSERT INTO tok SELECT 'dead', l.token, l.refresh_token FROM tests.login('le-ada') AS l;
INSERT INTO tok SELECT 'bea', r.token, r.refresh_token FROM tests.register('le-bea') AS r;
CREATE FUNCTION pg_temp.access(p_label text) RETURNS text LANGUAGE sql AS $$ SELECT token FROM tok WHERE label = p_label $$;
CREATE FUNCTION pg_temp.refresh(p_label text) RETURNS text LANGUAGE sql AS $$ SELECT refresh_token FROM tok WHERE label = p_label $$;
CREATE FUNCTION pg_temp.tokens() RETURNS text LANGUAGE sql AS
$$ SELECT string_agg(t::text, ',' ORDER BY t.token_hash) FROM public.auth_tokens AS t $$;
-- One login whose access token expired (its refresh token lives on).
SELECT tests.expire_token(pg_temp.access('exp'));
-- One login already logged out: not live, not counted.
SELECT FROM api.logout(pg_temp.access('dead'));
-- One login rotated once: its family holds a spent and a live pair.
INSERT INTO tok SELECT 'b2', f.token, f.refresh_token FROM api.refresh(pg_temp.refresh('b')) AS f;

SELECT function_returns('api', 'logout_everywhere', ARRAY['text'], 'integer',
    'api.logout_everywhere(text) returns integer');

-- ---------------------------------------------------------------- refusals change nothing
CREATE TEMP TABLE before ON COMMIT DROP AS SELECT pg_temp.tokens() AS tokens;
SELECT throws_ok($$SELECT api.logout_everywhere(NULL)$$, '28000', 'access token is missing, invalid, expired or revoked',
    'a NULL token is 28000');
SELECT throws_ok($$SELECT api.logout_everywhere('not-a-token')$$, '28000', NULL, 'a garbage token is 28000');
SELECT throws_ok(format('SELECT api.logout_everywhere(%L)', pg_temp.refresh('a')), '28000', NULL,
    'a refresh token is not an access token: 28000');
SELECT throws_ok(format('SELECT api.logout_everywhere(%L)', pg_temp.access('dead')), '28000', NULL,
    'a revoked access token is 28000');
SELECT throws_ok(format('SELECT api.logout_everywhere(%L)', pg_temp.access('exp')), '28000', NULL,
    'an expired access token is 28000');
SELECT is(pg_temp.tokens(), (SELECT tokens FROM before), 'the refusals changed no token');

-- ---------------------------------------------------------------- happy path
SELECT is(api.logout_everywhere(pg_temp.access('a')), 4,
    'four live families are revoked: the registration''s and three logins (the one logged out already does not count)');
SELECT is(
    (SELECT count(*)::integer FROM public.auth_tokens WHERE user_id = tests.id_of('le-ada') AND revoked_at IS NULL), 0,
    'no token of the user is left unrevoked');
SELECT is(api.authenticate(pg_temp.access('a')), NULL::uuid, 'the calling token is revoked too');
SELECT is(ARRAY[api.authenticate(pg_temp.access('reg')), api.authenticate(pg_temp.access('b2'))],
    ARRAY[NULL, NULL]::uuid[], 'so are the other logins'' access tokens, rotated or not');
SELECT throws_ok(format('SELECT * FROM api.refresh(%L)', pg_temp.refresh('b2')),
    '28000', 'refresh token is unknown, expired or revoked', 'and their refresh tokens');
SELECT throws_ok(format('SELECT * FROM api.refresh(%L)', pg_temp.refresh('exp')),
    '28000', 'refresh token is unknown, expired or revoked', 'the refresh token of a login whose access token expired too');
SELECT is(api.authenticate(pg_temp.access('bea')), tests.id_of('le-bea'), 'another user stays logged in');
SELECT throws_ok(format('SELECT api.logout_everywhere(%L)', pg_temp.access('a')), '28000', NULL,
    'a second call with the revoked token is 28000');
SELECT lives_ok($$SELECT * FROM api.login('le-ada@example.test', 'correct horse')$$,
    'the user can log in again afterwards');

SELECT * FROM finish();
ROLLBACK;
