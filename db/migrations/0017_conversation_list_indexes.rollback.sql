-- Outside a transaction, like the migration (SET lasts as long as yoyo's
-- connection).  The title check stays: it belongs to migration 0015.
--
-- yoyo also runs these when a statement of the migration fails, to undo the
-- statements that ran before it: it pairs this file's last statement with the
-- migration's first, and so on.  Each is harmless to run whatever ran before
-- (IF EXISTS), so any such subset leaves no index of this migration behind,
-- valid or not, and the next chatmem migrate builds both again.
SET lock_timeout = '10min';
SET statement_timeout = '1h';
DROP INDEX CONCURRENTLY IF EXISTS public.conversation_sessions_guest_activity_idx;
DROP INDEX CONCURRENTLY IF EXISTS public.conversation_sessions_user_activity_idx;
