-- depends: 0004_session_claims
-- Locks taken: none on tables (CREATE EXTENSION dblink).
-- dblink gives the few writes that must outlive a refused call (revoking a
-- token family when a spent refresh token is replayed; counting failed
-- logins) a transaction of their own.  See docs/security.md for the trade-offs.
--
-- Nothing here touches a table; the timeouts bound it all the same (SET LOCAL:
-- yoyo runs each migration in a transaction of its own).
SET LOCAL lock_timeout = '5s';
SET LOCAL statement_timeout = '60s';
CREATE EXTENSION IF NOT EXISTS dblink;
