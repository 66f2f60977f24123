-- Pins the schema: tables, columns, keys, indexes and chatmem_app's privileges.
BEGIN;
SELECT plan(74);

SELECT tables_are('public',
    ARRAY['users', 'conversation_sessions', 'conversation_messages', 'qa_pairs',
          'chatmem_settings', 'auth_tokens', 'session_claims', 'login_failures',
          'user_identities', 'password_reset_tokens',
          '_yoyo_migration', '_yoyo_log', '_yoyo_version', 'yoyo_lock'],
    'public holds exactly chatmem''s tables and yoyo''s bookkeeping');

SELECT columns_are('public', 'users',
    ARRAY['id', 'name', 'email', 'password_hash', 'created_at', 'updated_at'], 'users columns');
SELECT col_is_pk('public', 'users', 'id', 'users.id is the primary key');
SELECT col_type_is('public', 'users', 'id', 'uuid', 'users.id is uuid');
SELECT col_default_is('public', 'users', 'id', 'gen_random_uuid()', 'users.id defaults to gen_random_uuid()');
SELECT has_index('public', 'users', 'users_email_lower_key', 'lower(email)'::name,
    'users has a unique index on lower(email)');
SELECT index_is_unique('public', 'users', 'users_email_lower_key', 'the email index is unique');
SELECT hasnt_index('public', 'users', 'users_email_key', 'no case-sensitive email constraint is left');

SELECT columns_are('public', 'conversation_sessions',
    ARRAY['session_id', 'user_id', 'metadata', 'created_at', 'updated_at', 'owner_deleted_at', 'title'],
    'conversation_sessions columns');
SELECT col_is_pk('public', 'conversation_sessions', 'session_id', 'session_id is the primary key');
SELECT col_type_is('public', 'conversation_sessions', 'session_id', 'character varying(255)',
    'session_id is varchar(255)');
SELECT col_is_null('public', 'conversation_sessions', 'user_id', 'user_id is NULL-able (guests)');
SELECT col_type_is('public', 'conversation_sessions', 'user_id', 'uuid', 'user_id is uuid');
SELECT col_not_null('public', 'conversation_sessions', 'metadata', 'metadata is NOT NULL');
SELECT col_default_is('public', 'conversation_sessions', 'metadata', '{}'::jsonb, 'metadata defaults to {}');
SELECT col_type_is('public', 'conversation_sessions', 'created_at', 'timestamp with time zone',
    'created_at is timestamptz');
SELECT is(
    (SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conname = 'conversation_sessions_user_id_fkey'),
    'FOREIGN KEY (user_id) REFERENCES users(id) ON DELETE SET NULL',
    'the user foreign key is named as the older system knows it and sets NULL on delete');
SELECT is(
    (SELECT is_nullable FROM information_schema.columns
      WHERE table_name = 'conversation_sessions' AND column_name = 'user_id')::text,
    'YES', 'information_schema reports user_id nullable');
SELECT is(col_description('public.conversation_sessions'::regclass,
    (SELECT attnum FROM pg_attribute WHERE attrelid = 'public.conversation_sessions'::regclass
        AND attname = 'user_id')),
    'User ID for authenticated users. NULL for anonymous/guest users.', 'user_id carries its comment');
SELECT throws_ok(
    $$INSERT INTO public.conversation_sessions (session_id, metadata) VALUES ('pin-array', '[]')$$,
    '23514', NULL, 'metadata must be a JSON object');
SELECT has_index('public', 'conversation_sessions', 'conversation_sessions_guest_idx',
    'the claim index exists');
SELECT is(
    (SELECT pg_get_expr(indpred, indrelid) FROM pg_index
      WHERE indexrelid = 'public.conversation_sessions_guest_idx'::regclass),
    '(user_id IS NULL)', 'the claim index covers only unowned sessions');
SELECT is(
    (SELECT pg_get_indexdef(indexrelid, 1, true) FROM pg_index
      WHERE indexrelid = 'public.conversation_sessions_guest_idx'::regclass),
    '(metadata ->> ''anonymousUserId''::text)', 'the claim index leads with the guest id');
SELECT has_index('public', 'conversation_sessions', 'conversation_sessions_user_idx',
    ARRAY['user_id', 'created_at'], 'listing a user''s sessions is indexed');
SELECT col_type_is('public', 'conversation_sessions', 'title', 'text', 'title is text');
SELECT col_is_null('public', 'conversation_sessions', 'title', 'title is NULL-able (no title)');
SELECT is(
    (SELECT row(pg_get_constraintdef(oid), convalidated)::text FROM pg_constraint
      WHERE conname = 'conversation_sessions_title_length'),
    row('CHECK ((char_length(title) <= 200))', true)::text,
    'a title is at most 200 characters, checked for every row (the check is validated)');
