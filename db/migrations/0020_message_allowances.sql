-- depends: 0019_claim_method_identity_validated
-- transactional: false
-- Locks taken: ACCESS EXCLUSIVE on chatmem_settings for a moment (two nullable columns with constant defaults: catalog only, one-row table); SHARE UPDATE EXCLUSIVE on conversation_messages while one index is built concurrently (reads and writes go on throughout).
-- Message allowances (issue 12): how many user turns a guest, and a
-- signed-up person, may send in a rolling 24 hours.  api.add_message counts
-- the caller's user turns of the last 24 hours through the sessions the
-- caller owns (so a guest's turns count for the account once a claim moves
-- its sessions), and api.get_allowance shows the count.
--
-- Outside a transaction (yoyo's "transactional: false"), as 0017: CREATE
-- INDEX CONCURRENTLY cannot run in one, and a plain CREATE INDEX would stop
-- every message from being written for the whole build of an index on the
-- largest table.  yoyo runs each statement in a transaction of its own and
-- records the migration only when every statement succeeded; each statement
-- here can run again (IF NOT EXISTS, and the index's leftover dropped first),
-- and should one fail, the rollback file's statements (each IF EXISTS) undo
-- those that ran.
--
-- Timeouts: SET, not SET LOCAL (which does nothing outside a transaction
-- block); they last as long as yoyo's connection, this migration.  Every api
-- call reads chatmem_settings, so its ALTER may wait 5 s for the lock at most
-- (then the migration fails and the next chatmem migrate tries again) rather
-- than queue every call behind it.
SET lock_timeout = '5s';
SET statement_timeout = '60s';

-- NULL is "no limit".  A guest's default of 20 is the allowance; a
-- signed-up person has none until the product sets one.
ALTER TABLE public.chatmem_settings
    -- A small count in the one-row settings table, like its other integer columns.
    -- squawk-ignore prefer-bigint-over-int
    ADD COLUMN IF NOT EXISTS guest_messages_per_day integer DEFAULT 20
        CONSTRAINT chatmem_settings_guest_messages_per_day_check CHECK (guest_messages_per_day >= 1),
    -- squawk-ignore prefer-bigint-over-int
    ADD COLUMN IF NOT EXISTS user_messages_per_day integer DEFAULT NULL
        CONSTRAINT chatmem_settings_user_messages_per_day_check CHECK (user_messages_per_day >= 1);
COMMENT ON COLUMN public.chatmem_settings.guest_messages_per_day IS
    'How many user turns one guest id may send with api.add_message in a rolling 24 hours (NULL: no limit). Over it: CM003.';
COMMENT ON COLUMN public.chatmem_settings.user_messages_per_day IS
    'How many user turns one signed-up user may send in a rolling 24 hours, the claimed guest turns included (NULL: no limit). Over it: CM003.';

-- The index build waits for every older transaction to end; it blocks no
-- read or write meanwhile.  An hour bounds a build that hangs, not a large
-- table's.
SET lock_timeout = '10min';
SET statement_timeout = '1h';

-- A concurrent build that fails leaves an INVALID index behind, which IF NOT
-- EXISTS would then take for a built one: drop any leftover first.  yoyo
-- never runs this migration again once it succeeded, so this only ever meets
-- the leftover of a failed attempt.
DROP INDEX CONCURRENTLY IF EXISTS public.conversation_messages_user_turns_idx;
-- A session's user turns by time: what the allowance counts.  The count
-- reaches the caller's sessions active in the last 24 hours through
-- conversation_sessions_user_activity_idx or _guest_activity_idx, then each
-- session's turns of the window through this index; assistant and system
-- turns (half of a conversation, never counted) are not in it.
CREATE INDEX CONCURRENTLY IF NOT EXISTS conversation_messages_user_turns_idx
    ON public.conversation_messages (session_id, created_at)
    WHERE role = 'user';
