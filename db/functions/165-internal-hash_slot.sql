-- Password hashing is bounded: at most chatmem_settings.max_concurrent_hashes
-- bcrypt computations run at once, so a spray of logins leaves the other
-- cores to everyone else.  A slot is a transaction-scoped advisory lock
-- (class 'chatmem hash slot', object = slot number): it is released when the
-- call's transaction ends, whatever happens, so no error path can leak one.
--
-- A free slot is taken at once; otherwise the call queues (FIFO, in the lock
-- manager) on one slot for at most hash_wait, then is refused with CM004.
-- The refusal comes before the account is looked up: it tells nothing about it.
CREATE FUNCTION chatmem_internal.take_hash_slot()
RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY INVOKER
AS $$
DECLARE
    v_settings   public.chatmem_settings := chatmem_internal.settings();
    v_class      integer := hashtext('chatmem hash slot');
    v_slots      integer := v_settings.max_concurrent_hashes;
    -- Start at a random slot, so waiters spread over the slots.
    v_first      integer := floor(random() * v_slots)::integer;
    v_wait_ms    bigint := ceil(extract(epoch FROM v_settings.hash_wait) * 1000)::bigint;
    v_lock_timeout text := current_setting('lock_timeout');
BEGIN
    FOR v_offset IN 0 .. v_slots - 1 LOOP
        IF pg_try_advisory_xact_lock(v_class, (v_first + v_offset) % v_slots) THEN
            RETURN;
        END IF;
    END LOOP;
    IF v_wait_ms > 0 THEN
        BEGIN
            -- lock_timeout 0 would mean "wait forever": v_wait_ms is at least 1 here.
            PERFORM set_config('lock_timeout', v_wait_ms::text, true);
            PERFORM pg_advisory_xact_lock(v_class, v_first);
            PERFORM set_config('lock_timeout', v_lock_timeout, true);
            RETURN;
        EXCEPTION WHEN lock_not_available THEN
            PERFORM set_config('lock_timeout', v_lock_timeout, true);
        END;
    END IF;
    RAISE EXCEPTION USING
        ERRCODE = 'CM004',
        MESSAGE = format('too many passwords are being checked at once; none could start within %s',
                         v_settings.hash_wait),
        HINT = 'Try again in a moment.';
END
$$;
COMMENT ON FUNCTION chatmem_internal.take_hash_slot() IS
    'Take one of max_concurrent_hashes hashing slots until the transaction ends; CM004 if none frees up within hash_wait.';

-- The cost of a bcrypt hash ($2a$10$...), NULL for any other kind of hash.
CREATE FUNCTION chatmem_internal.bcrypt_cost(p_hash text)
RETURNS integer
LANGUAGE sql IMMUTABLE SECURITY INVOKER
AS $$ SELECT (regexp_match(p_hash, '^\$2[abxy]\$([0-9]{2})\$'))[1]::integer $$;
COMMENT ON FUNCTION chatmem_internal.bcrypt_cost(text) IS 'The cost of a bcrypt hash; NULL if it is not one.';
