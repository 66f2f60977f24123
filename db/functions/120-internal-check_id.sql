-- Session ids and guest ids: 1 to 255 characters, not only spaces, no
-- control characters.
--
-- is_valid_id is the rule; check_id returns a valid id unchanged and hands an
-- invalid one to reject_id, which says what is wrong.  Both are LANGUAGE sql
-- with a single expression, so the planner inlines them into the calling
-- statement or PL/pgSQL expression: no function call, and the valid case is
-- one regular expression and one length test.  (A PL/pgSQL check_id cost a
-- function call and four IF statements per id on every API call.)
CREATE FUNCTION chatmem_internal.is_valid_id(p_value text)
RETURNS boolean
LANGUAGE sql IMMUTABLE SECURITY INVOKER
-- Some character that is neither a space nor a control character, and no
-- control character anywhere: the same as btrim(p_value) <> '' AND
-- p_value !~ '[[:cntrl:]]' (btrim trims spaces only), in one pass.  NULL
-- gives NULL, which callers treat as invalid.
AS $$
    SELECT p_value ~ '^[^[:cntrl:]]*[^[:cntrl:] ][^[:cntrl:]]*$' AND char_length(p_value) <= 255
$$;
COMMENT ON FUNCTION chatmem_internal.is_valid_id(text) IS
    'True for an id of 1-255 characters that is not blank and has no control characters (NULL for NULL).';

CREATE FUNCTION chatmem_internal.reject_id(p_value text, p_field text)
RETURNS text
LANGUAGE plpgsql STABLE SECURITY INVOKER
AS $$
BEGIN
    IF p_value IS NULL THEN
        PERFORM chatmem_internal.invalid(p_field, 'is required', 'Pass a non-empty id of at most 255 characters.');
    ELSIF btrim(p_value) = '' THEN
        PERFORM chatmem_internal.invalid(p_field, 'is empty', 'Pass a non-empty id of at most 255 characters.');
    ELSIF char_length(p_value) > 255 THEN
        PERFORM chatmem_internal.invalid(p_field, format('is %s characters long; the limit is 255',
                                                        char_length(p_value)),
                                         'Use an id of at most 255 characters, such as a UUID.');
    ELSIF p_value ~ '[[:cntrl:]]' THEN
        PERFORM chatmem_internal.invalid(p_field, 'contains control characters',
                                         'Use printable characters only, such as a UUID.');
    END IF;
    -- Not reached for an id is_valid_id refuses; a valid one passes unchanged.
    RETURN p_value;
END
$$;
COMMENT ON FUNCTION chatmem_internal.reject_id(text, text) IS
    'Raise 22023 saying why the id is invalid: NULL, blank, over 255 characters or control characters.';

CREATE FUNCTION chatmem_internal.check_id(p_value text, p_field text)
RETURNS text
LANGUAGE sql STABLE SECURITY INVOKER
AS $$
    SELECT CASE WHEN chatmem_internal.is_valid_id(p_value) THEN p_value
                ELSE chatmem_internal.reject_id(p_value, p_field) END
$$;
COMMENT ON FUNCTION chatmem_internal.check_id(text, text) IS
    'Return the id unchanged, or raise 22023 if it is NULL, blank, over 255 characters or has control characters.';
