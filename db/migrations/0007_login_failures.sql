-- depends: 0006_orphaned_sessions
-- Locks taken: none on existing tables (creates login_failures).
-- Failed logins, counted per email to throttle password guessing.  Rows are
-- written by api.login through dblink, in a transaction of their own, so
-- they survive the 28P01 that the failed call raises.
--
-- Nothing here touches an existing table; the timeouts bound it all the same
-- (SET LOCAL: yoyo runs each migration in a transaction of its own).
SET LOCAL lock_timeout = '5s';
SET LOCAL statement_timeout = '60s';

-- squawk: prefer-robust-stmts, for both statements of this file it flags (the
-- CREATE TABLE and its index): yoyo runs this migration in one transaction and
-- records it, so it never runs twice: a non-robust statement cannot meet a
-- half-done state.
-- squawk-ignore-file prefer-robust-stmts
CREATE TABLE public.login_failures (
    id        bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    email     text        NOT NULL,
    failed_at timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE public.login_failures IS
    'One row per failed api.login, keyed by the lower-cased email tried (known or not). Cleared for an email by a successful login.';
-- login_failures was created empty just above, in this same migration.
-- squawk-ignore require-concurrent-index-creation
CREATE INDEX login_failures_email_idx ON public.login_failures (email, failed_at);
REVOKE ALL ON public.login_failures FROM PUBLIC;
