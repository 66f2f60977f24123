-- depends: 0017_conversation_list_indexes
-- Locks taken: ACCESS EXCLUSIVE for a moment on users (DROP NOT NULL), session_claims (a CHECK swapped for a NOT VALID one) and chatmem_settings (two columns with constant defaults): catalog only, no scan, no rewrite; SHARE ROW EXCLUSIVE on users for a moment (the new tables' foreign keys).
-- Accounts a chat product can ship (issue 13): password change and reset,
-- sign-out everywhere, export and erasure, and sign-in through an external
-- identity provider.
--
-- Everything here changes the catalog only: DROP NOT NULL and a CHECK added
-- NOT VALID read no row, the columns' defaults are constants (no rewrite),
-- and the two tables are new.  Migration 0019 validates the new CHECK in a
-- transaction of its own, under SHARE UPDATE EXCLUSIVE (reads and writes go
-- on); validating here would scan session_claims while this transaction still
-- holds ACCESS EXCLUSIVE on it.
--
-- Timeouts (SET LOCAL: yoyo runs this migration in a transaction of its own):
-- a lock that cannot be had in 5 s (a long transaction on users) fails the
-- migration, undone whole, instead of queueing every login behind it.
SET LOCAL lock_timeout = '5s';
SET LOCAL statement_timeout = '60s';

-- squawk: prefer-robust-stmts, for every statement of this file it flags (the
-- ALTER TABLEs, the two CREATE TABLEs and their indexes): yoyo runs this
-- migration in one transaction and records it, so it never runs twice: a
-- non-robust statement cannot meet a half-done state.
-- squawk-ignore-file prefer-robust-stmts
-- squawk: require-concurrent-index-creation, for the indexes of this file:
-- each is on a table this same migration creates empty just before.
-- (CONCURRENTLY cannot run inside yoyo's transaction anyway.)
-- squawk-ignore-file require-concurrent-index-creation

-- An account made through an identity provider (api.link_identity) has no
-- password.  NULL is "no password": api.login refuses it with 28P01 like a
-- wrong password, after a dummy bcrypt at the current cost.
ALTER TABLE public.users
    -- Catalog only (no row is read or written), and what the feature needs:
    -- every existing row keeps its hash, and every reader copes with NULL
    -- (chatmem_internal.check_password).  No older client reads this column:
    -- the tables are reached only through the api functions.
    -- squawk-ignore ban-drop-not-null
    ALTER COLUMN password_hash DROP NOT NULL;
COMMENT ON COLUMN public.users.password_hash IS
    'bcrypt hash of the password; NULL for an account made through an identity provider (no password: api.login refuses it).';

-- The claim audit learns a third way in: a sign-in through an identity
-- provider.  The wider CHECK replaces the old one under the same name, NOT
-- VALID here (every existing row passes the old, narrower check, and new rows
-- are checked from now on), validated by migration 0019.
ALTER TABLE public.session_claims
    -- The guarantee stays: the same statement adds the wider check back under
    -- the same name, and no other transaction sees the table in between.
    -- squawk-ignore ban-drop-constraint
    DROP CONSTRAINT session_claims_method_check,
    ADD CONSTRAINT session_claims_method_check CHECK (method IN ('register', 'login', 'identity')) NOT VALID;

ALTER TABLE public.chatmem_settings
    ADD COLUMN password_reset_ttl interval NOT NULL DEFAULT '30 minutes'
        CONSTRAINT chatmem_settings_password_reset_ttl_check
        CHECK (password_reset_ttl > '0' AND password_reset_ttl <= '1 day'),
    ADD COLUMN link_identity_by_email boolean NOT NULL DEFAULT false;
COMMENT ON COLUMN public.chatmem_settings.password_reset_ttl IS
    'How long a token from api.request_password_reset stays valid (at most a day).';
COMMENT ON COLUMN public.chatmem_settings.link_identity_by_email IS
    'Whether api.link_identity may attach a new identity to an existing account with the same email (only for providers that verify emails); false: 23505.';

-- Sign-in through an external provider: who (provider, subject) is which
-- account.  An account may have several identities; an identity one account.
CREATE TABLE public.user_identities (
    provider     text        NOT NULL CHECK (char_length(provider) BETWEEN 1 AND 255),
    subject      text        NOT NULL CHECK (char_length(subject) BETWEEN 1 AND 255),
    user_id      uuid        NOT NULL REFERENCES public.users (id) ON DELETE CASCADE,
    created_at   timestamptz NOT NULL DEFAULT now(),
    last_used_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (provider, subject)
);
COMMENT ON TABLE public.user_identities IS
    'Identities of external providers (OpenID Connect iss and sub) linked to accounts by api.link_identity.';
CREATE INDEX user_identities_user_idx ON public.user_identities (user_id);
REVOKE ALL ON public.user_identities FROM PUBLIC;

-- Password reset tokens: only their SHA-256 is stored.  A request for an
-- email with no account stores a row too (user_id NULL, a decoy that resets
-- nothing), so both answers cost the same work and time.  Rows are keyed by
-- the SHA-256 of the lower-cased email asked for, never the email itself, so
-- the emails of people without an account are not kept.
CREATE TABLE public.password_reset_tokens (
    id         bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    token_hash bytea       NOT NULL UNIQUE CHECK (octet_length(token_hash) = 32),
    email_hash bytea       NOT NULL CHECK (octet_length(email_hash) = 32),
    user_id    uuid        REFERENCES public.users (id) ON DELETE CASCADE,
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL
);
COMMENT ON TABLE public.password_reset_tokens IS
    'Hashes of password reset tokens (api.request_password_reset); at most 3 per email, single use.';
COMMENT ON COLUMN public.password_reset_tokens.user_id IS
    'The account the token resets; NULL when no account had the email (the token resets nothing).';
COMMENT ON COLUMN public.password_reset_tokens.email_hash IS
    'SHA-256 of the lower-cased email the token was asked for: the key of the per-email cap.';
CREATE INDEX password_reset_tokens_email_idx ON public.password_reset_tokens (email_hash, id);
CREATE INDEX password_reset_tokens_user_idx ON public.password_reset_tokens (user_id);
CREATE INDEX password_reset_tokens_expiry_idx ON public.password_reset_tokens (expires_at);
REVOKE ALL ON public.password_reset_tokens FROM PUBLIC;

-- chatmem_identity_broker: the backend that verifies ID tokens of external
-- providers itself and then calls api.link_identity, which issues chatmem
-- tokens for an account without any password: so not chatmem_app.
DO $$
BEGIN
    CREATE ROLE chatmem_identity_broker NOLOGIN;
EXCEPTION WHEN duplicate_object THEN
    NULL;  -- roles are cluster-wide: another database of this cluster made it
END
$$;
COMMENT ON ROLE chatmem_identity_broker IS
    'chatmem: may call api.link_identity (grant it to the login role of the backend that verifies ID tokens).';
