-- api.request_password_reset: a token of one shape for known and unknown emails, only its SHA-256 stored,
-- its lifetime from the settings, at most 3 per account, and no clue whether the account exists.
BEGIN;
SELECT plan(27);
SELECT tests.fast_hashing();

SELECT FROM tests.register('rpr-ada');
CREATE TEMP TABLE req (n serial PRIMARY KEY, label text NOT NULL, token text NOT NULL) ON COMMIT DROP;
CREATE FUNCTION pg_temp.req(p_label text) RETURNS text LANGUAGE sql AS
$$ SELECT token FROM req WHERE label = p_label ORDER BY n DESC LIMIT 1 $$;
CREATE FUNCTION pg_temp.row_of(p_token text) RETURNS public.password_reset_tokens LANGUAGE sql AS
$$ SELECT r.* FROM public.password_reset_tokens AS r WHERE r.token_hash = sha256(convert_to(p_token, 'UTF8')) $$;
CREATE FUNCTION pg_temp.email_hash(p_email text) RETURNS bytea LANGUAGE sql AS
$$ SELECT sha256(convert_to(lower(p_email), 'UTF8')) $$;

SELECT function_returns('api', 'request_password_reset', ARRAY['text'], 'text',
    'api.request_password_reset(text) returns text');

-- ---------------------------------------------------------------- a known email
SELECT lives_ok($$INSERT INTO req (label, token) SELECT 'k1', api.request_password_reset('  RPR-Ada@Example.test ')$$,
    'a reset is asked for a known email, in any case and with spaces around');
SELECT matches(pg_temp.req('k1'), '^[0-9a-f]{64}$', 'the token is 32 random bytes in hex');
SELECT is((pg_temp.row_of(pg_temp.req('k1'))).user_id, tests.id_of('rpr-ada'), 'it is stored for the account, by its SHA-256');
SELECT is((pg_temp.row_of(pg_temp.req('k1'))).expires_at, now() + interval '30 minutes', 'valid for 30 minutes by default');
SELECT is((pg_temp.row_of(pg_temp.req('k1'))).email_hash, pg_temp.email_hash('rpr-ada@example.test'),
    'keyed by the SHA-256 of the lower-cased email');
SELECT is(
    (SELECT count(*)::integer FROM public.password_reset_tokens AS r
      WHERE strpos(r::text, pg_temp.req('k1')) > 0 OR r.token_hash = decode(pg_temp.req('k1'), 'hex')),
    0, 'the plain token is stored nowhere');
UPDATE public.chatmem_settings SET password_reset_ttl = '10 minutes';
INSERT INTO req (label, token) SELECT 'k2', api.request_password_reset('rpr-ada@example.test');
SELECT is((pg_temp.row_of(pg_temp.req('k2'))).expires_at, now() + interval '10 minutes', 'the lifetime comes from the settings');
UPDATE public.chatmem_settings SET password_reset_ttl = DEFAULT;
SELECT isnt(pg_temp.req('k2'), pg_temp.req('k1'), 'each request makes a new token');

-- ---------------------------------------------------------------- at most 3 per account
INSERT INTO req (label, token) SELECT 'k3', api.request_password_reset('rpr-ada@example.test');
SELECT is((SELECT count(*)::integer FROM public.password_reset_tokens WHERE user_id = tests.id_of('rpr-ada')), 3,
    'three requests: three tokens');
INSERT INTO req (label, token) SELECT 'k4', api.request_password_reset('rpr-ada@example.test');
SELECT is((SELECT count(*)::integer FROM public.password_reset_tokens WHERE user_id = tests.id_of('rpr-ada')), 3,
    'a fourth request keeps three');
SELECT is(pg_temp.row_of(pg_temp.req('k1')), NULL, 'the oldest is gone');
SELECT isnt(pg_temp.row_of(pg_temp.req('k4')), NULL, 'the newest is there');
SELECT throws_ok(format('SELECT api.reset_password(%L, %L)', pg_temp.req('k1'), 'new horse one'),
    '28000', 'reset token is unknown, expired or already used', 'the invalidated token resets nothing');
