-- 56 random bits from pgcrypto's CSPRNG, written in base 36 (up to 11
-- characters): the random part of the ids api.create_session makes.
CREATE FUNCTION chatmem_internal.random_base36()
RETURNS text
LANGUAGE plpgsql VOLATILE SECURITY INVOKER
AS $$
DECLARE
    v_number bigint := ('x' || encode(chatmem_internal.random_bytes(7), 'hex'))::bit(56)::bigint;
    v_digits text := '';
BEGIN
    LOOP
        v_digits := substr('0123456789abcdefghijklmnopqrstuvwxyz', (v_number % 36)::integer + 1, 1) || v_digits;
        v_number := v_number / 36;
        EXIT WHEN v_number = 0;
    END LOOP;
    RETURN v_digits;
END
$$;
COMMENT ON FUNCTION chatmem_internal.random_base36() IS '56 CSPRNG bits in base 36.';
