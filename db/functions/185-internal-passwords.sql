-- Everything that checks a password (api.login, api.change_password,
-- api.delete_account) shares these, so the throttle, its exactness and the
-- timing hold alike for each.
--
-- The order every caller keeps: the email's turn (and the throttle), then a
-- hashing slot (CM004), then the check; a failure is counted autonomously
-- before the caller raises 28P01.  Functions that take several locks take
-- them in this order too (see chatmem_internal.revoke_token_families), so
-- none waits for another in a cycle.

-- Attempts on one email take turns: a transaction-scoped advisory lock keyed
-- by the lower-cased email (known or not, so it tells nothing about which
-- emails exist).  api.change_password, api.reset_password and
-- api.delete_account take it too, so a login never reads a password hash
-- that a change in flight is about to replace.
CREATE FUNCTION chatmem_internal.email_turn(p_email text)
RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY INVOKER
AS $$
BEGIN
    PERFORM pg_advisory_xact_lock(hashtextextended('chatmem login ' || p_email, 0));
END
$$;
COMMENT ON FUNCTION chatmem_internal.email_turn(text) IS
    'Wait for this (lower-cased) email''s turn: attempts on one email take turns until their transactions end.';

-- The throttle, called in the email's turn.  Each attempt counts the
-- failures committed before it got the turn (a fresh snapshot per statement
-- at READ COMMITTED), and a failure is committed (autonomously) before its
-- turn passes.  So however many attempts arrive at once, at most
-- login_failure_limit of them per window reach bcrypt; the rest get CM001
-- cheaply.
CREATE FUNCTION chatmem_internal.refuse_if_throttled(p_email text)
RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY INVOKER
AS $$
DECLARE
    v_settings public.chatmem_settings := chatmem_internal.settings();
BEGIN
    IF (SELECT count(*) FROM public.login_failures AS f
         WHERE f.email = p_email
           AND f.failed_at > now() - v_settings.login_failure_window) >= v_settings.login_failure_limit THEN
        RAISE EXCEPTION USING
            ERRCODE = 'CM001',
            MESSAGE = format('too many failed logins for this email in the last %s', v_settings.login_failure_window),
            HINT = 'Wait and try again later, or reset the password.';
    END IF;
END
$$;
COMMENT ON FUNCTION chatmem_internal.refuse_if_throttled(text) IS
    'Raise CM001 when the email has login_failure_limit failures within login_failure_window. Call it in the email''s turn.';

-- A failed check must be counted although the call fails: written in a
-- transaction of its own.  The caller holds the email's turn and a hashing
-- slot (advisory locks, which that insert does not need), and no row lock.
CREATE FUNCTION chatmem_internal.count_login_failure(p_email text)
RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY INVOKER
AS $$
BEGIN
    PERFORM chatmem_internal.autonomous(format(
        'INSERT INTO public.login_failures (email) VALUES (%L)', p_email));
END
$$;
COMMENT ON FUNCTION chatmem_internal.count_login_failure(text) IS
    'Record a failed password check for the email, committed even though the caller then raises.';

-- Does the password match the stored hash?  Every path spends what one
-- bcrypt at the current cost takes, so timing does not tell whether an
-- account exists or has a password, also right after bcrypt_cost was raised
-- (as Django's harden_runtime does):
--   - no hash (no account, or an account made through an identity provider,
--     which has no password): a dummy bcrypt at the current cost;
--   - a hash at the current cost: its check;
--   - a cheaper hash that does not match: its check, padded with bcrypt at
--     costs c_stored .. current - 1.  Each cost doubles the work, so the pads
--     add up to T(current) - T(c_stored).
-- The caller holds a hashing slot (chatmem_internal.take_hash_slot).
CREATE FUNCTION chatmem_internal.check_password(p_password text, p_hash text)
RETURNS boolean
LANGUAGE plpgsql VOLATILE SECURITY INVOKER
AS $$
DECLARE
    v_cost      integer := (chatmem_internal.settings()).bcrypt_cost;
    v_hash_cost integer := chatmem_internal.bcrypt_cost(p_hash);
    v_valid     boolean;
BEGIN
    IF p_hash IS NULL THEN
        -- crypt() is STRICT: a NULL would skip the work this is for.
        PERFORM chatmem_internal.crypt(coalesce(p_password, ''), chatmem_internal.bcrypt_salt(v_cost));
        RETURN false;
    END IF;
    -- crypt() of a NULL password is NULL: "IS TRUE" treats that as a mismatch.
    v_valid := (chatmem_internal.crypt(p_password, p_hash) = p_hash) IS TRUE;
    IF NOT v_valid AND v_hash_cost < v_cost THEN
        FOR v_pad_cost IN v_hash_cost .. v_cost - 1 LOOP
            PERFORM chatmem_internal.crypt(coalesce(p_password, ''), chatmem_internal.bcrypt_salt(v_pad_cost));
        END LOOP;
    END IF;
    RETURN v_valid;
END
$$;
COMMENT ON FUNCTION chatmem_internal.check_password(text, text) IS
    'True when the password matches the hash; false for a NULL hash (no account, or no password). Takes one bcrypt at the current cost on every path.';

-- A new password obeys registration's rules (chatmem_internal.
-- check_new_password, the one place they are written), with the error
-- naming the caller's field (p_new_password) instead of p_password.
CREATE FUNCTION chatmem_internal.check_new_password(p_password text, p_min_length integer, p_field text)
RETURNS void
LANGUAGE plpgsql STABLE SECURITY INVOKER
AS $$
DECLARE
    v_message text;
    v_hint    text;
BEGIN
    PERFORM chatmem_internal.check_new_password(p_password, p_min_length);
EXCEPTION WHEN invalid_parameter_value THEN
    GET STACKED DIAGNOSTICS v_message = MESSAGE_TEXT, v_hint = PG_EXCEPTION_HINT;
    RAISE EXCEPTION USING
        ERRCODE = '22023',
        MESSAGE = p_field || substr(v_message, char_length('p_password') + 1),
        HINT = v_hint;
END
$$;
COMMENT ON FUNCTION chatmem_internal.check_new_password(text, integer, text) IS
    'Raise 22023 naming p_field unless the password obeys registration''s rules (minimum characters, at most 72 bytes).';

-- The new hash of a password, at the current cost.  The caller holds a
-- hashing slot.
CREATE FUNCTION chatmem_internal.hash_password(p_password text)
RETURNS text
LANGUAGE sql VOLATILE SECURITY INVOKER
AS $$
    SELECT chatmem_internal.crypt(p_password,
                                  chatmem_internal.bcrypt_salt((chatmem_internal.settings()).bcrypt_cost))
$$;
COMMENT ON FUNCTION chatmem_internal.hash_password(text) IS 'A new bcrypt hash of the password at the settings'' bcrypt_cost.';
