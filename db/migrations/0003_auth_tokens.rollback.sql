DROP TABLE public.auth_tokens;
