DROP TABLE public.login_failures;
