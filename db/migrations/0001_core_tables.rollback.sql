-- Dropping the core tables destroys every conversation: refuse while any row
-- exists (a legacy database upgraded in place holds its history here).
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM public.users) OR EXISTS (SELECT 1 FROM public.conversation_sessions) THEN
        RAISE EXCEPTION USING
            ERRCODE = '55000',
            MESSAGE = 'refusing to roll back 0001_core_tables: users or conversation_sessions hold rows',
            HINT = 'Back up and empty these tables yourself if you really mean to drop them.';
    END IF;
END
$$;

DROP TABLE public.qa_pairs;
DROP TABLE public.conversation_messages;
DROP TABLE public.conversation_sessions;
DROP TABLE public.users;
-- chatmem_app and pgcrypto stay: roles are cluster-wide and other databases
-- may use them, and the extension may have been there before us.
