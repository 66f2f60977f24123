-- depends: 0015_session_titles
-- Locks taken: SHARE ROW EXCLUSIVE on conversation_sessions for a moment (CREATE OR REPLACE TRIGGER: catalog only; reads go on, writes wait that moment).
-- The guest cap's trigger, cheaper and steadier on every new guest session
-- (issue 14, item 4).  Same rule, same exactness, same bucket locks as
-- migration 0013.  Measured with callgrind (instructions of the backend per
-- new session), a bare insert into chatmem's table cost about 355,000
-- instructions with the old trigger and 333,000 with this one, against
-- 213,000 into a copy of the table without it; and with pg_stat_statements
-- (track = all, track_planning = on):
--
-- * the WHEN clause cost about 25,000 instructions per INSERT statement:
--   PostgreSQL reads a trigger's WHEN back from its stored text and plans it
--   once per statement, and an API call is one statement.  The test moves
--   into the function (a row with no user_id and a guest id), where it is
--   two comparisons.  Inserts that are no guest's (a user's session, a
--   session with no identity) now call the function, which returns at once:
--   a few microseconds per row, which bulk loads of such rows pay and new
--   guest sessions no longer do;
-- * the settings read and the count were two queries, the count an
--   aggregate; one query now asks whether the guest has more sessions in
--   the last hour than the cap, with the cap read in the same query: an
--   index probe that stops at the cap + 1st row.  The exact count is taken
--   only to word the refusal;
-- * the plan of that query no longer depends on the table's statistics.
--   With the guest id a parameter, PostgreSQL chooses between a plan for
--   the value at hand (planned on every call) and one generic plan, by
--   estimated cost.  Once a few guests with many sessions dominated the
--   statistics of the guest id, the old count was planned anew on every
--   insert (80-100 us of planning per new session, measured); and after a
--   TRUNCATE, or on a new table, its generic plan was a sequential scan,
--   kept by each connection until the next ANALYZE, while the table grew.
--   The function now pins what the plan must be: generic (planned once per
--   connection) and an index scan of conversation_sessions_guest_idx
--   (sequential and bitmap scans off).  And JIT off: a disabled plan type
--   still counts its penalty in the cost, which would cross jit_above_cost
--   and compile the one-page settings scan on every call.  Each pinned
--   setting costs a save and a restore per call, about 10,000 instructions
--   for the four; one call planned anew costs some thirty times that.
--
-- Exactness is unchanged: the bucket lock is still taken by a statement of
-- its own, before the query that counts, so the count's snapshot (a new one
-- per statement at READ COMMITTED) sees every insert of the guest committed
-- before the lock was granted, plus the row being inserted.
--
-- Timeouts (SET LOCAL: yoyo runs this migration in a transaction of its own):
-- a lock that cannot be had in 5 s (a long transaction on the table) fails
-- the migration, undone whole, instead of queueing every request behind it.
SET LOCAL lock_timeout = '5s';
SET LOCAL statement_timeout = '60s';

CREATE OR REPLACE FUNCTION public.conversation_sessions_guest_cap()
RETURNS trigger
LANGUAGE plpgsql VOLATILE SECURITY INVOKER
SET search_path = pg_catalog, pg_temp
-- One plan for the cap's query whatever the statistics say (see above).
SET plan_cache_mode = force_generic_plan
SET enable_seqscan = off
SET enable_bitmapscan = off
SET jit = off
AS $$
DECLARE
    v_guest_id text := NEW.metadata ->> 'anonymousUserId';
    v_cap      integer;
    v_count    bigint;
BEGIN
    -- Only a guest's session counts (what the trigger's WHEN clause said
    -- before).  A key set to JSON null names no guest, as it did then.
    IF NEW.user_id IS NOT NULL OR v_guest_id IS NULL THEN
        RETURN NULL;
    END IF;
    -- 256 buckets: class 'chatmem guest cap', object = bucket.
    PERFORM pg_advisory_xact_lock(hashtext('chatmem guest cap'),
                                  (hashtextextended(v_guest_id, 0) & 255)::integer);
    -- Past the cap when the guest's sessions of the last hour, this one
    -- included, are more than the cap: when there is a row after the first
    -- guest_sessions_per_hour of them.
    IF EXISTS (SELECT FROM public.chatmem_settings AS s
                WHERE EXISTS (SELECT FROM public.conversation_sessions AS c
                               WHERE c.user_id IS NULL
                                 AND c.metadata ->> 'anonymousUserId' = v_guest_id
                                 AND c.created_at > now() - interval '1 hour'
                              OFFSET s.guest_sessions_per_hour)) THEN
        SELECT s.guest_sessions_per_hour INTO v_cap FROM public.chatmem_settings AS s;
        SELECT count(*) INTO v_count
          FROM public.conversation_sessions AS c
         WHERE c.user_id IS NULL
           AND c.metadata ->> 'anonymousUserId' = v_guest_id
           AND c.created_at > now() - interval '1 hour';
        RAISE EXCEPTION USING
            ERRCODE = 'CM002',
            MESSAGE = format('guest %s has opened %s sessions in the last hour; the limit is %s',
                             v_guest_id, v_count - 1, v_cap),
            HINT = 'Reuse an existing session, register, or wait; the limit is chatmem_settings.guest_sessions_per_hour.';
    END IF;
    RETURN NULL;
END
$$;

-- AFTER INSERT still: a row that takes get-or-create's update arm (an
-- existing session) is not counted.
CREATE OR REPLACE TRIGGER conversation_sessions_guest_cap
    AFTER INSERT ON public.conversation_sessions
    FOR EACH ROW
    EXECUTE FUNCTION public.conversation_sessions_guest_cap();