SELECT throws_ok(
    $$INSERT INTO public.conversation_sessions (session_id, title) VALUES ('pin-title', repeat('t', 201))$$,
    '23514', NULL, 'a title over 200 characters is refused by the table itself');
-- api.list_conversations pages on (updated_at, session_id) newest first: one
-- index for users, one for guests, both valid (built CONCURRENTLY).
SELECT is(
    (SELECT pg_get_indexdef(indexrelid) FROM pg_index
      WHERE indexrelid = 'public.conversation_sessions_user_activity_idx'::regclass),
    'CREATE INDEX conversation_sessions_user_activity_idx ON public.conversation_sessions '
    'USING btree (user_id, updated_at DESC, session_id DESC) WHERE ((user_id IS NOT NULL) AND (owner_deleted_at IS NULL))',
    'a user''s conversations are indexed by last activity');
SELECT is(
    (SELECT pg_get_indexdef(indexrelid) FROM pg_index
      WHERE indexrelid = 'public.conversation_sessions_guest_activity_idx'::regclass),
    'CREATE INDEX conversation_sessions_guest_activity_idx ON public.conversation_sessions '
    'USING btree (((metadata ->> ''anonymousUserId''::text)), updated_at DESC, session_id DESC) '
    'WHERE ((user_id IS NULL) AND (owner_deleted_at IS NULL) AND (metadata ? ''anonymousUserId''::text))',
    'a guest''s conversations are indexed by last activity');
SELECT is_empty(
    $$SELECT indexrelid::regclass FROM pg_index
       WHERE indrelid = 'public.conversation_sessions'::regclass AND NOT (indisvalid AND indisready)$$,
    'every index of conversation_sessions is valid (no failed concurrent build left behind)');

SELECT columns_are('public', 'conversation_messages',
    ARRAY['id', 'session_id', 'role', 'content', 'created_at'], 'conversation_messages columns');
SELECT is(
    (SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conname = 'conversation_messages_session_id_fkey'),
    'FOREIGN KEY (session_id) REFERENCES conversation_sessions(session_id) ON DELETE CASCADE',
    'messages go with their session');
SELECT has_index('public', 'conversation_messages', 'conversation_messages_session_idx',
    ARRAY['session_id', 'id'], 'a session''s messages are indexed in order');
SELECT col_type_is('public', 'conversation_messages', 'id', 'bigint', 'message ids are bigint');
SELECT throws_ok(
    $$INSERT INTO public.conversation_messages (session_id, role, content) VALUES ('x', 'robot', 'hi')$$,
    '23514', NULL, 'a message role is user, assistant or system');

SELECT columns_are('public', 'qa_pairs',
    ARRAY['id', 'session_id', 'question', 'answer', 'created_at'], 'qa_pairs columns');
SELECT is(
    (SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conname = 'qa_pairs_session_id_fkey'),
    'FOREIGN KEY (session_id) REFERENCES conversation_sessions(session_id) ON DELETE CASCADE',
    'Q&A pairs go with their session');
SELECT has_index('public', 'qa_pairs', 'qa_pairs_session_idx', ARRAY['session_id', 'id'],
    'a session''s Q&A pairs are indexed in order');

SELECT columns_are('public', 'auth_tokens',
    ARRAY['token_hash', 'kind', 'user_id', 'family_id', 'pair_id', 'expires_at', 'used_at',
          'revoked_at', 'created_at'], 'auth_tokens columns');
SELECT col_type_is('public', 'auth_tokens', 'token_hash', 'bytea', 'tokens are stored as hashes');
SELECT columns_are('public', 'session_claims',
    ARRAY['id', 'session_id', 'anonymous_user_id', 'user_id', 'method', 'claimed_at'], 'session_claims columns');
SELECT is((SELECT count(*) FROM public.chatmem_settings), 1::bigint, 'settings hold exactly one row');

-- The planner evaluates IMMUTABLE calls with constant arguments while
-- planning: a helper that may raise must not be IMMUTABLE, or a branch that
-- never runs raises anyway.
SELECT lives_ok($$SELECT CASE WHEN random() > 2 THEN chatmem_internal.check_email(NULL) END$$,
    'a raising helper in a branch that never runs does not raise');
SELECT is(ARRAY(SELECT p.oid::regprocedure::text FROM pg_proc p
                 WHERE p.pronamespace IN ('api'::regnamespace, 'chatmem_internal'::regnamespace)
                   AND p.provolatile = 'i' AND p.prosrc ~* '\mraise\M|chatmem_internal\.(invalid|forbidden|check_)'),
    ARRAY[]::text[], 'no function that may raise is declared IMMUTABLE');
