-- depends: 0016_guest_cap_one_query
-- transactional: false
-- Locks taken: SHARE UPDATE EXCLUSIVE on conversation_sessions while the title check is validated and while each of two indexes is built concurrently (reads and writes go on throughout).
-- What api.list_conversations needs to serve any page from an index, and the
-- validation of migration 0015's title check.
--
-- Outside a transaction (yoyo's "transactional: false"): CREATE INDEX
-- CONCURRENTLY cannot run in one, and a plain CREATE INDEX would stop every
-- write to the table for the whole build.  yoyo runs each statement in a
-- transaction of its own, on a connection of its own that it closes after
-- this migration, and records the migration only when every statement
-- succeeded.  Every statement here can run again: should one fail, yoyo
-- undoes those that ran with the statements of the rollback file (each of
-- them IF EXISTS), and the next chatmem migrate starts this one over.
--
-- Timeouts: SET, not SET LOCAL (which does nothing outside a transaction
-- block); they last as long as yoyo's connection, this migration.  Nothing
-- here blocks the application: VALIDATE and CREATE INDEX CONCURRENTLY take
-- SHARE UPDATE EXCLUSIVE, which reads and writes do not conflict with, and a
-- waiting request for it makes no read or write queue behind it.  What they
-- wait for is other transactions (a build waits for every transaction older
-- than it to end), so lock_timeout is generous.  A build reads the table two
-- or three times: an hour bounds a build that hangs, not a large table's.
SET lock_timeout = '10min';
SET statement_timeout = '1h';

-- Scans the table without blocking reads or writes; every row's title is
-- NULL or was checked when written (the check is enforced since 0015).
-- Validating a constraint that is valid already changes nothing, so this
-- statement can run again.
-- squawk-ignore prefer-robust-stmts
ALTER TABLE public.conversation_sessions VALIDATE CONSTRAINT conversation_sessions_title_length;

-- A concurrent build that fails leaves an INVALID index behind, which
-- IF NOT EXISTS would then take for a built one: drop any leftover first.
-- yoyo never runs this migration again once it succeeded, so this only ever
-- meets the leftover of a failed attempt.
DROP INDEX CONCURRENTLY IF EXISTS public.conversation_sessions_user_activity_idx;
-- A user's conversations by last activity, keyset-paged on
-- (updated_at, session_id): any page is one range of this index.
--
-- Both indexes hold exactly the sessions that can be listed, and each
-- predicate has a condition that the older queries on the same columns do not
-- state, so that only api.list_conversations, which states it, can use them.
-- A user's session never has owner_deleted_at (it is set only as its owner
-- goes and user_id becomes NULL), but the planner cannot know that: without
-- it, api.list_sessions (user_id = ..., no use for this order) would find this
-- smaller index as cheap as conversation_sessions_user_idx, and take the newer
-- of two equal indexes.
CREATE INDEX CONCURRENTLY IF NOT EXISTS conversation_sessions_user_activity_idx
    ON public.conversation_sessions (user_id, updated_at DESC, session_id DESC)
    WHERE user_id IS NOT NULL AND owner_deleted_at IS NULL;

DROP INDEX CONCURRENTLY IF EXISTS public.conversation_sessions_guest_activity_idx;
-- The same for a guest's unclaimed sessions.  The claim's condition
-- (metadata ->> 'anonymousUserId' = the guest) implies "metadata ?
-- 'anonymousUserId'", but the planner cannot prove it, so the claim keeps to
-- conversation_sessions_guest_idx.
CREATE INDEX CONCURRENTLY IF NOT EXISTS conversation_sessions_guest_activity_idx
    ON public.conversation_sessions ((metadata ->> 'anonymousUserId'), updated_at DESC, session_id DESC)
    WHERE user_id IS NULL AND owner_deleted_at IS NULL AND metadata ? 'anonymousUserId';
