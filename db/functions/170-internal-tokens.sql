-- Tokens are 32 bytes from pgcrypto's CSPRNG, hex-encoded; only their
-- SHA-256 is stored.
CREATE FUNCTION chatmem_internal.token_hash(p_token text)
RETURNS bytea
LANGUAGE sql IMMUTABLE SECURITY INVOKER
AS $$ SELECT sha256(convert_to(p_token, 'UTF8')) $$;
COMMENT ON FUNCTION chatmem_internal.token_hash(text) IS 'SHA-256 of a token: the only form in which tokens are stored.';

-- A new access and refresh token for a user, in the given family (a new
-- family for a login or registration, the same family for a refresh).
-- One row, returned through OUT parameters rather than RETURNS TABLE: a
-- set-returning PL/pgSQL function fills a tuplestore for its one row, which
-- cost register_user and login about 0.06 ms each (profiled, issue 14).
CREATE FUNCTION chatmem_internal.issue_tokens(
    p_user_id         uuid,
    p_family_id       uuid,
    OUT token         text,
    OUT refresh_token text,
    OUT expires_at    timestamptz
)
LANGUAGE plpgsql VOLATILE SECURITY INVOKER
AS $$
DECLARE
    v_settings public.chatmem_settings := chatmem_internal.settings();
    v_pair_id  uuid := gen_random_uuid();
    v_now      timestamptz := now();
BEGIN
    token := encode(chatmem_internal.random_bytes(32), 'hex');
    refresh_token := encode(chatmem_internal.random_bytes(32), 'hex');
    expires_at := v_now + v_settings.access_token_ttl;
    INSERT INTO public.auth_tokens (token_hash, kind, user_id, family_id, pair_id, expires_at)
    VALUES (chatmem_internal.token_hash(token), 'access', p_user_id, p_family_id, v_pair_id, expires_at),
           (chatmem_internal.token_hash(refresh_token), 'refresh', p_user_id, p_family_id, v_pair_id,
            v_now + v_settings.refresh_token_ttl);
END
$$;
COMMENT ON FUNCTION chatmem_internal.issue_tokens(uuid, uuid) IS
    'Issue an access and a refresh token (stored as hashes) in a token family; returns the plain tokens once.';
