CREATE FUNCTION chatmem_internal.settings()
RETURNS public.chatmem_settings
LANGUAGE sql STABLE SECURITY INVOKER
AS $$ SELECT s.* FROM public.chatmem_settings AS s $$;
COMMENT ON FUNCTION chatmem_internal.settings() IS 'The one row of public.chatmem_settings.';
