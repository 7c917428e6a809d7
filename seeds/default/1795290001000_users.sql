-- Demo users with fixed ids, so tokens can be minted for them (x-hasura-user-id).
INSERT INTO public.users (id, email, display_name, created_at) VALUES
  ('11111111-1111-4111-8111-111111111111', 'alice@example.com', 'Alice', '2026-01-05T09:00:00Z'),
  ('22222222-2222-4222-8222-222222222222', 'bob@example.com', 'Bob', '2026-01-06T09:00:00Z'),
  ('33333333-3333-4333-8333-333333333333', 'carol@example.com', 'Carol', '2026-01-07T09:00:00Z'),
  ('44444444-4444-4444-8444-444444444444', 'dave@example.com', 'Dave', '2026-01-08T09:00:00Z')
ON CONFLICT DO NOTHING;
