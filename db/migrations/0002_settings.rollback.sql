DROP TABLE public.chatmem_settings;
