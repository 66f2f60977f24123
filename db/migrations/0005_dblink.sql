-- depends: 0004_session_claims
-- Locks taken: none on tables (CREATE EXTENSION dblink).
-- dblink gives the few writes that must outlive a refused call (revoking a
-- token family when a spent refresh token is replayed; counting failed
-- logins) a transaction of their own.  See docs/security.md for the trade-offs.
CREATE EXTENSION IF NOT EXISTS dblink;
