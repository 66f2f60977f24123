-- depends: 0006_orphaned_sessions
-- Locks taken: none on existing tables (creates login_failures).
-- Failed logins, counted per email to throttle password guessing.  Rows are
-- written by api.login through dblink, in a transaction of their own, so
-- they survive the 28P01 that the failed call raises.
CREATE TABLE public.login_failures (
    id        bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    email     text        NOT NULL,
    failed_at timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE public.login_failures IS
    'One row per failed api.login, keyed by the lower-cased email tried (known or not). Cleared for an email by a successful login.';
CREATE INDEX login_failures_email_idx ON public.login_failures (email, failed_at);
REVOKE ALL ON public.login_failures FROM PUBLIC;
