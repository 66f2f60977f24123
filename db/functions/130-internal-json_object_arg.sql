-- Caller-supplied metadata and context: a JSON object of at most 64 KiB and
-- 32 levels.
-- NULL counts as {}.  anonymousUserId is removed: only the caller's identity
-- may set it, never a key smuggled in by the caller.
CREATE FUNCTION chatmem_internal.json_object_arg(p_value jsonb, p_field text)
RETURNS jsonb
LANGUAGE plpgsql STABLE SECURITY INVOKER
AS $$
BEGIN
    IF p_value IS NULL THEN
        RETURN '{}'::jsonb;
    END IF;
    IF jsonb_typeof(p_value) <> 'object' THEN
        PERFORM chatmem_internal.invalid(p_field, 'must be a JSON object, not ' || jsonb_typeof(p_value),
                                         'Pass an object such as {"topic": "billing"}, or {}.');
    END IF;
    IF octet_length(p_value::text) > 65536 THEN
        PERFORM chatmem_internal.invalid(p_field, format('is %s bytes; the limit is 65536',
                                                        octet_length(p_value::text)),
                                         'Keep metadata small; store large content as messages.');
    END IF;
    -- Depth is bounded too: deep nesting costs every later reader, and no
    -- metadata needs it.  An item at level 33 means more than 32 levels.
    IF jsonb_path_exists(p_value, 'lax $.**{33}') THEN
        PERFORM chatmem_internal.invalid(p_field, 'is nested more than 32 levels deep',
                                         'Flatten the object; keep metadata to a few levels.');
    END IF;
    RETURN p_value - 'anonymousUserId';
END
$$;
COMMENT ON FUNCTION chatmem_internal.json_object_arg(jsonb, text) IS
    'Validate a caller''s JSON object (NULL as {}, at most 64 KiB and 32 levels) and strip anonymousUserId.';
