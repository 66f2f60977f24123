-- depends: 0010_dblink_not_public
-- Locks taken: SHARE UPDATE EXCLUSIVE on conversation_sessions while it is analyzed (reads and writes go on).
-- The planner keeps no statistics for the expression of a partial index, so
-- it guessed thousands of sessions per guest id and chose a bitmap scan for
-- the claim.  Statistics on the expression itself let it see that a guest
-- has a handful, and pick a plain index scan (measured on 1M sessions).
CREATE STATISTICS IF NOT EXISTS public.conversation_sessions_guest_id_stats
    ON ((metadata ->> 'anonymousUserId')) FROM public.conversation_sessions;
ANALYZE public.conversation_sessions;