SELECT lives_ok(format('SELECT api.reset_password(%L, %L)', pg_temp.req('k2'), 'new horse one'),
    'the second-oldest still works');

-- ---------------------------------------------------------------- an unknown email: the same answer
SELECT lives_ok($$INSERT INTO req (label, token) SELECT 'u1', api.request_password_reset('rpr-nobody@example.test')$$,
    'a reset asked for an email with no account succeeds too');
SELECT matches(pg_temp.req('u1'), '^[0-9a-f]{64}$', 'with a token of the same shape');
SELECT is(
    (SELECT row(r.user_id, r.email_hash, r.expires_at)::text FROM public.password_reset_tokens AS r
      WHERE r.token_hash = sha256(convert_to(pg_temp.req('u1'), 'UTF8'))),
    row(NULL::uuid, pg_temp.email_hash('rpr-nobody@example.test'), now() + interval '30 minutes')::text,
    'stored like any other, for no account (the same work, so the same time), the email only as a hash');
SELECT is((SELECT count(*)::integer FROM public.password_reset_tokens AS r
            WHERE strpos(r::text, 'rpr-nobody') > 0
               OR strpos(r::text, encode(convert_to('rpr-nobody', 'UTF8'), 'hex')) > 0), 0,
    'the unknown email itself is not kept, in text or in bytes');
INSERT INTO req (label, token) SELECT 'u' || g, api.request_password_reset('rpr-nobody@example.test') FROM generate_series(2, 5) AS g;
SELECT is((SELECT count(*)::integer FROM public.password_reset_tokens WHERE email_hash = pg_temp.email_hash('rpr-nobody@example.test')),
    3, 'an unknown email keeps at most 3 too');
SELECT throws_ok(format('SELECT api.reset_password(%L, %L)', pg_temp.req('u5'), 'new horse one'),
    '28000', 'reset token is unknown, expired or already used', 'its token resets nothing');
SELECT is((SELECT count(*)::integer FROM public.users WHERE lower(email) = 'rpr-nobody@example.test'), 0,
    'and makes no account');

-- ---------------------------------------------------------------- expired rows are cleaned up as requests come
-- The oldest expiry of all, so these are the first expired rows cleaned up.
UPDATE public.password_reset_tokens SET expires_at = now() - interval '100 years'
 WHERE email_hash = pg_temp.email_hash('rpr-nobody@example.test');
SELECT FROM api.request_password_reset('rpr-someone-else@example.test');
SELECT cmp_ok((SELECT count(*)::integer FROM public.password_reset_tokens
                WHERE email_hash = pg_temp.email_hash('rpr-nobody@example.test')), '<=', 1,
    'a request deletes two expired rows of anyone''s');

-- ---------------------------------------------------------------- invalid input
SELECT throws_ok($$SELECT api.request_password_reset(NULL)$$, '22023', 'p_email: is required', 'NULL is 22023');
SELECT throws_ok($$SELECT api.request_password_reset('not an email')$$, '22023',
    'p_email: is not an email address of the form local@domain.tld', 'a malformed email is 22023');
SELECT throws_ok(format('SELECT api.request_password_reset(%L)', repeat('a', 100000) || '@example.test'), '22023',
    'p_email: is 100013 characters long; the limit is 254', 'an oversized email is refused before any work');
SELECT is((SELECT count(*)::integer FROM public.password_reset_tokens WHERE created_at = now()
             AND user_id IS DISTINCT FROM tests.id_of('rpr-ada') AND email_hash NOT IN
                 (pg_temp.email_hash('rpr-nobody@example.test'), pg_temp.email_hash('rpr-someone-else@example.test'))),
    0, 'refused requests store nothing');

SELECT * FROM finish();
ROLLBACK;
