-- api.change_password: the current password checked (and counted by the login throttle), the new one
-- by registration's rules, every other token family revoked, the caller's kept; each refusal changes nothing.
BEGIN;
SELECT plan(40);
SELECT tests.fast_hashing();

-- Failed checks are counted in a transaction of their own (they survive this
-- file's rollback), so every run uses emails of its own.
SELECT FROM set_config('tests.run', substr(md5(random()::text || clock_timestamp()::text), 1, 10), true);
CREATE FUNCTION pg_temp.persona(p_name text) RETURNS text LANGUAGE sql AS
$$ SELECT 'cp-' || p_name || '-' || current_setting('tests.run') $$;
CREATE FUNCTION pg_temp.email(p_name text) RETURNS text LANGUAGE sql AS
$$ SELECT pg_temp.persona(p_name) || '@example.test' $$;
-- Everything stored about an account: a refusal must leave it as it was.
CREATE FUNCTION pg_temp.state(p_user uuid) RETURNS text LANGUAGE sql AS $$
    SELECT concat_ws(' | ',
        (SELECT u::text FROM public.users AS u WHERE u.id = p_user),
        (SELECT string_agg(t::text, ',' ORDER BY t.token_hash) FROM public.auth_tokens AS t WHERE t.user_id = p_user),
        (SELECT string_agg(r::text, ',' ORDER BY r.id) FROM public.password_reset_tokens AS r WHERE r.user_id = p_user))
$$;

CREATE TEMP TABLE tok ON COMMIT DROP AS
SELECT 'reg'::text AS label, r.token, r.refresh_token FROM tests.register(pg_temp.persona('ada')) AS r;
INSERT INTO tok SELECT 'a', l.token, l.refresh_token FROM tests.login(pg_temp.persona('ada')) AS l;
INSERT INTO tok SELECT 'b', l.token, l.refresh_token FROM tests.login(pg_temp.persona('ada')) AS l;
INSERT INTO tok SELECT 'bea', r.token, r.refresh_token FROM tests.register(pg_temp.persona('bea')) AS r;
CREATE FUNCTION pg_temp.access(p_label text) RETURNS text LANGUAGE sql AS $$ SELECT token FROM tok WHERE label = p_label $$;
CREATE FUNCTION pg_temp.refresh(p_label text) RETURNS text LANGUAGE sql AS $$ SELECT refresh_token FROM tok WHERE label = p_label $$;
CREATE FUNCTION pg_temp.ada() RETURNS uuid LANGUAGE sql AS $$ SELECT tests.id_of(pg_temp.persona('ada')) $$;
CREATE FUNCTION pg_temp.failures() RETURNS integer LANGUAGE sql AS
$$ SELECT count(*)::integer FROM public.login_failures WHERE email = pg_temp.email('ada') $$;
SELECT FROM api.request_password_reset(pg_temp.email('ada'));

SELECT function_returns('api', 'change_password', ARRAY['text', 'text', 'text'], 'boolean',
    'api.change_password(text, text, text) returns boolean');

-- ---------------------------------------------------------------- refusals: each changes nothing
CREATE TEMP TABLE before ON COMMIT DROP AS SELECT pg_temp.state(pg_temp.ada()) AS state;

SELECT throws_ok($$SELECT api.change_password(NULL, 'correct horse', 'new horse one')$$,
    '28000', 'access token is missing, invalid, expired or revoked', 'a NULL token is 28000');
SELECT throws_ok($$SELECT api.change_password('not-a-token', 'correct horse', 'new horse one')$$,
    '28000', 'access token is missing, invalid, expired or revoked', 'a garbage token is 28000');
SELECT throws_ok(format('SELECT api.change_password(%L, %L, %L)', pg_temp.refresh('a'), 'correct horse', 'new horse one'),
    '28000', 'access token is missing, invalid, expired or revoked', 'a refresh token is not an access token: 28000');
INSERT INTO tok SELECT 'exp', l.token, l.refresh_token FROM tests.login(pg_temp.persona('ada')) AS l;
SELECT tests.expire_token(pg_temp.access('exp'));
SELECT throws_ok(format('SELECT api.change_password(%L, %L, %L)', pg_temp.access('exp'), 'correct horse', 'new horse one'),
    '28000', 'access token is missing, invalid, expired or revoked', 'an expired access token is 28000');
INSERT INTO tok SELECT 'out', l.token, l.refresh_token FROM tests.login(pg_temp.persona('ada')) AS l;
SELECT FROM api.logout(pg_temp.access('out'));
SELECT throws_ok(format('SELECT api.change_password(%L, %L, %L)', pg_temp.access('out'), 'correct horse', 'new horse one'),
    '28000', 'access token is missing, invalid, expired or revoked', 'a revoked access token is 28000');
UPDATE before SET state = pg_temp.state(pg_temp.ada());

SELECT throws_ok(format('SELECT api.change_password(%L, NULL, %L)', pg_temp.access('a'), 'new horse one'),
    '22023', 'p_current_password: is required', 'a NULL current password is 22023 naming the field');
SELECT throws_ok(format('SELECT api.change_password(%L, %L, %L)', pg_temp.access('a'), '', 'new horse one'),
    '22023', 'p_current_password: is required', 'an empty current password is 22023');
SELECT throws_ok(format('SELECT api.change_password(%L, %L, NULL)', pg_temp.access('a'), 'correct horse'),
    '22023', 'p_new_password: is required', 'a NULL new password is 22023 naming the field');
SELECT throws_ok(format('SELECT api.change_password(%L, %L, %L)', pg_temp.access('a'), 'correct horse', 'short'),
    '22023', 'p_new_password: is shorter than 8 characters', 'a new password under the minimum is 22023');
SELECT throws_ok(format('SELECT api.change_password(%L, %L, %L)', pg_temp.access('a'), 'correct horse', repeat('p', 73)),
    '22023', 'p_new_password: is 73 bytes long; the limit is 72 bytes', 'a new password over 72 bytes is 22023');
SELECT isnt(tests.hint_of(format('SELECT api.change_password(%L, %L, %L)', pg_temp.access('a'), 'correct horse', 'short')),
    NULL, 'the 22023 carries a HINT');
SELECT is(pg_temp.failures(), 0, 'invalid input is no guess: no failure counted');

SELECT throws_ok(format('SELECT api.change_password(%L, %L, %L)', pg_temp.access('a'), 'wrong horse', 'new horse one'),
    '28P01', 'p_current_password: wrong password', 'a wrong current password is 28P01');
SELECT is(pg_temp.failures(), 1, 'the wrong current password is counted by the login throttle (committed on its own)');
SELECT is(pg_temp.state(pg_temp.ada()), (SELECT state FROM before),
    'after every refusal, the password, the tokens and the reset tokens are as they were');
SELECT is(api.authenticate(pg_temp.access('b')), pg_temp.ada(), 'another login of the user is still valid');

-- Throttled (as api.login counts): even the right password is refused.
INSERT INTO public.login_failures (email) SELECT pg_temp.email('ada') FROM generate_series(1, 4);
SELECT throws_ok(format('SELECT api.change_password(%L, %L, %L)', pg_temp.access('a'), 'correct horse', 'new horse one'),
    'CM001', NULL, 'after 5 failures in the window, CM001 even with the right password');
SELECT throws_ok(format('SELECT * FROM api.login(%L, %L)', pg_temp.email('ada'), 'correct horse'),
    'CM001', NULL, 'failures of change_password and login are one count: login is throttled too');
SELECT is(pg_temp.failures(), 5, 'a throttled attempt is not counted again');
SELECT is(pg_temp.state(pg_temp.ada()), (SELECT state FROM before), 'the throttled call changed nothing');
DELETE FROM public.login_failures WHERE email = pg_temp.email('ada') AND failed_at = now();  -- the 4 inserted above
UPDATE public.login_failures SET failed_at = now() - interval '16 minutes' WHERE email = pg_temp.email('ada');

-- ---------------------------------------------------------------- happy path
SELECT is(api.change_password(pg_temp.access('a'), 'correct horse', 'new horse one'), true,
    'the right current password and a valid new one: true');
SELECT ok(chatmem_internal.check_password('new horse one', (SELECT password_hash FROM public.users WHERE id = pg_temp.ada())),
    'the new password is stored');
SELECT matches((SELECT password_hash FROM public.users WHERE id = pg_temp.ada()), '^\$2a\$04\$',
    'as bcrypt at the current cost');
SELECT is((SELECT updated_at FROM public.users WHERE id = pg_temp.ada()), now(), 'updated_at is bumped');
SELECT is(api.authenticate(pg_temp.access('a')), pg_temp.ada(), 'the calling token stays valid');
SELECT lives_ok(format('INSERT INTO tok SELECT %L, f.token, f.refresh_token FROM api.refresh(%L) AS f', 'a2', pg_temp.refresh('a')),
    'the calling token''s family can still be refreshed');
SELECT is(api.authenticate(pg_temp.access('a2')), pg_temp.ada(), 'and its new token authenticates');
SELECT is(api.authenticate(pg_temp.access('b')), NULL::uuid, 'another login''s access token is revoked');
SELECT throws_ok(format('SELECT * FROM api.refresh(%L)', pg_temp.refresh('b')),
    '28000', 'refresh token is unknown, expired or revoked', 'another login''s refresh token is revoked');
SELECT is(api.authenticate(pg_temp.access('reg')), NULL::uuid, 'the registration''s token is revoked');
SELECT is(
    (SELECT count(*)::integer FROM public.auth_tokens AS t
      WHERE t.user_id = pg_temp.ada() AND t.revoked_at IS NULL
        AND t.family_id <> (tests.token_row(pg_temp.access('a'))).family_id),
    0, 'no token of the user outside the calling family is unrevoked');
SELECT is(api.authenticate(pg_temp.access('bea')), tests.id_of(pg_temp.persona('bea')), 'another user''s token is untouched');
SELECT is(pg_temp.failures(), 0, 'the right password cleared the failed-login count');
SELECT is((SELECT count(*)::integer FROM public.password_reset_tokens WHERE user_id = pg_temp.ada()), 0,
    'reset tokens asked for before the change are invalidated');
SELECT throws_ok(format('SELECT * FROM api.login(%L, %L)', pg_temp.email('ada'), 'correct horse'),
    '28P01', 'invalid email or password', 'the old password no longer logs in');
SELECT lives_ok(format('SELECT * FROM api.login(%L, %L)', pg_temp.email('ada'), 'new horse one'),
    'the new password logs in');

-- ---------------------------------------------------------------- an account without a password
SELECT token AS ident_token
  FROM api.link_identity('https://idp.example', pg_temp.persona('sub'), pg_temp.email('ida'), 'Ida') \gset
SELECT throws_ok(format('SELECT api.change_password(%L, %L, %L)', :'ident_token', 'anything at all', 'new horse one'),
    '28P01', 'p_current_password: wrong password', 'an account without a password has no current password to give');
SELECT matches(tests.hint_of(format('SELECT api.change_password(%L, %L, %L)', :'ident_token', 'anything at all', 'new horse one')),
    'api.request_password_reset', 'the hint says how such an account gets a password');
SELECT is((SELECT password_hash FROM public.users WHERE lower(email) = pg_temp.email('ida')), NULL,
    'and it still has none');

SELECT * FROM finish();
ROLLBACK;
