CREATE FUNCTION api.purge_guest_sessions(p_idle_for interval, p_dry_run boolean DEFAULT false)
RETURNS integer
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_cutoff  timestamptz;
    v_batch   integer;
    v_deleted integer := 0;
BEGIN
    IF p_idle_for IS NULL OR p_idle_for < interval '0' THEN
        PERFORM chatmem_internal.invalid('p_idle_for',
                                         CASE WHEN p_idle_for IS NULL THEN 'is required'
                                              ELSE format('%s is negative', p_idle_for) END,
                                         'Pass how long a guest session must have been idle, e.g. ''30 days''.');
    END IF;
    IF p_dry_run IS NULL THEN
        PERFORM chatmem_internal.invalid('p_dry_run', 'is required', 'Pass true to only count, false to delete.');
    END IF;
    v_cutoff := now() - p_idle_for;

    IF p_dry_run THEN
        RETURN (SELECT count(*)::integer FROM public.conversation_sessions AS s
                 WHERE s.user_id IS NULL AND s.metadata ? 'anonymousUserId' AND s.updated_at < v_cutoff);
    END IF;

    -- Idle by last activity (updated_at, bumped by every message), not by age.
    -- Batches lock with SKIP LOCKED: a session a running claim (or a new
    -- message) holds is left for the next purge instead of waited for, so
    -- purge never waits on a claim and the two cannot deadlock.  The re-check
    -- of user_id IS NULL in the DELETE guards a session claimed between the
    -- batch's snapshot and its lock.  Messages and Q&A pairs go by cascade.
    LOOP
        WITH batch AS (
            SELECT s.session_id
              FROM public.conversation_sessions AS s
             WHERE s.user_id IS NULL AND s.metadata ? 'anonymousUserId' AND s.updated_at < v_cutoff
             LIMIT 1000
               FOR UPDATE SKIP LOCKED
        )
        DELETE FROM public.conversation_sessions AS s
         USING batch
         WHERE s.session_id = batch.session_id AND s.user_id IS NULL;
        GET DIAGNOSTICS v_batch = ROW_COUNT;
        v_deleted := v_deleted + v_batch;
        EXIT WHEN v_batch < 1000;
    END LOOP;
    RETURN v_deleted;
END
$$;

COMMENT ON FUNCTION api.purge_guest_sessions(interval, boolean) IS
$$Delete unclaimed guest sessions idle (no new message, no reopening) for longer than p_idle_for, with their messages and Q&A pairs; return how many (with p_dry_run, only count them). Sessions locked by a running claim are skipped, never waited for. Granted to chatmem_admin only.
Errors: 22023 a NULL or negative p_idle_for.$$;

REVOKE ALL ON FUNCTION api.purge_guest_sessions(interval, boolean) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION api.purge_guest_sessions(interval, boolean) TO chatmem_admin;
