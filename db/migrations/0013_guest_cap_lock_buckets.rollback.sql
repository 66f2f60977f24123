-- Back to one advisory lock per guest id (migration 0009's trigger function).
CREATE OR REPLACE FUNCTION public.conversation_sessions_guest_cap()
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
