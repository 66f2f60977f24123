-- Every 22023 the API raises goes through here, so messages name the field
-- the same way everywhere: "<field>: <what is wrong>".
CREATE FUNCTION chatmem_internal.invalid(p_field text, p_problem text, p_hint text)
RETURNS void
LANGUAGE plpgsql IMMUTABLE SECURITY INVOKER
AS $$
BEGIN
    RAISE EXCEPTION USING
        ERRCODE = '22023',
        MESSAGE = p_field || ': ' || p_problem,
        HINT = p_hint;
END
$$;
COMMENT ON FUNCTION chatmem_internal.invalid(text, text, text) IS
    'Raise 22023 (invalid_parameter_value) naming the field, with a hint.';
