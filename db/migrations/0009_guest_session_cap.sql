-- depends: 0008_least_privilege
-- Locks taken: SHARE ROW EXCLUSIVE on conversation_sessions for a moment (a trigger).
-- A cap on new sessions per guest id per hour (chatmem_settings.
-- guest_sessions_per_hour), enforced where every insert passes, so no path
-- can skip it.  AFTER INSERT fires only for rows really inserted: the update
-- arm of get-or-create (an existing session) is not counted.
--
-- Exact under concurrency: inserts for one guest serialize on a transaction-
-- scoped advisory lock keyed by the guest id, and each count (a fresh
-- snapshot per statement at READ COMMITTED) sees every insert committed
-- before the lock was granted, plus its own row.  Different guests never wait
-- for each other, except on a hash collision of their ids.
--
-- The trigger takes SHARE ROW EXCLUSIVE on conversation_sessions, which stops
-- its writes: the timeouts (SET LOCAL: yoyo runs each migration in a
-- transaction of its own) make a wait for that lock fail the migration after
-- 5 s instead of queueing every new session behind it.
SET LOCAL lock_timeout = '5s';
SET LOCAL statement_timeout = '60s';

CREATE FUNCTION public.conversation_sessions_guest_cap()
RETURNS trigger
LANGUAGE plpgsql VOLATILE SECURITY INVOKER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_guest_id text := NEW.metadata ->> 'anonymousUserId';
    v_cap      integer;
    v_count    integer;
BEGIN
    PERFORM pg_advisory_xact_lock(hashtextextended('chatmem guest ' || v_guest_id, 0));
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
COMMENT ON FUNCTION public.conversation_sessions_guest_cap() IS
    'Trigger: refuse (CM002) a new guest session past chatmem_settings.guest_sessions_per_hour for that guest id.';
REVOKE ALL ON FUNCTION public.conversation_sessions_guest_cap() FROM PUBLIC;

CREATE TRIGGER conversation_sessions_guest_cap
    AFTER INSERT ON public.conversation_sessions
    FOR EACH ROW
    WHEN (NEW.user_id IS NULL AND NEW.metadata ? 'anonymousUserId')
    EXECUTE FUNCTION public.conversation_sessions_guest_cap();
