DROP TRIGGER conversation_sessions_guest_cap ON public.conversation_sessions;
DROP FUNCTION public.conversation_sessions_guest_cap();
