CREATE FUNCTION api.export_user_data(p_token text)
RETURNS jsonb
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
-- A secret is an argument here: nothing this call raises (a refusal, a
-- timeout, a cancel) reaches the server log (see api.login for why both
-- settings are needed).
SET log_min_error_statement = panic
SET log_min_messages = panic
-- One statement, so one snapshot: the document is consistent, whatever
-- writes go on meanwhile.  Sessions are exported whole (every column but the
-- owner's id, which the profile carries), so a column added later is
-- exported too; the profile names its fields, so no hash ever is.
AS $$
    SELECT jsonb_build_object(
        'format', 'chatmem-export-1',
        'exported_at', now(),
        'profile', jsonb_build_object(
            'id', u.id, 'name', u.name, 'email', u.email,
            'created_at', u.created_at, 'updated_at', u.updated_at,
            'has_password', u.password_hash IS NOT NULL),
        'identities', coalesce((
            SELECT jsonb_agg(jsonb_build_object('provider', i.provider, 'subject', i.subject,
                                                'linked_at', i.created_at, 'last_used_at', i.last_used_at)
                             ORDER BY i.created_at, i.provider, i.subject)
              FROM public.user_identities AS i WHERE i.user_id = u.id), '[]'::jsonb),
        'sessions', coalesce((
            SELECT jsonb_agg(
                       to_jsonb(s) - 'user_id' - 'owner_deleted_at'
                       || jsonb_build_object(
                           'messages', coalesce((
                               SELECT jsonb_agg(jsonb_build_object('id', m.id, 'role', m.role,
                                                                   'content', m.content,
                                                                   'created_at', m.created_at)
                                                ORDER BY m.id)
                                 FROM public.conversation_messages AS m
                                WHERE m.session_id = s.session_id), '[]'::jsonb),
                           'qa_pairs', coalesce((
                               SELECT jsonb_agg(jsonb_build_object('id', q.id, 'question', q.question,
                                                                   'answer', q.answer,
                                                                   'created_at', q.created_at)
                                                ORDER BY q.id)
                                 FROM public.qa_pairs AS q
                                WHERE q.session_id = s.session_id), '[]'::jsonb))
                       ORDER BY s.created_at, s.session_id)
              FROM public.conversation_sessions AS s WHERE s.user_id = u.id), '[]'::jsonb),
        'claims', coalesce((
            SELECT jsonb_agg(jsonb_build_object('session_id', c.session_id,
                                                'anonymous_user_id', c.anonymous_user_id,
                                                'method', c.method, 'claimed_at', c.claimed_at)
                             ORDER BY c.claimed_at, c.id)
              FROM public.session_claims AS c WHERE c.user_id = u.id), '[]'::jsonb),
        -- Each login (a token family), without any token or hash.
        'sign_ins', coalesce((
            SELECT jsonb_agg(jsonb_build_object('started_at', f.started_at,
                                                'last_refreshed_at', f.last_refreshed_at,
                                                'expires_at', f.expires_at, 'revoked', f.revoked)
                             ORDER BY f.started_at)
              FROM (SELECT min(t.created_at) AS started_at, max(t.created_at) AS last_refreshed_at,
                           max(t.expires_at) AS expires_at, bool_and(t.revoked_at IS NOT NULL) AS revoked
                      FROM public.auth_tokens AS t WHERE t.user_id = u.id
                     GROUP BY t.family_id) AS f), '[]'::jsonb),
        'password_reset_requests', coalesce((
            SELECT jsonb_agg(jsonb_build_object('requested_at', r.created_at, 'expires_at', r.expires_at)
                             ORDER BY r.id)
              FROM public.password_reset_tokens AS r WHERE r.user_id = u.id), '[]'::jsonb),
        'failed_logins', coalesce((
            SELECT jsonb_agg(f.failed_at ORDER BY f.failed_at)
              FROM public.login_failures AS f WHERE f.email = lower(u.email)), '[]'::jsonb))
      FROM chatmem_internal.access_token(p_token) AS t
      JOIN public.users AS u ON u.id = t.user_id
$$;

COMMENT ON FUNCTION api.export_user_data(text) IS
$$Everything chatmem stores about the access token's user, as one JSON document (a consistent snapshot), for a copy of their data (GDPR articles 15 and 20).

Keys: format ('chatmem-export-1'), exported_at; profile (id, name, email, created_at, updated_at, has_password: never the password hash); identities (provider, subject, linked_at, last_used_at); sessions, oldest first, each with its columns (session_id, metadata, created_at, updated_at, ...) and its messages and qa_pairs in order; claims (which guest id's session became the account's, when, and how: register, login or identity); sign_ins (each login's start, last refresh, expiry and whether it is revoked: never a token or its hash); password_reset_requests (when, until when); failed_logins (when). Nothing this call raises reaches the server log.
Errors: 28000 missing, invalid, expired or revoked token.$$;

REVOKE ALL ON FUNCTION api.export_user_data(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION api.export_user_data(text) TO chatmem_app;
