-- Back to migration 0013's trigger: the WHEN clause, a settings read and a count.
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

CREATE OR REPLACE TRIGGER conversation_sessions_guest_cap
    AFTER INSERT ON public.conversation_sessions
    FOR EACH ROW
    WHEN (NEW.user_id IS NULL AND NEW.metadata ? 'anonymousUserId')
    EXECUTE FUNCTION public.conversation_sessions_guest_cap();
