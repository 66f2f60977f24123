DROP TRIGGER conversation_sessions_mark_orphaned ON public.conversation_sessions;
DROP FUNCTION public.conversation_sessions_mark_orphaned();
ALTER TABLE public.conversation_sessions DROP COLUMN owner_deleted_at;
