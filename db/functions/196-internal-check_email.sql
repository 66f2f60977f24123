CREATE FUNCTION chatmem_internal.check_email(p_email text)
RETURNS void
LANGUAGE plpgsql STABLE SECURITY INVOKER
AS $$
BEGIN
    IF p_email IS NULL THEN
        PERFORM chatmem_internal.invalid('p_email', 'is required', 'Give an email address such as ada@example.com.');
    ELSIF char_length(p_email) > 254 THEN
        PERFORM chatmem_internal.invalid('p_email', format('is %s characters long; the limit is 254',
                                                          char_length(p_email)),
                                         'Give an email address of at most 254 characters.');
    ELSIF p_email !~ '^[^@[:space:][:cntrl:]]+@([^@[:space:][:cntrl:].]+\.)+[^@[:space:][:cntrl:].]+$' THEN
        PERFORM chatmem_internal.invalid('p_email', 'is not an email address of the form local@domain.tld',
                                         'Give an email address such as ada@example.com.');
    END IF;
END
$$;
COMMENT ON FUNCTION chatmem_internal.check_email(text) IS
    'Raise 22023 unless the (trimmed) email is local@domain.tld and at most 254 characters.';
