-- Back to the older product's defaults, for a row that still has none of its own.
SET LOCAL lock_timeout = '5s';
SET LOCAL statement_timeout = '60s';

-- yoyo runs this migration in one transaction and records it, so it never
-- runs half-way or twice; setting a default is idempotent anyway.
-- squawk-ignore prefer-robust-stmts
ALTER TABLE public.chatmem_settings ALTER COLUMN session_defaults SET DEFAULT '{"project": "stripe_support", "context": "customer_support"}';

UPDATE public.chatmem_settings
   SET session_defaults = '{"project": "stripe_support", "context": "customer_support"}', updated_at = now()
 WHERE session_defaults = '{}'::jsonb;

COMMENT ON COLUMN public.chatmem_settings.session_defaults IS
    'Metadata every session made by api.create_session starts from, before the caller''s context is merged in.';
