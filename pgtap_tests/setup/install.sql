-- Run by `make test` on the test database before pg_prove: pgTAP, plpgsql_check
-- (for tests/test_static_analysis.py), and the `tests` schema of persona
-- helpers that the test files share.
SET client_min_messages = warning;
-- The helpers call api functions that a later reload may replace.
SET check_function_bodies = off;
CREATE SCHEMA IF NOT EXISTS tap;
CREATE EXTENSION IF NOT EXISTS pgtap SCHEMA tap;
CREATE EXTENSION IF NOT EXISTS plpgsql_check SCHEMA tap;
DO $$
BEGIN
    EXECUTE format('ALTER DATABASE %I SET search_path = "$user", public, tap', current_database());
END
$$;
\ir helpers.sql