SELECT has_role('chatmem_app', 'the application role exists');
SELECT has_role('chatmem_assistant', 'the role that may write assistant and system turns exists');
SELECT ok(NOT (SELECT rolcanlogin FROM pg_roles WHERE rolname = 'chatmem_assistant'), 'chatmem_assistant cannot log in');
SELECT is((SELECT row(max_concurrent_hashes >= 1, hash_wait)::text FROM public.chatmem_settings),
    row(true, interval '1 second')::text, 'hashing is bounded by default: at least one slot, one second''s wait');
SELECT throws_ok($$UPDATE public.chatmem_settings SET max_concurrent_hashes = 0$$, '23514', NULL,
    'max_concurrent_hashes is at least 1');
SELECT ok(NOT (SELECT rolcanlogin FROM pg_roles WHERE rolname = 'chatmem_app'), 'chatmem_app cannot log in');
SELECT schema_privs_are('api', 'chatmem_app', ARRAY['USAGE'], 'chatmem_app may use schema api');
SELECT schema_privs_are('chatmem_internal', 'chatmem_app', ARRAY[]::text[],
    'chatmem_app may not use chatmem_internal');
SELECT table_privs_are('public', 'users', 'chatmem_app', ARRAY[]::text[], 'chatmem_app has nothing on users');
SELECT table_privs_are('public', 'conversation_sessions', 'chatmem_app', ARRAY[]::text[],
    'chatmem_app has nothing on conversation_sessions');
SELECT table_privs_are('public', 'auth_tokens', 'chatmem_app', ARRAY[]::text[],
    'chatmem_app has nothing on auth_tokens');
SELECT table_privs_are('public', 'conversation_messages', 'chatmem_app', ARRAY[]::text[],
    'chatmem_app has nothing on conversation_messages');

-- ---------------------------------------------------------------- accounts (issue 13): 17
SELECT col_is_null('public', 'users', 'password_hash',
    'users.password_hash is NULL-able (an account made through an identity provider has no password)');
SELECT columns_are('public', 'user_identities',
    ARRAY['provider', 'subject', 'user_id', 'created_at', 'last_used_at'], 'user_identities columns');
SELECT col_is_pk('public', 'user_identities', ARRAY['provider', 'subject'], 'an identity is its provider and subject, once');
SELECT is(
    (SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conname = 'user_identities_user_id_fkey'),
    'FOREIGN KEY (user_id) REFERENCES users(id) ON DELETE CASCADE', 'identities go with their account');
SELECT columns_are('public', 'password_reset_tokens',
    ARRAY['id', 'token_hash', 'email_hash', 'user_id', 'created_at', 'expires_at'], 'password_reset_tokens columns');
SELECT col_type_is('public', 'password_reset_tokens', 'token_hash', 'bytea', 'reset tokens are stored as hashes');
SELECT col_is_unique('public', 'password_reset_tokens', 'token_hash', 'a reset token is found by its hash, once');
SELECT is(
    (SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conname = 'password_reset_tokens_user_id_fkey'),
    'FOREIGN KEY (user_id) REFERENCES users(id) ON DELETE CASCADE', 'reset tokens go with their account');
SELECT has_index('public', 'password_reset_tokens', 'password_reset_tokens_email_idx', ARRAY['email_hash', 'id'],
    'the per-email cap counts on an index');
SELECT is(
    (SELECT row(pg_get_constraintdef(oid), convalidated)::text FROM pg_constraint WHERE conname = 'session_claims_method_check'),
    row('CHECK ((method = ANY (ARRAY[''register''::text, ''login''::text, ''identity''::text])))', true)::text,
    'the claim audit knows three ways in (identity too), checked for every row (validated)');
SELECT throws_ok(
    $$INSERT INTO public.session_claims (session_id, anonymous_user_id, user_id, method)
      VALUES ('pin-claim', 'g', gen_random_uuid(), 'magic')$$,
    '23514', NULL, 'any other claim method is refused');
SELECT is((SELECT row(password_reset_ttl, link_identity_by_email)::text FROM public.chatmem_settings),
    row(interval '30 minutes', false)::text, 'reset tokens live 30 minutes; identities are not linked by email, by default');
SELECT throws_ok($$UPDATE public.chatmem_settings SET password_reset_ttl = '2 days'$$, '23514', NULL,
    'a reset token lives at most a day');
SELECT has_role('chatmem_identity_broker', 'the role that may sign people in through a provider exists');
SELECT ok(NOT (SELECT rolcanlogin FROM pg_roles WHERE rolname = 'chatmem_identity_broker'),
    'chatmem_identity_broker cannot log in');
SELECT table_privs_are('public', 'user_identities', 'chatmem_app', ARRAY[]::text[], 'chatmem_app has nothing on user_identities');
SELECT table_privs_are('public', 'password_reset_tokens', 'chatmem_app', ARRAY[]::text[],
    'chatmem_app has nothing on password_reset_tokens');

SELECT * FROM finish();
ROLLBACK;
