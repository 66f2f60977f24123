-- register_user and login rely on READ COMMITTED: the email uniqueness check
-- and the claim wait for concurrent writers and then see their result.  At
-- REPEATABLE READ or SERIALIZABLE they would fail with a serialization error
-- that explains nothing; refuse up front instead.
CREATE FUNCTION chatmem_internal.require_read_committed(p_function text)
RETURNS void
LANGUAGE plpgsql STABLE SECURITY INVOKER
AS $$
BEGIN
    IF current_setting('transaction_isolation') <> 'read committed' THEN
        RAISE EXCEPTION USING
            ERRCODE = '25001',
            MESSAGE = format('%s must run at READ COMMITTED, not %s',
                             p_function, upper(current_setting('transaction_isolation'))),
            HINT = 'Call it in its own transaction (autocommit) or at READ COMMITTED isolation.';
    END IF;
END
$$;
COMMENT ON FUNCTION chatmem_internal.require_read_committed(text) IS
    'Raise 25001 unless the transaction runs at READ COMMITTED.';
