-- depends: 0013_guest_cap_lock_buckets
-- Locks taken: ACCESS EXCLUSIVE on chatmem_settings for a moment (a column default: catalog only), then a row lock on its one row.
-- Sessions made by api.create_session started from the older product's
-- metadata, {"project": "stripe_support", "context": "customer_support"}:
-- right for that product, wrong for every other one, and a chat product
-- that never asked for it found it on every conversation.  The default is
-- now no metadata at all; a deployment that wants defaults sets them (see
-- docs/api.md, Settings).
--
-- The one settings row changes only if it still holds exactly the old
-- default: a value a DBA chose stays.
SET LOCAL lock_timeout = '5s';
SET LOCAL statement_timeout = '60s';

-- yoyo runs this migration in one transaction and records it, so it never
-- runs half-way or twice; setting a default is idempotent anyway.
-- squawk-ignore prefer-robust-stmts
ALTER TABLE public.chatmem_settings ALTER COLUMN session_defaults SET DEFAULT '{}';

UPDATE public.chatmem_settings
   SET session_defaults = '{}', updated_at = now()
 WHERE session_defaults = '{"project": "stripe_support", "context": "customer_support"}'::jsonb;

COMMENT ON COLUMN public.chatmem_settings.session_defaults IS
    'Metadata every session made by api.create_session starts from, before the caller''s context is merged in (default: none).';
