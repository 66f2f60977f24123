-- depends: 0020_message_allowances
-- Locks taken: ACCESS EXCLUSIVE on conversation_sessions for a moment (DROP TRIGGER: catalog only; reads and writes wait that moment).
-- The guest cap leaves the table for the API (issue 14, item 4): the
-- trigger conversation_sessions_guest_cap goes, and api.create_or_get_session
-- and api.create_session (the only functions that open a guest's session)
-- enforce the same rule in the statement that inserts the session, with the
-- same 256 bucket locks, taken before the statement that counts
-- (db/functions/188-internal-guest_cap.sql).
--
-- Why: measured with callgrind (instructions of the backend per new guest
-- session), the trigger cost about 110,000 of api.create_or_get_session's
-- 494,000 and of api.create_session's 577,000 (the trigger call with its five
-- pinned settings, the AFTER trigger queue, a statement of its own for the
-- count); the same count as part of the insert costs about 60,000.  And a
-- table rule took the cap's locks in every bulk load of the table's owner
-- (a restore, an import), which PostgreSQL's lock table does not size for.
-- The application's role writes sessions only through those two functions
-- (migration 0008), so the rule covers every untrusted path; the owner's
-- direct writes are trusted, as every other direct write is.
--
-- Between this migration and the function reload that follows it (one
-- `chatmem migrate`, well under a second) the old functions run without the
-- cap: a guest could open a few sessions past it in that moment.
--
-- Timeouts (SET LOCAL: yoyo runs this migration in a transaction of its own):
-- a lock that cannot be had in 5 s (a long transaction on the table) fails
-- the migration, undone whole, instead of queueing every request behind it.
SET LOCAL lock_timeout = '5s';
SET LOCAL statement_timeout = '60s';

DROP TRIGGER IF EXISTS conversation_sessions_guest_cap ON public.conversation_sessions;
-- The trigger dropped above was the function's only caller (a trigger
-- function cannot be called directly), so no client can break.
-- squawk-ignore ban-drop-function
DROP FUNCTION IF EXISTS public.conversation_sessions_guest_cap();
