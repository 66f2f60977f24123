-- api.reset_password: a reset token is consumed once; the password is set, every token family revoked,
-- the throttle cleared; a refused call changes nothing and leaves the token usable.
BEGIN;
SELECT plan(29);
SELECT tests.fast_hashing();

-- A failed login is counted in a transaction of its own and survives this
-- file's rollback: forget earlier runs' (for this transaction only).
DELETE FROM public.login_failures WHERE email LIKE 'rp-%@example.test';
CREATE FUNCTION pg_temp.state(p_user uuid) RETURNS text LANGUAGE sql AS $$
    SELECT concat_ws(' | ',
        (SELECT u::text FROM public.users AS u WHERE u.id = p_user),
        (SELECT string_agg(t::text, ',' ORDER BY t.token_hash) FROM public.auth_tokens AS t WHERE t.user_id = p_user),
        (SELECT string_agg(r::text, ',' ORDER BY r.id) FROM public.password_reset_tokens AS r WHERE r.user_id = p_user))
$$;
CREATE TEMP TABLE tok ON COMMIT DROP AS
SELECT 'reg'::text AS label, r.token, r.refresh_token FROM tests.register('rp-ada') AS r;
INSERT INTO tok SELECT 'a', l.token, l.refresh_token FROM tests.login('rp-ada') AS l;
INSERT INTO tok SELECT 'b', l.token, l.refresh_token FROM tests.login('rp-ada') AS l;
INSERT INTO tok SELECT 'bea', r.token, r.refresh_token FROM tests.register('rp-bea') AS r;
INSERT INTO tok SELECT 'r1', api.request_password_reset('rp-ada@example.test'), NULL;
INSERT INTO tok SELECT 'r2', api.request_password_reset('rp-ada@example.test'), NULL;
INSERT INTO tok SELECT 'bea-r', api.request_password_reset('rp-bea@example.test'), NULL;
INSERT INTO tok SELECT 'nobody', api.request_password_reset('rp-nobody@example.test'), NULL;
CREATE FUNCTION pg_temp.t(p_label text) RETURNS text LANGUAGE sql AS $$ SELECT token FROM tok WHERE label = p_label $$;
CREATE FUNCTION pg_temp.refresh(p_label text) RETURNS text LANGUAGE sql AS $$ SELECT refresh_token FROM tok WHERE label = p_label $$;
CREATE TEMP TABLE before ON COMMIT DROP AS SELECT pg_temp.state(tests.id_of('rp-ada')) AS state;

SELECT function_returns('api', 'reset_password', ARRAY['text', 'text'], 'uuid', 'api.reset_password(text, text) returns uuid');

-- ---------------------------------------------------------------- refusals: each changes nothing
SELECT throws_ok($$SELECT api.reset_password(NULL, 'reset horse one')$$,
    '28000', 'reset token is unknown, expired or already used', 'a NULL reset token is 28000');
SELECT throws_ok($$SELECT api.reset_password('', 'reset horse one')$$,
    '28000', 'reset token is unknown, expired or already used', 'an empty reset token is 28000');
SELECT throws_ok($$SELECT api.reset_password(encode(gen_random_bytes(32), 'hex'), 'reset horse one')$$,
    '28000', 'reset token is unknown, expired or already used', 'an unknown reset token is 28000');
SELECT throws_ok(format('SELECT api.reset_password(%L, %L)', pg_temp.t('a'), 'reset horse one'),
    '28000', 'reset token is unknown, expired or already used', 'an access token is no reset token: 28000');
SELECT throws_ok(format('SELECT api.reset_password(%L, %L)', pg_temp.t('nobody'), 'reset horse one'),
    '28000', 'reset token is unknown, expired or already used', 'a token asked for an email with no account is 28000');
SELECT isnt(tests.hint_of($$SELECT api.reset_password(NULL, 'reset horse one')$$), NULL, 'the 28000 carries a HINT');
SELECT throws_ok(format('SELECT api.reset_password(%L, %L)', pg_temp.t('r1'), 'short'),
    '22023', 'p_new_password: is shorter than 8 characters', 'a new password under the minimum is 22023');
SELECT throws_ok(format('SELECT api.reset_password(%L, NULL)', pg_temp.t('r1')),
    '22023', 'p_new_password: is required', 'a NULL new password is 22023');
SELECT throws_ok(format('SELECT api.reset_password(%L, %L)', pg_temp.t('r1'), repeat('é', 37)),
    '22023', 'p_new_password: is 74 bytes long; the limit is 72 bytes', 'a new password over 72 bytes is 22023');
