-- Pins the least-privilege surface: which functions applications may call,
-- how each is declared, who may execute and create what, and that the
-- application role can call the API and touch no table.
BEGIN;
SELECT plan(198);
SELECT tests.fast_hashing();

-- The public surface, exactly.
CREATE TEMP TABLE surface (name name PRIMARY KEY, args name[] NOT NULL) ON COMMIT DROP;
INSERT INTO surface VALUES
    ('create_or_get_session', ARRAY['text', 'text', 'jsonb']),
    ('create_session',        ARRAY['text', 'jsonb', 'text']),
    ('register_user',         ARRAY['text', 'text', 'text', 'text']),
    ('login',                 ARRAY['text', 'text', 'text']),
    ('authenticate',          ARRAY['text']),
    ('refresh',               ARRAY['text']),
    ('logout',                ARRAY['text']),
    ('add_message',           ARRAY['text', 'text', 'text', 'text']),
    ('get_messages',          ARRAY['text', 'text', 'integer', 'bigint']),
    ('add_qa_pair',           ARRAY['text', 'text', 'text', 'text']),
    ('get_qa_pairs',          ARRAY['text', 'text']),
    ('list_sessions',         ARRAY['text']),
    ('purge_guest_sessions',  ARRAY['interval', 'boolean']),
    ('delete_guest_data',     ARRAY['text']),
    ('require_user',          ARRAY['text']),
    ('require_guest',         ARRAY['text']),
    ('schema_version',        ARRAY[]::name[]),
    ('list_conversations',    ARRAY['text', 'integer', 'timestamp with time zone', 'text']),
    ('rename_session',        ARRAY['text', 'text', 'text']),
    ('delete_session',        ARRAY['text', 'text']),
    ('preview_claim',         ARRAY['text']),
    ('claim_receipt',         ARRAY['text', 'timestamp with time zone']),
    ('change_password',        ARRAY['text', 'text', 'text']),
    ('request_password_reset', ARRAY['text']),
    ('reset_password',         ARRAY['text', 'text']),
    ('logout_everywhere',      ARRAY['text']),
    ('link_identity',          ARRAY['text', 'text', 'text', 'text', 'text']),
    ('export_user_data',       ARRAY['text']),
    ('delete_account',         ARRAY['text', 'text']),
    ('get_allowance',          ARRAY['text']);

-- ---------------------------------------------------------------- declarations (1 + 3 x 30 + 14)
SELECT functions_are('api', ARRAY(SELECT name FROM surface),
    'schema api holds exactly the public functions');

SELECT is_definer('api', name, args, format('api.%s is SECURITY DEFINER', name))
  FROM surface ORDER BY name;
SELECT isnt_strict('api', name, args, format('api.%s is not STRICT (NULL arguments get a clear error)', name))
  FROM surface ORDER BY name;
SELECT is(
    (SELECT array_agg(c) FROM pg_proc AS p, unnest(p.proconfig) AS c
      WHERE p.oid = format('api.%I(%s)', s.name, array_to_string(s.args, ','))::regprocedure
        AND c LIKE 'search_path=%'),
    ARRAY['search_path=pg_catalog, pg_temp'],
    format('api.%s pins search_path = pg_catalog, pg_temp', s.name))
  FROM surface AS s ORDER BY s.name;

-- A failed call must not copy its statement (with the secret in it) to the log.
SELECT ok(
    (SELECT 'log_min_error_statement=panic' = ANY(proconfig) FROM pg_proc WHERE oid = f::regprocedure),
    format('%s (takes a password or token) sets log_min_error_statement = panic', f))
  FROM unnest(ARRAY['api.create_session(text,jsonb,text)', 'api.register_user(text,text,text,text)',
                    'api.login(text,text,text)', 'api.refresh(text)', 'api.require_user(text)',
                    'api.logout(text)', 'api.authenticate(text)', 'api.claim_receipt(text,timestamptz)',
                    'api.change_password(text,text,text)', 'api.reset_password(text,text)',
                    'api.logout_everywhere(text)', 'api.export_user_data(text)',
                    'api.delete_account(text,text)']) AS f;
SELECT is(
    (SELECT count(DISTINCT p.proowner)::integer FROM pg_proc AS p
      WHERE p.pronamespace IN ('api'::regnamespace, 'chatmem_internal'::regnamespace)),
    1, 'every api and chatmem_internal function has one owner');

