-- Message content, questions and answers: present, not blank, not huge.
CREATE FUNCTION chatmem_internal.check_text(p_value text, p_field text)
RETURNS text
LANGUAGE plpgsql STABLE SECURITY INVOKER
AS $$
DECLARE
    v_max integer := (chatmem_internal.settings()).message_max_chars;
BEGIN
    IF p_value IS NULL THEN
        PERFORM chatmem_internal.invalid(p_field, 'is required', 'Pass the text to store.');
    ELSIF btrim(p_value, E' \t\r\n') = '' THEN
        PERFORM chatmem_internal.invalid(p_field, 'is empty', 'Pass non-blank text.');
    ELSIF char_length(p_value) > v_max THEN
        PERFORM chatmem_internal.invalid(p_field, format('is %s characters long; the limit is %s',
                                                        char_length(p_value), v_max),
                                         'Split the text, or raise chatmem_settings.message_max_chars.');
    END IF;
    RETURN p_value;
END
$$;
COMMENT ON FUNCTION chatmem_internal.check_text(text, text) IS
    'Return the text unchanged, or raise 22023 if it is NULL, blank or longer than chatmem_settings.message_max_chars.';
