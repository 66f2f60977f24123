-- api.authenticate: the user of a live access token, NULL for anything else, never an error.
BEGIN;
SELECT plan(20);
SELECT tests.fast_hashing();

CREATE TEMP TABLE tok ON COMMIT DROP AS SELECT 'alice'::text AS persona, r.* FROM tests.register('alice') AS r;
INSERT INTO tok SELECT 'bob', r.* FROM tests.register('bob') AS r;
CREATE FUNCTION pg_temp.access(p_persona text) RETURNS text LANGUAGE sql AS $$ SELECT token FROM tok WHERE persona = p_persona $$;
CREATE FUNCTION pg_temp.refresh(p_persona text) RETURNS text LANGUAGE sql AS $$ SELECT refresh_token FROM tok WHERE persona = p_persona $$;

SELECT function_returns('api', 'authenticate', ARRAY['text'], 'uuid', 'api.authenticate(text) returns uuid');
SELECT is(api.authenticate(pg_temp.access('alice')), tests.id_of('alice'), 'a valid access token gives its user''s id');
SELECT is(api.authenticate(pg_temp.access('bob')), tests.id_of('bob'), 'each token gives its own user');
SELECT is(api.authenticate(NULL), NULL::uuid, 'NULL gives NULL');
SELECT is(api.authenticate(''), NULL::uuid, 'an empty token gives NULL');
SELECT is(api.authenticate('not-a-token'), NULL::uuid, 'garbage gives NULL');
SELECT is(api.authenticate(encode(gen_random_bytes(32), 'hex')), NULL::uuid, 'an unknown well-formed token gives NULL');
SELECT is(api.authenticate(upper(pg_temp.access('alice'))), NULL::uuid, 'tokens are compared exactly');
SELECT is(api.authenticate(pg_temp.access('alice') || ' '), NULL::uuid, 'a token with a trailing space is another token');
SELECT is(api.authenticate(pg_temp.refresh('alice')), NULL::uuid, 'a refresh token is not an access token');
SELECT lives_ok($$SELECT api.authenticate(repeat('x', 1000000))$$, 'a 1 MB string does not raise');
SELECT lives_ok($$SELECT api.authenticate(E'\u0001\t\n' || '''; DROP TABLE users; --')$$,
    'control characters and quotes do not raise');

UPDATE public.auth_tokens SET expires_at = now() + interval '1 second'
 WHERE token_hash = sha256(convert_to(pg_temp.access('alice'), 'UTF8'));
SELECT is(api.authenticate(pg_temp.access('alice')), tests.id_of('alice'), 'a token expiring in one second is still valid');
UPDATE public.auth_tokens SET expires_at = now()
 WHERE token_hash = sha256(convert_to(pg_temp.access('alice'), 'UTF8'));
SELECT is(api.authenticate(pg_temp.access('alice')), NULL::uuid, 'a token expiring right now is no longer valid');
SELECT FROM tests.expire_token(pg_temp.access('alice'));
SELECT is(api.authenticate(pg_temp.access('alice')), NULL::uuid, 'an expired token gives NULL');
SELECT is(api.authenticate(pg_temp.access('bob')), tests.id_of('bob'), 'another user''s token is unaffected');

SELECT ok(api.logout(pg_temp.access('bob')), 'bob logs out');
SELECT is(api.authenticate(pg_temp.access('bob')), NULL::uuid, 'a revoked (logged out) token gives NULL');

INSERT INTO tok SELECT 'carol', r.* FROM tests.register('carol') AS r;
SELECT is(api.authenticate(pg_temp.access('carol')), tests.id_of('carol'), 'carol''s token is valid');
DELETE FROM public.users WHERE id = tests.id_of('carol');
SELECT is(api.authenticate(pg_temp.access('carol')), NULL::uuid, 'the token of a deleted user gives NULL');

SELECT * FROM finish();
ROLLBACK;
