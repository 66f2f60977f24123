-- depends: 0010_dblink_not_public
-- Locks taken: SHARE UPDATE EXCLUSIVE on conversation_sessions while it is analyzed (reads and writes go on).
-- The planner keeps no statistics for the expression of a partial index, so
-- it guessed thousands of sessions per guest id and chose a bitmap scan for
-- the claim.  Statistics on the expression itself let it see that a guest
-- has a handful, and pick a plain index scan (measured on 1M sessions).
--
-- Timeouts (SET LOCAL: yoyo runs each migration in a transaction of its own):
-- the usual 5 s for the lock, but 30 minutes for a statement.  ANALYZE reads a
-- sample of 300 x default_statistics_target rows (30,000 by default) wherever
-- they lie in the table: seconds when cached, minutes on a large table on cold
-- disks (30,000 random reads at 10 ms are 5 minutes), more with a raised
-- target.  It takes only SHARE UPDATE EXCLUSIVE, so reads and writes go on
-- meanwhile; a 60 s limit could only fail the migration on a big database,
-- and the larger one still ends a statement that hangs.
SET LOCAL lock_timeout = '5s';
SET LOCAL statement_timeout = '30min';
CREATE STATISTICS IF NOT EXISTS public.conversation_sessions_guest_id_stats
    ON ((metadata ->> 'anonymousUserId')) FROM public.conversation_sessions;
ANALYZE public.conversation_sessions;
