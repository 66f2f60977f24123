-- depends: 0002_settings
-- Locks taken: none on existing tables (creates auth_tokens; SHARE ROW EXCLUSIVE on users for a moment, for its foreign key).
-- Access and refresh tokens.  Only the SHA-256 of a token is stored: a copy
-- of this table lets nobody log in.
--
-- The timeouts (SET LOCAL: yoyo runs each migration in a transaction of its
-- own) keep the foreign key's wait for its lock on users from queueing every
-- login and registration behind this migration.
SET LOCAL lock_timeout = '5s';
SET LOCAL statement_timeout = '60s';

-- squawk: prefer-robust-stmts, for every statement of this file it flags (the
-- CREATE TABLE and its three indexes): yoyo runs this migration in one
-- transaction and records it, so it never runs twice: a non-robust statement
-- cannot meet a half-done state.
-- squawk-ignore-file prefer-robust-stmts
-- squawk: require-concurrent-index-creation, for all three indexes of this
-- file: each is on auth_tokens, which this same migration creates empty just
-- before.  (CONCURRENTLY cannot run inside yoyo's transaction anyway.)
-- squawk-ignore-file require-concurrent-index-creation
CREATE TABLE public.auth_tokens (
    token_hash bytea       NOT NULL PRIMARY KEY CHECK (octet_length(token_hash) = 32),
    kind       text        NOT NULL CHECK (kind IN ('access', 'refresh')),
    user_id    uuid        NOT NULL REFERENCES public.users (id) ON DELETE CASCADE,
    family_id  uuid        NOT NULL,
    pair_id    uuid        NOT NULL,
    expires_at timestamptz NOT NULL,
    used_at    timestamptz,
    revoked_at timestamptz,
    created_at timestamptz NOT NULL DEFAULT now()
);

COMMENT ON TABLE public.auth_tokens IS
    'Hashes of issued tokens. A login or registration starts a family; each refresh rotates within it.';
COMMENT ON COLUMN public.auth_tokens.family_id IS
    'The login (or registration) this token descends from by rotation; reuse of a spent refresh token revokes the whole family.';
COMMENT ON COLUMN public.auth_tokens.pair_id IS
    'The access and refresh token issued together share it; logout revokes both.';
COMMENT ON COLUMN public.auth_tokens.used_at IS
    'When a refresh token was exchanged for a new pair; presenting it again is reuse.';

CREATE INDEX auth_tokens_family_idx ON public.auth_tokens (family_id);
CREATE INDEX auth_tokens_pair_idx ON public.auth_tokens (pair_id);
CREATE INDEX auth_tokens_user_idx ON public.auth_tokens (user_id);
REVOKE ALL ON public.auth_tokens FROM PUBLIC;
