-- Caller-supplied metadata and context: a JSON object of at most 64 KiB and
-- 32 levels.
-- NULL counts as {}.  anonymousUserId is removed: only the caller's identity
-- may set it, never a key smuggled in by the caller.
--
-- As with check_id (120): is_json_object_arg is the rule, json_object_arg
-- applies it and is inlined into its caller, and reject_json_object says
-- what is wrong with a value the rule refuses.
CREATE FUNCTION chatmem_internal.is_json_object_arg(p_value jsonb)
RETURNS boolean
LANGUAGE sql IMMUTABLE SECURITY INVOKER
-- p_value @> '{}' holds for objects only (not arrays, strings, numbers or
-- null): jsonb_typeof(p_value) = 'object' in one operator.  Depth is bounded
-- too: deep nesting costs every later reader, and no metadata needs it.  An
-- item at level 33 means more than 32 levels.
AS $$
    SELECT p_value @> '{}' AND octet_length(p_value::text) <= 65536
           AND NOT jsonb_path_exists(p_value, 'lax $.**{33}')
$$;
COMMENT ON FUNCTION chatmem_internal.is_json_object_arg(jsonb) IS
    'True for a JSON object of at most 64 KiB as text and 32 levels (NULL for NULL).';

CREATE FUNCTION chatmem_internal.reject_json_object(p_value jsonb, p_field text)
RETURNS jsonb
LANGUAGE plpgsql STABLE SECURITY INVOKER
AS $$
BEGIN
    IF jsonb_typeof(p_value) <> 'object' THEN
        PERFORM chatmem_internal.invalid(p_field, 'must be a JSON object, not ' || jsonb_typeof(p_value),
                                         'Pass an object such as {"topic": "billing"}, or {}.');
    END IF;
    IF octet_length(p_value::text) > 65536 THEN
        PERFORM chatmem_internal.invalid(p_field, format('is %s bytes; the limit is 65536',
                                                        octet_length(p_value::text)),
                                         'Keep metadata small; store large content as messages.');
    END IF;
    IF jsonb_path_exists(p_value, 'lax $.**{33}') THEN
        PERFORM chatmem_internal.invalid(p_field, 'is nested more than 32 levels deep',
                                         'Flatten the object; keep metadata to a few levels.');
    END IF;
    -- Not reached for a value is_json_object_arg refuses.
    RETURN p_value - 'anonymousUserId';
END
$$;
COMMENT ON FUNCTION chatmem_internal.reject_json_object(jsonb, text) IS
    'Raise 22023 saying why the value is no acceptable JSON object: not an object, over 64 KiB, or over 32 levels.';

CREATE FUNCTION chatmem_internal.json_object_arg(p_value jsonb, p_field text)
RETURNS jsonb
LANGUAGE sql STABLE SECURITY INVOKER
AS $$
    SELECT CASE WHEN p_value IS NULL THEN '{}'::jsonb
                WHEN chatmem_internal.is_json_object_arg(p_value) THEN p_value - 'anonymousUserId'
                ELSE chatmem_internal.reject_json_object(p_value, p_field) END
$$;
COMMENT ON FUNCTION chatmem_internal.json_object_arg(jsonb, text) IS
    'Validate a caller''s JSON object (NULL as {}, at most 64 KiB and 32 levels) and strip anonymousUserId.';
