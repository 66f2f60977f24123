-- The role chatmem_identity_broker is kept: roles are cluster-wide, and
-- another database of this cluster may use it.
SET LOCAL lock_timeout = '5s';
SET LOCAL statement_timeout = '60s';

-- An account without a password, or a claim made by a sign-in through a
-- provider, has no place in the schema before this migration: refuse rather
-- than drop accounts or rewrite the audit.
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM public.users WHERE password_hash IS NULL)
       OR EXISTS (SELECT 1 FROM public.session_claims WHERE method = 'identity') THEN
        RAISE EXCEPTION USING
            ERRCODE = '55000',
            MESSAGE = 'refusing to roll back 0018_accounts: accounts without a password, or claims made by '
                      'signing in through an identity provider, exist',
            HINT = 'Erase those accounts (api.delete_account) first, or keep this migration.';
    END IF;
END
$$;

DROP TABLE public.password_reset_tokens;
DROP TABLE public.user_identities;
ALTER TABLE public.chatmem_settings
    DROP COLUMN link_identity_by_email,
    DROP COLUMN password_reset_ttl;
ALTER TABLE public.session_claims
    DROP CONSTRAINT session_claims_method_check,
    ADD CONSTRAINT session_claims_method_check CHECK (method IN ('register', 'login'));
ALTER TABLE public.users ALTER COLUMN password_hash SET NOT NULL;
COMMENT ON COLUMN public.users.password_hash IS NULL;
