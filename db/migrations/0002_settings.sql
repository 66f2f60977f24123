-- depends: 0001_core_tables
-- Locks taken: none on existing tables (creates chatmem_settings).
-- One row of typed settings read by the api functions.  A DBA changes a
-- value with a plain UPDATE; the CHECKs keep it sane.
--
-- Nothing here touches an existing table; the timeouts bound it all the same
-- (SET LOCAL: yoyo runs each migration in a transaction of its own).
SET LOCAL lock_timeout = '5s';
SET LOCAL statement_timeout = '60s';

-- squawk: prefer-bigint-over-int, for all five integer columns of this table
-- (the reason holds for each): a setting a DBA types into the one row, not an
-- id or a counter that grows with the data, so use never brings it near 2^31
-- (a value past it is refused, not wrapped); three are held by their CHECK far
-- below it.
-- squawk-ignore-file prefer-bigint-over-int
-- The table is new: yoyo runs this migration in one transaction and records
-- it, so it never runs twice: a non-robust statement cannot meet a half-done
-- state.
-- squawk-ignore prefer-robust-stmts
CREATE TABLE public.chatmem_settings (
    singleton           boolean     NOT NULL DEFAULT true PRIMARY KEY CHECK (singleton),
    password_min_length integer     NOT NULL DEFAULT 8 CHECK (password_min_length BETWEEN 1 AND 72),
    bcrypt_cost         integer     NOT NULL DEFAULT 10 CHECK (bcrypt_cost BETWEEN 4 AND 31),
    access_token_ttl    interval    NOT NULL DEFAULT '1 hour' CHECK (access_token_ttl > '0'),
    refresh_token_ttl   interval    NOT NULL DEFAULT '30 days' CHECK (refresh_token_ttl > '0'),
    message_max_chars   integer     NOT NULL DEFAULT 100000 CHECK (message_max_chars BETWEEN 1 AND 10000000),
    guest_sessions_per_hour integer NOT NULL DEFAULT 100 CHECK (guest_sessions_per_hour >= 1),
    login_failure_limit integer     NOT NULL DEFAULT 5 CHECK (login_failure_limit >= 1),
    login_failure_window interval   NOT NULL DEFAULT '15 minutes' CHECK (login_failure_window > '0'),
    session_defaults    jsonb       NOT NULL
        DEFAULT '{"project": "stripe_support", "context": "customer_support"}'
        CHECK (jsonb_typeof(session_defaults) = 'object'),
    updated_at          timestamptz NOT NULL DEFAULT now()
);

COMMENT ON TABLE public.chatmem_settings IS
    'chatmem''s settings: exactly one row. Change values with UPDATE; the api functions read them on every call.';
COMMENT ON COLUMN public.chatmem_settings.bcrypt_cost IS
    'bcrypt cost for new password hashes (2^cost rounds). Existing hashes keep their own cost.';
COMMENT ON COLUMN public.chatmem_settings.session_defaults IS
    'Metadata every session made by api.create_session starts from, before the caller''s context is merged in.';

INSERT INTO public.chatmem_settings DEFAULT VALUES;
REVOKE ALL ON public.chatmem_settings FROM PUBLIC;