-- ---------------------------------------------------------------- EXECUTE (5)
SELECT results_eq(
    $$SELECT p.proname::text, a.grantee::regrole::text
        FROM pg_proc AS p, aclexplode(coalesce(p.proacl, acldefault('f', p.proowner))) AS a
       WHERE p.pronamespace = 'api'::regnamespace AND a.grantee <> p.proowner
       ORDER BY 1, 2$$,
    $$SELECT name::text, CASE name WHEN 'purge_guest_sessions' THEN 'chatmem_admin'
                                   WHEN 'link_identity' THEN 'chatmem_identity_broker'
                                   ELSE 'chatmem_app' END
        FROM surface ORDER BY 1, 2$$,
    'api functions: EXECUTE for chatmem_app (purge_guest_sessions: chatmem_admin; link_identity: chatmem_identity_broker), for nobody else');
SELECT is_empty(
    $$SELECT p.oid::regprocedure
        FROM pg_proc AS p, aclexplode(coalesce(p.proacl, acldefault('f', p.proowner))) AS a
       WHERE p.pronamespace = 'api'::regnamespace AND a.grantee = 0$$,
    'PUBLIC may execute no function in api');
SELECT is_empty(
    $$SELECT p.oid::regprocedure, a.grantee
        FROM pg_proc AS p, aclexplode(coalesce(p.proacl, acldefault('f', p.proowner))) AS a
       WHERE p.pronamespace = 'chatmem_internal'::regnamespace AND a.grantee <> p.proowner$$,
    'nobody but the owner (not PUBLIC, not chatmem_app) may execute a chatmem_internal function');
-- One trigger function of ours lives in public (the guest cap's went with
-- migration 0021: the cap is a rule of the API now).
SELECT is(
    (SELECT array_agg(p.oid::regprocedure::text ORDER BY p.oid::regprocedure::text) FROM pg_proc AS p
      WHERE p.pronamespace = 'public'::regnamespace AND p.prorettype = 'trigger'::regtype),
    ARRAY['conversation_sessions_mark_orphaned()'], 'our one trigger function lives in public');
SELECT is_empty(
    $$SELECT p.oid::regprocedure
        FROM pg_proc AS p, aclexplode(coalesce(p.proacl, acldefault('f', p.proowner))) AS a
       WHERE p.oid = 'public.conversation_sessions_mark_orphaned()'::regprocedure
         AND a.grantee <> p.proowner$$,
    'nobody but the owner (not PUBLIC) may execute our trigger function');

-- ---------------------------------------------------------------- schemas (8)
SELECT schema_owner_is('api',
    (SELECT proowner::regrole::name FROM pg_proc WHERE oid = 'api.login(text,text,text)'::regprocedure),
    'api is owned by the role that owns its functions');
SELECT schema_owner_is('chatmem_internal',
    (SELECT proowner::regrole::name FROM pg_proc WHERE oid = 'api.login(text,text,text)'::regprocedure),
    'chatmem_internal is owned by the role that owns the api functions');
SELECT schema_owner_is('public', 'pg_database_owner', 'public is owned by pg_database_owner (the database owner)');
-- has_schema_privilege counts grants to PUBLIC and through role membership.
SELECT is_empty(
    $$SELECT r.rolname FROM pg_roles AS r, pg_namespace AS n
       WHERE n.nspname = 'public' AND NOT r.rolsuper
         AND has_schema_privilege(r.oid, n.oid, 'CREATE') AND NOT pg_has_role(r.oid, n.nspowner, 'MEMBER')
      UNION ALL
      SELECT 'PUBLIC' FROM pg_namespace AS n, aclexplode(coalesce(n.nspacl, acldefault('n', n.nspowner))) AS a
       WHERE n.nspname = 'public' AND a.grantee = 0 AND a.privilege_type = 'CREATE'$$,
    'no role but the owner of public (nor PUBLIC) may CREATE in public');
