-- depends: 0003_auth_tokens
-- Locks taken: none on existing tables (creates session_claims).
-- The audit of claims: which guest session became whose, when, and how.
-- No foreign keys: the record outlives a deleted session or user.
CREATE TABLE public.session_claims (
    id                bigint       GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
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
