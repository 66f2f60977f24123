-- api.logout: revokes an access token and its refresh token; true only when a live token was revoked.
BEGIN;
SELECT plan(23);
SELECT tests.fast_hashing();

CREATE TEMP TABLE tok ON COMMIT DROP AS SELECT 'reg'::text AS label, r.token, r.refresh_token FROM tests.register('alice') AS r;
INSERT INTO tok SELECT 'one', l.token, l.refresh_token FROM tests.login('alice') AS l;
INSERT INTO tok SELECT 'two', l.token, l.refresh_token FROM tests.login('alice') AS l;
CREATE FUNCTION pg_temp.access(p_label text) RETURNS text LANGUAGE sql AS $$ SELECT token FROM tok WHERE label = p_label $$;
CREATE FUNCTION pg_temp.refresh(p_label text) RETURNS text LANGUAGE sql AS $$ SELECT refresh_token FROM tok WHERE label = p_label $$;

SELECT is(api.logout(pg_temp.access('one')), true, 'logout of a live access token returns true');
SELECT is(api.authenticate(pg_temp.access('one')), NULL::uuid, 'the access token no longer authenticates');
SELECT is(
    row((tests.token_row(pg_temp.access('one'))).revoked_at, (tests.token_row(pg_temp.refresh('one'))).revoked_at)::text,
    row(now(), now())::text,
    'the access token and the refresh token issued with it are revoked');
SELECT throws_ok($$SELECT * FROM api.refresh(pg_temp.refresh('one'))$$,
    '28000', 'refresh token is unknown, expired or revoked', 'the refresh token of the logged-out pair is refused');
SELECT is(api.logout(pg_temp.access('one')), false, 'logging out again returns false');

SELECT is(api.authenticate(pg_temp.access('two')), tests.id_of('alice'), 'another login of the same user stays valid');
SELECT is((tests.token_row(pg_temp.refresh('two'))).revoked_at, NULL::timestamptz, 'and so does its refresh token');
SELECT is(api.authenticate(pg_temp.access('reg')), tests.id_of('alice'), 'the registration''s token stays valid');

SELECT is(api.logout(NULL), false, 'NULL returns false');
SELECT is(api.logout(''), false, 'an empty token returns false');
SELECT is(api.logout('not-a-token'), false, 'garbage returns false');
SELECT is(api.logout(encode(gen_random_bytes(32), 'hex')), false, 'an unknown token returns false');
SELECT lives_ok($$SELECT api.logout(repeat('x', 1000000))$$, 'a 1 MB string does not raise');

SELECT is(api.logout(pg_temp.refresh('two')), false, 'a refresh token is not an access token: false');
SELECT is(api.authenticate(pg_temp.access('two')), tests.id_of('alice'), 'presenting the refresh token revoked nothing');

-- After a rotation, logout of the new access token revokes the new pair.
INSERT INTO tok SELECT 'rot', f.token, f.refresh_token FROM api.refresh(pg_temp.refresh('two')) AS f;
SELECT is(api.logout(pg_temp.access('rot')), true, 'logout of a rotated access token returns true');
SELECT throws_ok($$SELECT * FROM api.refresh(pg_temp.refresh('rot'))$$,
    '28000', 'refresh token is unknown, expired or revoked', 'the rotated pair''s refresh token is revoked');

UPDATE public.auth_tokens SET revoked_at = now() - interval '1 minute'
 WHERE token_hash = sha256(convert_to(pg_temp.access('reg'), 'UTF8'));
SELECT is(api.logout(pg_temp.access('reg')), false, 'an already revoked token returns false');
SELECT is((tests.token_row(pg_temp.access('reg'))).revoked_at, now() - interval '1 minute',
    'logging out a revoked token does not touch its revocation time');

-- An expired access token still logs out: its refresh token must not live on.
INSERT INTO tok SELECT 'exp', l.token, l.refresh_token
  FROM api.login('alice@example.test', 'correct horse') AS l;
SELECT tests.expire_token(pg_temp.access('exp'));
SELECT is(api.authenticate(pg_temp.access('exp')), NULL::uuid, 'the expired access token no longer authenticates');
SELECT is(api.logout(pg_temp.access('exp')), true, 'logout of an expired access token revokes its live refresh token');
SELECT throws_ok(format('SELECT * FROM api.refresh(%L)', pg_temp.refresh('exp')),
    '28000', 'refresh token is unknown, expired or revoked', 'the expired token''s refresh token is revoked');

SELECT function_returns('api', 'logout', ARRAY['text'], 'boolean', 'api.logout(text) returns boolean');

SELECT * FROM finish();
ROLLBACK;
