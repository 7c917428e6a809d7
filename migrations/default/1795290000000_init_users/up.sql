-- Users and the shared updated_at trigger function.
-- gen_random_uuid() is built into PostgreSQL 13+, so no extension is needed.

CREATE FUNCTION public.set_current_timestamp_updated_at()
RETURNS trigger
LANGUAGE plpgsql
AS $$
BEGIN
  NEW.updated_at := now();
  RETURN NEW;
END;
$$;

CREATE TABLE public.users (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  email text NOT NULL,
  display_name text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT users_email_key UNIQUE (email),
  CONSTRAINT users_email_format CHECK (email ~ '^[^@\s]+@[^@\s]+$'),
  CONSTRAINT users_display_name_not_blank CHECK (btrim(display_name) <> '')
);
