-- Session ids and guest ids: 1 to 255 characters, no control characters.
CREATE FUNCTION chatmem_internal.check_id(p_value text, p_field text)
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
    RETURN p_value;
END
$$;
COMMENT ON FUNCTION chatmem_internal.check_id(text, text) IS
    'Return the id unchanged, or raise 22023 if it is NULL, blank, over 255 characters or has control characters.';
