-- api.export_user_data: everything stored about the token's user as one JSON document, in order,
-- never a hash or a token; nothing of anyone else; a bad token is 28000.
BEGIN;
SELECT plan(21);
SELECT tests.fast_hashing();
-- A failed login is counted in a transaction of its own and survives this
-- file's rollback: forget earlier runs' (for this transaction only).
DELETE FROM public.login_failures WHERE email LIKE 'ex-%@example.test';

-- ada chats as a guest, registers (claiming two sessions), chats on, then
-- logs in from a second guest id (claiming one more).
SELECT FROM tests.guest_session('ex-g1', 'ex-s1');
SELECT FROM api.add_message('ex-s1', 'ex-g1', 'user', 'first question');
SELECT FROM api.add_message('ex-s1', 'ex-g1', 'user', 'second question');
SELECT FROM api.add_qa_pair('ex-s1', 'ex-g1', 'q1?', 'a1.');
SELECT FROM api.add_qa_pair('ex-s1', 'ex-g1', 'q2?', 'a2.');
SELECT FROM api.create_or_get_session('ex-s2', 'ex-g1', '{"topic": "refunds"}');
SELECT FROM tests.backdate('ex-s1', '3 hours');
SELECT FROM tests.backdate('ex-s2', '2 hours');
CREATE TEMP TABLE tok ON COMMIT DROP AS
SELECT 'reg'::text AS label, r.token, r.refresh_token FROM tests.register('ex-ada', 'ex-g1') AS r;
SELECT FROM tests.guest_session('ex-g2', 'ex-s3');
SELECT FROM tests.backdate('ex-s3', '1 hour');
INSERT INTO tok SELECT 'login', l.token, l.refresh_token FROM tests.login('ex-ada', 'ex-g2') AS l;
SELECT FROM api.add_message('ex-s3', tests.id_of('ex-ada')::text, 'user', 'after the claim');
SELECT FROM api.request_password_reset('ex-ada@example.test');
SELECT tests.hint_of($$SELECT * FROM api.login('ex-ada@example.test', 'wrong horse')$$);  -- fails, counted
UPDATE public.chatmem_settings SET link_identity_by_email = true;
SELECT FROM api.link_identity('https://idp.example', 'ex-ada-sub', 'EX-ADA@example.test', NULL);
-- bea's data must not appear.
SELECT FROM tests.register('ex-bea');
SELECT FROM api.create_or_get_session('ex-bea-s', tests.id_of('ex-bea')::text);
SELECT FROM api.add_message('ex-bea-s', tests.id_of('ex-bea')::text, 'user', 'bea''s secret');

CREATE FUNCTION pg_temp.token(p_label text) RETURNS text LANGUAGE sql AS $$ SELECT token FROM tok WHERE label = p_label $$;
CREATE TEMP TABLE doc ON COMMIT DROP AS SELECT api.export_user_data(pg_temp.token('login')) AS d;
CREATE FUNCTION pg_temp.doc() RETURNS jsonb LANGUAGE sql AS $$ SELECT d FROM doc $$;

SELECT function_returns('api', 'export_user_data', ARRAY['text'], 'jsonb', 'api.export_user_data(text) returns jsonb');
SELECT is(ARRAY(SELECT jsonb_object_keys(pg_temp.doc()) ORDER BY 1),
    ARRAY['claims', 'exported_at', 'failed_logins', 'format', 'identities', 'password_reset_requests',
          'profile', 'sessions', 'sign_ins'],
    'the document has exactly its documented keys');
SELECT is(pg_temp.doc() ->> 'format', 'chatmem-export-1', 'it names its format');
SELECT is(pg_temp.doc() -> 'profile',
    (SELECT jsonb_build_object('id', u.id, 'name', u.name, 'email', u.email, 'created_at', u.created_at,
                               'updated_at', u.updated_at, 'has_password', true)
       FROM public.users AS u WHERE u.id = tests.id_of('ex-ada')),
    'the profile: id, name, email, timestamps and whether there is a password');

-- ---------------------------------------------------------------- never a hash or a token
SELECT is(
    (SELECT count(*)::integer FROM public.users AS u
      WHERE u.id = tests.id_of('ex-ada') AND strpos(pg_temp.doc()::text, u.password_hash) > 0), 0,
    'the password hash is not in it');
