-- Back to migration 0016's guest cap: the AFTER INSERT trigger on
-- conversation_sessions (the functions reloaded with the rollback's schema
-- no longer check the cap themselves).
SET LOCAL lock_timeout = '5s';
SET LOCAL statement_timeout = '60s';

CREATE FUNCTION public.conversation_sessions_guest_cap()
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
CREATE TRIGGER conversation_sessions_guest_cap
    AFTER INSERT ON public.conversation_sessions
    FOR EACH ROW
    EXECUTE FUNCTION public.conversation_sessions_guest_cap();

COMMENT ON FUNCTION public.conversation_sessions_guest_cap() IS
    'Trigger: refuse (CM002) a new guest session past chatmem_settings.guest_sessions_per_hour for that guest id.';
REVOKE ALL ON FUNCTION public.conversation_sessions_guest_cap() FROM PUBLIC;
