-- Every 22023 the API raises goes through here, so messages name the field
-- the same way everywhere: "<field>: <what is wrong>".
--
-- This and every helper that may raise are STABLE, never IMMUTABLE: the
-- planner evaluates an IMMUTABLE call with constant arguments while planning,
-- so a raise in a branch that never runs would fire anyway
-- (SELECT CASE WHEN random() > 2 THEN chatmem_internal.check_email(NULL) END).
CREATE FUNCTION chatmem_internal.invalid(p_field text, p_problem text, p_hint text)
RETURNS void
LANGUAGE plpgsql STABLE SECURITY INVOKER
AS $$
-- plpgsql_check suggests IMMUTABLE here (the body reads nothing): that is the
-- trap described above, so its performance hints are off for this function.
-- @plpgsql_check_options: performance_warnings = false
BEGIN
    RAISE EXCEPTION USING
        ERRCODE = '22023',
        MESSAGE = p_field || ': ' || p_problem,
        HINT = p_hint;
END
$$;
COMMENT ON FUNCTION chatmem_internal.invalid(text, text, text) IS
    'Raise 22023 (invalid_parameter_value) naming the field, with a hint.';
