-- The role chatmem_assistant is kept: roles are cluster-wide, and another
-- database of this cluster may use it.
ALTER TABLE public.chatmem_settings
    DROP COLUMN IF EXISTS hash_wait,
    DROP COLUMN IF EXISTS max_concurrent_hashes;
