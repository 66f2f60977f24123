-- api.claim_receipt: the claims into the token's account, newest first, from the audit; p_since;
-- 28000 for a missing, invalid, expired or revoked access token; nothing it raises is logged.
BEGIN;
SELECT plan(20);
SELECT tests.fast_hashing();
SELECT FROM unnest(ARRAY['cr-1', 'cr-2']) AS s, tests.guest_session('cr-g1', s);
SELECT FROM tests.guest_session('cr-g2', 'cr-3');
SELECT FROM tests.guest_session('cr-g3', 'cr-bob');
SELECT set_config('cr.alice', token, true), set_config('cr.alice_refresh', refresh_token, true)
  FROM tests.register('alice', 'cr-g1');
SELECT set_config('cr.alice_login', token, true) FROM tests.login('alice', 'cr-g2');
SELECT set_config('cr.bob', token, true) FROM tests.register('bob', 'cr-g3');
SELECT set_config('cr.carol', token, true) FROM tests.register('carol');
-- The claims happened in this one transaction; spread them in time.
UPDATE public.session_claims SET claimed_at = now() - interval '2 hours' WHERE session_id IN ('cr-1', 'cr-2');
UPDATE public.session_claims SET claimed_at = now() - interval '1 hour' WHERE session_id = 'cr-3';
CREATE TEMP TABLE claims_before ON COMMIT DROP AS SELECT c::text AS row FROM public.session_claims AS c;

-- ---------------------------------------------------------------- the receipt
SELECT results_eq(
    $$SELECT * FROM api.claim_receipt(current_setting('cr.alice'))$$,
    $$VALUES ('cr-3', 'cr-g2', 'login', now() - interval '1 hour'),
             ('cr-2', 'cr-g1', 'register', now() - interval '2 hours'),
             ('cr-1', 'cr-g1', 'register', now() - interval '2 hours')$$,
    'every claim into the account, newest first: session, guest id, method, time');
SELECT results_eq(
    $$SELECT * FROM api.claim_receipt(current_setting('cr.alice_login'))$$,
    $$SELECT * FROM api.claim_receipt(current_setting('cr.alice'))$$,
    'any live access token of the account gives the same receipt');
SELECT is(ARRAY(SELECT session_id FROM api.claim_receipt(current_setting('cr.alice'), now() - interval '90 minutes')),
    ARRAY['cr-3'], 'p_since keeps the claims made since then');
SELECT is(ARRAY(SELECT session_id FROM api.claim_receipt(current_setting('cr.alice'), now() - interval '1 hour')),
    ARRAY['cr-3'], 'p_since includes a claim made at that very time');
SELECT is(ARRAY(SELECT session_id FROM api.claim_receipt(current_setting('cr.alice'), now())), ARRAY[]::text[],
    'nothing claimed since now');
SELECT is(ARRAY(SELECT session_id FROM api.claim_receipt(current_setting('cr.alice'), NULL)),
    ARRAY['cr-3', 'cr-2', 'cr-1'], 'p_since NULL is no limit');
SELECT is(ARRAY(SELECT session_id FROM api.claim_receipt(current_setting('cr.bob'))), ARRAY['cr-bob'],
    'another account sees only its own claims');
SELECT is_empty($$SELECT * FROM api.claim_receipt(current_setting('cr.carol'))$$,
    'an account that claimed nothing gets no rows');
SELECT FROM api.delete_session('cr-2', tests.id_of('alice')::text);
SELECT is(ARRAY(SELECT session_id FROM api.claim_receipt(current_setting('cr.alice'))), ARRAY['cr-3', 'cr-2', 'cr-1'],
    'a claimed session deleted since is still on the receipt (the audit outlives it)');

-- ---------------------------------------------------------------- refusals
SELECT throws_ok($$SELECT * FROM api.claim_receipt(NULL)$$,
    '28000', 'access token is missing, invalid, expired or revoked', 'no token is 28000');
SELECT throws_ok($$SELECT * FROM api.claim_receipt('')$$,
    '28000', 'access token is missing, invalid, expired or revoked', 'an empty token is 28000');
SELECT throws_ok($$SELECT * FROM api.claim_receipt('not-a-token')$$,
    '28000', 'access token is missing, invalid, expired or revoked', 'a made-up token is 28000');
SELECT throws_ok($$SELECT * FROM api.claim_receipt(current_setting('cr.alice_refresh'))$$,
    '28000', 'access token is missing, invalid, expired or revoked', 'a refresh token is no access token: 28000');
SELECT FROM tests.expire_token(current_setting('cr.carol'));
SELECT throws_ok($$SELECT * FROM api.claim_receipt(current_setting('cr.carol'))$$,
    '28000', 'access token is missing, invalid, expired or revoked',
    'an expired token is 28000, even for an account that claimed nothing');
SELECT FROM api.logout(current_setting('cr.alice_login'));
SELECT throws_ok($$SELECT * FROM api.claim_receipt(current_setting('cr.alice_login'))$$,
    '28000', 'access token is missing, invalid, expired or revoked', 'a revoked (logged out) token is 28000');
SELECT is(tests.hint_of($$SELECT * FROM api.claim_receipt('not-a-token')$$),
    'Log in again, or exchange your refresh token with api.refresh.', 'the 28000 carries a HINT');
SELECT is(ARRAY(SELECT session_id FROM api.claim_receipt(current_setting('cr.alice'))), ARRAY['cr-3', 'cr-2', 'cr-1'],
    'the account''s other token still works');
SELECT is(ARRAY(SELECT c.row FROM claims_before AS c ORDER BY 1),
    ARRAY(SELECT c::text FROM public.session_claims AS c ORDER BY 1), 'receipts and refusals changed no audit row');

-- ---------------------------------------------------------------- a token is an argument: nothing it raises is logged
SELECT is(
    (SELECT array_agg(c ORDER BY c) FROM pg_proc AS p, unnest(p.proconfig) AS c
      WHERE p.oid = 'api.claim_receipt(text,timestamptz)'::regprocedure AND c LIKE 'log_%'),
    ARRAY['log_min_error_statement=panic', 'log_min_messages=panic'],
    'claim_receipt keeps its errors and statement out of the server log, like every function that takes a token');
SELECT is(
    (SELECT p.provolatile::text FROM pg_proc AS p WHERE p.oid = 'api.claim_receipt(text,timestamptz)'::regprocedure), 's',
    'claim_receipt is STABLE: it only reads');

SELECT * FROM finish();
ROLLBACK;
