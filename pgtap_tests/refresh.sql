-- api.refresh: rotation within a token family, and refusal (28000) of anything but a live, unspent refresh token.
-- Reuse revokes the family in a transaction of its own (over dblink), which
-- cannot see this file's uncommitted tokens: that the revocation survives the
-- error is tested in tests/test_sql_api.py.
BEGIN;
SELECT plan(31);
SELECT tests.fast_hashing();

CREATE TEMP TABLE tok ON COMMIT DROP AS
SELECT 'r0'::text AS label, r.token, r.refresh_token, NULL::timestamptz AS expires_at FROM tests.register('alice') AS r;
CREATE FUNCTION pg_temp.access(p_label text) RETURNS text LANGUAGE sql AS $$ SELECT token FROM tok WHERE label = p_label $$;
CREATE FUNCTION pg_temp.refresh(p_label text) RETURNS text LANGUAGE sql AS $$ SELECT refresh_token FROM tok WHERE label = p_label $$;

-- ---------------------------------------------------------------- rotation
SELECT lives_ok(
    $$INSERT INTO tok SELECT 'r1', f.* FROM api.refresh(pg_temp.refresh('r0')) AS f$$,
    'a fresh refresh token is exchanged');
SELECT is((SELECT expires_at FROM tok WHERE label = 'r1'), now() + interval '1 hour',
    'refresh returns expires_at of the new access token (1 hour by default)');
SELECT is((tests.token_row(pg_temp.access('r1'))).expires_at, now() + interval '1 hour',
    'the new access token is stored by its SHA-256 with that expiry');
SELECT is(api.authenticate(pg_temp.access('r1')), tests.id_of('alice'), 'the new access token authenticates the user');
SELECT matches(pg_temp.refresh('r1'), '^[0-9a-f]{64}$', 'the new refresh token is 32 random bytes in hex');
SELECT isnt(pg_temp.access('r1'), pg_temp.access('r0'), 'the access token is new');
SELECT isnt(pg_temp.refresh('r1'), pg_temp.refresh('r0'), 'the refresh token is new');
SELECT is((tests.token_row(pg_temp.refresh('r1'))).expires_at, now() + interval '30 days',
    'the new refresh token lives 30 days by default');
SELECT is((tests.token_row(pg_temp.refresh('r1'))).family_id, (tests.token_row(pg_temp.refresh('r0'))).family_id,
    'the new tokens stay in the login''s family');
SELECT is((tests.token_row(pg_temp.refresh('r1'))).pair_id, (tests.token_row(pg_temp.access('r1'))).pair_id,
    'the new access and refresh token are one pair');
SELECT is((tests.token_row(pg_temp.refresh('r0'))).used_at, now(), 'the presented refresh token is marked spent');

-- The old refresh token stops working: presenting it again is reuse.
SELECT throws_ok($$SELECT * FROM api.refresh(pg_temp.refresh('r0'))$$,
    '28000', 'refresh token was already used; every token of this login is now revoked',
    'a spent refresh token is 28000');
SELECT lives_ok(
    $$INSERT INTO tok SELECT 'r2', f.* FROM api.refresh(pg_temp.refresh('r1')) AS f$$,
    'the rotated refresh token is itself exchanged');
SELECT is(api.authenticate(pg_temp.access('r2')), tests.id_of('alice'), 'the second rotation''s access token authenticates');
SELECT throws_ok($$SELECT * FROM api.refresh(pg_temp.refresh('r1'))$$,
    '28000', 'refresh token was already used; every token of this login is now revoked',
    'the token spent by the second rotation is refused on reuse too');
SELECT isnt(tests.hint_of(format('SELECT * FROM api.refresh(%L)', pg_temp.refresh('r0'))), NULL,
    'the reuse 28000 carries a HINT');

-- ---------------------------------------------------------------- unknown, wrong kind, expired, revoked
SELECT throws_ok($$SELECT * FROM api.refresh('not-a-token')$$,
    '28000', 'refresh token is unknown, expired or revoked', 'garbage is 28000');
SELECT throws_ok($$SELECT * FROM api.refresh(encode(gen_random_bytes(32), 'hex'))$$,
    '28000', 'refresh token is unknown, expired or revoked', 'an unknown token is 28000');
SELECT throws_ok($$SELECT * FROM api.refresh(pg_temp.access('r1'))$$,
    '28000', 'refresh token is unknown, expired or revoked', 'an access token is not a refresh token: 28000');
SELECT is(api.authenticate(pg_temp.access('r1')), tests.id_of('alice'),
    'presenting an access token to refresh does not spend or revoke it');

INSERT INTO tok SELECT 'exp', l.token, l.refresh_token, NULL FROM tests.login('alice') AS l;
SELECT FROM tests.expire_token(pg_temp.refresh('exp'));
SELECT throws_ok($$SELECT * FROM api.refresh(pg_temp.refresh('exp'))$$,
    '28000', 'refresh token is unknown, expired or revoked', 'an expired refresh token is 28000');
SELECT is((tests.token_row(pg_temp.refresh('exp'))).used_at, NULL::timestamptz, 'a refused refresh spends nothing');

INSERT INTO tok SELECT 'out', l.token, l.refresh_token, NULL FROM tests.login('alice') AS l;
SELECT ok(api.logout(pg_temp.access('out')), 'alice logs out of one login');
SELECT throws_ok($$SELECT * FROM api.refresh(pg_temp.refresh('out'))$$,
    '28000', 'refresh token is unknown, expired or revoked', 'the refresh token of a logged-out pair is 28000');

INSERT INTO tok SELECT 'rev', l.token, l.refresh_token, NULL FROM tests.login('alice') AS l;
UPDATE public.auth_tokens SET revoked_at = now() WHERE token_hash = sha256(convert_to(pg_temp.refresh('rev'), 'UTF8'));
SELECT throws_ok($$SELECT * FROM api.refresh(pg_temp.refresh('rev'))$$,
    '28000', 'refresh token is unknown, expired or revoked', 'a revoked refresh token is 28000');
SELECT isnt(tests.hint_of($$SELECT * FROM api.refresh('not-a-token')$$), NULL, 'the 28000 carries a HINT');

-- ---------------------------------------------------------------- invalid input
SELECT throws_ok($$SELECT * FROM api.refresh(NULL)$$,
    '22023', 'p_refresh_token: is required', 'NULL p_refresh_token is 22023 naming the field');
SELECT throws_ok($$SELECT * FROM api.refresh('')$$,
    '22023', 'p_refresh_token: is required', 'empty p_refresh_token is 22023 naming the field');

-- ---------------------------------------------------------------- lifetimes from settings
INSERT INTO tok SELECT 'ttl', l.token, l.refresh_token, NULL FROM tests.login('alice') AS l;
UPDATE public.chatmem_settings SET access_token_ttl = '7 minutes', refresh_token_ttl = '4 days';
SELECT lives_ok(
    $$INSERT INTO tok SELECT 'ttl2', f.* FROM api.refresh(pg_temp.refresh('ttl')) AS f$$,
    'refresh after the lifetimes changed');
SELECT is(
    row((tests.token_row(pg_temp.access('ttl2'))).expires_at, (tests.token_row(pg_temp.refresh('ttl2'))).expires_at)::text,
    row(now() + interval '7 minutes', now() + interval '4 days')::text,
    'rotated token lifetimes come from the settings');
SELECT is((SELECT expires_at FROM tok WHERE label = 'ttl2'), now() + interval '7 minutes',
    'the returned expires_at follows the settings');

SELECT * FROM finish();
ROLLBACK;