SELECT is_empty(
    $$SELECT r.rolname FROM pg_roles AS r, pg_namespace AS n
       WHERE n.nspname = 'api' AND NOT r.rolsuper
         AND has_schema_privilege(r.oid, n.oid, 'CREATE') AND NOT pg_has_role(r.oid, n.nspowner, 'MEMBER')
      UNION ALL
      SELECT 'PUBLIC' FROM pg_namespace AS n, aclexplode(coalesce(n.nspacl, acldefault('n', n.nspowner))) AS a
       WHERE n.nspname = 'api' AND a.grantee = 0 AND a.privilege_type = 'CREATE'$$,
    'no role but the owner of api (nor PUBLIC) may CREATE in api');
SELECT schema_privs_are('api', 'chatmem_app', ARRAY['USAGE'], 'chatmem_app may use api, not create in it');
SELECT schema_privs_are('chatmem_internal', 'chatmem_app', ARRAY[]::name[],
    'chatmem_app has no privilege on chatmem_internal');
SELECT schema_privs_are('public', 'chatmem_app', ARRAY['USAGE'],
    'chatmem_app may only look up names in public (PUBLIC''s USAGE), not create there');

-- ---------------------------------------------------------------- tables as chatmem_app (10 x 4 + 3)
-- pgTAP itself must run as chatmem_app below.
SELECT tests.let_pgtap_run_as('chatmem_app', 'chatmem_admin', 'chatmem_identity_broker');
GRANT SELECT ON surface TO chatmem_app;

-- A guest session for the write attempts to aim at, made by the owner.
SELECT FROM tests.guest_session('priv-guest-0', 'priv-s0');
-- Where dblink would have to connect to turn the trust socket into superuser power.
SELECT format('dbname=%s user=postgres port=%s host=%s', current_database(), current_setting('port'),
              split_part(current_setting('unix_socket_directories'), ',', 1)) AS superuser_conninfo \gset

SET LOCAL ROLE chatmem_app;

SELECT throws_ok(format('SELECT * FROM public.%I', t), '42501', format('permission denied for table %s', t),
                 format('chatmem_app may not read public.%s', t))
  FROM unnest(ARRAY['users', 'conversation_sessions', 'conversation_messages', 'qa_pairs', 'chatmem_settings',
                    'auth_tokens', 'session_claims', 'login_failures', 'user_identities',
                    'password_reset_tokens']) AS t;
SELECT throws_ok(sql, '42501', NULL, format('chatmem_app may not insert into public.%s', t))
  FROM (VALUES
    ('users', $$INSERT INTO public.users (name, email, password_hash) VALUES ('m', 'm@x.test', 'x')$$),
    ('conversation_sessions', $$INSERT INTO public.conversation_sessions (session_id) VALUES ('priv-m')$$),
    ('conversation_messages',
     $$INSERT INTO public.conversation_messages (session_id, role, content) VALUES ('priv-s0', 'user', 'm')$$),
    ('qa_pairs', $$INSERT INTO public.qa_pairs (session_id, question, answer) VALUES ('priv-s0', 'q', 'a')$$),
    ('chatmem_settings', $$INSERT INTO public.chatmem_settings DEFAULT VALUES$$),
    ('auth_tokens', $$INSERT INTO public.auth_tokens (token_hash, kind, user_id, family_id, pair_id, expires_at)
                      VALUES (sha256('m'), 'access', gen_random_uuid(), gen_random_uuid(), gen_random_uuid(), now())$$),
    ('session_claims', $$INSERT INTO public.session_claims (session_id, anonymous_user_id, user_id, method)
                         VALUES ('priv-s0', 'priv-guest-0', gen_random_uuid(), 'login')$$),
    ('login_failures', $$INSERT INTO public.login_failures (email) VALUES ('m@x.test')$$),
    ('user_identities', $$INSERT INTO public.user_identities (provider, subject, user_id) VALUES ('p', 's', gen_random_uuid())$$),
    ('password_reset_tokens', $$INSERT INTO public.password_reset_tokens (token_hash, email_hash, expires_at)
                                VALUES (sha256('m'), sha256('m'), now())$$)
  ) AS w(t, sql);
SELECT throws_ok(format('UPDATE public.%I SET %I = %I', t, c, c), '42501', NULL,
                 format('chatmem_app may not update public.%s', t))
  FROM (VALUES ('users', 'password_hash'), ('conversation_sessions', 'user_id'),
               ('conversation_messages', 'content'), ('qa_pairs', 'answer'),
               ('chatmem_settings', 'bcrypt_cost'), ('auth_tokens', 'revoked_at'),
               ('session_claims', 'user_id'), ('login_failures', 'failed_at'),
               ('user_identities', 'user_id'), ('password_reset_tokens', 'user_id')) AS u(t, c);
