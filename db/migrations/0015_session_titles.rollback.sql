-- Drops the check with the column (catalog only, ACCESS EXCLUSIVE for a moment).
SET LOCAL lock_timeout = '5s';
SET LOCAL statement_timeout = '60s';
ALTER TABLE public.conversation_sessions DROP COLUMN title;
