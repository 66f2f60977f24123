-- depends: 0003_auth_tokens
-- Locks taken: none on existing tables (creates session_claims).
-- The audit of claims: which guest session became whose, when, and how.
-- No foreign keys: the record outlives a deleted session or user.
--
-- Nothing here touches an existing table; the timeouts bound it all the same
-- (SET LOCAL: yoyo runs each migration in a transaction of its own).
SET LOCAL lock_timeout = '5s';
SET LOCAL statement_timeout = '60s';

-- squawk: prefer-robust-stmts, for every statement of this file it flags (the
-- CREATE TABLE and its two indexes): yoyo runs this migration in one
-- transaction and records it, so it never runs twice: a non-robust statement
-- cannot meet a half-done state.
-- squawk-ignore-file prefer-robust-stmts
-- squawk: require-concurrent-index-creation, for both indexes of this file:
-- each is on session_claims, which this same migration creates empty just
-- before.  (CONCURRENTLY cannot run inside yoyo's transaction anyway.)
-- squawk-ignore-file require-concurrent-index-creation
CREATE TABLE public.session_claims (
    id                bigint       GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    -- The type of the conversation_sessions.session_id it records (the older
    -- system's, and the API's limit of 255 characters); the table is created
    -- empty here.
    -- squawk-ignore prefer-text-field
    session_id        varchar(255) NOT NULL,
    anonymous_user_id text         NOT NULL,
    user_id           uuid         NOT NULL,
    method            text         NOT NULL CHECK (method IN ('register', 'login')),
    claimed_at        timestamptz  NOT NULL DEFAULT now()
);

COMMENT ON TABLE public.session_claims IS
    'One row per guest session claimed by an account, written in the same statement as the claim.';

CREATE INDEX session_claims_session_idx ON public.session_claims (session_id);
CREATE INDEX session_claims_user_idx ON public.session_claims (user_id);
REVOKE ALL ON public.session_claims FROM PUBLIC;
