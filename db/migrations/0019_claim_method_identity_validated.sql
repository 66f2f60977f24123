-- depends: 0018_accounts
-- Locks taken: SHARE UPDATE EXCLUSIVE on session_claims while its method check is validated (reads and writes go on).
-- Validates the claim audit's method check that migration 0018 added NOT
-- VALID, in a transaction of its own: VALIDATE CONSTRAINT reads every row,
-- but under SHARE UPDATE EXCLUSIVE, which the claims' inserts do not conflict
-- with, so registrations, logins and sign-ins go on meanwhile.  Every row
-- passes (each passed the narrower check it replaces).
--
-- Timeouts (SET LOCAL: yoyo runs each migration in a transaction of its own):
-- the usual 5 s for the lock, but 30 minutes for the statement: the audit
-- grows with every claim, and a scan of a large one on cold disks takes
-- minutes; nothing waits on it meanwhile, and the limit still ends a scan
-- that hangs.
SET LOCAL lock_timeout = '5s';
SET LOCAL statement_timeout = '30min';
-- yoyo runs this migration in one transaction and records it; and validating
-- a constraint that is valid already does nothing, so a rerun is harmless.
-- squawk-ignore prefer-robust-stmts
ALTER TABLE public.session_claims VALIDATE CONSTRAINT session_claims_method_check;
