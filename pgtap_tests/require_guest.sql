-- api.require_guest: a client-supplied guest id passes; a registered user's id never does.
BEGIN;
SELECT plan(11);
SELECT tests.fast_hashing();
SELECT FROM tests.register('alice');

SELECT function_returns('api', 'require_guest', ARRAY['text'], 'text', 'api.require_guest(text) returns text');
SELECT is(api.require_guest('rg-guest'), 'rg-guest', 'a guest id comes back unchanged');
SELECT is(api.require_guest('4b0d7c1e-35a2-4c59-9f0e-8d1f2a3b4c5d'), '4b0d7c1e-35a2-4c59-9f0e-8d1f2a3b4c5d',
    'a UUID that is no registered user is a guest id');
SELECT is(api.require_guest(NULL), NULL, 'NULL (no identity) passes as NULL');
SELECT is(api.require_guest('anonymous'), 'anonymous', '''anonymous'' (no identity) passes');
SELECT throws_ok(format('SELECT api.require_guest(%L)', tests.id_of('alice')), '28000',
    'p_anonymous_user_id names a registered account, not a guest', 'a registered user''s id is refused');
SELECT throws_ok(format('SELECT api.require_guest(%L)', upper(tests.id_of('alice')::text)), '28000', NULL,
    'also in capitals');
SELECT throws_ok($$SELECT api.require_guest('')$$, '22023', 'p_anonymous_user_id: is empty', 'an empty id is 22023');
SELECT throws_ok(format('SELECT api.require_guest(%L)', repeat('g', 256)), '22023', NULL,
    'a 256-character id is 22023');

-- The one-statement use: a forged header naming alice opens nothing of hers.
SELECT FROM api.create_or_get_session('rg-a1', tests.id_of('alice')::text);
SELECT throws_ok(
    format('SELECT * FROM api.get_messages(%L, api.require_guest(%L))', 'rg-a1', tests.id_of('alice')),
    '28000', NULL, 'get_messages with a forged guest id naming a user is refused');
SELECT lives_ok($$SELECT api.add_message('rg-g1', api.require_guest('rg-guest'), 'user', 'hi')
                    FROM api.create_or_get_session('rg-g1', 'rg-guest')$$,
    'a real guest acts through require_guest');

SELECT * FROM finish();
ROLLBACK;