SELECT throws_ok(format('DELETE FROM public.%I', t), '42501', NULL, format('chatmem_app may not delete from public.%s', t))
  FROM unnest(ARRAY['users', 'conversation_sessions', 'conversation_messages', 'qa_pairs', 'chatmem_settings',
                    'auth_tokens', 'session_claims', 'login_failures', 'user_identities',
                    'password_reset_tokens']) AS t;
SELECT throws_ok('SELECT chatmem_internal.settings()', '42501', 'permission denied for schema chatmem_internal',
    'chatmem_app may not call a chatmem_internal helper');
-- PUBLIC lost EXECUTE on dblink's functions (migration 0010): the trust
-- socket is no way around the above, and no outbound connection either.
SELECT throws_ok(
    format('SELECT public.dblink_exec(%L, %L)', :'superuser_conninfo', 'DELETE FROM public.login_failures'),
    '42501', 'permission denied for function dblink_exec',
    'chatmem_app cannot reach the tables as the superuser through dblink');
SELECT throws_ok(
    format('SELECT public.dblink_connect(%L)', 'host=example.com dbname=x user=x password=x'),
    '42501', 'permission denied for function dblink_connect',
    'nor open any outbound connection with dblink');

-- ---------------------------------------------------------------- api as chatmem_app (30)
SELECT is((api.create_or_get_session('priv-s1', 'priv-guest-1', '{"k": 1}')).metadata,
    '{"k": 1, "anonymousUserId": "priv-guest-1"}'::jsonb, 'as chatmem_app: create_or_get_session works');
SELECT cmp_ok(api.add_message('priv-s1', 'priv-guest-1', 'user', 'hello'), '>', 0::bigint,
    'as chatmem_app: add_message works');
SELECT cmp_ok(api.add_qa_pair('priv-s1', 'priv-guest-1', 'q?', 'a.'), '>', 0::bigint,
    'as chatmem_app: add_qa_pair works');
SELECT is(ARRAY(SELECT content FROM api.get_messages('priv-s1', 'priv-guest-1')), ARRAY['hello'],
    'as chatmem_app: get_messages works');
SELECT is(ARRAY(SELECT question || answer FROM api.get_qa_pairs('priv-s1', 'priv-guest-1')), ARRAY['q?a.'],
    'as chatmem_app: get_qa_pairs works');
SELECT is(ARRAY(SELECT session_id::text FROM api.list_sessions('priv-guest-1')), ARRAY['priv-s1'],
    'as chatmem_app: list_sessions works');
SELECT is((SELECT row(used, allowed)::text FROM api.get_allowance('priv-guest-1')), '(1,20)',
    'as chatmem_app: get_allowance works');
SELECT is(ARRAY(SELECT session_id FROM api.preview_claim('priv-guest-1')), ARRAY['priv-s1'],
    'as chatmem_app: preview_claim works');
SELECT user_id AS reg_user, token AS reg_token, migrated_sessions AS reg_migrated
  FROM api.register_user('Priv', 'priv@example.test', 'correct horse', 'priv-guest-1') \gset
SELECT is(:reg_migrated, 1, 'as chatmem_app: register_user works and claims the guest''s session');
SELECT is(ARRAY(SELECT session_id || ' ' || method FROM api.claim_receipt(:'reg_token')), ARRAY['priv-s1 register'],
    'as chatmem_app: claim_receipt works');
SELECT is((api.rename_session('priv-s1', :'reg_user', 'Priv title')).title, 'Priv title',
    'as chatmem_app: rename_session works');
SELECT is(ARRAY(SELECT title || ' ' || message_count FROM api.list_conversations(:'reg_user')), ARRAY['Priv title 1'],
    'as chatmem_app: list_conversations works');
