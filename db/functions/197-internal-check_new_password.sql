CREATE FUNCTION chatmem_internal.check_new_password(p_password text, p_min_length integer)
RETURNS void
LANGUAGE plpgsql STABLE SECURITY INVOKER
AS $$
BEGIN
    IF p_password IS NULL THEN
        PERFORM chatmem_internal.invalid('p_password', 'is required',
                                         format('Choose a password of %s characters or more.', p_min_length));
    ELSIF char_length(p_password) < p_min_length THEN
        PERFORM chatmem_internal.invalid('p_password',
                                         format('is shorter than %s characters', p_min_length),
                                         format('Choose a password of %s characters or more.', p_min_length));
    ELSIF octet_length(p_password) > 72 THEN
        -- bcrypt ignores everything after byte 72: refuse rather than
        -- silently accept a longer password than the one that counts.
        PERFORM chatmem_internal.invalid('p_password',
                                         format('is %s bytes long; the limit is 72 bytes', octet_length(p_password)),
                                         'Choose a shorter password (72 bytes at most; non-ASCII characters take 2-4 bytes).');
    END IF;
END
$$;
COMMENT ON FUNCTION chatmem_internal.check_new_password(text, integer) IS
    'Raise 22023 unless the password has at least the minimum characters and at most 72 bytes.';
