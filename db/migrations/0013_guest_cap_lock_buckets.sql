-- depends: 0012_attack_limits
-- Locks taken: none on tables (replaces a trigger function).
-- The guest cap's trigger took one advisory lock per guest id per
-- transaction.  Locks live in a shared table sized for about
-- max_locks_per_transaction x max_connections entries, so a transaction that
-- inserted sessions for thousands of guests (INSERT ... SELECT, COPY,
-- pg_restore --data-only, a loop of create_or_get_session calls) ran it out
-- of memory, failing itself and whoever else needed a lock meanwhile.
--
-- Now guest ids hash into a fixed number of lock buckets: a transaction holds
-- at most that many cap locks, however many rows it inserts.  Exactness is
-- unchanged: inserts for one guest still take turns (on its bucket), and each
-- count sees every insert committed before the lock was granted.  The price is
-- that two guests of one bucket take turns too: with 256 buckets, two of eight
-- concurrent inserts share a bucket about 3% of the time, and then wait
-- for one commit.  A bulk load that touches every bucket holds all 256 until it
-- commits, so new guest sessions wait for it, as a bulk load should make them.
--
-- count(*) is bigint: the variable is too (plpgsql_check found the cast).
SET LOCAL lock_timeout = '5s';
SET LOCAL statement_timeout = '60s';
CREATE OR REPLACE FUNCTION public.conversation_sessions_guest_cap()
RETURNS trigger
LANGUAGE plpgsql VOLATILE SECURITY INVOKER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_guest_id text := NEW.metadata ->> 'anonymousUserId';
    v_cap      integer;
    v_count    bigint;
BEGIN
    -- 256 buckets: class 'chatmem guest cap', object = bucket.
    PERFORM pg_advisory_xact_lock(hashtext('chatmem guest cap'),
                                  (hashtextextended(v_guest_id, 0) & 255)::integer);
    SELECT s.guest_sessions_per_hour INTO v_cap FROM public.chatmem_settings AS s;
    SELECT count(*) INTO v_count
      FROM public.conversation_sessions AS c
     WHERE c.user_id IS NULL
       AND c.metadata ->> 'anonymousUserId' = v_guest_id
       AND c.created_at > now() - interval '1 hour';
    IF v_count > v_cap THEN
        RAISE EXCEPTION USING
            ERRCODE = 'CM002',
            MESSAGE = format('guest %s has opened %s sessions in the last hour; the limit is %s',
                             v_guest_id, v_count - 1, v_cap),
            HINT = 'Reuse an existing session, register, or wait; the limit is chatmem_settings.guest_sessions_per_hour.';
    END IF;
    RETURN NULL;
END
$$;