SELECT is(api.delete_session('priv-s1', :'reg_user'), true, 'as chatmem_app: delete_session works');
SELECT is(api.authenticate(:'reg_token'), :'reg_user'::uuid, 'as chatmem_app: authenticate works');
SELECT is(api.require_user(:'reg_token'), :'reg_user'::uuid, 'as chatmem_app: require_user works');
SELECT is(api.require_guest('priv-guest-1'), 'priv-guest-1', 'as chatmem_app: require_guest works');
SELECT matches(api.schema_version(), '^[0-9]{4}_', 'as chatmem_app: schema_version works');
SELECT token AS login_token, refresh_token AS login_refresh
  FROM api.login('PRIV@example.test', 'correct horse') \gset
SELECT is(api.authenticate(:'login_token'), :'reg_user'::uuid, 'as chatmem_app: login works');
SELECT isnt((SELECT token FROM api.refresh(:'login_refresh')), NULL, 'as chatmem_app: refresh works');
SELECT is(api.logout(:'reg_token'), true, 'as chatmem_app: logout works');
SELECT is((SELECT user_id FROM api.create_session('priv-guest-2', '{"topic": "t"}')), NULL::uuid,
    'as chatmem_app: create_session works');
SELECT is(api.delete_guest_data('priv-guest-2'), 1, 'as chatmem_app: delete_guest_data works');
SELECT is(api.change_password(:'login_token', 'correct horse', 'changed horse'), true,
    'as chatmem_app: change_password works');
SELECT is(api.export_user_data(:'login_token') #>> '{profile,email}', 'priv@example.test',
    'as chatmem_app: export_user_data works');
SELECT api.request_password_reset('priv@example.test') AS reset_token \gset
SELECT matches(:'reset_token'::text, '^[0-9a-f]{64}$', 'as chatmem_app: request_password_reset works');
SELECT is(api.reset_password(:'reset_token', 'reset horse'), :'reg_user'::uuid, 'as chatmem_app: reset_password works');
SELECT token AS everywhere_token FROM api.login('priv@example.test', 'reset horse') \gset
SELECT is(api.logout_everywhere(:'everywhere_token'), 1, 'as chatmem_app: logout_everywhere works');
SELECT token AS delete_token FROM api.login('priv@example.test', 'reset horse') \gset
SELECT is(api.delete_account(:'delete_token', 'reset horse'), 0, 'as chatmem_app: delete_account works');
SELECT throws_ok($$SELECT * FROM api.link_identity('https://idp.example', 'priv-sub', 'priv-li@example.test', 'L')$$,
    '42501', 'permission denied for function link_identity', 'chatmem_app may not sign people in through a provider');
SELECT throws_ok($$SELECT api.purge_guest_sessions('1 day', true)$$, '42501',
    'permission denied for function purge_guest_sessions', 'chatmem_app may not purge guest sessions');

RESET ROLE;

-- ---------------------------------------------------------------- chatmem_admin (3)
SELECT function_privs_are('api', 'purge_guest_sessions', ARRAY['interval', 'boolean'], 'chatmem_admin',
    ARRAY['EXECUTE'], 'chatmem_admin may execute api.purge_guest_sessions');
SET LOCAL ROLE chatmem_admin;
SELECT lives_ok($$SELECT api.purge_guest_sessions('100 years', true)$$,
    'chatmem_admin can call api.purge_guest_sessions');
SELECT throws_ok($$SELECT * FROM public.conversation_sessions$$, '42501', NULL,
    'chatmem_admin may not read the tables directly either');
RESET ROLE;

-- ---------------------------------------------------------------- chatmem_identity_broker (4)
SELECT function_privs_are('api', 'link_identity', ARRAY['text', 'text', 'text', 'text', 'text'], 'chatmem_identity_broker',
    ARRAY['EXECUTE'], 'chatmem_identity_broker may execute api.link_identity');
SET LOCAL ROLE chatmem_identity_broker;
SELECT is((SELECT created FROM api.link_identity('https://idp.example', 'priv-sub', 'priv-li@example.test', 'L')), true,
    'chatmem_identity_broker can call api.link_identity');
SELECT throws_ok($$SELECT * FROM api.login('priv-li@example.test', 'x')$$, '42501', 'permission denied for function login',
    'and no other api function');
SELECT throws_ok($$SELECT * FROM public.users$$, '42501', NULL, 'chatmem_identity_broker may not read the tables');
RESET ROLE;

SELECT * FROM finish();
ROLLBACK;
