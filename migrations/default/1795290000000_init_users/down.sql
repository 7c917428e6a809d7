DROP TABLE public.users;
DROP FUNCTION public.set_current_timestamp_updated_at();