SELECT unalike(pg_temp.doc()::text, '%$2a$%', 'nor any bcrypt hash');
SELECT is(
    (SELECT count(*)::integer FROM public.auth_tokens AS t
      WHERE t.user_id = tests.id_of('ex-ada') AND strpos(pg_temp.doc()::text, encode(t.token_hash, 'hex')) > 0), 0,
    'nor any token hash');
SELECT is(
    (SELECT count(*)::integer FROM public.password_reset_tokens AS r
      WHERE r.user_id = tests.id_of('ex-ada')
        AND (strpos(pg_temp.doc()::text, encode(r.token_hash, 'hex')) > 0
             OR strpos(pg_temp.doc()::text, encode(r.email_hash, 'hex')) > 0)), 0,
    'nor any reset token hash');
SELECT is((SELECT count(*)::integer FROM tok WHERE strpos(pg_temp.doc()::text, token) > 0
                                            OR strpos(pg_temp.doc()::text, refresh_token) > 0), 0,
    'nor any token');

-- ---------------------------------------------------------------- sessions, messages and Q&A pairs in order
SELECT is(ARRAY(SELECT s ->> 'session_id' FROM jsonb_array_elements(pg_temp.doc() -> 'sessions') AS s),
    ARRAY['ex-s1', 'ex-s2', 'ex-s3'], 'every session of the user, oldest first');
SELECT is(pg_temp.doc() #> '{sessions,1,metadata}', '{"topic": "refunds"}'::jsonb, 'with its metadata');
SELECT is(
    (SELECT s - 'messages' - 'qa_pairs' FROM jsonb_array_elements(pg_temp.doc() -> 'sessions') AS s
      WHERE s ->> 'session_id' = 'ex-s1'),
    (SELECT to_jsonb(c) - 'user_id' - 'owner_deleted_at' FROM public.conversation_sessions AS c WHERE c.session_id = 'ex-s1'),
    'each session carries its columns (but the owner''s id)');
SELECT is(
    ARRAY(SELECT m ->> 'role' || ': ' || (m ->> 'content') FROM jsonb_array_elements(pg_temp.doc() #> '{sessions,0,messages}') AS m),
    ARRAY['user: first question', 'user: second question'], 'messages in order');
SELECT is(
    ARRAY(SELECT (q ->> 'question') || ' ' || (q ->> 'answer') FROM jsonb_array_elements(pg_temp.doc() #> '{sessions,0,qa_pairs}') AS q),
    ARRAY['q1? a1.', 'q2? a2.'], 'Q&A pairs in order');
SELECT is(pg_temp.doc() #> '{sessions,2,messages,0,content}', '"after the claim"'::jsonb,
    'messages written after the claim are there too');
SELECT unalike(pg_temp.doc()::text, '%ex-bea%', 'nothing of another user (bea''s session) is in it');

-- ---------------------------------------------------------------- the claim history and the rest
SELECT is(
    ARRAY(SELECT format('%s %s %s', c ->> 'session_id', c ->> 'anonymous_user_id', c ->> 'method')
            FROM jsonb_array_elements(pg_temp.doc() -> 'claims') AS c ORDER BY 1),
    ARRAY['ex-s1 ex-g1 register', 'ex-s2 ex-g1 register', 'ex-s3 ex-g2 login'],
    'the claim history: which session, from which guest id, how');
SELECT ok((SELECT bool_and((c ->> 'claimed_at')::timestamptz = now()) FROM jsonb_array_elements(pg_temp.doc() -> 'claims') AS c),
    'and when');
SELECT is(
    (SELECT row(i ->> 'provider', i ->> 'subject')::text FROM jsonb_array_elements(pg_temp.doc() -> 'identities') AS i),
    row('https://idp.example', 'ex-ada-sub')::text, 'the linked identity');
SELECT is(
    row(jsonb_array_length(pg_temp.doc() -> 'sign_ins'), jsonb_array_length(pg_temp.doc() -> 'password_reset_requests'),
        jsonb_array_length(pg_temp.doc() -> 'failed_logins'))::text,
    row(3, 1, 1)::text, 'three sign-ins (register, login, identity), one reset request, one failed login');
SELECT throws_ok($$SELECT api.export_user_data('not-a-token')$$, '28000',
    'access token is missing, invalid, expired or revoked', 'a bad token is 28000');

SELECT * FROM finish();
ROLLBACK;
