DROP TABLE public.session_claims;
