-- Outside a transaction, like the migration.  yoyo also runs these when a
-- statement of the migration fails, to undo those that ran before it: each
-- is harmless whatever ran before (IF EXISTS).
SET lock_timeout = '5s';
SET statement_timeout = '60s';
-- squawk-ignore ban-drop-column
ALTER TABLE public.chatmem_settings
    DROP COLUMN IF EXISTS user_messages_per_day,
    DROP COLUMN IF EXISTS guest_messages_per_day;
SET lock_timeout = '10min';
SET statement_timeout = '1h';
DROP INDEX CONCURRENTLY IF EXISTS public.conversation_messages_user_turns_idx;