UPDATE public.password_reset_tokens SET expires_at = now() - interval '1 second'
 WHERE token_hash = sha256(convert_to(pg_temp.t('r2'), 'UTF8'));
SELECT throws_ok(format('SELECT api.reset_password(%L, %L)', pg_temp.t('r2'), 'reset horse one'),
    '28000', 'reset token is unknown, expired or already used', 'an expired reset token is 28000');
UPDATE public.password_reset_tokens SET expires_at = now() + interval '30 minutes'
 WHERE token_hash = sha256(convert_to(pg_temp.t('r2'), 'UTF8'));
SELECT is(pg_temp.state(tests.id_of('rp-ada')), (SELECT state FROM before),
    'after every refusal the password, the tokens and the reset tokens are as they were (the token refused for a bad password is still there)');

-- ---------------------------------------------------------------- happy path
INSERT INTO public.login_failures (email) SELECT 'rp-ada@example.test' FROM generate_series(1, 5);
SELECT throws_ok($$SELECT * FROM api.login('rp-ada@example.test', 'correct horse')$$, 'CM001', NULL,
    'the account is throttled before the reset');
SELECT is(api.reset_password(pg_temp.t('r1'), 'reset horse one'), tests.id_of('rp-ada'), 'the reset returns the user id');
SELECT ok(chatmem_internal.check_password('reset horse one', (SELECT password_hash FROM public.users WHERE id = tests.id_of('rp-ada'))),
    'the new password is stored');
SELECT matches((SELECT password_hash FROM public.users WHERE id = tests.id_of('rp-ada')), '^\$2a\$04\$',
    'as bcrypt at the current cost');
SELECT is((SELECT updated_at FROM public.users WHERE id = tests.id_of('rp-ada')), now(), 'updated_at is bumped');
SELECT is(
    (SELECT count(*)::integer FROM public.auth_tokens WHERE user_id = tests.id_of('rp-ada') AND revoked_at IS NULL), 0,
    'every token of the user is revoked');
SELECT is(ARRAY[api.authenticate(pg_temp.t('reg')), api.authenticate(pg_temp.t('a')), api.authenticate(pg_temp.t('b'))],
    ARRAY[NULL, NULL, NULL]::uuid[], 'no access token of any of its logins authenticates');
SELECT throws_ok(format('SELECT * FROM api.refresh(%L)', pg_temp.refresh('a')),
    '28000', 'refresh token is unknown, expired or revoked', 'no refresh token of its logins refreshes');
SELECT is((SELECT count(*)::integer FROM public.login_failures WHERE email = 'rp-ada@example.test'), 0,
    'the failed-login count of the account is cleared');
SELECT is((SELECT count(*)::integer FROM public.password_reset_tokens WHERE user_id = tests.id_of('rp-ada')), 0,
    'the token is consumed, and the account''s other reset tokens with it');
SELECT throws_ok(format('SELECT api.reset_password(%L, %L)', pg_temp.t('r1'), 'reset horse two'),
    '28000', 'reset token is unknown, expired or already used', 'a second use is 28000');
SELECT throws_ok(format('SELECT api.reset_password(%L, %L)', pg_temp.t('r2'), 'reset horse two'),
    '28000', 'reset token is unknown, expired or already used', 'the other reset token is spent too');
SELECT throws_ok($$SELECT * FROM api.login('rp-ada@example.test', 'correct horse')$$, '28P01', NULL,
    'the old password no longer logs in');
SELECT lives_ok($$SELECT * FROM api.login('rp-ada@example.test', 'reset horse one')$$, 'the new one does');
SELECT is(
    row(api.authenticate(pg_temp.t('bea')), (SELECT count(*)::integer FROM public.password_reset_tokens
                                               WHERE user_id = tests.id_of('rp-bea')))::text,
    row(tests.id_of('rp-bea'), 1)::text, 'another user''s tokens and reset token are untouched');

-- ---------------------------------------------------------------- an account without a password gets one
SELECT FROM api.link_identity('https://idp.example', 'rp-ida-sub', 'rp-ida@example.test', 'Ida');
SELECT is(api.reset_password(api.request_password_reset('rp-ida@example.test'), 'ida horse one'),
    (SELECT id FROM public.users WHERE email = 'rp-ida@example.test'),
    'an account made through an identity provider can reset (set) a password');
SELECT lives_ok($$SELECT * FROM api.login('rp-ida@example.test', 'ida horse one')$$, 'and then log in with it');

SELECT * FROM finish();
ROLLBACK;
